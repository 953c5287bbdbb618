"""The rule model: frozen values from Ruleset down to Option.

``Ruleset → Table → Chain → Rule → (Match…, Target)``. Every value is immutable. A :class:`Rule` knows its
table, chain, 1-based index, source line and raw text; its decoded matches and target are computed from the raw
text on first use and cached (decoding 200k rules eagerly would double the load time of a big dump, and most
rules are never looked at). The parser checks every rule's syntax up front, so decoding cannot fail later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from .render import render_rule
from .rules import decode_rule
from .spec import HEADER, Counters, Match, Option, RuleSpec, Target

if TYPE_CHECKING:
    from .errors import Diagnostic

__all__ = [
    "BUILTIN_CHAINS",
    "HEADER",
    "TABLE_ORDER",
    "Chain",
    "Counters",
    "Match",
    "Option",
    "Rule",
    "RuleSpec",
    "Ruleset",
    "Table",
    "Target",
]

TABLE_ORDER = ("raw", "mangle", "nat", "filter", "security")

BUILTIN_CHAINS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "raw": ("PREROUTING", "OUTPUT"),
        "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
        "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
        "filter": ("INPUT", "FORWARD", "OUTPUT"),
        "security": ("INPUT", "FORWARD", "OUTPUT"),
    }
)
T = TypeVar("T")
_ALL_BUILTINS = frozenset(c for chains in BUILTIN_CHAINS.values() for c in chains)


@dataclass(frozen=True, eq=False)
class Rule:
    """One ``-A`` line. Equality is by meaning (table, chain, counters, matches, target), not by position."""

    table: str | None  # None in the ``iptables -S`` form, which has no table headers
    chain: str
    index: int  # 1-based position in its chain
    line: int  # 1-based line number in the source
    raw: str  # the rule text as in the dump, without a ``[pkts:bytes]`` prefix
    counters: Counters | None = None
    target_name: str | None = None  # cheap copy of spec.target.name, known without decoding
    goto: bool = False

    @cached_property
    def spec(self) -> RuleSpec:
        return decode_rule(self.raw, lineno=self.line)

    @property
    def matches(self) -> tuple[Match, ...]:
        return self.spec.matches

    @property
    def target(self) -> Target | None:
        return self.spec.target

    @property
    def key(self) -> tuple[object, ...]:
        return (self.table, self.chain, self.counters, self.spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rule):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash((self.table, self.chain, self.raw))

    def text(self) -> str:
        """The rule in canonical iptables-save form (``-A CHAIN …``), without counters."""
        return render_rule(self.chain, self.spec)


class Chain(NamedTuple):
    """A chain. (A NamedTuple rather than a dataclass: a big dump has 50k+ chains and this builds 5× faster.)"""

    name: str
    table: str | None
    policy: str | None  # ACCEPT/DROP for a built-in chain, None for a user chain
    counters: Counters | None  # the policy counters (built-in chains) as saved
    rules: Sequence[Rule]  # a RuleList from the parser: rules are built on first access
    line: int | None  # where it was declared (``:NAME`` or ``-N``), None if only seen in ``-A``
    declared: bool = True

    @property
    def builtin(self) -> bool:
        if self.table is None:
            return self.policy is not None or self.name in _ALL_BUILTINS
        return self.name in BUILTIN_CHAINS.get(self.table, ())

    def rule_totals(self) -> tuple[int, int]:
        """Packets and bytes summed over this chain's rules (0 for rules saved without counters)."""
        totals = getattr(self.rules, "counter_totals", None)
        if totals is not None:
            return totals()  # type: ignore[no-any-return]
        pk = by = 0
        for r in self.rules:
            if r.counters:
                pk += r.counters.packets
                by += r.counters.bytes
        return pk, by


@dataclass(frozen=True, slots=True)
class Table:
    name: str | None  # None: the ``iptables -S`` form, table unknown
    chains: Mapping[str, Chain]  # in file order
    line: int | None

    def __iter__(self) -> Iterator[Chain]:
        return iter(self.chains.values())

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains.values())

    def rules(self) -> Iterator[Rule]:
        for chain in self.chains.values():
            yield from chain.rules


@dataclass(frozen=True, eq=False)
class Ruleset:
    """A whole dump. ``tables`` maps table name (or None for the -S form) to Table, in file order."""

    tables: Mapping[str | None, Table]
    source: str | None = None
    family: str | None = None  # "ipv4", "ipv6", or None when nothing tells
    backend: str | None = None  # "nf_tables", "legacy", or None when no header says
    version: str | None = None  # iptables version from the header, e.g. "1.8.9"
    form: str = "save"  # "save" (iptables-save / restore input) or "spec" (iptables -S)
    warnings: tuple[Diagnostic, ...] = ()
    legacy_tables_present: bool = False  # the nft variant's "iptables-legacy tables present" warning
    line_count: int = 0
    # what a pasted dump carried besides rules: (line, kind, text), kind "prompt", "elision" or "decoration"
    skipped: tuple[tuple[int, str, str], ...] = ()
    rules_missing: tuple[str, ...] = ()  # why rules may be missing (elided lines, filtered output), one per cause
    inferred_tables: tuple[tuple[str, str], ...] = ()  # iptables -S listings: (table, why it is that table)
    unplaced_chains: tuple[str, ...] = ()  # chains of -S listings whose table could not be told (table None)
    companions: tuple[Ruleset, ...] = ()  # the other family's dump of the same paste (a v4 and a v6 save)
    _derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def table(self, name: str | None) -> Table | None:
        return self.tables.get(name)

    def chain(self, table: str | None, name: str) -> Chain | None:
        t = self.tables.get(table)
        return t.chains.get(name) if t else None

    def rules(self) -> Iterator[Rule]:
        for table in self.tables.values():
            yield from table.rules()

    @property
    def rule_count(self) -> int:
        """Every rule of every table (counted once: the explorer asks on every keystroke of a filter)."""
        return self.derived("rule_count", _count_rules)

    def derived(self, key: str, build: Callable[[Ruleset], T]) -> T:
        """A value computed from this ruleset once, by ``build``, and kept with it: the structure graph
        (:func:`kptui.engine.graph.graph_of`), the service index (:func:`kptui.engine.kube.service_index_of`),
        the compiled rules (:func:`kptui.engine.compiled.compiled_ruleset`). The model knows none of them: the
        modules that compute from a ruleset sit above it and keep their results here."""
        cache = self._derived
        if key not in cache:
            cache[key] = build(self)
        return cache[key]  # type: ignore[return-value]


def _count_rules(ruleset: Ruleset) -> int:
    return sum(t.rule_count for t in ruleset.tables.values())
