"""Explanations of kube-proxy's nat rules: KUBE-SERVICES, KUBE-NODEPORTS, the per-service chains (SVC, SVL,
EXT, FW, XLB, SEP), KUBE-MARK-MASQ / KUBE-MARK-DROP and KUBE-POSTROUTING, in every layout era.

Each explainer returns None for a rule kube-proxy would not write there; the caller then falls back to the
neutral explanation (:mod:`.explain_generic`), so a foreign rule is never given a kube meaning.
"""

from __future__ import annotations

from fractions import Fraction

from ..model import Chain
from .era_old import OLD_MASQ_MARK, era_at_least
from .explain_common import (
    Context,
    Explanation,
    RuleView,
    endpoint_of,
    host,
    hostport,
    masq_reason,
    one_in,
    pct,
    rule_probability,
    service_words,
)
from .hashes import split_chain
from .model import ServicePort
from .shares import CONDITIONAL, UNCONDITIONAL, cascade

__all__ = ["NAT_EXPLAINERS", "chain_shares", "explain_nat"]

_SERVICE_CHAIN = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")
_CONTINUE = frozenset({"KUBE-MARK-MASQ", "MARK", "CONNMARK", "LOG", "NFLOG", "TRACE"})


def chain_shares(chain: Chain) -> dict[int, Fraction | None]:
    """1-based rule index → the share of a first packet that rule sends to its KUBE-SEP chain (affinity
    lookups take no share: a first-ever packet has no recent entry)."""
    steps: list[str] = []
    where: list[int] = []
    for rule in chain.rules:
        target = rule.target_name or ""
        if target in _CONTINUE:
            continue
        view = RuleView(rule)
        if view.has("--rcheck") or view.has("--update"):
            continue
        conds = view.conditions() - {"--mode", "--probability"}
        p = view.get("--probability")
        if conds:
            step = CONDITIONAL
        elif p is not None and view.val("--mode") in (None, "random"):
            step = ("!" if p[1] else "") + p[0]
        else:
            step = UNCONDITIONAL
        steps.append(step)
        where.append(rule.index)
        if step == UNCONDITIONAL:
            break
    return dict(zip(where, cascade(tuple(steps))))


def _addr(view: RuleView, svc: ServicePort | None) -> str:
    """``IP:PORT/proto`` of a portal or cluster-IP rule (from the rule, else from the service)."""
    dst = view.val("-d")
    ip = host(dst) if dst and not view.has("-d", negated=True) else (svc.cluster_ip if svc else None)
    port = view.val("--dport") or (svc.port if svc else None)
    proto = view.val("-p") or (svc.protocol if svc else None)
    return hostport(ip, port, proto)


def _role(view: RuleView, svc: ServicePort | None) -> str:
    comment = view.comment or ""
    for suffix, role in ((" cluster IP", "ClusterIP"), (" external IP", "external IP"),
                         (" loadbalancer IP", "load-balancer IP")):  # fmt: skip
        if comment.endswith(suffix):
            return role
    dst = view.val("-d")
    ip = host(dst) if dst else None
    if svc is not None and ip is not None:
        if ip == svc.cluster_ip:
            return "ClusterIP"
        if ip in svc.load_balancer_ips:
            return "load-balancer IP"
        if ip in svc.external_ips:
            return "external IP"
    return "external or load-balancer IP"


def _chain_words(ctx: Context, target: str, svc: ServicePort | None) -> str:
    kind = target[5:8] if not target.startswith("KUBE-FW-") else "FW"
    if kind == "SVC":
        return f"its service chain {target}"
    if kind == "SVL":
        return (f"its node-local service chain {target} (internalTrafficPolicy Local: only endpoints on this "
                "node)")  # fmt: skip
    if kind == "EXT":
        policy = svc.external_traffic_policy if svc else None
        return f"its external-traffic chain {target}" + (f" (externalTrafficPolicy {policy})" if policy else "")
    if kind == "XLB":
        return f"its local-endpoints chain {target} (externalTrafficPolicy Local)"
    if svc is not None and svc.source_ranges:
        return (f"its firewall chain {target}, which admits only the loadBalancerSourceRanges "
                f"{', '.join(svc.source_ranges)}")  # fmt: skip
    return f"its load-balancer chain {target}"


def _services(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    target = view.target or ""
    if target.startswith(_SERVICE_CHAIN):
        svc = ctx.svc(target)
        text = (f"sends traffic for {_role(view, svc)} {_addr(view, svc)}{service_words(svc)} to "
                f"{_chain_words(ctx, target, svc)}")  # fmt: skip
        return Explanation(text, "service-portal", service=svc.label if svc else None)
    if target == "KUBE-NODEPORTS":
        dst = view.get("-d")
        if dst is not None and not dst[1]:
            who = f"addressed to {host(dst[0])} (a --nodeport-addresses entry)"
        else:
            who = "addressed to one of this node's own addresses" if view.has("--dst-type") else "left over"
        text = (f"sends the traffic {who} to KUBE-NODEPORTS, where NodePorts are matched; it must stay the last "
                "rule, after every service address")  # fmt: skip
        if dst is not None and dst[1]:
            text += f" (not for {host(dst[0])}: NodePorts do not answer on localhost here)"
        return Explanation(text, "nodeports-jump")
    if target == "KUBE-MARK-MASQ":  # kube-proxy 1.20 and older: masquerade rules before each jump
        owners = ctx.index.by_address(host(view.val("-d") or ""))
        first = owners[0] if owners else None
        reason = masq_reason(view) if _role(view, first) == "ClusterIP" else "(external traffic)"
        if reason is None:
            return None
        text = (f"marks traffic to {_role(view, first)} {_addr(view, first)}{service_words(first)} for masquerade "
                f"({ctx.masq}) {reason}; kube-proxy 1.20 and older keep these rules in KUBE-SERVICES, just "
                "before the service's jump")  # fmt: skip
        return Explanation(text, "masquerade-legacy", service=first.label if first else None)
    return None


def _share_text(ctx: Context, chain: Chain, view: RuleView, ep_words: str) -> str:
    share = chain_shares(chain).get(view.rule.index)
    p = rule_probability(view)
    local = chain.name.startswith(("KUBE-SVL-", "KUBE-XLB-"))
    where = " of the traffic this node-local chain gets" if local else ""
    tail = f" — effective share {pct(share)}{where}" if share is not None else " (its share depends on the packet)"
    if p is not None:
        return f"sends {one_in(p)} of the remaining connections to {ep_words}{tail}"
    if share is not None and share >= 1:
        return f"sends every connection to {ep_words}, its only endpoint here{tail}"
    return f"sends every remaining connection (the last of the cascade) to {ep_words}{tail}"


def _endpoint_words(ctx: Context, sep: str) -> tuple[str, ServicePort | None]:
    svc, ep = endpoint_of(ctx.index, sep)
    if ep is None or ep.address is None:
        return f"endpoint chain {sep}", svc
    where = {True: " (on this node)", False: " (on another node)", None: ""}[ep.local]
    return f"endpoint {ep.address}{where}", svc


def _service_chain(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    """KUBE-SVC, KUBE-SVL, KUBE-EXT, KUBE-FW and KUBE-XLB rules."""
    svc = ctx.svc(chain.name)
    label = svc.label if svc else None
    name = svc.label if svc else "this service"
    target = view.target or ""
    kind = split_chain(chain.name)
    k = kind[0] if kind else ""
    comment = view.comment or ""
    src_local = view.val("--src-type") == "LOCAL" and not view.has("--src-type", negated=True)
    if target.startswith("KUBE-SEP-"):
        words, _ = _endpoint_words(ctx, target)
        if view.has("--rcheck") or view.has("--update"):
            secs = view.val("--seconds")
            text = (f"session affinity: sends a client whose address is in recent list {view.val('--name')} "
                    f"(it connected within the last {secs} s) back to the same {words}")  # fmt: skip
            return Explanation(text, "affinity-lookup", service=label)
        return Explanation(_share_text(ctx, chain, view, words), "endpoint-choice", service=label)
    if target == "KUBE-MARK-MASQ":
        if k in ("SVC", "SVL") and (view.has("-d") or view.unconditional):
            reason = masq_reason(view)
            if reason is None:
                return None
            text = (f"marks the packet for masquerade ({ctx.masq}) {reason}: traffic to ClusterIP "
                    f"{_addr(view, svc)} from outside the pod network is SNATed, so the replies come back "
                    "through this node")  # fmt: skip
            return Explanation(text, "cluster-ip-masquerade", service=label)
        if src_local:
            text = (f"marks traffic from this node's own addresses to {name} for masquerade ({ctx.masq}): a "
                    "node-local source address cannot be used towards an endpoint")  # fmt: skip
            return Explanation(text, "local-source-masquerade", service=label)
        if view.unconditional and k in ("EXT", "FW"):
            text = (f"marks all external traffic to {name} for masquerade ({ctx.masq}): with externalTrafficPolicy "
                    "Cluster the endpoint may be on another node, so the client's source address is replaced by "
                    "this node's")  # fmt: skip
            return Explanation(text, "external-masquerade", service=label)
        return None
    if target == "KUBE-MARK-DROP" and view.unconditional:
        if k == "XLB" or comment.endswith(" has no local endpoints"):
            text = (f"marks the packet for dropping ({ctx.drop}): {name} has externalTrafficPolicy Local and no "
                    "endpoint on this node, so filter KUBE-FIREWALL drops external traffic here")  # fmt: skip
            return Explanation(text, "no-local-endpoints-mark-drop", service=label)
        if k == "FW":
            text = (f"marks the traffic no earlier rule admitted (sources outside loadBalancerSourceRanges) for "
                    f"dropping ({ctx.drop}); filter KUBE-FIREWALL drops it")  # fmt: skip
            return Explanation(text, "source-range-mark-drop", service=label)
        return None
    if target.startswith(_SERVICE_CHAIN):
        tkind = split_chain(target)
        tk = tkind[0] if tkind else ""
        src = view.get("-s")
        iface = view.get("-i")
        if k == "FW" and src is not None and not src[1]:
            if svc is not None and host(src[0]) in (*svc.load_balancer_ips, *svc.external_or_lb_ips):
                who = f"from the load-balancer IP itself ({host(src[0])}: a source range covers this node)"
            else:
                who = f"from {src[0]} (a loadBalancerSourceRanges entry)"
            return Explanation(f"admits traffic {who} to the load-balancer IP of {name} and sends it to {target}",
                               "source-range-allow", service=label)  # fmt: skip
        if tk == "SVL":
            text = (f"sends the remaining (external) traffic to {target}, which holds only this node's endpoints: "
                    "externalTrafficPolicy Local keeps the client's source address")  # fmt: skip
            return Explanation(text, "external-to-local", service=label)
        if tk == "SVC" and src_local:
            text = f"sends traffic from this node itself to the cluster-wide service chain {target}"
            return Explanation(text, "local-source-to-service", service=label)
        if tk == "SVC" and ((src is not None and not src[1]) or (iface is not None and not iface[1])):
            pods = src[0] if src is not None else iface[0] if iface is not None else ""
            text = (f"sends traffic from pods ({pods}) to the cluster-wide service chain {target}: pods reaching "
                    "the external address may use any endpoint")  # fmt: skip
            return Explanation(text, "pod-source-to-service", service=label)
        if tk == "SVC" and view.unconditional:
            text = f"sends the traffic on to the service chain {target}, which picks an endpoint on any node"
            return Explanation(text, "external-to-service", service=label)
        return None
    if target == "" and k == "FW" and view.unconditional:
        dropper = "KUBE-PROXY-FIREWALL" if "KUBE-PROXY-FIREWALL" in comment or era_at_least(ctx.era, 25) \
            else "the filter table"  # fmt: skip
        text = (f"does nothing (no target): traffic from any other source leaves this chain un-NATed, and filter "
                f"{dropper} drops it")  # fmt: skip
        return Explanation(text, "source-range-fallthrough", service=label)
    return None


def _sep(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    svc, ep = endpoint_of(ctx.index, chain.name)
    label = svc.label if svc else None
    name = svc.label if svc else "its service"
    if view.target == "KUBE-MARK-MASQ":
        src = view.get("-s")
        if src is None or src[1]:
            return None
        text = (f"marks the packet for masquerade ({ctx.masq}) when it comes from the endpoint itself "
                f"({host(src[0])}): hairpin traffic, a pod reaching its own service and landing on itself, must be "
                "SNATed so that the reply goes back through the service's NAT")  # fmt: skip
        return Explanation(text, "hairpin-masquerade", service=label)
    if view.target == "DNAT":
        to = view.target_opts.get("--to-destination", "?")
        where = ""
        if ep is not None and ep.local is not None:
            where = " (on this node)" if ep.local else " (on another node)"
        text = f"DNATs to {to}{where}, the endpoint of {name}"
        if view.has("--set"):
            secs = f" for {svc.affinity_timeout} s" if svc is not None and svc.affinity_timeout else ""
            text += (f"; it also records the client's address in recent list {view.val('--name')}, so the "
                     f"client sticks to this endpoint{secs} (session affinity)")  # fmt: skip
        return Explanation(text, "endpoint-dnat", service=label)
    return None


def _nodeports(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    target = view.target or ""
    port = view.val("--dport")
    proto = view.val("-p")
    svc = ctx.svc(target) if target.startswith(_SERVICE_CHAIN) else None
    if svc is None and port and port.isdigit():
        found = ctx.index.by_node_port(int(port), proto)
        svc = found[0] if found else None
    label = svc.label if svc else None
    np = f"NodePort {hostport(None, port, proto).lstrip(':')}"
    src = view.get("-s")
    dst = view.get("-d")
    if target.startswith(_SERVICE_CHAIN):
        who = "on this node's addresses"
        if dst is not None and not dst[1] and dst[0].startswith("127."):
            who = "addressed to localhost (127.0.0.0/8)"
        text = f"sends traffic to {np} {who}{service_words(svc)} to {_chain_words(ctx, target, svc)}"
        if target.startswith("KUBE-SVC-"):
            text += " (kube-proxy 1.23 and older go straight to the service chain)"
        counter = view.val("--nfacct-name")
        if counter:
            text += f", counting it in the nfacct counter {counter}"
        return Explanation(text, "nodeport", service=label)
    if target == "KUBE-MARK-MASQ":
        if src is not None and not src[1] and src[0].startswith("127."):
            text = (f"marks {np} traffic from localhost ({src[0]}) for masquerade ({ctx.masq}): a localhost source "
                    "address cannot be routed to an endpoint")  # fmt: skip
            return Explanation(text, "nodeport-localhost-masquerade", service=label)
        if src is None:
            text = (f"marks all traffic to {np}{service_words(svc)} for masquerade ({ctx.masq}): with "
                    "externalTrafficPolicy Cluster the endpoint may be on another node")  # fmt: skip
            return Explanation(text, "nodeport-masquerade", service=label)
    return None


def _mark_chain(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    if view.target != "MARK" or not view.unconditional:
        return None
    if chain.name == "KUBE-MARK-MASQ":
        text = (f"sets the masquerade bit {ctx.masq} on the packet mark; KUBE-POSTROUTING masquerades the packets "
                "that carry it when they leave the node")  # fmt: skip
        return Explanation(text, "mark-masq")
    text = (f"sets the drop bit {ctx.drop} on the packet mark; filter KUBE-FIREWALL drops the packets that carry "
            "it")  # fmt: skip
    return Explanation(text, "mark-drop")


def _postrouting(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    mark = view.get("--mark")
    if view.target == "RETURN" and mark is not None and mark[1]:
        text = (f"lets packets without the masquerade bit {ctx.masq} leave unchanged (RETURN): only connections "
                "kube-proxy marked are masqueraded")  # fmt: skip
        return Explanation(text, "postrouting-return")
    if view.target == "MARK" and view.unconditional:
        text = (f"clears the masquerade bit {ctx.masq} (XOR) before masquerading, so that a packet which goes "
                "through netfilter again (re-encapsulated, for example) is not masqueraded twice")  # fmt: skip
        return Explanation(text, "postrouting-clear-mark")
    if view.target == "MASQUERADE":
        fully = ", with fully random source ports (--random-fully)" if "--random-fully" in view.target_opts else ""
        if mark is not None and not mark[1]:
            text = (f"masquerades the packets that carry the masquerade bit {mark[0]}: their source becomes the "
                    f"outgoing interface's address{fully} (the one-rule KUBE-POSTROUTING of older kube-proxy "
                    "versions)")  # fmt: skip
        elif view.unconditional:
            text = (f"masquerades the connections kube-proxy marked with {ctx.masq} (the rest returned above): their "
                    f"source becomes the outgoing interface's address{fully}")  # fmt: skip
        else:
            return None
        return Explanation(text, "masquerade")
    return None


def _userspace(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    """The userspace proxy's rules: a service address sent to a port kube-proxy itself listens on."""
    comment = view.val("--comment")
    what = f"connections to {comment}" if comment else "these connections"
    where = hostport(host(view.val("-d") or "") or None, view.val("--dport"), view.val("-p"))
    to = view.target_opts.get("--to-ports") or view.target_opts.get("--to-destination")
    if view.target not in ("REDIRECT", "DNAT") or not to:
        return None
    node = "NodePort " if chain.name.startswith("KUBE-NODEPORT-") else ""
    by = "on this node" if chain.name.endswith("-HOST") else "from containers"
    return Explanation(f"sends {what} ({node}{where or 'the service address'}, {by}) to {to}, a port kube-proxy "
                       "itself listens on: the userspace proxy forwards each connection to an endpoint from its own "
                       "process (the rules never name the endpoints)", "userspace-portal")  # fmt: skip


NAT_EXPLAINERS = {
    "KUBE-PORTALS-CONTAINER": _userspace,
    "KUBE-PORTALS-HOST": _userspace,
    "KUBE-NODEPORT-CONTAINER": _userspace,
    "KUBE-NODEPORT-HOST": _userspace,
    "KUBE-SERVICES": _services,
    "KUBE-NODEPORTS": _nodeports,
    "KUBE-MARK-MASQ": _mark_chain,
    "KUBE-MARK-DROP": _mark_chain,
    "KUBE-POSTROUTING": _postrouting,
}


def explain_nat(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    """A nat rule of one of kube-proxy's chains, or None."""
    if view.target == "MARK" and OLD_MASQ_MARK in " ".join(view.target_opts.values()):
        view.target = "KUBE-MARK-MASQ"  # kube-proxy 1.3 and older set the mark itself
        got = _explain_nat(ctx, chain, view)
        if got is None:
            return None
        return Explanation(got.text.replace("KUBE-MARK-MASQ", f"the mark {OLD_MASQ_MARK}") + f" (kube-proxy 1.3 and "
                           f"older set the masquerade mark {OLD_MASQ_MARK}, 'MASQ' in ASCII, directly, before "
                           "KUBE-MARK-MASQ and its 0x4000 bit)", got.kind, got.kube, got.service)  # fmt: skip
    return _explain_nat(ctx, chain, view)


def _explain_nat(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    fn = NAT_EXPLAINERS.get(chain.name)
    if fn is not None:
        return fn(ctx, chain, view)
    if chain.name.startswith("KUBE-SEP-"):
        return _sep(ctx, chain, view)
    if chain.name.startswith(_SERVICE_CHAIN):
        return _service_chain(ctx, chain, view)
    return None
