"""One path of a trace as the walker (:mod:`kptui.engine.trace`) carries it: where it is (the hook phase, the
base chain of that hook, the call stack of chains with the next rule of each), the packet's state, its
probability, what it assumed and took for granted, and the hops it went through (a cons list, frozen into a
tuple shared by both branches when the path forks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

from .assume import Fact
from .schedule import BaseChain
from .trace_model import Hop, PacketState, TracePath

__all__ = ["Cursor", "HopLog", "hook_of", "materialize"]


@dataclass
class Cursor:
    """Where one path is: hook phase, its base chains, call stack, packet state, and what it went through."""

    phase: str
    sched: tuple[BaseChain, ...] = ()
    pos: int = -1  # index into sched of the base chain being walked (-1: before the first)
    frames: tuple[tuple[tuple[str, ...], str, int], ...] = ()  # (namespace, chain, next rule index), innermost last
    state: PacketState = field(default=None)  # type: ignore[assignment]
    prob: Fraction = Fraction(1)
    log: Any = None  # a cons list: (hop, previous) or None
    facts: tuple[Fact, ...] = ()  # what this path assumed
    given: tuple[Fact, ...] = ()  # what the packet's origin says (not assumptions: they hold on every path)
    notes: tuple[str, ...] = ()
    done: TracePath | None = None  # a fork that already ended (a spread branch whose verdict ended the packet)
    stated: tuple[str, ...] = ()  # what this path took for granted without forking (listed as assumptions)
    prefix: int | None = None  # how many facts were assumed before the path's first chance split
    reroute: tuple[str | None] | None = None  # OUTPUT: the interface the packet was routed to again after NAT

    def chance(self) -> None:
        """A chance split happens here: later assumptions are alternatives within a branch."""
        if self.prefix is None:
            self.prefix = len(self.facts)

    def fork(self, **changes: Any) -> Cursor:
        # Freeze the hops so far into one tuple both branches share (paths share long prefixes).
        self.log = materialize(self.log)
        c = Cursor(self.phase, self.sched, self.pos, self.frames, self.state, self.prob, self.log, self.facts,
                   self.given, self.notes, None, self.stated, self.prefix, self.reroute)  # fmt: skip
        for k, v in changes.items():
            setattr(c, k, v)
        return c

    def add(self, hop: Hop) -> None:
        self.log = HopLog(hop, self.log)

    @property
    def base(self) -> BaseChain:
        return self.sched[self.pos]

    def take_as_given(self, key: str, addr: str, why: str) -> None:
        """``addr`` is not a node address, on every path from here (no node addresses were given)."""
        self.given = self.given + ((key, None, False),)
        self.stated = self.stated + (f"{addr} is not a node address (taken so: {why}; no node addresses given)",)


class HopLog(NamedTuple):
    """A cons cell of the hop log; the innermost ``rest`` is None or a frozen tuple of earlier hops."""

    hop: Hop
    rest: Any


def materialize(log: Any) -> tuple[Hop, ...]:
    recent = []
    while isinstance(log, HopLog):
        recent.append(log.hop)
        log = log.rest
    recent.reverse()
    return (log or ()) + tuple(recent)


def hook_of(phase: str) -> str:
    """The netfilter hook of a walk phase (``LO-INPUT``: the loop through ``lo``; ``VS-OUTPUT``: the LOCAL_OUT
    pass of a packet IPVS sent on)."""
    return phase[3:] if phase.startswith(("LO-", "VS-")) else phase

