"""Structural facts about a ruleset, computed once: which chains each chain jumps to, jumps that go nowhere,
chains nobody references, loops (which the kernel would refuse with ELOOP), and who jumps to a chain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from itertools import chain as chain_from
from itertools import compress, filterfalse, repeat
from operator import itemgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from .callers import Callers, RuleRef
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


_TARGET = itemgetter(4)  # a parser row's target name


class ChainRef(NamedTuple):
    table: str | None
    chain: str


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


def _live_jumps(chains: Mapping[str, Chain]) -> dict[str, set[str]]:
    """Chain → the chains it jumps or goes to, for the chains of one table that may be on a loop: those with a
    jump to a chain that itself jumps to such a chain (in a sane ruleset: none). Worked out on flat lists of
    (chain, target) pairs, all in C, a round per level of nesting; only what is left becomes sets."""
    names: list[str] = []
    rowlists: list[Sequence[tuple[object, ...]]] = []
    src: list[str] = []
    dst: list[str] = []
    for name, chain in chains.items():
        rows = getattr(chain.rules, "rows", None)
        if rows is None:  # not the parser's rules (an nft view, a test's): their targets, one by one
            targets = _targets(chain)
            src += [name] * len(targets)
            dst += targets
        elif rows:
            names.append(name)
            rowlists.append(rows)
    src += chain_from.from_iterable(map(repeat, names, map(len, rowlists)))
    dst += map(_TARGET, chain_from.from_iterable(rowlists))
    keep = list(map(set(chains).__contains__, dst))  # a jump to a chain of this table (a set: faster than the mapping)
    while True:
        src, dst = list(compress(src, keep)), list(compress(dst, keep))
        jumping = set(src)
        keep = list(map(jumping.__contains__, dst))  # to a chain that still jumps somewhere
        if all(keep):
            break
    jumps_of: dict[str, set[str]] = {}
    for a, b in zip(src, dst):
        jumps_of.setdefault(a, set()).add(b)
    return jumps_of


def _all_targets(chains: Iterable[Chain]) -> set[str]:
    """The distinct target names of all the rules of ``chains`` (for the parser's rows: one pass in C)."""
    rows: list[Sequence[tuple[object, ...]]] = []
    names: set[str] = set()
    for chain in chains:
        fast = getattr(chain.rules, "rows", None)
        if fast is not None:
            rows.append(fast)
        else:
            names |= _targets(chain)
    names.update(map(_TARGET, chain_from.from_iterable(rows)))
    names.discard(None)
    return names


class Graph:
    """Built by :func:`build_graph`; ``unreferenced``, ``loops``, ``callers`` (the reverse index) and ``edges``
    are worked out on first use: a parse needs only ``dangling`` (its warnings), and the first screen none.

    The facts are worked out per table on chain *names* with set operations that run in C (a 700k-line dump
    has 180k chains): no (table, chain) pair is made for a chain that is not in an answer."""

    def __init__(self, ruleset: Ruleset) -> None:
        self._ruleset = ruleset
        dangling: list[tuple[RuleRef, str]] = []
        for tname, table in ruleset.tables.items():
            chains = table.chains
            targets = _all_targets(chains.values())  # (not kept: 8 MB on a big dump, for unreferenced only)
            bad = {t for t in targets - KNOWN_TARGETS if t not in chains}  # few names: the built-in targets go first
            if not bad:
                continue
            for name, chain in chains.items():
                if not bad.isdisjoint(_targets(chain)):
                    dangling.extend((RuleRef(tname, name, i, line), t) for i, line, t in _rows(chain) if t in bad)
        self.dangling: tuple[tuple[RuleRef, str], ...] = tuple(dangling)

    @cached_property
    def unreferenced(self) -> tuple[ChainRef, ...]:
        """The user chains no rule of their table jumps or goes to, in file order."""
        out: list[ChainRef] = []
        for tname, table in self._ruleset.tables.items():
            chains = table.chains
            skip = _all_targets(chains.values()) | set(BUILTIN_CHAINS.get(tname or "", ()))
            out.extend(ChainRef(tname, name) for name in filterfalse(skip.__contains__, chains)
                       if not chains[name].builtin)  # fmt: skip
        return tuple(out)

    @cached_property
    def loops(self) -> tuple[tuple[ChainRef, ...], ...]:
        """The loops (strongly connected components holding a cycle), each sorted, in order."""
        loops: list[tuple[ChainRef, ...]] = []
        for tname, table in self._ruleset.tables.items():
            jumps_of = _live_jumps(table.chains)
            loops.extend(tuple(ChainRef(tname, c) for c in comp) for comp in _name_cycles(jumps_of))
        loops.sort()
        return tuple(loops)

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
    def callers(self) -> Callers:
        """Chain → the rules that jump or go to it, in file order (:meth:`callers_of`); flat arrays, built once."""
        return Callers(self._ruleset)

    def callers_of(self, table: str | None, chain: str) -> tuple[RuleRef, ...]:
        return self.callers.of(table, chain)


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
