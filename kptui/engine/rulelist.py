"""An immutable, lazily materialised sequence of a chain's rules.

A 220k-rule dump would spend a third of its load time building Rule objects nobody looks at. The parser keeps
each rule as a compact row (line, raw text, counter strings, target) and :class:`RuleList` turns a row into a
:class:`Rule` the first time it is indexed, then keeps it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import overload

from .model import Counters, Rule

__all__ = ["Row", "RuleList"]

_TARGET = itemgetter(4)

# (line, raw, packets or None, bytes or None, target name or None, goto)
Row = tuple[int, str, "str | None", "str | None", "str | None", bool]


class RuleList(Sequence[Rule]):
    __slots__ = ("_cache", "_chain", "_rows", "_table")

    def __init__(self, table: str | None, chain: str, rows: list[Row]) -> None:
        self._table = table
        self._chain = chain
        self._rows = rows
        self._cache: list[Rule | None] | None = None  # allocated on first access

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> Rule: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Rule]: ...
    def __getitem__(self, i: int | slice) -> Rule | Sequence[Rule]:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self._rows))))
        if i < 0:
            i += len(self._rows)
        cache = self._cache
        if cache is None:
            cache = self._cache = [None] * len(self._rows)
        rule = cache[i]
        if rule is None:
            line, raw, pk, by, target, goto = self._rows[i]
            counters = Counters(int(pk), int(by)) if pk is not None and by is not None else None
            rule = Rule(self._table, self._chain, i + 1, line, raw, counters, target, goto)
            cache[i] = rule
        return rule

    def __iter__(self) -> Iterator[Rule]:
        for i in range(len(self._rows)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._table, self._chain, len(self._rows)))

    def __repr__(self) -> str:
        return f"<RuleList {self._table}/{self._chain}: {len(self._rows)} rules>"

    # Cheap accessors that do not build Rule objects (used by the graph, summaries and the tree).
    @property
    def rows(self) -> Sequence[Row]:
        """The compact rows behind the rules (read-only by convention: engine code only)."""
        return self._rows

    def target_set(self) -> set[str]:
        """The distinct target names of this chain's rules."""
        names = set(map(_TARGET, self._rows))  # map + itemgetter: the loop runs in C
        names.discard(None)
        return names

    def counter_totals(self) -> tuple[int, int]:
        """Sum of packet and byte counters over all rules (0 where a rule has none)."""
        rows = self._rows
        if not rows:
            return 0, 0
        return (sum([int(r[2]) for r in rows if r[2] is not None]),
                sum([int(r[3]) for r in rows if r[3] is not None]))  # fmt: skip

    def line_of(self, index: int) -> int:
        return self._rows[index - 1][0]
