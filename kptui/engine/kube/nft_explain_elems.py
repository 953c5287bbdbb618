"""What one element of kube-proxy's sets and maps means: which service port's address, NodePort or refusal it
is, which endpoint a client sticks to (:func:`explain_element`)."""

from __future__ import annotations

from ..nft.exprs import Verdict
from ..nft.model import NftElement, NftSet
from ..nft.symbols import format_time
from .explain_common import Explanation
from .nft_draft import hostport, norm, target_of
from .nft_explain_rules import NftContext
from .nft_layout import element_key
from .nft_names import nft_base, parse_chain

__all__ = ["explain_element"]


def _by_address(ctx: NftContext, ip: str) -> str:
    found = ctx.index.by_address(ip)
    return ", ".join(dict.fromkeys(s.label for s in found)) if found else "no service port of this listing"


def explain_element(ctx: NftContext, st: NftSet, el: NftElement, text: str) -> Explanation:
    """Element ``el`` of set or map ``st`` of kube-proxy's table (``text``: as nft lists it)."""
    key = element_key(el.key)
    target = target_of(el.value)
    svc = ctx.svc(target)
    label = svc.label if svc is not None else None
    name = st.name
    if name in ("service-ips", "firewall-ips") and len(key) == 3:
        ip, proto, port = str(key[0]), str(key[1]), key[2] if isinstance(key[2], int) else None
        where = hostport(ip, port) + f"/{proto}"
        parsed = parse_chain(target or "")
        if name == "firewall-ips":
            ranges = ", ".join(svc.source_ranges) if svc and svc.source_ranges else "its ranges"
            return Explanation(f"the load-balancer IP {where} of {label or '?'} goes to its firewall chain, "
                               f"which drops sources outside {ranges}", "firewall-element", service=label)
        if parsed is None:
            return Explanation(f"{where} → {el.value}", "nft-element", service=label)
        if parsed.prefix in ("service", "local"):
            itp = "Local: this node's endpoints only" if parsed.prefix == "local" else "Cluster"
            return Explanation(f"the cluster IP {where} of {label or '?'} goes to its {parsed.prefix} chain "
                               f"(internalTrafficPolicy {itp})", "cluster-ip-element", service=label)  # fmt: skip
        kind = "load-balancer" if svc is not None and ip in svc.load_balancer_ips else "external or load-balancer"
        return Explanation(f"the {kind} IP {where} of {label or '?'} goes to its external chain",
                           "external-ip-element", service=label)  # fmt: skip
    if name == "service-nodeports" and len(key) == 2:
        return Explanation(f"NodePort {key[1]}/{key[0]} of {label or '?'} goes to its external chain",
                           "nodeport-element", service=label)  # fmt: skip
    if name in ("no-endpoint-services", "no-endpoint-nodeports"):
        if el.comment and len(key) >= 2:
            base = nft_base(el.comment, str(key[-2]))
            svc = ctx.svc(f"service-{base}") or next((s for s in ctx.index if s.name == el.comment), None)
        label = svc.label if svc is not None else el.comment
        what = "NodePort " + f"{key[1]}/{key[0]}" if len(key) == 2 else \
            hostport(str(key[0]), key[2] if isinstance(key[2], int) else None) + f"/{key[1]}"
        if target == "reject-chain":
            return Explanation(f"{label or '?'} has no endpoints: new connections to {what} are rejected "
                               "(refused at once)", "no-endpoints-element", service=label)  # fmt: skip
        if isinstance(el.value, Verdict) and el.value.kind == "drop":
            return Explanation(f"{label or '?'} has no endpoint on this node and a Local traffic policy: new "
                               f"connections to {what} are dropped (clients time out)", "no-local-endpoints-element",
                               service=label)  # fmt: skip
        return Explanation(f"{what} → {el.value}", "nft-element", service=label)
    if name == "cluster-ips":
        return Explanation(f"the cluster IP of {_by_address(ctx, str(key[0]))}", "cluster-ips-element")
    if name == "nodeport-ips":
        return Explanation("a node address NodePorts answer on", "nodeport-ips-element")
    parsed = parse_chain(name)
    if parsed is not None and parsed.prefix == "affinity":
        ep_chain = f"endpoint-{parsed.base}"
        svc = ctx.svc(ep_chain)
        left = f", for {format_time(el.expires)} more" if el.expires is not None else ""
        return Explanation(f"the client {key[0]} goes back to {ctx.endpoint(ep_chain)} "
                           f"({svc.label if svc else '?'}){left} (session affinity; an earlier connection put it "
                           "there)", "affinity-element", service=svc.label if svc else None)  # fmt: skip
    return Explanation(f"the element {text}", "nft-element", service=label)


def _norm(ip: str) -> str:  # kept for symmetry with the builder's spelling of addresses
    return norm(ip)
