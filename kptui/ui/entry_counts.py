"""What entered each user chain since the counters were last zeroed, and how many rules lead to it, for the
chain tree and the detail pane.

A chain's packets are those of the rules that jump or go to it (:func:`kptui.engine.entries.jump_totals`),
never the sum of its own rules' counters (one packet crosses several of them). Counting is one pass over a
table: done at once for a small dump, in a background thread for a big one (until then :meth:`get` says
nothing rather than something wrong). The references (``iptables -L``'s "N references") come from the same
kind of pass, done on first use or in the watch mode's reading thread (:meth:`compute`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from operator import itemgetter

from kptui.engine import Ruleset
from kptui.engine.entries import jump_totals
from kptui.engine.rulelist import Row

_TARGET = itemgetter(4)

__all__ = ["COUNT_AT_ONCE", "EntryCounts"]

COUNT_AT_ONCE = 20_000  # rules: smaller dumps count on first use (well under 20 ms), bigger ones in a thread


class EntryCounts:
    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.at_once = ruleset.rule_count <= COUNT_AT_ONCE
        self._tables: dict[str | None, Mapping[str, tuple[int, int]]] = {}
        self._refs: dict[str | None, Counter[str | None]] = {}
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return len(self._tables) == len(self.ruleset.tables)

    def get(self, table: str | None, chain: str) -> tuple[int, int] | None:
        """Packets and bytes that entered ``chain``; None when nothing leads to it, the dump has no counters,
        or a big dump's counts are not computed yet."""
        counts = self._tables.get(table)
        if counts is None:
            if not self.at_once or table not in self.ruleset.tables:
                return None
            counts = self._count(table)
        return counts.get(chain)

    def refs(self, table: str | None, chain: str) -> int:
        """How many rules jump or go to ``chain``: one pass per table over the rows' targets (C loops)."""
        counts = self._refs.get(table)
        if counts is None:
            counts = self._refs[table] = _targets(self.ruleset, table)
        return counts[chain]

    def compute(self, *, refs: bool = False) -> None:
        """Count every table (a worker thread calls this for a big dump; ``refs``: the references too)."""
        for table in self.ruleset.tables:
            self._count(table)
            if refs and table not in self._refs:
                self._refs[table] = _targets(self.ruleset, table)

    def _count(self, table: str | None) -> Mapping[str, tuple[int, int]]:
        with self._lock:
            counts = self._tables.get(table)
            if counts is None:
                counts = self._tables[table] = jump_totals(self.ruleset.tables[table])
            return counts


def _targets(ruleset: Ruleset, table: str | None) -> Counter[str | None]:
    counts: Counter[str | None] = Counter()
    for chain in ruleset.tables[table]:
        rows: list[Row] | None = getattr(chain.rules, "rows", None)
        counts.update(map(_TARGET, rows) if rows is not None else (r.target_name for r in chain.rules))
    return counts
