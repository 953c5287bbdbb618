"""Explanations of kube-proxy's filter rules (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS,
KUBE-PROXY-FIREWALL, KUBE-FORWARD, KUBE-FIREWALL) and of the jumps from the built-in chains into kube-proxy's
chains, in any table. None for a rule kube-proxy would not write (the caller explains it neutrally)."""

from __future__ import annotations

from ..model import Chain
from .era_old import era_at_most
from .explain_common import Context, Explanation, RuleView, host, hostport, service_words
from .model import ServicePort

__all__ = ["explain_builtin_jump", "explain_filter"]

_NO_EPS, _NO_LOCAL = " has no endpoints", " has no local endpoints"
_HOOK = {
    ("nat", "PREROUTING"): "arriving at this node",
    ("nat", "OUTPUT"): "opened by this node",
    ("nat", "POSTROUTING"): "leaving this node",
    ("nat", "INPUT"): "delivered to this node",
    ("filter", "INPUT"): "addressed to this node",
    ("filter", "FORWARD"): "forwarded through this node",
    ("filter", "OUTPUT"): "sent by this node",
}
_PURPOSE = {
    ("nat", "KUBE-SERVICES"): "where kube-proxy matches service addresses",
    ("nat", "KUBE-POSTROUTING"): "which masquerades the ones kube-proxy marked {masq}",
    ("filter", "KUBE-SERVICES"): "which rejects cluster IPs of services without endpoints",
    ("filter", "KUBE-EXTERNAL-SERVICES"): "which refuses external IPs, load-balancer IPs and NodePorts of "
                                          "services without (local) endpoints",
    ("filter", "KUBE-NODEPORTS"): "which accepts the health-check node ports",
    ("filter", "KUBE-FORWARD"): "which accepts kube-proxy's and established traffic and drops INVALID packets",
    ("filter", "KUBE-PROXY-FIREWALL"): "which drops load-balancer traffic from outside loadBalancerSourceRanges",
    ("filter", "KUBE-FIREWALL"): "which drops {firewall}",
}  # fmt: skip


def explain_builtin_jump(ctx: Context, table: str | None, chain: Chain, view: RuleView) -> Explanation | None:
    """A built-in chain's jump into one of kube-proxy's chains."""
    target = view.target or ""
    purpose = _PURPOSE.get((table or "", target))
    if purpose is None:
        return None
    firewall = (f"packets marked {ctx.drop} and connections to 127.0.0.0/8 from elsewhere"
                if era_at_most(ctx.era, 23) else "connections to 127.0.0.0/8 from elsewhere")  # fmt: skip
    purpose = purpose.format(masq=ctx.masq, firewall=firewall)
    where = _HOOK.get((table or "", chain.name), f"in {chain.name}")
    new = view.val("--ctstate") == "NEW" and not view.has("--ctstate", negated=True)
    if table == "nat":
        what = f"the first packet of every connection {where} (nat sees only first packets)"
    elif new:
        what = f"new connections {where}"
    else:
        what = f"every packet {where}"
    extra = view.conditions() - {"--ctstate"}
    if extra:
        what += " that match the conditions above"
    return Explanation(f"sends {what} to {target}, {purpose}", "hook-jump")


def _svc_of(ctx: Context, name: str | None) -> ServicePort | None:
    if not name:
        return None
    found = ctx.index.by_name(name)
    return found[0] if found else None


def _refusal(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    """filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES: REJECT (no endpoints), DROP (no local endpoints)."""
    comment = view.comment or ""
    if view.target == "REJECT" and comment.endswith(_NO_EPS):
        name, reason, kind = comment[: -len(_NO_EPS)], "has no endpoints", "no-endpoints-reject"
    elif view.target == "DROP" and comment.endswith(_NO_LOCAL):
        name, reason, kind = comment[: -len(_NO_LOCAL)], "", "no-local-endpoints-drop"
    else:
        return None
    svc = _svc_of(ctx, name)
    port, proto = view.val("--dport"), view.val("-p")
    dst = view.val("-d")
    if view.val("--dst-type") == "LOCAL" and dst is None:
        what = f"NodePort {hostport(None, port, proto).lstrip(':')}"
        external = True
    else:
        ip = host(dst) if dst else None
        if chain.name == "KUBE-SERVICES":
            role = "ClusterIP"
        elif svc is not None and ip in svc.load_balancer_ips:
            role = "load-balancer IP"
        elif svc is not None and ip in svc.external_ips:
            role = "external IP"
        else:
            role = "external or load-balancer IP"
        what = f"{role} {hostport(ip, port, proto)}"
        external = chain.name != "KUBE-SERVICES"
    if kind == "no-endpoints-reject":
        how = view.target_opts.get("--reject-with")
        text = (f"rejects traffic to {what}{' (' + how + ')' if how else ''}: {name} {reason}, so clients get an "
                "immediate error instead of a timeout")  # fmt: skip
    elif external:
        text = (f"drops external traffic to {what}: {name} has externalTrafficPolicy Local and no endpoint on this "
                "node (load balancers learn that from its health-check node port and should stop sending "
                "here)")  # fmt: skip
    else:
        text = f"drops traffic to {what}: {name} has internalTrafficPolicy Local and no endpoint on this node"
    return Explanation(text, kind, service=svc.label if svc else name)


def _nodeports(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    comment = view.comment or ""
    suffix = " health check node port"
    if view.target != "ACCEPT" or not comment.endswith(suffix):
        return None
    name = comment[: -len(suffix)]
    svc = _svc_of(ctx, name)
    text = (f"accepts traffic to the health-check node port {view.val('--dport')}/{view.val('-p') or 'tcp'} of "
            f"{name}: load balancers probe it, and kube-proxy answers whether this node has local endpoints "
            "(externalTrafficPolicy Local)")  # fmt: skip
    return Explanation(text, "health-check-accept", service=svc.label if svc else name)


def _proxy_firewall(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    comment = view.comment or ""
    if view.target != "DROP" or " traffic not accepted by " not in comment:
        return None
    name, _, fw = comment.partition(" traffic not accepted by ")
    svc = ctx.svc(fw.strip()) or _svc_of(ctx, name)
    dst = view.val("-d")
    addr = hostport(host(dst) if dst else None, view.val("--dport"), view.val("-p"))
    ranges = f" ({', '.join(svc.source_ranges)})" if svc is not None and svc.source_ranges else ""
    text = (f"drops traffic to load-balancer IP {addr}{service_words(svc)} that {fw.strip()} did not admit: its "
            f"source is outside loadBalancerSourceRanges{ranges}")  # fmt: skip
    return Explanation(text, "source-range-drop", service=svc.label if svc else name)


def _forward(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    state = view.get("--ctstate")
    counter = view.val("--nfacct-name")
    count = f", counting them in the nfacct counter {counter}" if counter else ""
    if view.target == "DROP" and state == ("INVALID", False):
        text = ("drops forwarded packets conntrack marks INVALID (TCP segments outside the window, for example)"
                f"{count}: let through, they would reach the pod un-NATed and be answered with a reset that breaks "
                "the connection")  # fmt: skip
        return Explanation(text, "ctstate-invalid-drop")
    mark = view.get("--mark")
    if view.target == "ACCEPT" and mark is not None and not mark[1]:
        text = (f"accepts forwarded packets marked {mark[0].partition('/')[0]} for masquerade: service traffic "
                "kube-proxy handled gets through even when the FORWARD policy is DROP")  # fmt: skip
        return Explanation(text, "forward-accept-marked")
    if view.target == "ACCEPT" and state is not None and not state[1] and "ESTABLISHED" in state[0]:
        src, dst = view.val("-s"), view.val("-d")
        who = f" from pods ({src})" if src else f" to pods ({dst})" if dst else ""
        text = (f"accepts forwarded packets{who} of established connections (and related ones, such as ICMP "
                "errors), even when the FORWARD policy is DROP")  # fmt: skip
        return Explanation(text, "forward-accept-established")
    return None


def _firewall(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    if view.target != "DROP":
        return None
    comment = view.comment or ""
    mark = view.get("--mark")
    if mark is not None and not mark[1]:
        text = (f"drops packets marked {mark[0].partition('/')[0]} by KUBE-MARK-DROP (load-balancer traffic from "
                "outside loadBalancerSourceRanges and external traffic without local endpoints, in kube-proxy 1.23 "
                "and older)")  # fmt: skip
        return Explanation(text, "marked-drop")
    dst = view.val("-d") or ""
    if comment == "block incoming localnet connections" or (dst.startswith("127.") and view.has("-s", negated=True)):
        text = ("drops connections to 127.0.0.0/8 that come from elsewhere and are neither replies nor DNATed: "
                "route_localnet, which kube-proxy turns on for localhost NodePorts, would otherwise let other hosts "
                "reach services bound to localhost")  # fmt: skip
        return Explanation(text, "localnet-guard")
    return None


_FILTER = {
    "KUBE-SERVICES": _refusal,
    "KUBE-EXTERNAL-SERVICES": _refusal,
    "KUBE-NODEPORTS": _nodeports,
    "KUBE-PROXY-FIREWALL": _proxy_firewall,
    "KUBE-FORWARD": _forward,
    "KUBE-FIREWALL": _firewall,
}


def explain_filter(ctx: Context, chain: Chain, view: RuleView) -> Explanation | None:
    fn = _FILTER.get(chain.name)
    return fn(ctx, chain, view) if fn is not None else None
