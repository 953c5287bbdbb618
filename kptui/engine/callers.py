"""Who jumps to a chain: the structure graph's reverse index, kept in flat arrays.

A 700k-line dump has about 180k chains and 500k jumps between them. As a mapping of (table, chain) to tuples
of rule references that index cost 60 MB; here each table keeps one number per jump (the jumping rule's
position in the table's rules, all chains end to end), sorted by the chain jumped to, and the references are
made when asked for (:meth:`Callers.of`). Built with calls that run in C: no Python loop over the rules.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate, compress
from itertools import chain as chain_from
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, NamedTuple, cast

if TYPE_CHECKING:
    from .model import Chain, Ruleset

__all__ = ["Callers", "RuleRef"]

_TARGET = itemgetter(4)  # a parser row's target name
_ROWS = attrgetter("rules.rows")
_RULES = attrgetter("rules")
_NAME = attrgetter("name")


class RuleRef(NamedTuple):
    table: str | None
    chain: str
    index: int  # type: ignore[assignment]  # 1-based (shadows tuple.index)
    line: int


def _targets_in_order(chain: Chain) -> Iterable[str | None]:
    """The target name of each rule of ``chain``, in order (from the parser's rows, without building rules)."""
    rows = getattr(chain.rules, "rows", None)
    if rows is not None:
        return map(_TARGET, rows)
    return (r.target_name for r in chain.rules)


class _TableCallers:
    """One table's jumps: ``keys[k]`` is the chain jumped to by the rule at table position ``where[k]``, keys
    ascending (positions ascending within a key: file order)."""

    __slots__ = ("chains", "keys", "starts", "where")

    def __init__(self, chains: Sequence[Chain]) -> None:
        self.chains = chains
        self.starts = array("q", accumulate(map(len, map(_RULES, chains)), initial=0))
        names = set(map(_NAME, chains))
        try:  # the parser's rows: every target in one pass in C
            flat = list(map(_TARGET, chain_from.from_iterable(map(_ROWS, chains))))
        except AttributeError:  # other rules (an nft view, a test's), chain by chain
            flat = list(chain_from.from_iterable(map(_targets_in_order, chains)))
        targets = cast("list[str]", flat)  # (None for a rule without a target: never a key, only chains pass)
        jumping = compress(range(len(targets)), map(names.__contains__, targets))
        order = sorted(jumping, key=targets.__getitem__)  # stable: each chain's callers stay in file order
        self.keys: list[str] = list(map(targets.__getitem__, order))  # the chains' own name strings
        self.where = array("q", order)

    def of(self, table: str | None, name: str) -> tuple[RuleRef, ...]:
        lo, hi = bisect_left(self.keys, name), bisect_right(self.keys, name)
        out = []
        for pos in self.where[lo:hi]:
            c = bisect_right(self.starts, pos) - 1
            chain = self.chains[c]
            index = pos - self.starts[c] + 1
            line_of = getattr(chain.rules, "line_of", None)
            line = line_of(index) if line_of is not None else chain.rules[index - 1].line
            out.append(RuleRef(table, chain.name, index, line))
        return tuple(out)

    def count(self, name: str) -> int:
        return bisect_right(self.keys, name) - bisect_left(self.keys, name)


class Callers:
    """Chain → the rules that jump or go to it, in file order (:meth:`of`)."""

    def __init__(self, ruleset: Ruleset) -> None:
        self._tables = {tname: _TableCallers(tuple(table.chains.values())) for tname, table in ruleset.tables.items()}

    def of(self, table: str | None, chain: str) -> tuple[RuleRef, ...]:
        t = self._tables.get(table)
        return t.of(table, chain) if t is not None else ()

    def count(self, table: str | None, chain: str) -> int:
        """How many rules jump or go to ``chain`` (``iptables -L``'s "N references"), without making them."""
        t = self._tables.get(table)
        return t.count(chain) if t is not None else 0
