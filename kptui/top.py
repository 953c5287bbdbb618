"""``kptui top``: which rules are hot right now, redrawn like ``watch -d`` (plain text, no TUI).

Each read of the rules is a :class:`Reading`; :class:`TopState` keeps the previous one, the counter deltas
(:func:`kptui.engine.counters.diff_counters`), the totals since the start, and the last read error (the last
good snapshot stays on screen and the next read retries). :func:`render_frame` turns a state into text;
:func:`run_top` is the loop. The reader is passed in: this module runs no commands.

The interval adapts so reading never takes more than ~10 % of one core: the next read waits at least ten
times the last read's wall and CPU time (iptables-nft-save of a 220k-rule node takes seconds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TextIO

from kptui.engine.comments import ServiceLabels
from kptui.engine.counters import (
    DROP_TARGETS,
    ChainDelta,
    CounterDiff,
    CounterSnapshot,
    RuleDelta,
    RuleKey,
    counter_snapshot,
    diff_counters,
)
from kptui.engine.entries import Total
from kptui.engine.model import Ruleset
from kptui.fmt import human, plural, printable

if TYPE_CHECKING:
    from kptui.engine.nft import NftRuleset

__all__ = ["ReadFailed", "Reading", "TopState", "at_least", "entered_text", "next_interval", "nft_labels", "render_frame",
           "run_top"]

BUDGET = 0.10  # the share of one core reading may use
CLEAR = "\x1b[H\x1b[2J"
RED, BOLD, DIM, RESET = "\x1b[31m", "\x1b[1m", "\x1b[2m", "\x1b[0m"


class ReadFailed(Exception):
    """A read of the rules failed (the message says how); the previous snapshot stays."""


class Reading(NamedTuple):
    ruleset: Ruleset
    snapshot: CounterSnapshot
    wall: float  # seconds the read took (command + parse)
    cpu: float  # CPU seconds it took (the command's and kptui's)
    at: float  # time.monotonic() when the read finished
    clock: float  # time.time() of the same moment
    source: str
    nft: NftRuleset | None = None  # the nft listing behind ``ruleset``'s nft tables (kptui.engine.nft.display)

    @classmethod
    def of(cls, ruleset: Ruleset, wall: float, cpu: float, source: str, *, at: float | None = None,
           clock: float | None = None, nft: NftRuleset | None = None) -> Reading:  # fmt: skip
        return cls(ruleset, counter_snapshot(ruleset), wall, cpu, time.monotonic() if at is None else at,
                   time.time() if clock is None else clock, source, nft)  # fmt: skip


def kube_labels(ruleset: Ruleset) -> Mapping[str, str] | None:
    """Chain → service label from the service index (:mod:`kptui.engine.kube`), which also names services whose
    comments were dropped (clusters with more than 1000 endpoints); None when it is not available."""
    try:
        from kptui.engine.kube import service_index_of

        index = service_index_of(ruleset)
        out: dict[str, str] = {}
        for svc in index:
            for chain in svc.chains.values():
                out.setdefault(chain, svc.label)
            for ep in svc.endpoints:
                out.setdefault(ep.chain, svc.label)
    except Exception:  # noqa: BLE001 - optional enrichment: the comments still label every rule they name
        return None
    return out


def nft_labels(nft: NftRuleset) -> dict[str, str]:
    """Chain (and ``@affinity-…`` set) → service label of kube-proxy's nftables tables (cheap: the chain names
    hold the names)."""
    from kptui.engine.kube.nft_build import nft_service_index_of

    out: dict[str, str] = {}
    for svc in nft_service_index_of(nft):
        for chain in (*svc.chains.values(), *(e.chain for e in svc.endpoints if e.chain)):
            out.setdefault(chain, svc.label)
    for ep in [e.chain for svc in nft_service_index_of(nft) for e in svc.endpoints if e.chain]:
        out.setdefault("@affinity-" + ep.removeprefix("endpoint-"), out[ep])
    return out


def at_least(exact: bool) -> str:
    """The mark of a count the counters only bound from below."""
    return "" if exact else "≥"


def entered_text(t: Total) -> str:
    """``1.2k pkts, 80k bytes entered the nat table``: the packets that entered the rules, each once."""
    where = f"the {t.table} table" if t.table else "the rules"
    return f"{at_least(t.exact)}{human(t.packets)} pkts, {human(t.bytes)} bytes entered {where}"


def next_interval(requested: float, wall: float, cpu: float) -> float:
    """At least ``requested``, and at least 1/BUDGET times the last read's wall and CPU time."""
    return max(requested, wall / BUDGET, cpu / BUDGET)


@dataclass
class TopState:
    requested: float
    started: float | None = None  # monotonic time of the first good read (not the read: it would pin its rules)
    last: Reading | None = None
    diff: CounterDiff | None = None
    reads: int = 0
    errors: int = 0
    error: str | None = None  # the last read's failure, None once a read succeeds again
    error_clock: float = 0.0
    since_start: dict[RuleKey, tuple[int, int]] = field(default_factory=dict)
    chains_since_start: dict[tuple[str | None, str], int] = field(default_factory=dict)
    appeared_total: int = 0
    vanished_total: int = 0

    def update(self, r: Reading) -> None:
        prev = self.last
        self.reads += 1
        self.error = None
        if prev is not None:
            d = diff_counters(prev.snapshot, r.snapshot, r.at - prev.at)
            self.diff = d
            for x in (*d.rules, *d.appeared):
                p, b = self.since_start.get(x.key, (0, 0))
                self.since_start[x.key] = (p + x.packets, b + x.bytes)
            for c in d.chains:
                k = (c.table, c.chain)
                self.chains_since_start[k] = self.chains_since_start.get(k, 0) + c.packets
            self.appeared_total += len(d.appeared)
            self.vanished_total += len(d.vanished)
        else:
            self.started = r.at
        self.last = r

    def failed(self, message: str, clock: float | None = None) -> None:
        self.errors += 1
        self.error = message
        self.error_clock = time.time() if clock is None else clock

    @property
    def interval(self) -> float:
        r = self.last
        return next_interval(self.requested, r.wall, r.cpu) if r else self.requested


def _matches(text: str | None, needle: str) -> bool:
    return bool(text) and needle in text.lower()  # type: ignore[union-attr]


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _fit(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def render_frame(state: TopState, *, width: int = 160, rule_rows: int = 20, chain_rows: int = 10,
                 color: bool = False, filter_text: str | None = None, labels: ServiceLabels | None = None,
                 warnings: tuple[str, ...] = ()) -> str:  # fmt: skip
    """One screen of ``kptui top`` (no trailing newline)."""
    width = max(width, 60)
    red = (lambda s: f"{RED}{BOLD}{s}{RESET}") if color else (lambda s: s)
    dim = (lambda s: f"{DIM}{s}{RESET}") if color else (lambda s: s)
    r = state.last
    out: list[str] = []
    if r is None:
        out.append("kptui top: no successful read yet")
        if state.error:
            out.append(red(f"!! read failed at {_clock(state.error_clock)}: {printable(state.error)}"))
        return "\n".join(out)
    rs = r.ruleset
    labels = labels or ServiceLabels(rs)
    needle = filter_text.lower() if filter_text else None
    head = [printable(r.source), rs.family or "family?", rs.backend or ("nftables" if r.nft else "backend?"),
            plural(r.snapshot.rule_count, "rule"), f"read #{state.reads} at {_clock(r.clock)}"]  # fmt: skip
    out.append(_fit("kptui top · " + " · ".join(head), width))
    since = r.at - state.started if state.started is not None else 0.0
    out.append(_fit(f"every {state.interval:.1f} s (asked {state.requested:g} s; ≥ {1 / BUDGET:g}× the read time) · "
                    f"last read {r.wall:.2f} s wall, {r.cpu:.2f} s CPU · watching for {since:.0f} s", width))
    for w in warnings:
        out.append(red(_fit(f"!! {w}", width)))
    if needle:
        out.append(f"filter: {printable(filter_text or '')}")
    if state.error:
        out.append(red(_fit(f"!! read failed at {_clock(state.error_clock)}: {state.error} — showing the read of "
                            f"{_clock(r.clock)}; retrying", width)))  # fmt: skip
    d = state.diff
    if d is not None and not d.counters:
        out.extend(_fit(f"!! {note}", width) for note in d.notes or ("no counters",))

    def rule_ok(key: RuleKey) -> bool:
        return not needle or any(_matches(t, needle) for t in (key.chain, key.text, labels.rule(key.table, key.chain,
                                                                                               key.text)))

    def chain_ok(table: str | None, chain: str) -> bool:
        return not needle or _matches(chain, needle) or _matches(labels.chain(table, chain), needle)

    if d is not None:
        drops = [x for x in d.drops if rule_ok(x.key)]
        policy_drops = [c for c in d.chains if c.drops and chain_ok(c.table, c.chain)]
        for x in drops[:5]:
            svc = labels.rule(x.key.table, x.key.chain, x.key.text)
            out.append(red(_fit(f"!! {x.target} rising: {x.key.table}/{x.key.chain}:{x.index} +{x.packets} pkts"
                                + (f" ({svc})" if svc else "") + f"  {x.key.text}", width)))  # fmt: skip
        for c in policy_drops[:3]:
            out.append(red(_fit(f"!! policy DROP rising: {c.table}/{c.chain} +{c.policy_packets} pkts", width)))
        out.append("")
        out.append(f"interval {d.seconds:.1f} s: {entered_text(d.total)} · "
                   f"{plural(len(d.rules) + len(d.appeared), 'rule')} moved · {len(d.appeared)} appeared, "
                   f"{len(d.vanished)} vanished" + (f" (since start: {state.appeared_total} appeared, "
                                                    f"{state.vanished_total} vanished)" if state.reads > 2 else ""))
        chains = [c for c in d.chains if chain_ok(c.table, c.chain)]
        _chains_table(out, chains, d, state, labels, chain_rows, width, red)
        moved = [x for x in (*d.rules, *d.appeared) if rule_ok(x.key)]
        moved.sort(key=lambda x: (-x.packets, -x.bytes, -state.since_start.get(x.key, (0, 0))[0]))
        _rules_table(out, moved, d, state, labels, rule_rows, width, red)
        if not moved:
            out.append(dim("  nothing moved in this interval" + (" (matching the filter)" if needle else "")))
        for title, items in (("appeared", d.appeared), ("vanished", d.vanished)):
            items = tuple(x for x in items if rule_ok(x.key))
            if items:
                out.append(f"{title} ({len(items)}):")
                for x in items[:5]:
                    out.append(_fit(f"  {x.key.table}/{x.key.chain}:{x.index}  {x.key.text}", width))
                if len(items) > 5:
                    out.append(f"  … and {len(items) - 5} more")
    else:
        out.append("")
        out.append(f"first read: counters since they were last zeroed; deltas from the next read "
                   f"(in {state.interval:.1f} s). Hottest rules by total packets:")  # fmt: skip
        totals = []
        for table, tab in r.snapshot.tables.items():
            for chain, tc in tab.chains.items():
                for i, row in enumerate(tc.rows):
                    if row[2] and row[2] != "0":
                        totals.append((int(row[2]), int(row[3] or 0), table, chain, i + 1, row[1], row[4]))
        totals.sort(key=lambda t: (-t[0], -t[1]))
        shown = 0
        for pk, by, table, chain, idx, raw, target in totals:
            if needle and not rule_ok(RuleKey(table, chain, raw, 0)):
                continue
            svc = labels.rule(table, chain, raw)
            line = _fit(f"  {human(pk):>7} {human(by):>7}  {table}/{chain}:{idx}"
                        + (f"  [{svc}]" if svc else "") + f"  {raw}", width)  # fmt: skip
            out.append(red(line) if target in DROP_TARGETS else line)
            shown += 1
            if shown >= rule_rows:
                break
    return "\n".join(out)


def _chains_table(out: list[str], chains: list[ChainDelta], d: CounterDiff, state: TopState, labels: ServiceLabels,
                  rows: int, width: int, red: Callable[[str], str]) -> None:  # fmt: skip
    out.append("")
    out.append(f"{'CHAIN (packets that entered it)':<44} {'Δpkts':>8} {'pkts/s':>8} {'Δbytes':>8} {'B/s':>8} "
               f"{'since start':>11}")
    for c in chains[:rows]:
        name = f"{c.table}/{c.chain}"
        svc = labels.chain(c.table, c.chain)
        pk, by = c.packets, c.bytes  # what entered the chain (a lower bound: "≥")
        total = state.chains_since_start.get((c.table, c.chain), 0)
        line = (f"{_fit(name, 44):<44} {'+' + at_least(c.exact) + human(pk):>8} {d.rate(pk):>8.1f} {human(by):>8} "
                f"{human(int(d.rate(by))):>8} {human(total):>11}" + (f"  {svc}" if svc else ""))  # fmt: skip
        if c.policy_packets:
            line += f"  (policy {c.policy}: +{c.policy_packets})"
        out.append(red(_fit(line, width)) if c.drops else _fit(line, width))
    if len(chains) > rows:
        out.append(f"  … and {len(chains) - rows} more chains")


def _rules_table(out: list[str], moved: list[RuleDelta], d: CounterDiff, state: TopState, labels: ServiceLabels,
                 rows: int, width: int, red: Callable[[str], str]) -> None:  # fmt: skip
    out.append("")
    out.append(f"{'Δpkts':>8} {'pkts/s':>8} {'Δbytes':>8} {'total':>8} {'since':>8}  RULE")
    for x in moved[:rows]:
        k = x.key
        svc = labels.rule(k.table, k.chain, k.text)
        mark = {"appeared": " (new)", "reset": " (counters were zeroed)"}.get(x.status, "")
        line = (f"{'+' + human(x.packets):>8} {d.rate(x.packets):>8.1f} {human(x.bytes):>8} "
                f"{human(x.total_packets):>8} {human(state.since_start.get(k, (0, 0))[0]):>8}  "
                f"{k.table}/{k.chain}:{x.index}{mark}" + (f" [{svc}]" if svc else "") + f"  {k.text}")  # fmt: skip
        out.append(red(_fit(line, width)) if x.drops else _fit(line, width))
    if len(moved) > rows:
        out.append(f"  … and {len(moved) - rows} more rules moved")


def run_top(read: Callable[[], Reading], out: TextIO, *, interval: float = 2.0, once: bool = False,
            filter_text: str | None = None, tty: bool | None = None, color: bool | None = None,
            sleep: Callable[[float], None] = time.sleep, max_frames: int | None = None,
            size: Callable[[], tuple[int, int]] | None = None,
            warnings: Callable[[], tuple[str, ...]] | None = None) -> int:  # fmt: skip
    """Read, draw, wait, repeat. ``once``: two reads ``interval`` apart, one frame. Returns the exit status
    (2 when no read ever succeeded in ``once`` mode)."""
    tty = out.isatty() if tty is None else tty
    color = (tty and "NO_COLOR" not in os.environ) if color is None else color
    state = TopState(requested=max(0.1, interval))
    frames = 0
    waited = False
    labels: ServiceLabels | None = None
    index_key, index_labels = -1, None
    while True:
        try:
            reading = read()
        except ReadFailed as exc:
            state.failed(str(exc))
        else:
            state.update(reading)
            # Filtering by service: the service index also knows chains without comments (one build per
            # change of the nat chains, only when a filter asks for it).
            overrides = nft_labels(reading.nft) if reading.nft is not None else None
            if filter_text:
                nat = reading.ruleset.table("nat")
                key = hash(tuple(nat.chains)) if nat is not None else 0
                if key != index_key:
                    index_key, index_labels = key, kube_labels(reading.ruleset)
                overrides = {**(index_labels or {}), **(overrides or {})}
            labels = ServiceLabels(reading.ruleset, overrides)
        if once and state.reads == 1 and not waited:  # a second read gives the deltas
            waited = True
            sleep(state.requested)
            continue
        cols, lines = size() if size else _size(tty)
        budget = max(4, (lines - 16) // 2) if tty else 20
        frame = render_frame(state, width=cols, rule_rows=budget, chain_rows=min(10, budget), color=color,
                             filter_text=filter_text, labels=labels, warnings=warnings() if warnings else ())  # fmt: skip
        out.write((CLEAR if tty else ("\n" if frames else "")) + frame + "\n")
        out.flush()
        frames += 1
        if once:
            return 0 if state.reads else 2
        if max_frames is not None and frames >= max_frames:
            return 0
        sleep(state.interval)


def _size(tty: bool) -> tuple[int, int]:
    if not tty:
        return 200, 60
    try:
        s = os.get_terminal_size()
        return s.columns, s.lines
    except OSError:
        return 120, 40
