"""Structural facts about a ruleset, computed once: which chains each chain jumps to, jumps that go nowhere,
chains nobody references, loops (which the kernel would refuse with ELOOP), and who jumps to a chain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from itertools import compress
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from .model import BUILTIN_CHAINS

if TYPE_CHECKING:
    from .model import Chain, Ruleset

__all__ = ["KNOWN_TARGETS", "VERDICTS", "ChainRef", "Graph", "RuleRef", "build_graph", "graph_of"]

VERDICTS = frozenset({"ACCEPT", "DROP", "RETURN", "QUEUE"})
# Extension targets shipped with iptables (IPv4 and IPv6). A -j name outside this set that is not a chain of
# the same table is a jump to nowhere (iptables-restore would refuse it).
KNOWN_TARGETS = VERDICTS | frozenset(
    {
        "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK", "CT", "DNAT", "DNPT",
        "DSCP", "ECN", "HL", "HMARK", "IDLETIMER", "LED", "LOG", "MARK", "MASQUERADE", "MIRROR", "NETMAP",
        "NFLOG", "NFQUEUE", "NOTRACK", "RATEEST", "REDIRECT", "REJECT", "SAME", "SECMARK", "SET", "SNAT",
        "SNPT", "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL", "ULOG",
    }
)  # fmt: skip


class ChainRef(NamedTuple):
    table: str | None
    chain: str


class RuleRef(NamedTuple):
    table: str | None
    chain: str
    index: int  # type: ignore[assignment]  # 1-based (shadows tuple.index)
    line: int


def _rows(chain: Chain) -> Iterable[tuple[int, int, str | None]]:
    """(index, line, target) per rule, without building Rule objects when the parser's RuleList is there."""
    rows = getattr(chain.rules, "rows", None)
    if rows is not None:
        return ((i, row[0], row[4]) for i, row in enumerate(rows, 1))
    return ((r.index, r.line, r.target_name) for r in chain.rules)


def _targets(chain: Chain) -> set[str]:
    fast = getattr(chain.rules, "target_set", None)
    if fast is not None:
        return fast()  # type: ignore[no-any-return]
    return {r.target_name for r in chain.rules if r.target_name}


class Graph:
    """Built by :func:`build_graph`; ``callers`` (the reverse index) and ``edges`` are built on first use.

    The facts are worked out per table on chain *names* with set operations that run in C (a 700k-line dump
    has 180k chains): no (table, chain) pair is made for a chain that is not in an answer."""

    def __init__(self, ruleset: Ruleset) -> None:
        self._ruleset = ruleset
        dangling: list[tuple[RuleRef, str]] = []
        unreferenced: list[ChainRef] = []
        loops: list[tuple[ChainRef, ...]] = []
        for tname, table in ruleset.tables.items():
            chains = table.chains
            known = chains.__contains__
            builtins = BUILTIN_CHAINS.get(tname or "", ())
            jumps_of: dict[str, set[str]] = {}  # chain → the chains of this table it jumps or goes to
            referenced: set[str] = set()
            for name, chain in chains.items():
                targets = _targets(chain)
                if not targets:
                    continue
                jumps = set(filter(known, targets))  # (not ``targets & chains.keys()``: that walks every key)
                if jumps:
                    jumps_of[name] = jumps
                    referenced |= jumps
                if len(jumps) != len(targets):
                    bad = {t for t in targets if t not in chains and t not in KNOWN_TARGETS}
                    if bad:
                        dangling.extend(
                            (RuleRef(tname, name, i, line), t) for i, line, t in _rows(chain) if t in bad
                        )
            unreferenced.extend(ChainRef(tname, name) for name, chain in chains.items()
                                if name not in referenced and name not in builtins and not chain.builtin)  # fmt: skip
            loops.extend(tuple(ChainRef(tname, c) for c in comp) for comp in _name_cycles(jumps_of))
        self.dangling: tuple[tuple[RuleRef, str], ...] = tuple(dangling)
        self.unreferenced: tuple[ChainRef, ...] = tuple(unreferenced)
        loops.sort()
        self.loops: tuple[tuple[ChainRef, ...], ...] = tuple(loops)

    @cached_property
    def edges(self) -> Mapping[ChainRef, tuple[ChainRef, ...]]:
        """Chain → the chains of its table its rules jump or go to."""
        edges: dict[ChainRef, tuple[ChainRef, ...]] = {}
        for tname, table in self._ruleset.tables.items():
            chains = table.chains
            for name, chain in chains.items():
                jumps = tuple(ChainRef(tname, t) for t in _targets(chain) if t in chains)
                if jumps:
                    edges[ChainRef(tname, name)] = jumps
        return MappingProxyType(edges)

    @cached_property
    def callers(self) -> Mapping[ChainRef, tuple[RuleRef, ...]]:
        """Chain → the rules that jump or go to it, in file order."""
        found: dict[ChainRef, list[RuleRef]] = {}
        for tname, table in self._ruleset.tables.items():
            chains = table.chains
            for chain in chains.values():
                for i, line, t in _rows(chain):
                    if t is not None and t in chains:
                        found.setdefault(ChainRef(tname, t), []).append(RuleRef(tname, chain.name, i, line))
        return MappingProxyType({k: tuple(v) for k, v in found.items()})

    def callers_of(self, table: str | None, chain: str) -> tuple[RuleRef, ...]:
        return self.callers.get(ChainRef(table, chain), ())


def build_graph(ruleset: Ruleset) -> Graph:
    return Graph(ruleset)


def graph_of(ruleset: Ruleset) -> Graph:
    """The structure graph of ``ruleset``, computed once and kept with it (:meth:`Ruleset.derived`)."""
    return ruleset.derived("graph", build_graph)


def _name_cycles(jumps_of: Mapping[str, set[str]]) -> list[tuple[str, ...]]:
    """The loops of one table's jump graph (chain names), each sorted: :func:`_cycles` after peeling off, in
    C, the chains that cannot be on a cycle (those whose jumps all lead to chains that jump nowhere)."""
    live: Mapping[str, set[str]] = jumps_of
    while True:
        kept = dict(compress(live.items(), (any(map(live.__contains__, d)) for d in live.values())))
        if len(kept) == len(live):
            break
        live = kept
    if not live:
        return []
    edges = {ChainRef(None, src): tuple(ChainRef(None, d) for d in dsts) for src, dsts in live.items()}
    return [tuple(ref.chain for ref in comp) for comp in _cycles(edges)]


def _cycles(edges: Mapping[ChainRef, tuple[ChainRef, ...]]) -> tuple[tuple[ChainRef, ...], ...]:
    """Strongly connected components that hold a cycle (Tarjan, iterative: chains can nest deep)."""
    # Peel off chains that cannot be on a cycle (those whose jumps all lead to dead ends) first: in a sane
    # ruleset that is every chain, in a few cheap rounds, and Tarjan runs on nothing.
    live = dict(edges)
    while True:
        kept = {src: dsts for src, dsts in live.items() if any(d in live for d in dsts)}
        if len(kept) == len(live):
            break
        live = kept
    edges = {src: tuple(d for d in dsts if d in live) for src, dsts in live.items()}
    index: dict[ChainRef, int] = {}
    low: dict[ChainRef, int] = {}
    on_stack: set[ChainRef] = set()
    stack: list[ChainRef] = []
    found: list[tuple[ChainRef, ...]] = []
    for root in sorted(edges):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[ChainRef, list[ChainRef]]] = [(root, list(edges[root]))]
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, list(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[ChainRef] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1 or node in edges.get(node, ()):
                    found.append(tuple(ChainRef(*c) for c in sorted(comp)))
    found.sort()
    return tuple(found)
