"""What a trace returns: every path a first packet can take, each a list of hops a user can step through.

A :class:`Hop` is one rule (or chain policy) the kernel evaluated, with the packet state before and after it.
Rules that were provably skipped (their ``-d`` or ``--dport`` cannot match) are hops too, with ``failed``
saying why; they share the state object of the hop before them, so a 5000-rule chain costs little.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, NamedTuple

from .packet import NodeContext, Packet

__all__ = ["DROP_MARK", "MASQ_ADDRESS_UNKNOWN", "MASQ_MARK", "Hop", "PacketState", "Trace", "TracePath"]

MASQ_MARK = 0x4000  # KUBE-MARK-MASQ
DROP_MARK = 0x8000  # KUBE-MARK-DROP (kube-proxy ≤ 1.24)
# the note of a MASQUERADE hop whose new source is not known (no address of the outgoing interface nor of the
# node was given): the packet keeps its source in the simulation, and the reports say the address is unknown
MASQ_ADDRESS_UNKNOWN = "the outgoing interface's address is not known: give the node's addresses"


@dataclass(frozen=True, slots=True)
class PacketState:
    """The packet (and its connection) as one hook sees it."""

    src: str
    dst: str
    proto: str
    sport: int | None
    dport: int | None
    mark: int = 0
    ctmark: int = 0
    ctstate: str = "NEW"  # NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED
    dnat: bool = False  # the connection's destination was rewritten (conntrack's virtual DNAT state)
    snat: bool = False  # the connection's source was rewritten (SNAT or MASQUERADE)
    masquerade: bool = False  # MASQUERADE did the source rewrite
    orig_src: str = ""
    orig_dst: str = ""
    orig_sport: int | None = None
    orig_dport: int | None = None
    in_iface: str | None = None
    out_iface: str | None = None
    hook: str = ""
    recent: frozenset[str] = frozenset()  # recent lists this path added the source to (``--set``)
    dyn: frozenset[tuple[str, str]] = frozenset()  # nft dynamic set elements this path added: (set, element)
    pre_ct: bool = False  # in a base chain that runs before conntrack (priority below -200) on the first hook

    @property
    def ct(self) -> str:
        """The conntrack state a match sees: before conntrack has looked the packet up (raw priority) a packet
        has no entry and matches as INVALID (``nf_ct_get`` is NULL), unless NOTRACK made it UNTRACKED."""
        if self.pre_ct and self.ctstate != "UNTRACKED":
            return "INVALID"
        return self.ctstate

    def with_(self, **changes: Any) -> PacketState:
        return replace(self, **changes)

    @property
    def untracked(self) -> bool:
        return self.ctstate == "UNTRACKED"

    def changes_from(self, before: PacketState) -> dict[str, tuple[Any, Any]]:
        """Field → (before, after) for every field this state changed."""
        out = {}
        for name in ("src", "dst", "sport", "dport", "mark", "ctmark", "ctstate", "dnat", "snat",
                     "masquerade", "in_iface", "out_iface"):  # fmt: skip
            a, b = getattr(before, name), getattr(self, name)
            if a != b:
                out[name] = (a, b)
        return out


class Hop(NamedTuple):
    """One evaluation step: a rule (matched or not) or a chain's policy. (A NamedTuple: a trace through
    KUBE-SERVICES records thousands of these, and they build five times faster than a dataclass.)"""

    hook: str  # PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING
    table: str
    chain: str
    kind: str  # "rule" or "policy"
    index: int | None  # type: ignore[assignment]  # 1-based rule index; None for a policy (shadows tuple.index)
    line: int | None  # source line of the rule
    rule: str | None  # the rule text as in the dump (no counter prefix); None for a policy
    matched: bool
    verdict: str | None  # for a match: JUMP, GOTO, ACCEPT, DROP, REJECT, RETURN, DNAT, SNAT, MASQUERADE,
    #                      REDIRECT, CONTINUE, QUEUE, UNKNOWN; for a policy: the policy
    target: str | None = None  # the chain a JUMP/GOTO goes to, or the target's name
    failed: str | None = None  # for a rule that did not match: the match that failed
    before: PacketState | None = None
    after: PacketState | None = None
    counter: tuple[int, int] | None = None  # the rule's (or policy's) counters in the dump, before this hop
    note: str | None = None  # a branch taken here (statistic, an undecidable match), or a caveat
    probability: Fraction = Fraction(1)  # of reaching this hop
    family: str | None = None  # the rule's family as nft names it: "ip", "ip6", "inet" (iptables: ip / ip6)
    handle: int | None = None  # the nft rule handle, when the listing has one (``nft -a``, ``nft -j``)

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        if self.before is None or self.after is None or self.before is self.after:
            return {}
        return self.after.changes_from(self.before)


@dataclass(frozen=True)
class TracePath:
    """One way the packet can go, with the probability of going this way."""

    probability: Fraction
    verdict: str  # ACCEPT (delivered or forwarded), DROP, REJECT, QUEUE, or LOOP (a jump loop: an error)
    hops: tuple[Hop, ...]
    final: PacketState
    delivery: str | None  # "local" (to a socket on the node), "forward" (an arriving packet routed out of the
    #                       node), "sent" (a packet the node sent, out of the node), or None (it ended)
    assumptions: tuple[str, ...] = ()  # what this path assumed (undecidable questions, unknown addresses)
    notes: tuple[str, ...] = ()
    facts: tuple[Any, ...] = ()  # the assumptions as :data:`kptui.engine.assume.Fact` s (key, pred, truth)
    prefix: int = 0  # how many of ``facts`` were assumed before the path's first chance split

    @property
    def matched_hops(self) -> tuple[Hop, ...]:
        return tuple(h for h in self.hops if h.matched or h.kind == "policy")

    @property
    def endpoint(self) -> str | None:
        """``IP:PORT`` the connection was DNATed to, or None."""
        if not self.final.dnat:
            return None
        f = self.final
        host = f"[{f.dst}]" if ":" in f.dst else f.dst
        return f"{host}:{f.dport}" if f.dport is not None else f.dst

    @property
    def masquerade(self) -> bool:
        return self.final.masquerade


@dataclass(frozen=True)
class Trace:
    packet: Packet
    node: NodeContext
    paths: tuple[TracePath, ...]
    notes: tuple[str, ...] = field(default=())
    scenarios: tuple[Any, ...] = field(default=())  # kptui.engine.assume.Scenario s: paths by assumptions

    @property
    def total_probability(self) -> Fraction:
        return sum((p.probability for p in self.paths), Fraction(0))
