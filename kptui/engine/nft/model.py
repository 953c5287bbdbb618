"""The nft ruleset model: ``NftRuleset → NftTable → NftChain → NftRule``, plus sets and maps, all frozen.

Both listing forms give the same model: ``nft list ruleset`` (with or without ``-a``, ``-n``/``-nn``) and
``nft -j list ruleset``. What only one form can show is kept but left out of equality (``compare=False``):
source lines, handles (only ``-a`` and JSON list them), the rule text as printed (``-nn`` prints numbers), the
priority as printed, an element's ``expires`` (it counts down between two listings), ``auto-merge``, ``typeof``
table and chain comments and a base chain's devices (nft 1.0.6's JSON form does not carry them). Everything else compares equal for
the same kernel state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from .exprs import Stmt, Value

if TYPE_CHECKING:
    from ..errors import Diagnostic

__all__ = ["FAMILIES", "HOOKS", "NftChain", "NftElement", "NftObject", "NftRule", "NftRuleset", "NftSet",
           "NftTable"]  # fmt: skip

T = TypeVar("T")
FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
HOOKS = ("prerouting", "input", "forward", "output", "postrouting", "ingress", "egress")
CHAIN_TYPES = ("filter", "nat", "route")  # nft(8): the base chain types


@dataclass(frozen=True, slots=True)
class NftRule:
    """One rule. ``text`` is the rule as ``nft list ruleset`` prints it (stripped, without ``# handle N``;
    rebuilt from the statements for JSON input), ``exprs`` its statements in order."""

    family: str
    table: str
    chain: str
    index: int  # 1-based position in its chain
    exprs: tuple[Stmt, ...]
    comment: str | None = None
    counter: tuple[int, int] | None = None  # (packets, bytes) of the rule's counter statement
    handle: int | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)
    text: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class NftChain:
    """A chain. A base chain has ``type``/``hook``/``priority``; a regular chain has them None."""

    name: str
    family: str
    table: str
    rules: tuple[NftRule, ...] = ()
    type: str | None = None  # filter, nat, route
    hook: str | None = None
    priority: int | None = None  # resolved: ``dstnat - 10`` → -110
    policy: str | None = None  # accept / drop for a base chain (accept when not listed)
    devices: tuple[str, ...] = field(default=(), compare=False)  # nft 1.0.6's JSON omits devices and comments
    comment: str | None = field(default=None, compare=False)
    flags: tuple[str, ...] = ()
    handle: int | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)
    priority_text: str | None = field(default=None, compare=False)  # as listed: ``dstnat - 10``

    @property
    def is_base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True, slots=True)
class NftElement:
    """One element of a set or map. ``key`` has one value per component of the set's type (a concatenation
    ``10.0.0.1 . tcp . 80`` is three); an interval set's component may be a Prefix or a Range. ``value`` is the
    map's data for the key (a Verdict for a verdict map), None for a set."""

    key: tuple[Value, ...]
    value: Value | None = None
    comment: str | None = None
    timeout: float | None = None  # seconds
    counter: tuple[int, int] | None = None
    expires: float | None = field(default=None, compare=False)  # seconds left when listed


@dataclass(frozen=True, slots=True)
class NftSet:
    """A named set (``kind`` "set") or map (``kind`` "map"). ``key_type`` is a tuple of type names (several
    for a concatenation), ``data_type`` a map's: ``("verdict",)`` or a type tuple."""

    name: str
    family: str
    table: str
    kind: str
    key_type: tuple[str, ...]
    data_type: tuple[str, ...] | None = None
    flags: tuple[str, ...] = ()
    timeout: float | None = None  # seconds
    gc_interval: float | None = None
    size: int | None = None
    policy: str | None = None
    comment: str | None = None
    elements: tuple[NftElement, ...] = ()
    stmts: tuple[str, ...] = ()  # per-element statements the set declares (``counter``)
    handle: int | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)
    typeof: str | None = field(default=None, compare=False)  # ``typeof ip saddr . tcp dport`` when listed so
    auto_merge: bool = field(default=False, compare=False)

    @property
    def is_map(self) -> bool:
        return self.kind == "map"

    @property
    def is_verdict_map(self) -> bool:
        return self.data_type == ("verdict",)


@dataclass(frozen=True, slots=True)
class NftObject:
    """A stateful object of a table (counter, quota, limit, ct helper, ct timeout, flowtable, …): kind and name
    only; kptui does not evaluate them."""

    kind: str
    name: str
    handle: int | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class NftTable:
    family: str
    name: str
    chains: Mapping[str, NftChain] = field(default_factory=lambda: MappingProxyType({}))  # listing order
    sets: Mapping[str, NftSet] = field(default_factory=lambda: MappingProxyType({}))  # sets and maps
    objects: tuple[NftObject, ...] = ()
    flags: tuple[str, ...] = ()
    comment: str | None = field(default=None, compare=False)  # nft 1.0.6's JSON omits table comments
    iptables_nft: bool = False  # managed by iptables-nft (a Warning line says so, or a rule has xt expressions)
    handle: int | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "chains", MappingProxyType(dict(self.chains)))
        object.__setattr__(self, "sets", MappingProxyType(dict(self.sets)))

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains.values())

    def base_chains(self) -> tuple[NftChain, ...]:
        return tuple(c for c in self.chains.values() if c.is_base)


@dataclass(frozen=True)
class NftRuleset:
    """Everything one listing holds, tables in listing order."""

    tables: tuple[NftTable, ...] = ()
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)
    source: str | None = field(default=None, compare=False)
    line_count: int = field(default=0, compare=False)
    form: str = field(default="text", compare=False)  # "text" or "json"
    nft_version: str | None = field(default=None, compare=False)  # JSON metainfo's version, when given
    _derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {(t.family, t.name): t for t in self.tables}
        object.__setattr__(self, "_index", MappingProxyType(index))

    def derived(self, key: str, build: Callable[[NftRuleset], T]) -> T:
        """A value computed from this ruleset once, by ``build``, and kept with it (kube-proxy's service index
        of the listing, :func:`kptui.engine.kube.nft_build.nft_service_index_of`), as :meth:`Ruleset.derived`."""
        cache = self._derived
        if key not in cache:
            cache[key] = build(self)
        return cache[key]  # type: ignore[return-value]

    def table(self, family: str, name: str) -> NftTable | None:
        found: NftTable | None = self._index.get((family, name))  # type: ignore[attr-defined]
        return found

    def chain(self, family: str, table: str, name: str) -> NftChain | None:
        t = self.table(family, table)
        return t.chains.get(name) if t is not None else None

    def base_chains(self) -> tuple[NftChain, ...]:
        """Every base chain, in listing order (the walker orders them by hook and priority)."""
        return tuple(c for t in self.tables for c in t.base_chains())

    def rules(self) -> Iterator[NftRule]:
        for t in self.tables:
            for c in t.chains.values():
                yield from c.rules

    @property
    def rule_count(self) -> int:
        return sum(t.rule_count for t in self.tables)
