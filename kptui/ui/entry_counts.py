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
from collections.abc import Mapping

from kptui.engine import Ruleset
from kptui.engine.entries import jump_totals
from kptui.engine.graph import graph_of

__all__ = ["COUNT_AT_ONCE", "EntryCounts"]

COUNT_AT_ONCE = 20_000  # rules: smaller dumps count on first use (well under 20 ms), bigger ones in a thread


class EntryCounts:
    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.at_once = ruleset.rule_count <= COUNT_AT_ONCE
        self._tables: dict[str | None, Mapping[str, tuple[int, int]]] = {}
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
        """How many rules jump or go to ``chain`` (the structure graph's callers, counted: flat arrays, not a
        counter per target name, which cost 18 MB on a 700k-line dump)."""
        return graph_of(self.ruleset).callers.count(table, chain)

    def compute(self, *, refs: bool = False) -> None:
        """Count every table (a worker thread calls this for a big dump; ``refs``: the references too)."""
        for table in self.ruleset.tables:
            self._count(table)
        if refs:
            _ = graph_of(self.ruleset).callers

    def _count(self, table: str | None) -> Mapping[str, tuple[int, int]]:
        with self._lock:
            counts = self._tables.get(table)
            if counts is None:
                counts = self._tables[table] = jump_totals(self.ruleset.tables[table])
            return counts

