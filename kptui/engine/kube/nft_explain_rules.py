"""What each rule of kube-proxy's nftables table does, in kube-proxy's terms: which service, which endpoint
with which share, why a connection is masqueraded, what a verdict map sends where.

:func:`explain_kube_rule` recognises a rule by its chain and shape; a rule of a shape kube-proxy does not
write gets None, and the caller falls back to the neutral words of :mod:`.nft_words`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..nft.exprs import (
    Fib,
    Mangle,
    MapItem,
    MapLookup,
    Match,
    Meta,
    Nat,
    Numgen,
    Payload,
    Reject,
    SetLit,
    SetRef,  # fmt: skip
    SetStmt,
    Verdict,
    VMap,
)
from ..nft.model import NftChain, NftRule, NftTable
from ..nft.printer import Printer
from .explain_common import Explanation, hostport, one_in, pct
from .model import ServiceIndex, ServicePort
from .nft_draft import target_of
from .nft_layout import NftKubeLayout, cidrs_of, masq_form
from .nft_names import parse_chain

__all__ = ["CHAINS", "ROLES", "NftContext", "explain_kube_rule", "plural"]

# What kube-proxy's fixed chains are for (the words a jump to one of them uses).
ROLES = {
    "services": "the service dispatch (a map lookup of the destination)",
    "service-endpoints-check": "the check for services without endpoints (rejected) or without local endpoints "
                               "(dropped)",
    "nodeport-endpoints-check": "the check for NodePorts without (local) endpoints",
    "firewall-check": "the loadBalancerSourceRanges check",
    "cluster-ips-check": "the check for cluster IPs on ports no service has, and for unallocated cluster IPs",
    "masquerading": "masquerading of the connections marked for it",
    "mark-for-masquerade": "the masquerade mark",
    "reject-chain": "the reject verdict of services without endpoints",
}  # fmt: skip
# What each of kube-proxy's fixed chains does (the chain's own explanation).
CHAINS = {
    "services": "kube-proxy's service dispatch: it looks the destination up in @service-ips (cluster, external and "
                "load-balancer IPs) and, for the NodePort addresses, in @service-nodeports, and goes to the service's "
                "chain, where the connection is DNATed",
    "service-endpoints-check": "refuses new connections to service addresses without endpoints: @no-endpoint-services "
                               "rejects them (no endpoints at all) or drops them (no endpoint on this node and a Local "
                               "traffic policy)",
    "nodeport-endpoints-check": "refuses new connections to NodePorts without endpoints (@no-endpoint-nodeports: "
                                "rejected, or dropped without local endpoints)",
    "firewall-check": "enforces loadBalancerSourceRanges before DNAT: destinations in @firewall-ips go to their "
                      "service's firewall chain, which drops sources outside the ranges",
    "cluster-ips-check": "refuses what reaches a cluster IP without a service port: a port the service does not have "
                         "(or a ping) is rejected, an unallocated address of the ServiceCIDR dropped",
    "masquerading": "masquerades the connections marked for it as they leave the node (from nat-postrouting): "
                    "unmarked ones return, marked ones lose the mark and get the outgoing interface's address",
    "mark-for-masquerade": "sets the masquerade bit: every rule that wants a connection SNATed jumps here, and "
                           "masquerading SNATs it on the way out",
    "reject-chain": "rejects: the verdict @no-endpoint-services and @no-endpoint-nodeports give services without "
                    "endpoints",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class NftContext:
    """What the rule explainers read: the table, its service index and layout."""

    table: NftTable
    index: ServiceIndex
    layout: NftKubeLayout

    @property
    def mark(self) -> str:
        return self.layout.masquerade_mark or "0x4000"

    def svc(self, chain: str | None) -> ServicePort | None:
        return self.index.by_chain(chain) if chain else None

    def endpoint(self, chain: str | None) -> str:
        """The endpoint address an endpoint chain DNATs to (``its endpoint`` when unknown)."""
        svc = self.svc(chain)
        ep = next((e for e in svc.endpoints if e.chain == chain), None) if svc else None
        if ep is not None and ep.address:
            return ep.address
        parsed = parse_chain(chain or "")
        return parsed.endpoint if parsed is not None and parsed.endpoint else "its endpoint"

    def set_size(self, name: str) -> int:
        st = self.table.sets.get(name)
        return len(st.elements) if st is not None else 0


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _label(svc: ServicePort | None) -> str:
    return svc.label if svc is not None else "an unknown service port"


def masq_reason(exprs: tuple[object, ...]) -> str:
    form = masq_form(exprs)
    if form is None:
        return ""
    kind, value = form
    return {"cidr": f"because they do not come from the pod CIDR {value}",
            "bridge": f"because they did not arrive on the pod bridge {value}",
            "interface-prefix": f"because they did not arrive on a pod interface ({value})",
            "masquerade-all": "(every connection: masqueradeAll, or no local-traffic detector)"}[kind]  # fmt: skip


def _spread_text(ctx: NftContext, key: Numgen, data: SetLit, name: str, inline: bool) -> str:
    n = key.mod
    shares: dict[str, int] = {}
    for item in data.items:
        if isinstance(item, MapItem) and isinstance(item.key, int):
            if inline:
                ep = Printer(ctx.table.family).expr(item.value) if not isinstance(item.value, str) else item.value
                ep = ep.replace(" . ", ":")
            else:
                ep = ctx.endpoint(target_of(item.value))
            shares[ep] = shares.get(ep, 0) + 1
    if not n:
        return f"{name}: numgen mod 0 never matches"
    parts = [f"{ep} ({one_in(Fraction(k, n))})" for ep, k in shares.items()]
    shown = ", ".join(parts[:6]) + (f" and {len(parts) - 6} more" if len(parts) > 6 else "")
    covered = sum(shares.values())
    rest = f"; {n - covered} of the {n} values have no element and fall through" if covered < n else ""
    how = "DNATs" if inline else "sends"
    return (f"{name}: picks one of {len(shares)} endpoint{'s' if len(shares) != 1 else ''} at random for the first "
            f"packet of each connection (numgen random mod {n}) and {how} it there: {shown}{rest}")  # fmt: skip


def _service_rule(ctx: NftContext, chain: NftChain, rule: NftRule, svc: ServicePort | None) -> Explanation | None:
    exprs, name = rule.exprs, _label(svc)
    local = chain.name.startswith("local-")
    if masq_form(exprs) is not None:
        dst = next((str(m.right) for m in exprs if isinstance(m, Match) and isinstance(m.left, Payload)
                    and m.left.field == "daddr"), None)  # fmt: skip
        return Explanation(f"marks connections to the cluster IP {dst or '?'} for masquerade {masq_reason(exprs)}",
                           "cluster-ip-masquerade", service=name)  # fmt: skip
    matches = [s for s in exprs if isinstance(s, Match)]
    sets = [m.right.name for m in matches if isinstance(m.right, SetRef)]
    verdict = next((s for s in exprs if isinstance(s, Verdict)), None)
    if sets and sets[0].startswith("affinity-") and verdict is not None:
        st = ctx.table.sets.get(sets[0])
        secs = f"{int(st.timeout)} s" if st is not None and st.timeout is not None else "the affinity timeout"
        return Explanation(f"session affinity: a client this chain sent to {ctx.endpoint(verdict.target)} within "
                           f"{secs} (its address is in @{sets[0]}) goes back there; a first connection's client is "
                           "not in the set", "affinity-lookup", service=name)  # fmt: skip
    vmap = next((s for s in exprs if isinstance(s, VMap)), None)
    where = "this node's endpoints of " + name if local else name
    if vmap is not None and isinstance(vmap.key, Numgen) and isinstance(vmap.data, SetLit):
        return Explanation(_spread_text(ctx, vmap.key, vmap.data, where, False), "endpoint-spread", service=name)
    nat = next((s for s in exprs if isinstance(s, Nat) and s.kind == "dnat"), None)
    if nat is not None and isinstance(nat.addr, MapLookup) and isinstance(nat.addr.key, Numgen) and \
            isinstance(nat.addr.data, SetLit):  # fmt: skip
        return Explanation(_spread_text(ctx, nat.addr.key, nat.addr.data, where, True), "endpoint-spread",
                           service=name)  # fmt: skip
    return None


def _external_rule(ctx: NftContext, rule: NftRule, svc: ServicePort | None) -> Explanation | None:
    exprs, name = rule.exprs, _label(svc)
    matches = [s for s in exprs if isinstance(s, Match)]
    target = next((s.target for s in exprs if isinstance(s, Verdict) and s.target), None)
    kind = (parse_chain(target or "") or None)
    fib = any(isinstance(m.left, Fib) for m in matches)
    if target == "mark-for-masquerade" and fib:
        return Explanation("connections from this node itself to an external address of the service are marked for "
                           "masquerade", "external-local-masquerade", service=name)  # fmt: skip
    if target == "mark-for-masquerade" and not matches:
        return Explanation("every connection to the service's NodePort, external or load-balancer IPs is marked for "
                           "masquerade (externalTrafficPolicy Cluster: the endpoint sees this node as the client)",
                           "external-masquerade", service=name)  # fmt: skip
    if kind is not None and kind.prefix == "service" and fib:
        return Explanation("connections from this node itself go to the cluster-wide service chain (any endpoint)",
                           "external-local-shortcut", service=name)  # fmt: skip
    if kind is not None and kind.prefix == "service" and matches:
        src = next((", ".join(cidrs_of(m.right)) for m in matches if isinstance(m.left, Payload)), "the pod network")
        return Explanation(f"pod traffic (from {src}) goes to the cluster-wide service chain: pods reach every "
                           "endpoint, whatever externalTrafficPolicy says", "external-pod-shortcut", service=name)
    if kind is not None and kind.prefix == "service":
        return Explanation("then goes to the service chain, which picks any endpoint of the cluster",
                           "external-to-service", service=name)  # fmt: skip
    if kind is not None and kind.prefix == "local":
        return Explanation("outside clients go to this node's endpoints only (externalTrafficPolicy Local), and "
                           "keep their source address", "external-to-local", service=name)  # fmt: skip
    return None


def _endpoint_rule(ctx: NftContext, chain: NftChain, rule: NftRule, svc: ServicePort | None) -> Explanation | None:
    exprs, name, ep = rule.exprs, _label(svc), ctx.endpoint(chain.name)
    if any(isinstance(s, Verdict) and s.target == "mark-for-masquerade" for s in exprs):
        return Explanation(f"hairpin: when the endpoint {ep} connects to its own service, the connection is marked "
                           "for masquerade, so the reply comes back through this node", "hairpin-masquerade",
                           service=name)  # fmt: skip
    upd = next((s for s in exprs if isinstance(s, SetStmt)), None)
    if upd is not None:
        st = ctx.table.sets.get(upd.set)
        secs = f"{int(st.timeout)} s" if st is not None and st.timeout is not None else "the affinity timeout"
        return Explanation(f"session affinity: remembers the client's address in @{upd.set} for {secs}, so its next "
                           f"connections come back to {ep}", "affinity-update", service=name)  # fmt: skip
    nat = next((s for s in exprs if isinstance(s, Nat) and s.kind == "dnat"), None)
    if nat is not None:
        e = next((x for x in svc.endpoints if x.chain == chain.name), None) if svc else None
        share = f" — {pct(e.probability)} of the service's new connections" if e and e.probability is not None else ""
        return Explanation(f"DNATs the connection to the endpoint {ep}{share}", "endpoint-dnat", service=name)
    return None


def _fixed_rule(ctx: NftContext, chain: NftChain, rule: NftRule) -> Explanation | None:
    exprs = rule.exprs
    vmap = next((s for s in exprs if isinstance(s, VMap) and isinstance(s.data, SetRef)), None)
    verdict = next((s for s in exprs if isinstance(s, Verdict)), None)
    matches = [s for s in exprs if isinstance(s, Match)]
    if vmap is not None and isinstance(vmap.data, SetRef):
        m, n = vmap.data.name, ctx.set_size(vmap.data.name)
        what = {
            "service-ips": f"looks the destination address, protocol and port up in @service-ips "
                           f"({plural(n, 'entry').replace('entrys', 'entries')}: cluster IPs, external and "
                           "load-balancer IPs); a hit goes to that service's chain, where the connection is DNATed",
            "service-nodeports": f"looks the protocol and port up in @service-nodeports ({plural(n, 'NodePort')}); a "
                                 "hit goes to that service's external chain",
            "no-endpoint-services": f"looks the destination up in @no-endpoint-services "
                                    f"({plural(n, 'entry').replace('entrys', 'entries')}): a service without "
                                    "endpoints is rejected, one without local endpoints dropped",
            "no-endpoint-nodeports": f"looks the NodePort up in @no-endpoint-nodeports "
                                     f"({plural(n, 'entry').replace('entrys', 'entries')}): rejected without endpoints, "
                                     "dropped without local ones",
            "firewall-ips": f"looks the destination up in @firewall-ips ({plural(n, 'load-balancer IP')} with "
                            "loadBalancerSourceRanges): a hit goes to that service's firewall chain",
        }.get(m, f"looks the packet up in the verdict map @{m} ({plural(n, 'element')})")
        refs = [x.right.name for x in matches if isinstance(x.right, SetRef)]
        if "nodeport-ips" in refs:
            what = f"for connections to the NodePort addresses in @nodeport-ips ({ctx.set_size('nodeport-ips')}), {what}"
        elif any(isinstance(x.left, Fib) for x in matches):
            what = f"for connections to any of this node's addresses (but 127.0.0.0/8), {what}"
        return Explanation(what, "map-dispatch")
    if verdict is not None and verdict.kind == "jump" and verdict.target in ROLES:
        new = any(isinstance(x.left, Meta) or "state" in str(x.left) for x in matches)
        who = "new connections go" if new else "every packet goes" if chain.type != "nat" else \
            "the first packet of every connection goes"  # fmt: skip
        return Explanation(f"{who} to {verdict.target}: {ROLES[verdict.target]}", "kube-jump")
    if chain.name == "masquerading":
        if any(isinstance(s, Mangle) for s in exprs):
            return Explanation(f"clears the masquerade bit {ctx.mark} again, so the mark does not leak into later "
                               "hooks and other tables", "masquerade-unmark")  # fmt: skip
        if verdict is not None and verdict.kind == "return":
            return Explanation(f"connections not marked for masquerade (bit {ctx.mark} clear) leave unchanged",
                               "masquerade-skip")  # fmt: skip
        nat = next((s for s in exprs if isinstance(s, Nat)), None)
        if nat is not None and nat.kind == "masquerade":
            rnd = " with fully random source ports" if "fully-random" in nat.flags else ""
            return Explanation(f"masquerades the connection: its source becomes the outgoing interface's address"
                               f"{rnd}", "masquerade")  # fmt: skip
    if chain.name == "mark-for-masquerade" and any(isinstance(s, Mangle) for s in exprs):
        return Explanation(f"sets the masquerade bit {ctx.mark}: masquerading (nat-postrouting) SNATs the connection "
                           "as it leaves the node", "masquerade-mark")  # fmt: skip
    if chain.name == "reject-chain" and any(isinstance(s, Reject) for s in exprs):
        return Explanation("rejects the packet (an ICMP port unreachable, a TCP reset for TCP): the client is refused "
                           "at once", "no-endpoints-reject")  # fmt: skip
    if chain.name == "cluster-ips-check":
        refs = [x.right.name for x in matches if isinstance(x.right, SetRef)]
        if "cluster-ips" in refs:
            return Explanation(f"rejects connections to a cluster IP (@cluster-ips, {ctx.set_size('cluster-ips')}) "
                               "that no service port took: a port the service does not have, or a ping",
                               "cluster-ip-unknown-port")  # fmt: skip
        if verdict is not None and verdict.kind == "drop":
            cidrs = ", ".join(c for m in matches for c in cidrs_of(m.right))
            return Explanation(f"drops connections to addresses of the ServiceCIDR {cidrs} that no service has: the "
                               "client times out, it is not refused", "cluster-ip-unallocated")  # fmt: skip
    return None


def explain_kube_rule(ctx: NftContext, chain: NftChain, rule: NftRule) -> Explanation | None:
    """A rule of kube-proxy's table in kube-proxy's terms; None when kptui does not recognise its shape."""
    parsed = parse_chain(chain.name)
    if parsed is None:
        return _fixed_rule(ctx, chain, rule)
    svc = ctx.svc(chain.name)
    if parsed.prefix in ("service", "local"):
        return _service_rule(ctx, chain, rule, svc)
    if parsed.prefix == "external":
        return _external_rule(ctx, rule, svc)
    if parsed.prefix == "endpoint":
        return _endpoint_rule(ctx, chain, rule, svc)
    if parsed.prefix == "firewall" and any(isinstance(s, Verdict) and s.kind == "drop" for s in rule.exprs):
        ranges = ", ".join(svc.source_ranges) if svc and svc.source_ranges else "the ranges listed"
        lbs = ", ".join(svc.load_balancer_ips) if svc else ""
        return Explanation(f"drops connections to the load-balancer IP{'s' if svc and len(svc.load_balancer_ips) > 1 else ''}"
                           f" {lbs} from sources outside loadBalancerSourceRanges ({ranges}), before they are DNATed",
                           "firewall-drop", service=_label(svc))  # fmt: skip
    return None


def hostport_of(ip: str | None, port: int | None, proto: str | None) -> str:
    return hostport(ip, port, proto)
