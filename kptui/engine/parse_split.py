"""The parse with its rules' shape checks done elsewhere (:func:`kptui.engine.parser.parse_ruleset`'s
``parallel``): the unchecked parse's side of it. The lines the checks found slow are decoded afterwards, in line
order, and what that decoding tells (rows, warnings, not-understood notes, the first error) is put where the
checking parse puts it, so that both parses give the same answer."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, TypeVar

from .rulelist import Row

if TYPE_CHECKING:
    from .structure import Builder

__all__ = ["Decode", "SlowLine", "Split"]

SlowLine = tuple[int, str, str, str, str]  # (line, packets, bytes, raw, chain): a rule line as the parser splits it
# (builder, line, packets, bytes, raw, cut off, family) → the row of the fully decoded rule (parser._decoded_row)
Decode = Callable[["Builder", int, str, str, str, bool, "int | None"], "Row | None"]
_LINE_OF = itemgetter(0)
_T = TypeVar("_T")


class Split:
    """The unchecked parse's side of the checks done elsewhere: the lines it decoded itself, and the settling."""

    __slots__ = ("checks", "decode", "done_slow", "family", "last", "settled", "truncated", "warnings_from")

    def __init__(self, checks: Callable[[], list[SlowLine]], decode: Decode, family: int | None, warnings_from: int,
                 last: int, truncated: bool) -> None:  # fmt: skip
        self.checks = checks
        self.decode = decode
        self.family = family  # the family the checks read the shapes as (the parse settles at a change)
        self.warnings_from = warnings_from  # the builder's warnings before this index are not the parse's
        self.last = last
        self.truncated = truncated
        self.done_slow: set[int] = set()  # rule lines the unchecked parse decoded fully itself
        self.settled = False

    def settle(self, builder: Builder, upto: int | None) -> None:
        """Decode fully the lines the checks found slow (up to line ``upto``, all with None), in line order, as
        the checking parse would have on the way; once only. The first that does not decode raises its error;
        one that decodes replaces the row the fast path made for it (a -c counter or a target can differ). A
        row that went meanwhile (a later -F or -X) needs no fixing, but its line is still checked. Its warnings
        and not-understood notes are put where the checking parse puts them: with the other warnings of their
        line, before those the line's row brought (the parse's warnings come in line order)."""
        if self.settled:
            return
        self.settled = True
        slow = self.checks()
        kept, builder.warnings = builder.warnings, []
        had = {msg: len(items) for msg, items in builder.problems.items()}
        try:
            for lineno, pk, by, raw, chain in slow:
                if upto is not None and lineno > upto:
                    break
                if lineno in self.done_slow:
                    continue
                row = self.decode(builder, lineno, pk, by, raw, lineno == self.last and self.truncated,
                                   self.family)  # fmt: skip
                assert row is not None  # a cut-off last line is checked on the way (see parser._lines)
                _replace_row(builder, chain, row)
        finally:
            new, builder.warnings = builder.warnings, kept
            kept[self.warnings_from :] = _merged(kept[self.warnings_from :], new, lambda w: w.line)
            _merge_problems(builder.problems, had)


def _replace_row(builder: Builder, chain: str, row: Row) -> None:
    lineno = row[0]
    for seg in builder.segments:
        for table in (*seg.tables.values(), *seg.blocks):
            ch = table.chains.get(chain)
            if ch is None:
                continue
            rows = ch.rows
            at = bisect_left(rows, lineno, key=_LINE_OF)
            if at < len(rows) and rows[at][0] == lineno:
                rows[at] = row
                return


def _merged(old: list[_T], new: list[_T], line: Callable[[_T], int | None]) -> list[_T]:
    """``old`` (in line order but for lineless items, which stay where they are) with ``new`` (in line order)
    merged in: an item of ``new`` goes before the items of ``old`` of its line and after."""
    if not new:
        return old
    out: list[_T] = []
    j, n = 0, len(new)
    for item in old:
        at = line(item)
        if at is not None:
            while j < n and (line(new[j]) or 0) <= at:
                out.append(new[j])
                j += 1
        out.append(item)
    out.extend(new[j:])
    return out


def _merge_problems(problems: dict[str, list[tuple[int, str, int, int]]], had: dict[str, int]) -> None:
    """Put the not-understood notes the settling added where the checking parse adds them (in line order, each
    message where its first rule puts it)."""
    if all(len(items) == had.get(msg, 0) for msg, items in problems.items()):
        return
    for msg, items in problems.items():
        n = had.get(msg, 0)
        if len(items) > n:
            items[:] = _merged(items[:n], items[n:], _LINE_OF)
    ordered = sorted(problems.items(), key=lambda kv: kv[1][0][0])
    problems.clear()
    problems.update(ordered)
