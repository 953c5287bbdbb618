"""Plain-language explanations of an nft ruleset: every table, chain, rule, set and map element, in
kube-proxy's terms for kube-proxy's nftables table (which service, which endpoint with which share, why a
connection is masqueraded, what a verdict map sends where), neutrally for every other table.

``NftExplainer(ruleset)`` answers for one listing (the service index of each kube-proxy table is built once);
its methods take ``family`` and ``table`` (``"ip"``, ``"kube-proxy"``) and raise LookupError for what the
listing lacks. Explanations are plain text from the listing: callers pass them through ``printable``.
"""

from __future__ import annotations

from ..nft.model import NftChain, NftRuleset, NftSet, NftTable
from .explain_common import Explanation, hostport
from .nft_build import nft_service_index_of
from .nft_explain_rules import CHAINS, ROLES, NftContext, explain_kube_rule
from .nft_layout import TABLE, nft_layout
from .nft_names import parse_chain
from .nft_words import element_text, explain_nft_generic

__all__ = ["NftExplainer"]

_HOOKS = {"prerouting": "arriving on an interface, before routing", "input": "addressed to this node",
          "forward": "forwarded through this node", "output": "generated on this node",
          "postrouting": "about to leave, after routing", "ingress": "as they arrive on the device",
          "egress": "as they leave by the device"}  # fmt: skip
_SETS = {
    "service-ips": "kube-proxy's service map: destination address . protocol . port → the service's chain (cluster "
                   "IPs go to its service- or local- chain, external and load-balancer IPs to its external- chain)",
    "service-nodeports": "kube-proxy's NodePort map: protocol . port → the service's external- chain",
    "no-endpoint-services": "services without endpoints: address . protocol . port → reject (goto reject-chain: no "
                            "endpoints at all) or drop (a Local traffic policy and no endpoint on this node)",
    "no-endpoint-nodeports": "NodePorts without endpoints: protocol . port → reject (no endpoints) or drop (no "
                             "local endpoints with externalTrafficPolicy Local)",
    "firewall-ips": "load-balancer IPs with loadBalancerSourceRanges: address . protocol . port → the service's "
                    "firewall- chain (checked before DNAT)",
    "cluster-ips": "every service's cluster IP: connections to one that no service port took are rejected",
    "nodeport-ips": "the node addresses NodePorts answer on (--nodeport-addresses; 127.0.0.1 never)",
}  # fmt: skip


def _pri(chain: NftChain) -> str:
    text = chain.priority_text or str(chain.priority)
    return text if text == str(chain.priority) else f"{text} ({chain.priority})"


class NftExplainer:
    """Explains the tables, chains, rules, sets and elements of one nft listing."""

    def __init__(self, ruleset: NftRuleset) -> None:
        self.ruleset = ruleset
        self._ctx: dict[str, NftContext] = {}

    def context(self, family: str) -> NftContext | None:
        """kube-proxy's table of ``family`` with its service index and layout (None: there is none)."""
        if family not in self._ctx:
            table = self.ruleset.table(family, TABLE)
            if table is None:
                return None
            self._ctx[family] = NftContext(table, nft_service_index_of(self.ruleset, family), nft_layout(table))
        return self._ctx.get(family)

    def _table(self, family: str, table: str) -> NftTable:
        t = self.ruleset.table(family, table)
        if t is None:
            raise LookupError(f"no table {family} {table} in the listing")
        return t

    def _chain(self, family: str, table: str, chain: str) -> NftChain:
        c = self._table(family, table).chains.get(chain)
        if c is None:
            raise LookupError(f"no chain {chain} in table {family} {table}")
        return c

    def _set(self, family: str, table: str, name: str) -> NftSet:
        s = self._table(family, table).sets.get(name.removeprefix("@"))
        if s is None:
            raise LookupError(f"no set or map {name} in table {family} {table}")
        return s

    # -- tables and chains ---------------------------------------------------------------------------
    def table(self, family: str, table: str) -> Explanation:
        t = self._table(family, table)
        hooks = sorted({c.hook for c in t.chains.values() if c.hook})
        where = f"its base chains hook into {', '.join(hooks)}" if hooks else "it has no base chain: nothing runs it"
        if table == TABLE and family in ("ip", "ip6"):
            n = len(self.context(family).index) if self.context(family) else 0  # type: ignore[union-attr]
            return Explanation(f"kube-proxy's table (nftables mode, IPv{6 if family == 'ip6' else 4}): {where}; its "
                               f"{n} service ports are found by map lookups (service-ips, service-nodeports), not by "
                               "walking a chain rule by rule", "nft-table")  # fmt: skip
        if t.iptables_nft:
            return Explanation(f"a table iptables-nft manages (table {family} {table}): {where}; its rules are read "
                               "best from iptables-nft-save", "nft-table", kube=False)  # fmt: skip
        return Explanation(f"a table that is not kube-proxy's (another program's or the administrator's): {where}; "
                           "kptui describes its rules neutrally", "nft-table", kube=False)  # fmt: skip

    def chain(self, family: str, table: str, chain: str) -> Explanation:
        c = self._chain(family, table, chain)
        kube = table == TABLE and family in ("ip", "ip6")
        if c.is_base:
            text = (f"a base chain: type {c.type}, hook {c.hook}, priority {_pri(c)}, policy {c.policy or 'accept'}; "
                    f"it sees packets {_HOOKS.get(c.hook or '', 'at that hook')}")  # fmt: skip
            if kube:
                text += self._kube_base(c)
            return Explanation(text, "nft-base-chain", kube=kube)
        if not kube:
            return Explanation("a regular chain of a table that is not kube-proxy's: kptui describes its rules "
                               "neutrally", "nft-chain", kube=False)  # fmt: skip
        if chain in CHAINS:
            return Explanation(CHAINS[chain] + self._fixed_extra(family, c), "kube-chain")
        parsed = parse_chain(chain)
        if parsed is None:
            return Explanation("a chain of kube-proxy's table kptui does not know (another release?): its rules are "
                               "described neutrally", "kube-chain-unknown")  # fmt: skip
        ctx = self.context(family)
        svc = ctx.svc(chain) if ctx else None
        return Explanation(self._service_chain(parsed.prefix, c, svc, ctx), "service-chain",
                           service=svc.label if svc else None)  # fmt: skip

    @staticmethod
    def _kube_base(c: NftChain) -> str:
        from ..nft.exprs import Verdict

        if c.type == "nat":
            return "; kube-proxy's NAT hook: a connection's first packet goes through here (later ones reuse its " \
                   "NAT)" + (", to the service dispatch (DNAT)" if c.hook != "postrouting" else ", to masquerading")
        targets = [s.target for r in c.rules for s in r.exprs if isinstance(s, Verdict) and s.target in ROLES]
        text = f"; on new connections it runs {' and '.join(ROLES[t] for t in targets)}" if targets else ""
        if c.priority is not None and c.priority < -100 and c.hook in ("prerouting", "output"):
            text += ", before kube-proxy's DNAT (priority -100): it still sees the service address"
        elif c.priority is not None and c.priority > -100 and c.hook == "output":
            text += ", after kube-proxy's DNAT (priority -100): it sees the endpoint address"
        return text

    def _fixed_extra(self, family: str, c: NftChain) -> str:
        ctx = self.context(family)
        if c.name == "cluster-ips-check" and ctx is not None and ctx.layout.service_cidrs:
            return f" (ServiceCIDR {', '.join(ctx.layout.service_cidrs)})"
        if c.name == "mark-for-masquerade" and ctx is not None:
            return f" (bit {ctx.mark})"
        return ""

    @staticmethod
    def _service_chain(prefix: str, c: NftChain, svc: object, ctx: NftContext | None) -> str:
        from .model import ServicePort

        s = svc if isinstance(svc, ServicePort) else None
        name = s.label if s else "an unknown service port"
        if prefix == "endpoint":
            ep = ctx.endpoint(c.name) if ctx else "its endpoint"
            return f"the endpoint chain of {ep} ({name}): it marks hairpin traffic for masquerade and DNATs to the endpoint"
        if prefix in ("service", "local"):
            cluster = f" (ClusterIP {hostport(s.cluster_ip, s.port, s.protocol)})" if s and s.cluster_ip else ""
            what = "the node-local service chain" if prefix == "local" else "the service chain"
            n = len(s.endpoints) if s else 0
            if prefix == "local" and s:
                n = sum(1 for e in s.endpoints if e.local)
            text = f"{what} of {name}{cluster}: it picks one of {n} endpoint{'s' if n != 1 else ''}" + \
                (" on this node" if prefix == "local" else "") + " at random for the first packet of each connection"
            if s is not None and s.affinity_timeout is not None:
                text += f"; clients seen within {s.affinity_timeout} s go back to their endpoint (session affinity)"
            return text
        if prefix == "external":
            text = f"the external-traffic chain of {name} (NodePort, external and load-balancer IPs)"
            if s and s.external_traffic_policy == "Local":
                text += (": pods and the node itself go to the cluster-wide service chain; outside clients go to this "
                         "node's endpoints only, keeping their source address")  # fmt: skip
                if "SVL" not in s.chains:
                    text += (" — this node has none, so outside traffic falls through un-NATed (and the "
                             "no-endpoint maps drop it)")  # fmt: skip
            elif s and s.external_traffic_policy == "Cluster":
                text += ": externalTrafficPolicy Cluster, so it masquerades and sends everything to the service chain"
            return text
        if prefix == "firewall":
            ranges = ", ".join(s.source_ranges) if s and s.source_ranges else "its ranges"
            return (f"the load-balancer firewall chain of {name}: sources outside loadBalancerSourceRanges ({ranges}) "
                    "are dropped before DNAT")  # fmt: skip
        return f"a per-service chain of {name}"

    # -- rules ---------------------------------------------------------------------------------------
    def rule(self, family: str, table: str, chain: str, index: int) -> Explanation:
        c = self._chain(family, table, chain)
        if not 1 <= index <= len(c.rules):
            raise LookupError(f"{family} {table} {chain} has {len(c.rules)} rule{'s' if len(c.rules) != 1 else ''}: "
                              f"there is no rule {index}")  # fmt: skip
        rule = c.rules[index - 1]
        ctx = self.context(family) if table == TABLE else None
        if ctx is not None:
            found = explain_kube_rule(ctx, c, rule)
            if found is not None:
                return found
        return explain_nft_generic(rule)

    # -- sets, maps and their elements ---------------------------------------------------------------
    def set(self, family: str, table: str, name: str) -> Explanation:
        st = self._set(family, table, name)
        what = "map" if st.is_map else "set"
        typ = " . ".join(st.key_type) + (f" : {' . '.join(st.data_type)}" if st.data_type else "")
        n = len(st.elements)
        head = f"a {what} ({typ}), {n} element{'s' if n != 1 else ''}"
        if table == TABLE and family in ("ip", "ip6"):
            if st.name in _SETS:
                return Explanation(f"{_SETS[st.name]}; {head}", "nft-set")
            parsed = parse_chain(st.name)
            if parsed is not None and parsed.prefix == "affinity":
                ctx = self.context(family)
                ep_chain = f"endpoint-{parsed.base}"
                svc = ctx.svc(ep_chain) if ctx else None
                ep = ctx.endpoint(ep_chain) if ctx else "an endpoint"
                secs = f"{int(st.timeout)} s" if st.timeout is not None else "its timeout"
                return Explanation(f"session affinity: the clients (source addresses) sent to {ep} "
                                   f"({svc.label if svc else 'an unknown service port'}) in the last {secs}; a client "
                                   f"in it goes back to that endpoint; {head}", "affinity-set",
                                   service=svc.label if svc else None)  # fmt: skip
        return Explanation(f"{head} of a table that is not kube-proxy's", "nft-set", kube=False)

    def element(self, family: str, table: str, name: str, index: int) -> Explanation:
        """Element ``index`` (1-based, listing order) of set or map ``name``."""
        st = self._set(family, table, name)
        if not 1 <= index <= len(st.elements):
            raise LookupError(f"@{st.name} has {len(st.elements)} elements: there is no element {index}")
        el = st.elements[index - 1]
        text = element_text(st, el)
        ctx = self.context(family) if table == TABLE else None
        if ctx is None:
            return Explanation(f"the element {text}", "nft-element", kube=False)
        from .nft_explain_elems import explain_element

        return explain_element(ctx, st, el, text)
