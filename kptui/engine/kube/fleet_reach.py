"""Whether a service port's NodePort (or load-balancer IP) takes new connections on one node: from kube-proxy's
rules (endpoints, eTP=Local endpoints on the node, no endpoints at all), and where other components' rules run
in front of kube-proxy's on the hooks such a packet crosses, from a trace of one on that node (an outside
client, the node's own address): those rules may drop or divert it, and only the walk tells.
"""

from __future__ import annotations

from fractions import Fraction

from .fleet_model import FleetNode, ForeignRule, Reach
from .model import ServicePort

__all__ = ["OUTSIDE_CLIENT", "reach_of"]

OUTSIDE_CLIENT = "203.0.113.1"  # TEST-NET-3: a client outside the cluster
OUTSIDE_CLIENT6 = "2001:db8::1"


def _on_path(f: ForeignRule) -> bool:
    """A packet from outside to a NodePort crosses PREROUTING, then FORWARD (or INPUT), then POSTROUTING."""
    return "OUTPUT" not in f.where and "hook output" not in f.where


def _traced(node: FleetNode, sp: ServicePort) -> Reach | None:
    parts = node.parts
    if parts is None or parts.netfilter is None or not node.addresses:
        return None
    from ..packet import Packet
    from ..trace import trace
    from ..trace_report import path_verdict

    dst = node.addresses[0]
    src = OUTSIDE_CLIENT6 if ":" in dst else OUTSIDE_CLIENT
    port = sp.node_port if sp.node_port is not None else sp.port
    dst = dst if sp.node_port is not None or not sp.load_balancer_ips else sp.load_balancer_ips[0]
    try:
        packet = Packet(src, dst, sp.protocol or "tcp", None, port, "external")
        result = trace(parts.netfilter, packet, parts.context)
    except (ValueError, KeyError):
        return None
    through = [p for p in result.paths if p.verdict == "ACCEPT" and p.endpoint is not None]
    if len(result.scenarios) > 1:
        return Reach(node.name, "unknown", "traced: the outcome depends on what the trace cannot tell ("
                     + "; ".join(sorted({a for p in result.paths for a in p.assumptions})[:3]) + ")")
    p_through = sum((p.probability for p in through), Fraction(0))
    where = f"{packet.describe()}, traced"
    if p_through == 1:
        return Reach(node.name, "ok", f"forwarded to {len({p.endpoint for p in through})} endpoints ({where})")
    if p_through == 0:
        worst = max(result.paths, key=lambda p: p.probability)
        state = "reject" if worst.verdict == "REJECT" else "drop"
        return Reach(node.name, state, f"{path_verdict(worst)} ({where})")
    return Reach(node.name, "partly", f"forwarded with p={float(p_through):.3g} only ({where})")


def reach_of(ref: ServicePort, node: FleetNode, entry: ServicePort | None) -> Reach:
    """The :class:`Reach` of service port ``ref`` (the majority's entry) on ``node`` (whose own entry, if it has
    one, is ``entry``)."""
    if not node.compared:
        return Reach(node.name, "unknown", node.services_note or "not compared")
    if entry is None:
        return Reach(node.name, "absent", "no rule for this service port on the node")
    if ref.node_port is not None and entry.node_port != ref.node_port:
        return Reach(node.name, "absent", f"NodePort {ref.node_port} is not this service's here (here: "
                     f"{entry.node_port if entry.node_port is not None else 'none'})")  # fmt: skip
    if not entry.endpoints:
        return Reach(node.name, "reject" if entry.no_endpoints else "absent",
                     "no endpoints: kube-proxy rejects it" if entry.no_endpoints else "no endpoints in the rules")
    local = sum(1 for e in entry.endpoints if e.local)
    if entry.external_traffic_policy == "Local":
        if local == 0:
            return Reach(node.name, "drop", "externalTrafficPolicy Local and no local endpoint here: kube-proxy "
                         "drops it")  # fmt: skip
        detail = f"{local} local endpoint{'s' if local != 1 else ''}"
    else:
        detail = f"{len(entry.endpoints)} endpoint{'s' if len(entry.endpoints) != 1 else ''}"
    if entry.source_ranges:
        detail += f"; only from {', '.join(entry.source_ranges)}"
    ahead = [f for f in node.foreign if _on_path(f)]
    if ahead:
        traced = _traced(node, entry)
        if traced is not None:
            return traced
        return Reach(node.name, "unknown", f"kube-proxy forwards it ({detail}), but {len(ahead)} rules of other "
                     "components run first on this node")  # fmt: skip
    return Reach(node.name, "ok", detail)
