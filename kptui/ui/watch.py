"""Watch mode in the app (``kptui --watch``): re-read the live rules now and then, and show what moved.

:class:`Watcher` holds the same :class:`kptui.top.TopState` that ``kptui top``
uses: the previous snapshot, the counter deltas since the last read and since the start, the last read's
duration and failure. The interval adapts exactly as in ``kptui top``: at least ten times the last read's wall
and CPU time, so reading never takes more than ~10 % of one core.

:func:`rule_deltas` / :func:`chain_deltas` turn the last :class:`~kptui.engine.counters.CounterDiff` into what
the chain tree shows next to each rule and chain; :func:`watch_status` is the one-line header.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kptui.engine.counters import CounterDiff
from kptui.fmt import human, plural, printable
from kptui.top import TopState, at_least

from .locs import Loc

__all__ = ["ChainMove", "Move", "Watcher", "chain_deltas", "rule_deltas", "watch_status"]


Move = tuple[int, bool]  # packets since the previous read; a refusing rule (DROP/REJECT/KUBE-MARK-DROP) rising
ChainMove = tuple[int, bool, bool]  # packets that entered the chain; a refusal in it rising; the count is exact


def rule_deltas(diff: CounterDiff | None) -> dict[Loc, Move]:
    """Loc (in the new snapshot) → its move, for every rule that moved or appeared."""
    out: dict[Loc, Move] = {}
    if diff is None:
        return out
    for d in (*diff.rules, *diff.appeared):
        out[Loc(d.key.table, d.key.chain, d.index)] = (d.packets, d.drops)
    return out


def chain_deltas(diff: CounterDiff | None) -> dict[Loc, ChainMove]:
    """Chain → the packets that entered it since the previous read (each once: the jumps into it, or for a
    built-in chain what left it by a verdict or its policy), whether a refusing rule or policy in it rose,
    and whether the count is exact (else a lower bound)."""
    out: dict[Loc, ChainMove] = {}
    if diff is None:
        return out
    for c in diff.chains:
        if c.packets:
            out[Loc(c.table, c.chain)] = (c.packets, c.drops, c.exact)
    for d in diff.drops:
        loc = Loc(d.key.table, d.key.chain)
        if loc in out:
            out[loc] = (out[loc][0], True, out[loc][2])
    return out


@dataclass
class Watcher:
    """The app's side of watch mode: the state, and whether the user paused it (the app owns the reader)."""

    requested: float  # the interval asked for (seconds); reads may come less often (the 10 % budget)
    state: TopState = field(init=False)
    paused: bool = False
    reading: bool = False
    due: float = 0.0  # time.monotonic() of the next read

    def __post_init__(self) -> None:
        self.state = TopState(self.requested)

    def schedule(self, now: float | None = None) -> float:
        """After a read (or a failure): when the next one is due, in seconds from now."""
        delay = self.state.interval
        self.due = (time.monotonic() if now is None else now) + delay
        return delay

    @property
    def diff(self) -> CounterDiff | None:
        return self.state.diff


def watch_status(w: Watcher, source: str, now: float | None = None) -> str:
    """``live · read #4 took 1.23 s · every 12.3 s, next in 5 s · 34 rules moved, +1.2k pkts into nat in 12.3 s ·
    2 DROP/REJECT rising``"""
    s = w.state
    now = time.monotonic() if now is None else now
    parts = [printable(source)]
    if s.last is not None:
        parts.append(f"read #{s.reads} took {s.last.wall:.2f} s")
    if w.paused:
        parts.append("paused (w resumes)")
    elif w.reading:
        parts.append("reading …")
    else:
        interval = s.interval
        note = f" (10 % budget; asked {w.requested:g} s)" if interval > w.requested + 1e-9 else ""
        parts.append(f"every {interval:.3g} s{note}, next in {max(0, round(w.due - now))} s")
    d = s.diff
    if d is None:
        parts.append("first read: deltas after the next one")
    else:
        moved = len(d.rules) + len(d.appeared)
        if d.counters:
            t = d.total
            into = f" into {t.table}" if t.table else ""
            parts.append(f"{plural(moved, 'rule')} moved, +{at_least(t.exact)}{human(t.packets)} pkts{into} in "
                         f"{d.seconds:.3g} s")
        else:
            parts.append("no counters in the dump (saved without -c)")
        if d.drops:
            parts.append(f"⚠ {len(d.drops)} DROP/REJECT rising")
        if d.appeared or d.vanished:
            parts.append(f"{len(d.appeared)} appeared, {len(d.vanished)} vanished")
    if s.error:
        parts.append(f"✗ last read failed: {printable(s.error)}")
    return " · ".join(parts)

