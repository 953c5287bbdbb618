"""Where things are in a dump: :class:`Loc` (a table, a chain, or a rule) and cheap access to a chain's rows.

The UI addresses every tree node, link and trace hop by a ``Loc``; nothing in the UI holds widget references
across panes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kptui.engine import Chain, Rule, Ruleset
from kptui.engine.rulelist import Row

__all__ = ["Loc", "chain_of", "rows_of", "rule_at"]


@dataclass(frozen=True, slots=True)
class Loc:
    """A table (``chain`` None), a chain (``index`` None) or a rule (1-based ``index``)."""

    table: str | None
    chain: str | None = None
    index: int | None = None

    @property
    def kind(self) -> str:
        return "table" if self.chain is None else "chain" if self.index is None else "rule"

    @property
    def chain_loc(self) -> Loc:
        return Loc(self.table, self.chain)

    def __str__(self) -> str:
        where = self.table or "?"
        if self.chain is not None:
            where += f"/{self.chain}"
        if self.index is not None:
            where += f":{self.index}"
        return where


def rows_of(chain: Chain) -> Sequence[Row]:
    """The parser's compact rows (line, raw, pkts, bytes, target, goto): no Rule objects are built."""
    rows = getattr(chain.rules, "rows", None)
    if rows is not None:
        return rows  # type: ignore[no-any-return]
    return [(r.line, r.raw, None if r.counters is None else str(r.counters.packets),
             None if r.counters is None else str(r.counters.bytes), r.target_name, r.goto)
            for r in chain.rules]  # fmt: skip


def chain_of(ruleset: Ruleset, loc: Loc) -> Chain | None:
    return None if loc.chain is None else ruleset.chain(loc.table, loc.chain)


def rule_at(ruleset: Ruleset, loc: Loc) -> Rule | None:
    chain = chain_of(ruleset, loc)
    if chain is None or loc.index is None or not 1 <= loc.index <= len(chain.rules):
        return None
    return chain.rules[loc.index - 1]
