"""The rule model: frozen values from Ruleset down to Option.

``Ruleset → Table → Chain → Rule → (Match…, Target)``. Every value is immutable. A :class:`Rule` knows its
table, chain, 1-based index, source line and raw text; its decoded matches and target are computed from the raw
text on first use and cached (decoding 200k rules eagerly would double the load time of a big dump, and most
rules are never looked at). The parser checks every rule's syntax up front, so decoding cannot fail later.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .compiled import CompiledRuleset
    from .errors import Diagnostic
    from .graph import Graph
    from .kube.model import ServiceIndex

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

HEADER = ""  # module name of the rule's own header fields (-s -d -i -o -p -f), which need no -m

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
_ALL_BUILTINS = frozenset(c for chains in BUILTIN_CHAINS.values() for c in chains)


class Counters(NamedTuple):
    packets: int
    bytes: int

    def __str__(self) -> str:
        return f"[{self.packets}:{self.bytes}]"


@dataclass(frozen=True, slots=True)
class Option:
    """One option with its arguments, e.g. ``! --dport 80`` → Option("--dport", ("80",), negated=True)."""

    name: str
    args: tuple[str, ...] = ()
    negated: bool = False

    @property
    def value(self) -> str:
        """The arguments joined by spaces ('' for a flag)."""
        return " ".join(self.args)


@dataclass(frozen=True, slots=True)
class Match:
    """A match: ``module`` is the ``-m`` module name, or HEADER ('') for one of -s/-d/-i/-o/-p/-f.

    ``implicit`` is true for a protocol match iptables loaded without ``-m`` (``-p tcp --dport 80``); it does
    not take part in equality, because iptables-save prints the same rule with ``-m tcp``.
    """

    module: str
    options: tuple[Option, ...] = ()
    implicit: bool = field(default=False, compare=False)

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None

    @property
    def negated(self) -> bool:
        return any(o.negated for o in self.options)


@dataclass(frozen=True, slots=True)
class Target:
    """``-j NAME opts`` (goto=False) or ``-g NAME`` (goto=True)."""

    name: str
    options: tuple[Option, ...] = ()
    goto: bool = False

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a rule says: its matches in evaluation order and its target (None when it has none)."""

    matches: tuple[Match, ...]
    target: Target | None
    # what kptui does not understand in this rule, though the rule loads (message, column, length, scope): an
    # unknown module or option, a host or service name, … — iptables-restore here would refuse the rule. Scope
    # "match": that match's checks are questions themselves; "rule": the rule as a whole is (xt.compile).
    problems: tuple[tuple[str, int, int, str], ...] = field(default=(), compare=False)


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
        from .rules import decode_rule

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
        from .render import render_rule

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
        return sum(t.rule_count for t in self.tables.values())

    @cached_property
    def graph(self) -> Graph:
        """Structural facts (who jumps where, dangling jumps, unreferenced chains, loops), computed once."""
        from .graph import build_graph

        return build_graph(self)

    @cached_property
    def service_index(self) -> ServiceIndex:
        """kube-proxy's service ports (:func:`kptui.engine.kube.build_service_index`), computed once."""
        from .kube.build import build_service_index

        return build_service_index(self)

    @cached_property
    def compiled(self) -> CompiledRuleset:
        """The ruleset prepared for tracing (rules compiled on first use, per-chain prefilters)."""
        from .compiled import CompiledRuleset

        return CompiledRuleset(self)
