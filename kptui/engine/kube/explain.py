"""Plain-language explanations of rules and chains, in kube-proxy's terms for the era the dump comes from.

``explain_rule(ruleset, index, table, chain, rule_index)`` and ``explain_chain(ruleset, index, table, chain)``
(``index`` is ``service_index_of(ruleset)``, or None to use it) return an :class:`Explanation`; an
:class:`Explainer` does the same for many rules without re-reading the layout. kube-proxy's own rules are
recognised by chain and shape (:mod:`.explain_nat`, :mod:`.explain_filter`) and explained with the service
index (which service a chain belongs to, exact endpoint shares); every other rule (Docker, Calico, the
user's own, a KUBE rule of an unexpected shape) gets a neutral description of what it matches and does
(:mod:`.explain_generic`), never a guessed kube meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import graph_of
from ..model import Chain, Ruleset
from .build import service_index_of
from .era_old import era_at_most
from .explain_common import Context, Explanation, RuleView, hostport
from .explain_filter import explain_builtin_jump, explain_filter
from .explain_generic import explain_generic
from .explain_ipvs import IPVS_CHAINS, explain_ipvs_chain, explain_ipvs_jump, explain_ipvs_rule
from .explain_nat import explain_nat
from .facts import Row, rows_of
from .hashes import split_chain
from .model import ServiceIndex, ServicePort

__all__ = ["Explainer", "Explanation", "explain_chain", "explain_rule"]

_FOREIGN = (("DOCKER", "Docker's"), ("cali-", "Calico's"), ("FLANNEL", "Flannel's"), ("CILIUM", "Cilium's"),
            ("KIND-", "kind's"), ("f2b-", "fail2ban's"), ("ufw-", "ufw's"), ("LIBVIRT", "libvirt's"),
            ("WEAVE", "Weave Net's"), ("ANTREA", "Antrea's"), ("KUBE-ROUTER", "kube-router's"))  # fmt: skip
_HOOKS = {
    "PREROUTING": "arriving on an interface, before routing", "INPUT": "addressed to this node",
    "FORWARD": "forwarded through this node", "OUTPUT": "generated on this node",
    "POSTROUTING": "about to leave, after routing",
}  # fmt: skip
_FIXED = {
    ("nat", "KUBE-POSTROUTING"): "masquerades the connections marked {masq} as they leave the node (reached from "
                                 "nat POSTROUTING)",
    ("nat", "KUBE-MARK-MASQ"): "sets the masquerade bit {masq}: every rule that wants a connection SNATed jumps "
                               "here, and KUBE-POSTROUTING masquerades it on the way out",
    ("nat", "KUBE-MARK-DROP"): "sets the drop bit {drop}; filter KUBE-FIREWALL drops marked packets. kubelet "
                               "created it up to 1.27; kube-proxy 1.25 and newer no longer use it",
    ("nat", "KUBE-NODEPORTS"): "NodePorts: one rule per service NodePort, reached from the last rule of "
                               "KUBE-SERVICES for traffic addressed to this node's own addresses",
    ("filter", "KUBE-NODEPORTS"): "accepts the health-check node ports of services with externalTrafficPolicy "
                                  "Local, which load balancers probe",
    ("filter", "KUBE-SERVICES"): "rejects new connections to the cluster IPs of services without endpoints "
                                 "(drops them for internalTrafficPolicy Local without local endpoints)",
    ("filter", "KUBE-EXTERNAL-SERVICES"): "refuses traffic to external IPs, load-balancer IPs and NodePorts of "
                                          "services without endpoints (REJECT) or, with externalTrafficPolicy "
                                          "Local, without endpoints on this node (DROP)",
    ("filter", "KUBE-PROXY-FIREWALL"): "drops traffic to load-balancer IPs with loadBalancerSourceRanges that "
                                       "their KUBE-FW chain did not admit (kube-proxy 1.25 and newer)",
    ("filter", "KUBE-FORWARD"): "kube-proxy's FORWARD rules: drops INVALID packets, and accepts marked and "
                                "established traffic even when the FORWARD policy is DROP",
    ("filter", "KUBE-FIREWALL"): "drops connections to 127.0.0.0/8 that come from elsewhere{marked}",
    ("nat", "KUBE-PORTALS-CONTAINER"): "the userspace proxy (--proxy-mode=userspace, removed in 1.26), for traffic "
                                       "arriving on an interface: each service address is redirected to a port "
                                       "kube-proxy itself listens on (reached from nat PREROUTING)",
    ("nat", "KUBE-PORTALS-HOST"): "the userspace proxy, for connections from the node itself: each service "
                                  "address is DNATed to a port kube-proxy listens on (reached from nat OUTPUT)",
    ("nat", "KUBE-NODEPORT-CONTAINER"): "the userspace proxy's NodePorts, for traffic arriving on an interface: "
                                        "redirected to kube-proxy's own ports",
    ("nat", "KUBE-NODEPORT-HOST"): "the userspace proxy's NodePorts, for connections from the node itself: "
                                   "DNATed to kube-proxy's own ports",
    ("", "KUBE-PROXY-CANARY"): "an empty canary chain: kube-proxy recreates its rules when it disappears "
                               "(someone flushed the tables)",
    ("", "KUBE-KUBELET-CANARY"): "an empty canary chain: kubelet recreates its rules when it disappears",
    ("", "KUBE-IPTABLES-HINT"): "an empty chain kubelet creates so that tools can tell which iptables backend "
                                "(legacy or nft) the node uses",
}  # fmt: skip


class Explainer:
    """Explains rules and chains of one ruleset (cheap per call once built)."""

    def __init__(self, ruleset: Ruleset, index: ServiceIndex | None = None) -> None:
        self.ruleset = ruleset
        self.index = index if index is not None else service_index_of(ruleset)
        layout = self.index.layout
        detector = layout.local_detector_values[0] if layout.local_detector == "cidr" and \
            layout.local_detector_values else None  # fmt: skip
        self.ctx = Context(self.index, layout.masquerade_mark or "0x4000", layout.drop_mark or "0x8000",
                           layout.era, detector)  # fmt: skip
        self.kube = layout.kube_proxy and layout.mode in ("iptables", "userspace")
        self.ipvs = layout.kube_proxy and layout.mode == "ipvs"  # IPVS mode: .explain_ipvs

    def _chain(self, table: str | None, name: str) -> Chain:
        chain = self.ruleset.chain(table, name)
        if chain is None:
            where = f"table {table}" if table is not None else "the dump"
            raise LookupError(f"no chain {name} in {where}")
        return chain

    def rule(self, table: str | None, chain_name: str, rule_index: int) -> Explanation:
        """Rule ``rule_index`` (1-based) of ``table``/``chain_name``; LookupError if there is none."""
        chain = self._chain(table, chain_name)
        if not 1 <= rule_index <= len(chain.rules):
            raise LookupError(f"{table or '?'}/{chain_name} has {len(chain.rules)} rule"
                              f"{'s' if len(chain.rules) != 1 else ''}: there is no rule {rule_index}")  # fmt: skip
        view = RuleView(chain.rules[rule_index - 1])
        found: Explanation | None = None
        if self.kube:
            if chain.builtin:
                if (view.target or "").startswith("KUBE-"):
                    found = explain_builtin_jump(self.ctx, table, chain, view)
            elif chain_name.startswith("KUBE-"):
                if table in ("nat", None):
                    found = explain_nat(self.ctx, chain, view)
                if found is None and table in ("filter", None):
                    found = explain_filter(self.ctx, chain, view)
        elif self.ipvs:
            if chain.builtin and (view.target or "").startswith("KUBE-"):
                found = explain_ipvs_jump(table, chain, view) or explain_builtin_jump(self.ctx, table, chain, view)
            elif chain_name in IPVS_CHAINS:
                found = explain_ipvs_rule(table, chain, view, self.ctx.masq)
            elif chain_name.startswith("KUBE-"):  # kubelet's chains are the same in both modes
                found = explain_filter(self.ctx, chain, view) if table in ("filter", None) else None
        if found is not None:
            return found
        names = self.ruleset.tables[table].chains.keys()
        return explain_generic(view, builtin_chain=chain.builtin, chains=set(names))

    def chain(self, table: str | None, chain_name: str) -> Explanation:
        """What chain ``chain_name`` of ``table`` is for; LookupError if there is none."""
        chain = self._chain(table, chain_name)
        if chain.builtin:
            hook = _HOOKS.get(chain_name, "")
            kube = any((r[4] or "").startswith("KUBE-") for r in _rows(chain))
            text = f"the built-in {table or ''} chain {chain_name}".replace("  ", " ")
            text += f": it sees packets {hook}" if hook else ""
            text += "; kube-proxy hooks its chains in here" if kube else ""
            return Explanation(text, "builtin-chain", kube=kube)
        if not chain_name.startswith("KUBE-") or not (self.kube or self.ipvs):
            for prefix, owner in _FOREIGN:
                if chain_name.startswith(prefix):
                    return Explanation(f"one of {owner} chains: not kube-proxy's, so kptui describes its rules "
                                       "neutrally", "foreign-chain", kube=False)  # fmt: skip
            return Explanation("a user chain that is not kube-proxy's (another program's or the administrator's): "
                               "kptui describes its rules neutrally", "foreign-chain", kube=False)  # fmt: skip
        return self._kube_chain(table, chain)

    def _kube_chain(self, table: str | None, chain: Chain) -> Explanation:
        ctx, name = self.ctx, chain.name
        if self.ipvs:
            referenced = bool(graph_of(self.ruleset).callers_of(table, name))
            found = explain_ipvs_chain(table, chain, ctx.masq, referenced=referenced)
            if found is not None:
                return found
        if name == "KUBE-SERVICES" and table in ("nat", None) and any(
                r[4] and r[4] != "REJECT" for r in _rows(chain)):  # fmt: skip
            text = (f"kube-proxy's entry point in nat: one rule per service address (ClusterIP, external IP, "
                    "load-balancer IP) sends the first packet of a connection to that service's chains, and the last "
                    "rule sends traffic addressed to this node to KUBE-NODEPORTS. It is walked rule by rule "
                    f"({len(chain.rules)} rules), so a connection's first packet costs more the more services "
                    "there are")  # fmt: skip
            if era_at_most(ctx.era, 20):
                text += "; kube-proxy 1.20 and older also keep the masquerade rules here"
            return Explanation(text, "kube-chain")
        for (tname, cname), text in _FIXED.items():
            if cname == name and (tname in ("", table) or table is None):
                marked = f" and packets marked {ctx.drop} by KUBE-MARK-DROP" if any(
                    "--mark" in r[1] for r in _rows(chain)) else ""  # fmt: skip
                return Explanation(text.format(masq=ctx.masq, drop=ctx.drop, marked=marked), "kube-chain")
        parts = split_chain(name)
        svc = ctx.svc(name)
        if parts is None:
            return Explanation("a chain named like kube-proxy's that kptui does not know (IPVS mode, or another "
                               "version): its rules are described neutrally", "kube-chain-unknown")  # fmt: skip
        label = svc.label if svc else None
        return Explanation(_service_chain_text(parts[0], chain, svc), "service-chain", service=label)


def _rows(chain: Chain) -> Sequence[Row]:
    return rows_of(chain)


def _service_chain_text(kind: str, chain: Chain, svc: ServicePort | None) -> str:
    name = svc.label if svc else "an unknown service port"
    targets = [r[4] or "" for r in _rows(chain)]
    seps = len({t for t in targets if t.startswith("KUBE-SEP-")})
    if kind == "SEP":
        ep = next((e for e in svc.endpoints if e.chain == chain.name), None) if svc else None
        where = ep.address if ep is not None and ep.address else "its endpoint"
        return (f"the endpoint chain of {where} ({name}): it marks hairpin traffic for masquerade and DNATs to the "
                "endpoint")  # fmt: skip
    if kind in ("SVC", "SVL"):
        cluster = f" (ClusterIP {hostport(svc.cluster_ip, svc.port, svc.protocol)})" if svc and svc.cluster_ip else ""
        local = "the node-local service chain" if kind == "SVL" else "the service chain"
        here = " on this node" if kind == "SVL" else ""
        if seps == 1:
            text = f"{local} of {name}{cluster}: it sends every connection to its only endpoint{here}"
        else:
            text = (f"{local} of {name}{cluster}: it picks one of {seps} endpoints{here} at random for the first "
                    "packet of each connection")  # fmt: skip
        if svc is not None and svc.affinity_timeout is not None:
            text += f"; clients seen within {svc.affinity_timeout} s go back to their endpoint (session affinity)"
        if "KUBE-MARK-MASQ" in targets:
            text += "; traffic from outside the pod network is marked for masquerade first"
        return text
    if kind == "EXT":
        policy = svc.external_traffic_policy if svc else None
        text = f"the external-traffic chain of {name} (NodePort, external and load-balancer IPs; kube-proxy 1.24+)"
        if policy == "Local":
            text += (": pods and the node itself go to the cluster-wide service chain; outside clients go to this "
                     "node's endpoints only, keeping their source address")  # fmt: skip
            if not any(t.startswith("KUBE-SVL-") for t in targets):
                text += (" — this node has none, so outside traffic falls through un-NATed and filter "
                         "KUBE-EXTERNAL-SERVICES drops it")  # fmt: skip
        elif policy == "Cluster":
            text += ": externalTrafficPolicy Cluster, so it masquerades and sends everything to the service chain"
        return text
    if kind == "FW":
        ranges = ", ".join(svc.source_ranges) if svc and svc.source_ranges else ""
        if ranges:
            return (f"the load-balancer firewall chain of {name}: it admits sources in loadBalancerSourceRanges "
                    f"({ranges}); other traffic is dropped")  # fmt: skip
        return (f"the load-balancer chain of {name} (kube-proxy 1.23 and older send every load-balancer IP through "
                "a KUBE-FW chain)")  # fmt: skip
    if kind == "XLB":
        text = (f"the local-endpoints chain of {name} (externalTrafficPolicy Local, kube-proxy 1.23 and older): "
                "pods and the node itself go to the cluster-wide service chain, outside traffic to the endpoints on "
                "this node")  # fmt: skip
        if "KUBE-MARK-DROP" in targets:
            text += " — there are none, so it is marked for dropping"
        return text
    return f"a per-service chain of {name}"


def explain_rule(ruleset: Ruleset, index: ServiceIndex | None, table: str | None, chain: str,
                 rule_index: int) -> Explanation:  # fmt: skip
    """What rule ``rule_index`` (1-based) of ``table``/``chain`` does; LookupError when it does not exist."""
    return Explainer(ruleset, index).rule(table, chain, rule_index)


def explain_chain(ruleset: Ruleset, index: ServiceIndex | None, table: str | None, chain: str) -> Explanation:
    """What ``table``/``chain`` is for; LookupError when it does not exist."""
    return Explainer(ruleset, index).chain(table, chain)
