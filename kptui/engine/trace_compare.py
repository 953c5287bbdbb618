"""Set the kernel's trace of a packet (:mod:`.kernel_trace`) against the engine's simulation of it (:mod:`.trace`).

A *step* is one matched rule or applied policy. :func:`compare` picks the engine path that best matches the
kernel's walk (the path to the endpoint the kernel chose, with the most steps in common) and aligns the two step
lists row by row: ``same``, ``kernel-only``, ``engine-only``, ``rule`` (the same chain, another rule text),
``verdict`` (the same rule or policy, another verdict) or ``packet`` (the same step, but the packet the table
visit saw differs: addresses after NAT, ports, mark, input interface). Rules are the same when their texts are
identical, when :func:`~kptui.engine.rules.decode_rule` decodes both to the same spec (spacing, quoting, option
order), or -- for ``nft monitor trace`` logs, whose rule text is nft syntax -- when the caller located the kernel
event at the engine hop's rule (``locations``, from :func:`kptui.engine.kernel_replay.locate_events`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .errors import ParseError
from .kernel_trace import KernelPacket, KernelTrace
from .model import RuleSpec
from .rules import decode_rule
from .trace_model import Trace, TracePath

__all__ = ["ROW_KINDS", "Comparison", "Row", "Step", "compare", "engine_steps", "kernel_steps", "mark_known",
           "packet_differences", "rule_spec", "same_steps"]

ROW_KINDS = ("same", "kernel-only", "engine-only", "rule", "verdict", "packet")
_VERDICT = {"DNAT": "ACCEPT", "SNAT": "ACCEPT", "MASQUERADE": "ACCEPT", "REDIRECT": "ACCEPT", "REJECT": "DROP"}
_FIELDS = ("src", "dst", "sport", "dport", "mark", "in")
Location = tuple[str, str, int]  # (table, chain, 1-based rule index)


@lru_cache(maxsize=4096)
def rule_spec(text: str) -> RuleSpec | None:
    """``decode_rule(text)``, or None when it does not decode (cached: traces repeat the same rules)."""
    try:
        return decode_rule(text)
    except ParseError:
        return None


@dataclass(frozen=True)
class Step:
    """One matched rule or applied policy, from the kernel (``pos``: index into ``KernelTrace.events``) or the
    engine (``pos``: index into ``TracePath.hops``)."""

    hook: str | None
    table: str
    chain: str
    kind: str  # rule or policy
    text: str  # the rule text, or the policy verdict
    verdict: str  # normalised: DNAT/SNAT/MASQUERADE/REDIRECT → ACCEPT, REJECT → DROP
    pos: int
    where: Location | None = None  # the dump rule (engine hop; kernel event when located)

    @property
    def place(self) -> tuple[str | None, str, str, str]:
        return self.hook, self.table, self.chain, self.kind

    def same(self, other: Step) -> bool:
        """The same rule (or the same chain's policy) at the same place."""
        if self.place != other.place:
            return False
        if self.kind != "rule" or self.text == other.text:
            return self.text == other.text
        if self.where is not None and self.where == other.where:
            return True
        a, b = rule_spec(self.text), rule_spec(other.text)
        return a is not None and a == b

    def short(self) -> str:
        body = self.text if self.kind == "rule" else f"policy {self.text}"
        return f"{self.hook or '?'} {self.table}/{self.chain}: {body}"


def kernel_steps(k: KernelTrace, locations: Sequence[Location | None] | None = None) -> tuple[Step, ...]:
    """The kernel's matched rules and policies (``return`` events of old kernels left out); ``locations``
    (one per event) say which dump rule each event is, when known."""
    out = []
    for i, e in enumerate(k.events):
        if e.kind not in ("rule", "policy"):
            continue
        text = (e.rule_text or "") if e.kind == "rule" else e.verdict
        where = locations[i] if locations is not None and i < len(locations) else None
        out.append(Step(e.hook, e.table, e.chain, e.kind, text, _VERDICT.get(e.verdict, e.verdict), i, where))
    return tuple(out)


def engine_steps(path: TracePath) -> tuple[Step, ...]:
    """The engine path's matched rules and applied policies (routing decisions are not netfilter's: the
    kernel's trace does not report them)."""
    out = []
    for i, h in enumerate(path.hops):
        if not (h.matched or h.kind == "policy") or h.kind == "routing":
            continue
        verdict = h.verdict or ""
        text = (h.rule or "") if h.kind == "rule" else verdict
        where = (h.table, h.chain, h.index) if h.index is not None else None
        out.append(Step(h.hook, h.table, h.chain, h.kind, text, _VERDICT.get(verdict, verdict), i, where))
    return tuple(out)


def same_steps(a: Sequence[Step], b: Sequence[Step]) -> bool:
    return len(a) == len(b) and all(x.same(y) for x, y in zip(a, b))


# -- the packet at each table visit ----------------------------------------------------------------------------
Visit = tuple[int, str | None, str, dict[str, object]]  # (step position, hook, table, fields)


def _kernel_visits(k: KernelTrace, steps: Sequence[Step]) -> list[Visit]:
    by_event = {s.pos: n for n, s in enumerate(steps)}
    out: list[Visit] = []
    last = None
    for i, ev in enumerate(k.events):
        key = (ev.hook, ev.table, ev.packet.line if ev.packet else None)
        if key == last or ev.packet is None or i not in by_event:
            continue
        last = key
        p = ev.packet
        out.append((by_event[i], ev.hook, ev.table, {"src": p.src, "dst": p.dst, "sport": p.sport, "dport": p.dport,
                                                      "mark": p.mark if mark_known(p) else None,
                                                      "in": p.iif or None}))  # fmt: skip
    return out


def mark_known(p: KernelPacket) -> bool:
    """xtables-monitor prints ``MARK=`` whenever the mark is not 0; ``nft monitor trace`` packet lines may omit it."""
    keys = {k for k, _ in p.fields}
    return "SRC" in keys or "DST" in keys or any(k.endswith("mark") for k in keys)


def _engine_visits(path: TracePath, steps: Sequence[Step]) -> list[Visit]:
    """Per table visit, the packet as the kernel's PACKET line shows it: xtables-monitor sends the packet with
    the visit's first *traced* event, i.e. after the first matching rule ran -- so the mark includes that rule's
    MARK, while addresses and ports are still those of the visit's start (NAT rewrites after the table)."""
    out: list[Visit] = []
    last: tuple[str, str] | None = None
    for n, s in enumerate(steps):
        h = path.hops[s.pos]
        if (h.hook, h.table) == last:
            continue
        last = (h.hook, h.table)
        before, after = h.before, h.after or h.before
        if before is None or after is None:
            continue
        out.append((n, h.hook, h.table, {"src": before.src, "dst": before.dst, "sport": before.sport,
                                         "dport": before.dport, "mark": after.mark,
                                         "in": before.in_iface or None}))  # fmt: skip
    return out


def _visit_diffs(k: KernelTrace, ks: Sequence[Step], path: TracePath, es: Sequence[Step]
                 ) -> list[tuple[int, int, str]]:  # fmt: skip
    """(kernel step, engine step, "mark kernel=0x0 engine=0x4000, …") for each table visit both made whose
    packet differs; visits are paired in order by (hook, table)."""
    out = []
    ev = _engine_visits(path, es)
    j = 0
    for kpos, kh, kt, kf in _kernel_visits(k, ks):
        m = next((i for i in range(j, len(ev)) if ev[i][1:3] == (kh, kt)), None)
        if m is None:
            continue
        epos, _, _, ef = ev[m]
        j = m + 1
        diff = [f for f in _FIELDS if kf[f] != ef[f] and not (f == "mark" and kf[f] is None)]
        if diff:
            out.append((kpos, epos, ", ".join(f"{f} kernel {_show(f, kf[f])}, engine {_show(f, ef[f])}"
                                              for f in diff)))  # fmt: skip
    return out


def _show(name: str, value: object) -> str:
    return f"{value:#x}" if name == "mark" and isinstance(value, int) else str(value)


def packet_differences(k: KernelTrace, path: TracePath) -> list[str]:
    """Per table visit: the packet fields where the kernel's PACKET line and the engine's state differ."""
    ks, es = kernel_steps(k), engine_steps(path)
    return [f"packet at {ks[kp].hook} {ks[kp].table}: {text}" for kp, _, text in _visit_diffs(k, ks, path, es)]


# -- alignment -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One row of the alignment: a kernel step, an engine step, or both."""

    kind: str  # one of ROW_KINDS
    kernel: Step | None
    engine: Step | None
    detail: str = ""  # what differs, in words

    @property
    def ok(self) -> bool:
        return self.kind == "same"


def _key(s: Step) -> tuple[object, ...]:
    if s.kind != "rule":
        return (*s.place, s.text)
    spec = rule_spec(s.text)
    return (*s.place, spec if spec is not None else s.text)


def _align(ks: Sequence[Step], es: Sequence[Step]) -> list[Row]:
    """Rows in order; steps are paired when :meth:`Step.same` (verdicts compared separately)."""
    # The matcher needs hashable keys: a located kernel step keys by its dump rule, and so does the engine step
    # at that rule; everything else by its decoded spec (or its text, when it does not decode).
    located = {s.where for s in ks if s.where is not None}
    kk = [(*s.place, s.where) if s.where is not None else _key(s) for s in ks]
    ek = [(*s.place, s.where) if s.kind == "rule" and s.where in located else _key(s) for s in es]
    rows: list[Row] = []
    sm = difflib.SequenceMatcher(None, kk, ek, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            for x, y in zip(ks[i1:i2], es[j1:j2]):
                if x.verdict != y.verdict:
                    rows.append(Row("verdict", x, y, f"verdict: kernel {x.verdict}, engine {y.verdict}"))
                else:
                    rows.append(Row("same", x, y))
            continue
        left, right = list(ks[i1:i2]), list(es[j1:j2])
        while left or right:
            a: Step | None = left[0] if left else None
            b: Step | None = right[0] if right else None
            if a is not None and b is not None and a.place == b.place and a.kind == "rule":
                rows.append(Row("rule", a, b, f"{a.table}/{a.chain}: kernel matched {a.text!r}, "
                                              f"engine matched {b.text!r}"))  # fmt: skip
                left.pop(0)
                right.pop(0)
            elif a is not None and b is not None and a.place == b.place:
                rows.append(Row("verdict", a, b, f"{a.table}/{a.chain} policy: kernel {a.text}, engine {b.text}"))
                left.pop(0)
                right.pop(0)
            elif a is not None:  # the kernel's own steps first, then the engine's
                rows.append(Row("kernel-only", a, None, f"only the kernel: {a.short()}"))
                left.pop(0)
            else:
                assert b is not None
                rows.append(Row("engine-only", None, b, f"only the engine: {b.short()}"))
                right.pop(0)
    return rows


def _with_packets(rows: list[Row], diffs: list[tuple[int, int, str]], ks: Sequence[Step]) -> list[Row]:
    if not diffs:
        return rows
    by_kernel = {kp: text for kp, _, text in diffs}
    out = []
    for r in rows:
        n = ks.index(r.kernel) if r.kernel is not None else -1
        text = by_kernel.get(n)
        if text is not None and r.kernel is not None:
            detail = f"packet at {r.kernel.hook} {r.kernel.table}: {text}"
            r = Row("packet", r.kernel, r.engine, detail) if r.ok else Row(r.kind, r.kernel, r.engine,
                                                                                f"{r.detail}; {detail}")  # fmt: skip
        out.append(r)
    return out


# -- the comparison ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """The kernel's walk against the best-matching engine path (``path_index`` into ``Trace.paths``)."""

    path_index: int | None  # None: the engine found no path at all
    path: TracePath | None
    rows: tuple[Row, ...]
    problems: tuple[str, ...]  # outcome differences: verdict, endpoint, masquerade, delivery
    summary: str  # one line: "the kernel and the simulation agree on all 17 hops" / "differ from hop 6: …"

    @property
    def agree(self) -> bool:
        return all(r.ok for r in self.rows) and not self.problems

    @property
    def first_difference(self) -> int | None:
        """1-based row number of the first row that differs, or None."""
        return next((n for n, r in enumerate(self.rows, 1) if not r.ok), None)

    def kernel_marks(self) -> dict[int, str]:
        """Kernel event index → row kind, for each kernel step that differs."""
        return {r.kernel.pos: r.kind for r in self.rows if r.kernel is not None and not r.ok}

    def engine_marks(self) -> dict[int, str]:
        """Engine hop index (into ``path.hops``) → row kind, for each engine step that differs."""
        return {r.engine.pos: r.kind for r in self.rows if r.engine is not None and not r.ok}


def _outcome(k: KernelTrace, path: TracePath) -> tuple[str, ...]:
    problems = []
    if path.verdict != k.verdict:
        problems.append(f"verdict: kernel {k.verdict}, engine {path.verdict}")
    if path.endpoint != k.endpoint:
        problems.append(f"endpoint: kernel {k.endpoint or 'none'}, engine {path.endpoint or 'none'}")
    if path.masquerade != k.masquerade:
        problems.append(f"masquerade: kernel {'yes' if k.masquerade else 'no'}, "
                        f"engine {'yes' if path.masquerade else 'no'}")  # fmt: skip
    if k.delivery in ("local", "forward", "sent") and path.delivery != k.delivery:
        problems.append(f"delivery: kernel {k.delivery}, engine {path.delivery or 'none'}")
    return tuple(problems)


def _rows(k: KernelTrace, ks: Sequence[Step], path: TracePath) -> list[Row]:
    es = engine_steps(path)
    return _with_packets(_align(ks, es), _visit_diffs(k, ks, path, es), ks)


def compare(kernel: KernelTrace, engine: Trace, *, locations: Sequence[Location | None] | None = None
            ) -> Comparison:  # fmt: skip
    """Compare ``kernel`` (a traversal, ``-j TRACE`` rules left out) with the best-matching path of ``engine``:
    the paths to the kernel's endpoint first, then the most rows in agreement, the longest agreeing start,
    the fewest assumptions, the most likely."""
    k = kernel.without_trace_rules()
    if locations is not None and len(k.events) != len(kernel.events):
        locations = [loc for loc, e in zip(locations, kernel.events) if not e.is_trace_rule]
    ks = kernel_steps(k, locations)
    if not engine.paths:
        alone = tuple(Row("kernel-only", s, None, f"only the kernel: {s.short()}") for s in ks)
        return Comparison(None, None, alone, ("the engine found no path",),
                          "the simulation found no path for this packet")  # fmt: skip
    pool = [i for i, p in enumerate(engine.paths) if p.endpoint == k.endpoint] or list(range(len(engine.paths)))
    scored = []
    for i in pool:
        rows = _rows(k, ks, engine.paths[i])
        prefix = next((n for n, r in enumerate(rows) if not r.ok), len(rows))
        scored.append(((sum(r.ok for r in rows), prefix, -len(engine.paths[i].assumptions),
                        engine.paths[i].probability, -i), i, rows))  # fmt: skip
    _, best, rows = max(scored, key=lambda t: t[0])
    path = engine.paths[best]
    problems = _outcome(k, path)
    return Comparison(best, path, tuple(rows), problems, _summary(rows, problems))


def _summary(rows: Sequence[Row], problems: Sequence[str]) -> str:
    first = next((n for n, r in enumerate(rows, 1) if not r.ok), None)
    if first is None:
        head = f"the kernel and the simulation agree on all {len(rows)} hops"
        return head + (f", but not on the outcome: {'; '.join(problems)}" if problems else "")
    diffs = sum(not r.ok for r in rows)
    more = f" ({diffs} rows differ)" if diffs > 1 else ""
    return f"the kernel and the simulation differ from hop {first}: {rows[first - 1].detail}{more}"
