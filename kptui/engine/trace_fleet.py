"""One packet traced on every node of a fleet, and the outcomes compared: :func:`trace_fleet` walks the packet
through each node's rules (:func:`kptui.engine.trace.trace`) and says per node where it goes (its endpoints,
whether it is masqueraded, where it is dropped), which outcome the majority of nodes share, and how the other
nodes differ from it. Masquerade addresses differ from node to node by design (each node's own address): only
whether the packet is masqueraded is compared. Pure: the nodes' rules and contexts in, values out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from .packet import NodeContext, Packet
from .schedule import Netfilter
from .trace import trace
from .trace_model import Trace
from .trace_report import path_verdict

__all__ = ["FleetTrace", "NodeOutcome", "TraceTarget", "own_address", "trace_fleet"]


@dataclass(frozen=True)
class TraceTarget:
    """A node to trace on: its rules and context (None: nothing to trace, ``error`` says why)."""

    name: str
    netfilter: Netfilter | None
    context: NodeContext | None
    error: str | None = None


@dataclass(frozen=True)
class NodeOutcome:
    node: str
    packet: str  # the packet as traced on this node (``--dst node`` is each node's own address)
    outcome: str  # "forwarded to 10.244.1.5:8080, 10.244.2.6:8080 · masqueraded", "DROP at filter/FORWARD:1"
    endpoints: tuple[str, ...]
    masquerade: str  # "yes", "no", "on some paths"
    through: Fraction  # the probability that it reaches an endpoint (or is delivered)
    verdicts: tuple[str, ...]  # every path's verdict, most probable first
    error: str | None = None
    trace: Trace | None = None

    @property
    def signature(self) -> tuple[object, ...]:
        return (self.error is None, self.endpoints, self.masquerade, self.verdicts if not self.endpoints else ())


@dataclass(frozen=True)
class FleetTrace:
    packet: str
    outcomes: tuple[NodeOutcome, ...]
    majority: str  # the outcome most nodes share, or why there is none
    differing: tuple[tuple[str, str], ...]  # (node, how its outcome differs)

    def outcome(self, node: str) -> NodeOutcome | None:
        return next((o for o in self.outcomes if o.node == node), None)


def own_address(addresses: Sequence[str], ipv6: bool) -> str:
    """The node's own address of the packet's family (its first: the uplink's), for a packet to or from "the
    node" (``--dst node``): ValueError when its capture names none."""
    found = next((a for a in addresses if (":" in a) == ipv6), None)
    if found is None:
        raise ValueError("the node's own address is not known (its capture has no addresses)")
    return found


def _outcome(name: str, packet: Packet, result: Trace) -> NodeOutcome:
    paths = sorted(result.paths, key=lambda p: -p.probability)
    through = [p for p in paths if p.verdict == "ACCEPT"]
    endpoints = tuple(sorted({p.endpoint for p in through if p.endpoint}))
    masq = {p.masquerade for p in through}
    masquerade = "on some paths" if len(masq) > 1 else ("yes" if masq == {True} else "no")
    p_through = sum((p.probability for p in through), Fraction(0))
    verdicts = tuple(dict.fromkeys(path_verdict(p) for p in paths))
    if endpoints:
        text = f"to {', '.join(endpoints)}" + (" · masqueraded" if masquerade == "yes" else
                                               " · masqueraded on some paths" if masquerade != "no" else "")
    else:
        text = " / ".join(verdicts)
    if through and p_through < 1:
        text += f" (p={float(p_through):.3g} through; else {' / '.join(v for v in verdicts if 'ACCEPT' not in v)})"
    if len(result.scenarios) > 1:
        text += " — depends on what the trace cannot tell"
    return NodeOutcome(name, packet.describe(), text, endpoints, masquerade, p_through, verdicts, trace=result)


def _differs(mine: NodeOutcome, top: NodeOutcome) -> str:
    if mine.error is not None:
        return f"not traced: {mine.error}"
    parts = []
    if mine.endpoints != top.endpoints:
        plus = sorted(set(mine.endpoints) - set(top.endpoints))
        minus = sorted(set(top.endpoints) - set(mine.endpoints))
        if mine.endpoints and top.endpoints:
            parts.append("endpoints " + " ".join([*(f"+{e}" for e in plus), *(f"−{e}" for e in minus)]))
        elif mine.endpoints:
            parts.append(f"reaches {', '.join(mine.endpoints)} (the majority: {' / '.join(top.verdicts)})")
        else:
            parts.append(f"{' / '.join(mine.verdicts)} (the majority reaches {len(top.endpoints)} endpoints)")
    if mine.masquerade != top.masquerade and mine.endpoints:
        parts.append(f"masquerade {mine.masquerade} (the majority: {top.masquerade})")
    if not parts and mine.verdicts != top.verdicts:
        parts.append(f"{' / '.join(mine.verdicts)} (the majority: {' / '.join(top.verdicts)})")
    return "; ".join(parts) or "differs"


def trace_fleet(targets: Sequence[TraceTarget], packet_for: Callable[[TraceTarget], Packet]) -> FleetTrace:
    """The packet ``packet_for(target)`` gives, traced on every target, and the outcomes compared."""
    outcomes: list[NodeOutcome] = []
    described = ""
    for t in targets:
        if t.netfilter is None or t.error is not None:  # (its capture failed: that, not a missing address, is why)
            why = t.error or "no rules"
            outcomes.append(NodeOutcome(t.name, "", f"not traced: {why}", (), "no", Fraction(0), (), why))
            continue
        try:
            packet = packet_for(t)
        except ValueError as exc:
            outcomes.append(NodeOutcome(t.name, "", f"not traced: {exc}", (), "no", Fraction(0), (), str(exc)))
            continue
        described = described or packet.describe()
        outcomes.append(_outcome(t.name, packet, trace(t.netfilter, packet, t.context)))
    traced = [o for o in outcomes if o.error is None]
    if not traced:
        return FleetTrace(described, tuple(outcomes), "no node could be traced", ())
    counts = Counter(o.signature for o in traced)
    (sig, n), *_ = counts.most_common()
    top = next(o for o in traced if o.signature == sig)
    if n * 2 > len(traced):
        majority = f"{top.outcome} (on {n} of {len(traced)} nodes)"
    else:
        majority = f"no majority: the most common outcome ({top.outcome}) is on {n} of {len(traced)} nodes"
    differing = tuple((o.node, _differs(o, top)) for o in outcomes if o.error is not None or o.signature != sig)
    return FleetTrace(described, tuple(outcomes), majority, differing)
