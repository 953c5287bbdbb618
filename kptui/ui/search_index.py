"""A search index over a ruleset's rule lines, so the chain tree's filter answers in milliseconds at any size.

Built once per ruleset (in a background thread: :class:`LazySearchIndex`), it holds, in kernel table order:

- every rule line, raw and lower-cased, in one flat list (a rule's *id* is its position there), with the
  chain of each rule; a query's literal is looked for with ``str.__contains__`` mapped over the lines (C
  speed, no regex), and only the lines holding it are checked with the query's full pattern;
- the positive ``-s``/``-d`` networks of every rule as integers keyed by (version, prefix length, masked
  network), for the ``address`` kind (an address inside a rule's network);
- every address token of every rule as an integer network, sorted per IP version, for the ``network`` kind
  (a range lookup with :mod:`bisect`);
- the chain names and the service name of every ``KUBE-`` chain, for the name part of ``text`` queries.

:func:`filter_indexed` gives exactly what :func:`kptui.ui.search.run_filter` gives (tests/ui/test_search_index.py
compares them on every sample and on random queries). Work is done in slices so that the GIL is never held
for long by one C call: the UI thread stays responsive while a filter runs in a worker.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, compress, repeat

from kptui.engine import Ruleset
from kptui.engine.model import TABLE_ORDER

from .locs import rows_of
from .search import ADDR_TOKEN, POSITIVE_NET, FilterResult, Query, parse_net

__all__ = ["LazySearchIndex", "SearchIndex", "build_index", "filter_indexed"]

SLICE = 8192  # lines per C call: bounds how long the filter holds the GIL
_BITS = {4: 32, 6: 128}
ServiceOf = Callable[[str | None, str], str | None]


@dataclass(frozen=True)
class TokenNets:
    """One IP version's address tokens: sorted network integers, their prefix lengths and rule ids."""

    starts: list[int]
    prefixes: list[int]
    rules: list[tuple[int, ...]]


@dataclass(frozen=True)
class SearchIndex:
    tables: list[str | None]  # kernel order
    chain_table: list[int]  # chain id → position in ``tables``
    chain_names: list[str]
    chain_services: list[str]  # "" for none
    table_first: list[int]  # table position → id of its first chain (and the chain count, last)
    names_folded: list[str]  # chain names and service names, lower-cased
    services_folded: list[str]
    rule_chain: array[int]  # rule id → chain id (machine ints: a list of int objects costs 5x the memory)
    rule_local: array[int]  # rule id → 1-based index in its chain
    raws: list[str]
    haystacks: list[str]  # SLICE lines at a time, joined by "\n" (empty for an ASCII dump: ``folded`` serves)
    folded: list[str]  # the same, lower-cased
    ascii: bool  # every line is ASCII: lower-case equality is exactly re.IGNORECASE
    names_ascii: bool  # the same for chain and service names
    positive: dict[tuple[int, int], dict[int, tuple[int, ...]]]  # (version, prefix) → masked net → rules
    tokens: dict[int, TokenNets]  # version → address tokens

    @property
    def rule_count(self) -> int:
        return len(self.raws)


def build_index(ruleset: Ruleset, service_of: ServiceOf) -> SearchIndex:
    order = {t: i for i, t in enumerate(TABLE_ORDER)}
    tables = sorted(ruleset.tables.items(), key=lambda kv: order.get(kv[0] or "", len(order)))
    chain_table: list[int] = []
    names: list[str] = []
    services: list[str] = []
    table_first: list[int] = []
    rule_chain: array[int] = array("i")
    rule_local: array[int] = array("i")
    raws: list[str] = []
    for ti, (tname, table) in enumerate(tables):
        table_first.append(len(names))
        for ch in table:
            cid = len(names)
            chain_table.append(ti)
            names.append(ch.name)
            services.append((service_of(tname, ch.name) or "") if ch.name.startswith("KUBE-") else "")
            rows = rows_of(ch)
            raws.extend(row[1] for row in rows)
            rule_chain.extend(repeat(cid, len(rows)))
            rule_local.extend(range(1, len(rows) + 1))
    table_first.append(len(names))
    # Slice by slice, so the original text and its lower-cased copy never coexist whole (20+ MB at 160k rules).
    # An ASCII dump keeps only the folded copy: lower-casing changes no digit, so port queries read it too.
    folded: list[str] = []
    ascii_only = True
    for at in range(0, len(raws), SLICE):
        hay = "\n".join(raws[at:at + SLICE])
        ascii_only = ascii_only and hay.isascii()
        folded.append(hay.lower())
    haystacks: list[str] = []
    if not ascii_only:  # a non-ASCII line somewhere: port queries need the original text of every slice
        haystacks = ["\n".join(raws[at:at + SLICE]) for at in range(0, len(raws), SLICE)]
    return SearchIndex(
        tables=[t for t, _ in tables], chain_table=chain_table, chain_names=names, chain_services=services,
        table_first=table_first, names_folded=[n.lower() for n in names],
        services_folded=[n.lower() for n in services], rule_chain=rule_chain, rule_local=rule_local, raws=raws, haystacks=haystacks,
        folded=folded, ascii=ascii_only,
        names_ascii=all(map(str.isascii, names)) and all(map(str.isascii, services)), positive=_positive_nets(raws), tokens=_token_nets(raws))


def _positive_nets(raws: list[str]) -> dict[tuple[int, int], dict[int, tuple[int, ...]]]:
    found: dict[tuple[int, int], dict[int, list[int]]] = {}
    cache: dict[str, tuple[int, int, int] | None] = {}
    for rid, texts in enumerate(map(POSITIVE_NET.findall, raws)):
        for text in texts:
            key = cache[text] if text in cache else cache.setdefault(text, _int_net(text))
            if key is None or key[2] == 0:
                continue
            version, start, prefix = key
            bucket = found.setdefault((version, prefix), {}).setdefault(start >> (_BITS[version] - prefix), [])
            if not bucket or bucket[-1] != rid:
                bucket.append(rid)
    return {k: {n: tuple(rs) for n, rs in v.items()} for k, v in found.items()}


def _token_nets(raws: list[str]) -> dict[int, TokenNets]:
    by_net: dict[tuple[int, int, int], list[int]] = {}
    cache: dict[str, tuple[int, int, int] | None] = {}
    for rid, toks in enumerate(map(ADDR_TOKEN.findall, raws)):
        for tok in toks:
            key = cache[tok] if tok in cache else cache.setdefault(tok, _int_net(tok))
            if key is not None:
                rules = by_net.setdefault(key, [])
                if not rules or rules[-1] != rid:
                    rules.append(rid)
    out: dict[int, TokenNets] = {}
    for version in (4, 6):
        keys = sorted(k for k in by_net if k[0] == version)
        if keys:
            out[version] = TokenNets([k[1] for k in keys], [k[2] for k in keys], [tuple(by_net[k]) for k in keys])
    return out


def _int_net(text: str) -> tuple[int, int, int] | None:
    net = parse_net(text)
    return None if net is None else (net.version, int(net.network_address), net.prefixlen)


def _literal_hits(index: SearchIndex, query: Query, cancelled: Callable[[], bool]) -> list[int] | None:
    """Rule ids whose line matches the query's pattern, in order; None when cancelled."""
    needle, search, raws = query.literal, query.pattern.search, index.raws
    folded = query.kind != "port" and index.ascii and needle.isascii()
    if folded:
        needle = needle.lower()
    exact = folded and query.kind == "text"  # the literal with IGNORECASE *is* the pattern
    usable = (folded or query.kind == "port") and needle and "\n" not in needle
    hits: list[int] = []
    ascii_port = query.kind == "port" and index.ascii  # digits: the folded copy holds them unchanged
    hays = index.folded if folded or ascii_port else index.haystacks
    for at, hay in zip(range(0, len(raws), SLICE), hays, strict=True):
        if cancelled():
            return None
        end = min(at + SLICE, len(raws))
        if not usable:  # a non-ASCII dump or query: the pattern itself on every line
            hits += compress(range(at, end), map(search, raws[at:end]))
        elif needle in hay:  # one C call rules out a slice: most slices, for a rare query
            cands = list(compress(range(at, end), map(str.__contains__, hay.split("\n"), repeat(needle))))
            hits += cands if exact else compress(cands, map(search, map(raws.__getitem__, cands)))
    return hits


def _address_hits(index: SearchIndex, query: Query) -> set[int]:
    assert query.network is not None
    version, value = query.network.version, int(query.network.network_address)
    bits = _BITS[version]
    found: set[int] = set()
    for (v, prefix), nets in index.positive.items():
        if v == version:
            found.update(nets.get(value >> (bits - prefix), ()))
    return found


def _network_hits(index: SearchIndex, query: Query) -> set[int]:
    assert query.network is not None
    net = query.network
    toks = index.tokens.get(net.version)
    found: set[int] = set()
    if toks is None:
        return found
    lo = bisect_left(toks.starts, int(net.network_address))
    hi = bisect_right(toks.starts, int(net.broadcast_address))
    inside = compress(toks.rules[lo:hi], map(int.__ge__, toks.prefixes[lo:hi], repeat(net.prefixlen)))
    found.update(chain.from_iterable(inside))
    return found


def _named_chains(index: SearchIndex, query: Query) -> list[int]:
    """Chains whose name or service name holds a text query."""
    ids = range(len(index.chain_names))
    needle = query.literal.lower()
    if index.names_ascii and needle.isascii():
        return sorted({*compress(ids, map(str.__contains__, index.names_folded, repeat(needle))),
                       *compress(ids, map(str.__contains__, index.services_folded, repeat(needle)))})
    search = query.pattern.search
    return sorted({*compress(ids, map(search, index.chain_names)), *compress(ids, map(search, index.chain_services))})


def filter_indexed(index: SearchIndex, query: Query, cancelled: Callable[[], bool] = lambda: False) -> FilterResult:
    """The same answer as :func:`kptui.ui.search.run_filter`, from the index."""
    out = FilterResult(query)
    literal = _literal_hits(index, query, cancelled)
    if literal is None:
        return out
    if query.kind == "address":
        extra = _address_hits(index, query)
    elif query.kind == "network":
        extra = _network_hits(index, query)
    else:
        extra = set()
    hits = sorted(extra.union(literal)) if extra else literal
    named = _named_chains(index, query) if query.kind == "text" else set()
    if cancelled():
        return out
    cids = list(map(index.rule_chain.__getitem__, hits))
    local = list(map(index.rule_local.__getitem__, hits))
    # runs of one chain in ``cids`` (sorted): where each starts, found in C rather than rule by rule
    starts = list(compress(range(len(cids)), map(int.__ne__, cids, [-1, *cids[:-1]])))
    runs = map(local.__getitem__, map(slice, starts, [*starts[1:], len(cids)]))
    names = index.chain_names
    entries: dict[int, tuple[str, tuple[int, ...] | None]] = dict(
        zip(map(cids.__getitem__, starts), zip(map(names.__getitem__, map(cids.__getitem__, starts)),
                                                map(tuple, runs), strict=True), strict=True))  # fmt: skip
    entries.update(zip(named, zip(map(names.__getitem__, named), repeat(None)), strict=True))
    order = sorted(entries)
    for pos, tname in enumerate(index.tables):
        lo = bisect_left(order, index.table_first[pos])
        hi = bisect_left(order, index.table_first[pos + 1])
        if hi > lo:
            out.tables[tname] = list(map(entries.__getitem__, order[lo:hi]))
    out.chains = len(order)
    out.rules = len(hits)
    return out


class LazySearchIndex:
    """The index of one ruleset, built on first use (any thread; callers wait for one build)."""

    def __init__(self, ruleset: Ruleset, service_of: ServiceOf) -> None:
        self.ruleset = ruleset
        self.service_of = service_of
        self._lock = threading.Lock()
        self._index: SearchIndex | None = None

    @property
    def ready(self) -> bool:
        return self._index is not None

    def get(self) -> SearchIndex:
        with self._lock:
            if self._index is None:
                self._index = build_index(self.ruleset, self.service_of)
            return self._index
