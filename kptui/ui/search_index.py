"""A search index over a ruleset's rule lines, so the chain tree's filter answers in milliseconds at any size.

Built once per ruleset (in a background thread: :class:`LazySearchIndex`), it holds, in kernel table order:

- every rule line (the parser's own strings, not a copy) in one flat list (a rule's *id* is its position
  there), with the chain of each rule; a query's literal is looked for in SLICE lines at a time joined into
  one string (lower-cased for a needle with letters), so one C call rules out most slices, and only the
  lines holding the literal are checked with the query's full pattern;
- the positive ``-s``/``-d`` networks of every rule and every address token of every rule, each as
  :class:`NetPostings` (networks as integers sorted per IP version, with their rule ids in flat arrays): an
  ``address`` query looks up each prefix length present, a ``network`` query is a range lookup with
  :mod:`bisect`. This part (:class:`Networks`) is most of the build and is built on first use, so a text
  query, the usual first one, never waits for it;
- the chain names and the service name of every ``KUBE-`` chain, for the name part of ``text`` queries.

:func:`filter_indexed` gives exactly what :func:`kptui.ui.search.run_filter` gives (tests/ui/test_search_index.py
compares them on every sample and on random queries). Work is done in slices so that the GIL is never held
for long by one C call: the UI thread stays responsive while a filter runs in a worker.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, repeat
from operator import attrgetter, itemgetter
from typing import TypeVar

from kptui.engine import Ruleset
from kptui.engine.model import TABLE_ORDER

from .locs import rows_of
from .search import ADDR_TOKEN, PORT_SUFFIX, POSITIVE_NET, FilterResult, Query, parse_net

__all__ = ["LazySearchIndex", "SearchIndex", "build_index", "filter_indexed"]

SLICE = 8192  # lines per C call: bounds how long the filter holds the GIL
CHAIN_SLICE = 2048  # chains per step of the build (a few ms of work)
NET_SLICE = 2048  # lines per step of the address part's build (a few ms of work)
_NAME = attrgetter("name")
_RAW = itemgetter(1)  # a row's raw text
_BITS = {4: 32, 6: 128}
ServiceOf = Callable[[str | None, str], str | None]
PACE = 256  # items of Python work (well under a millisecond) between two pauses of a background build
BACKGROUND_PAUSE = 0.005  # seconds: the UI thread's share while a build nobody waits for runs next to it
T = TypeVar("T")
Pause = Callable[[], None]


def _paced(items: Iterable[T], pause: Pause | None) -> Iterable[T]:
    """``items``, calling ``pause`` every PACE of them. A worker thread that never blocks takes half the
    interpreter from the UI thread, and the UI waits up to a switch interval (5 ms) for the GIL after each of
    its own waits: short runs and real sleeps keep a background build to about a tenth of the CPU."""
    if pause is None:
        return items
    return _pacing(items, pause)


def _pacing(items: Iterable[T], pause: Pause) -> Iterator[T]:
    for n, item in enumerate(items, 1):
        if not n % PACE:
            pause()
        yield item


@dataclass(frozen=True)
class NetPostings:
    """One IP version's networks, sorted by (start, prefix length), each with the ids of the rules naming it.

    Flat machine-int arrays (a list of rule ids per network, as Python objects, costs ten times the memory):
    network ``i`` starts at ``starts[i]``, has the prefix ``prefixes[i]`` and its rules are
    ``rules[offsets[i]:offsets[i + 1]]`` (ascending).
    """

    starts: Sequence[int]  # 64-bit machine ints for IPv4; a list for IPv6 (128-bit)
    prefixes: array[int]
    offsets: array[int]
    rules: array[int]
    prefix_set: tuple[int, ...]  # the prefix lengths present

    def exact(self, start: int, prefix: int) -> array[int]:
        """The rules naming exactly the network ``start/prefix``."""
        at = bisect_left(self.starts, start)
        while at < len(self.starts) and self.starts[at] == start:
            if self.prefixes[at] == prefix:
                return self.rules[self.offsets[at]:self.offsets[at + 1]]
            at += 1
        return self.rules[:0]

    def inside(self, first: int, last: int, prefix: int) -> Iterator[int]:
        """The rules naming a network that starts in ``first``..``last`` and whose prefix is at least ``prefix``
        (so a network inside that range), in C: no Python loop over the networks."""
        lo, hi = bisect_left(self.starts, first), bisect_right(self.starts, last)
        offs = self.offsets
        runs = compress(map(slice, offs[lo:hi], offs[lo + 1:hi + 1]),
                        map(int.__ge__, self.prefixes[lo:hi], repeat(prefix)))  # fmt: skip
        return chain.from_iterable(map(self.rules.__getitem__, runs))


@dataclass(frozen=True)
class SearchIndex:
    tables: list[str | None]  # kernel order
    chain_table: list[int]  # chain id → position in ``tables``
    chain_names: list[str]
    chain_services: list[str]  # "" for none
    table_first: list[int]  # table position → id of its first chain (and the chain count, last)
    names_folded: str  # the chain names, lower-cased, joined by "\n" (one string: 55k small ones cost 3x)
    services_folded: str  # the same for the service names
    rule_chain: array[int]  # rule id → chain id (machine ints: a list of int objects costs 5x the memory)
    rule_local: array[int]  # rule id → 1-based index in its chain
    raws: list[str]  # the parser's own line strings (shared, not copied)
    ascii: bool  # every line is ASCII: lower-case equality is exactly re.IGNORECASE
    names_ascii: bool  # the same for chain and service names
    nets: Networks  # the address part, built when an address or network query first needs it

    @property
    def rule_count(self) -> int:
        return len(self.raws)

    @property
    def positive(self) -> dict[int, NetPostings]:
        """Version → the positive ``-s``/``-d`` networks (not /0)."""
        return self.nets.get()[0]

    @property
    def tokens(self) -> dict[int, NetPostings]:
        """Version → every address token."""
        return self.nets.get()[1]


class Networks:
    """The address part of an index (most of its build time: every address of every rule, parsed), built on
    first use, once (any thread): a text query, the common first one, never waits for it."""

    def __init__(self, raws: list[str], pause: Pause | None = None) -> None:
        self._raws = raws
        self.pause = pause  # while nobody waits: a background build gives way to the UI
        self._lock = threading.Lock()
        self._built: tuple[dict[int, NetPostings], dict[int, NetPostings]] | None = None

    @property
    def ready(self) -> bool:
        return self._built is not None

    def get(self) -> tuple[dict[int, NetPostings], dict[int, NetPostings]]:
        with self._lock:
            if self._built is None:
                raws, pause = self._raws, self.pause
                # seconds of small acyclic objects: the cyclic collector would walk them again and again
                gc_was_enabled = gc.isenabled()
                gc.disable()
                try:
                    self._built = (_postings(raws, POSITIVE_NET.findall, pause, positive=True),
                                   _postings(raws, ADDR_TOKEN.findall, pause))  # fmt: skip
                finally:
                    if gc_was_enabled:
                        gc.enable()
            return self._built


def build_index(ruleset: Ruleset, service_of: ServiceOf, pause: Pause | None = None,
                nets_pause: Pause | None = None) -> SearchIndex:  # fmt: skip
    """The index of ``ruleset``; ``pause`` is called every PACE items of work (a background build), and
    ``nets_pause`` likewise by the address part (:class:`Networks`, built on first use)."""
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
        chains = list(table)
        for at in range(0, len(chains), CHAIN_SLICE):  # slices: a background build gives way between them
            if pause is not None and at:
                pause()
            part = chains[at : at + CHAIN_SLICE]
            first = len(names)
            part_names = list(map(_NAME, part))
            rowlists = list(map(rows_of, part))
            lens = list(map(len, rowlists))
            chain_table.extend(repeat(ti, len(part)))
            names.extend(part_names)
            services.extend([(service_of(tname, n) or "") if n.startswith("KUBE-") else "" for n in part_names])
            raws.extend(map(_RAW, chain.from_iterable(rowlists)))
            rule_chain.extend(chain.from_iterable(map(repeat, range(first, first + len(part)), lens)))
            rule_local.extend(chain.from_iterable(map(range, repeat(1), map((1).__add__, lens))))
    table_first.append(len(names))
    return SearchIndex(
        tables=[t for t, _ in tables], chain_table=chain_table, chain_names=names, chain_services=services,
        table_first=table_first, names_folded="\n".join(names).lower(),
        services_folded="\n".join(services).lower(), rule_chain=rule_chain, rule_local=rule_local, raws=raws,
        ascii=all(map(str.isascii, raws)), names_ascii=all(map(str.isascii, names)) and all(map(str.isascii, services)),
        nets=Networks(raws, nets_pause))


def _postings(raws: list[str], find: Callable[[str], list[str]], pause: Pause | None,
              positive: bool = False) -> dict[int, NetPostings]:  # fmt: skip
    """Every network ``find`` picks out of the lines, with the rules naming it (``positive``: not /0).

    Built with a counting sort over machine-int arrays, so no per-network Python list ever exists: the
    transient memory is one entry per distinct network text, not per occurrence."""
    text_ids: dict[str, int] = {}  # network text → id, in order of first appearance
    occ_text: array[int] = array("i")
    occ_rule: array[int] = array("i")
    for at in range(0, len(raws), NET_SLICE):  # in C, a slice of lines at a time (a background build pauses between)
        if pause is not None and at:
            pause()
        found = list(map(find, raws[at : at + NET_SLICE]))
        flat = list(chain.from_iterable(found))
        new = [t for t in dict.fromkeys(flat) if t not in text_ids]
        text_ids.update(zip(new, range(len(text_ids), len(text_ids) + len(new))))
        occ_text.extend(map(text_ids.__getitem__, flat))
        occ_rule.extend(chain.from_iterable(map(repeat, range(at, at + len(found)), map(len, found))))
    nets = [n if n is None or not positive or n[2] else None for n in _paced(map(_int_net, text_ids), pause)]
    del text_ids
    keys = sorted({n for n in nets if n is not None})
    position = {k: i for i, k in enumerate(keys)}
    text_pos = array("i", [-1 if n is None else position[n] for n in nets])
    del position, nets
    # Rule ids arrive in ascending order, so each network's rules come out sorted and a rule naming one
    # network twice (``10.0.0.1`` and ``10.0.0.1/32``) is the last one placed there: counted once.
    counts = array("i", [0]) * (len(keys) + 1)
    last = array("i", [-1]) * len(keys)
    for tid, rid in _paced(zip(occ_text, occ_rule, strict=True), pause):
        at = text_pos[tid]
        if at >= 0 and last[at] != rid:
            last[at] = rid
            counts[at + 1] += 1
    offsets = array("i", accumulate(counts))
    del counts
    rules = array("i", [0]) * offsets[-1]
    cursor = offsets[:-1]
    last = array("i", [-1]) * len(keys)
    for tid, rid in _paced(zip(occ_text, occ_rule, strict=True), pause):
        at = text_pos[tid]
        if at >= 0 and last[at] != rid:
            last[at] = rid
            rules[cursor[at]] = rid
            cursor[at] += 1
    out: dict[int, NetPostings] = {}
    for version in (4, 6):
        lo, hi = bisect_left(keys, (version,)), bisect_left(keys, (version + 1,))
        if hi > lo:
            starts: Sequence[int] = [k[1] for k in keys[lo:hi]]
            prefixes = array("B", (k[2] for k in keys[lo:hi]))
            out[version] = NetPostings(array("Q", starts) if version == 4 else starts, prefixes,
                                       offsets[lo:hi + 1], rules, tuple(sorted(set(prefixes))))  # fmt: skip
    return out


_V4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,3}))?", re.ASCII)


def _int_net(text: str) -> tuple[int, int, int] | None:
    """(version, masked network, prefix) as :func:`kptui.ui.search.token_net` reads ``text`` (an IPv4 address
    with a port, a DNAT target, is the address); a dotted quad is read here directly (ten times faster than
    :mod:`ipaddress`, which it agrees with: a test checks)."""
    port = PORT_SUFFIX.fullmatch(text)
    if port is not None:
        text = port.group(1)
    m = _V4.fullmatch(text)
    if m is not None:
        octets = m.group(1, 2, 3, 4)
        if all(o == "0" or (o[0] != "0" and int(o) <= 255) for o in octets):
            prefix = 32 if m.group(5) is None else int(m.group(5))
            if prefix > 32:
                return None
            value = int.from_bytes(bytes(map(int, octets)), "big")
            return 4, value >> (32 - prefix) << (32 - prefix), prefix
    elif "." in text and ":" in text and "." not in text.rpartition(":")[2]:
        return None  # not an address (``1.2.3.4:``): a dotted quad ends an IPv6 address
    net = parse_net(text)
    return None if net is None else (net.version, int(net.network_address), net.prefixlen)


def _literal_hits(index: SearchIndex, query: Query, cancelled: Callable[[], bool]) -> list[int] | None:
    """Rule ids whose line matches the query's pattern, in order; None when cancelled.

    The lines are joined SLICE at a time for one ``in`` per slice (lower-cased when the needle has letters):
    a fresh slice per query rather than a stored copy of every line, which would cost 20+ MB at 160k rules."""
    needle, search, raws = query.literal, query.pattern.search, index.raws
    folded = query.kind != "port" and index.ascii and needle.isascii()
    if folded:
        needle = needle.lower()
    exact = folded and query.kind == "text"  # the literal with IGNORECASE *is* the pattern
    usable = (folded or query.kind == "port") and needle and "\n" not in needle
    lower = folded and needle != needle.upper()  # no letter in the needle: the original text answers the same
    hits: list[int] = []
    for at in range(0, len(raws), SLICE):
        if cancelled():
            return None
        end = min(at + SLICE, len(raws))
        if not usable:  # a non-ASCII dump or query: the pattern itself on every line
            hits += compress(range(at, end), map(search, raws[at:end]))
            continue
        hay = "\n".join(raws[at:end])
        if lower:
            hay = hay.lower()
        if needle in hay:  # one C call rules out a slice: most slices, for a rare query
            cands = list(compress(range(at, end), map(str.__contains__, hay.split("\n"), repeat(needle))))
            hits += cands if exact else compress(cands, map(search, map(raws.__getitem__, cands)))
    return hits


def _address_hits(index: SearchIndex, query: Query) -> set[int]:
    """Rules whose positive network contains the address."""
    assert query.network is not None
    version, value = query.network.version, int(query.network.network_address)
    bits = _BITS[version]
    found: set[int] = set()
    nets = index.positive.get(version)
    if nets is not None:
        for prefix in nets.prefix_set:
            found.update(nets.exact(value >> (bits - prefix) << (bits - prefix), prefix))
    return found


def _network_hits(index: SearchIndex, query: Query) -> set[int]:
    """Rules naming a network or an address inside the query's network."""
    assert query.network is not None
    net = query.network
    toks = index.tokens.get(net.version)
    if toks is None:
        return set()
    return set(toks.inside(int(net.network_address), int(net.broadcast_address), net.prefixlen))


def _named_chains(index: SearchIndex, query: Query) -> list[int]:
    """Chains whose name or service name holds a text query."""
    ids = range(len(index.chain_names))
    needle = query.literal.lower()
    if index.names_ascii and needle.isascii() and "\n" not in needle:
        found: set[int] = set()
        for hay in (index.names_folded, index.services_folded):
            if needle in hay:
                found.update(compress(ids, map(str.__contains__, hay.split("\n"), repeat(needle))))
        return sorted(found)
    search = query.pattern.search
    return sorted({*compress(ids, map(search, index.chain_names)), *compress(ids, map(search, index.chain_services))})


def filter_indexed(index: SearchIndex, query: Query, cancelled: Callable[[], bool] = lambda: False,
                   wanted: Callable[[SearchIndex], None] = lambda index: None) -> FilterResult:  # fmt: skip
    """The same answer as :func:`kptui.ui.search.run_filter`, from the index (``wanted``: told before an
    address or network query waits for the index's address part)."""
    out = FilterResult(query)
    literal = _literal_hits(index, query, cancelled)
    if literal is None:
        return out
    if query.kind in ("address", "network"):
        wanted(index)
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
    """The index of one ruleset, built on first use (any thread; callers wait for one build).

    A build started ahead of need (``get(background=True)``) gives way to the UI thread (see :func:`_paced`)
    until someone waits for it: then it runs at full speed."""

    def __init__(self, ruleset: Ruleset, service_of: ServiceOf) -> None:
        self.ruleset = ruleset
        self.service_of = service_of
        self._lock = threading.Lock()
        self._index: SearchIndex | None = None
        self._wanted = threading.Event()  # someone waits for the index
        self._nets_wanted = threading.Event()  # someone waits for its address part

    @property
    def ready(self) -> bool:
        return self._index is not None

    @property
    def nets_ready(self) -> bool:
        return self._index is not None and self._index.nets.ready

    def _pause(self) -> None:
        if not self._wanted.is_set():
            time.sleep(BACKGROUND_PAUSE)

    def _nets_pause(self) -> None:
        if not self._nets_wanted.is_set():
            time.sleep(BACKGROUND_PAUSE)

    def want_nets(self) -> None:
        """An address or network query waits for the address part: a build under way stops giving way."""
        self._nets_wanted.set()

    def hurry(self) -> None:
        """Someone is about to need the index (the filter opened): a build under way stops giving way."""
        self._wanted.set()

    def prepare(self) -> None:
        """Build the text part now, at full speed (under a second at 500k rules), if nobody has; the address
        part waits for its first use or for the background build of :meth:`get`."""
        with self._lock:
            if self._index is None:
                self._index = build_index(self.ruleset, self.service_of, nets_pause=self._nets_pause)

    def get(self, *, background: bool = False) -> SearchIndex:
        if not background:
            self._wanted.set()
        with self._lock:
            if self._index is None:
                self._index = build_index(self.ruleset, self.service_of, pause=self._pause,
                                          nets_pause=self._nets_pause)  # fmt: skip
            return self._index
