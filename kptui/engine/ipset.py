"""ipsets as the kernel tests them: the sets of a node (``ipset save`` / ``ipset list``, parsed by
:mod:`kptui.engine.ipset_parse`) and membership of a packet under ``-m set --match-set NAME FLAGS``
(:func:`kptui.engine.ipset_match.test_set`).

A set has dimensions (``hash:ip,port,net`` has three: an address, a protocol and port, a network); the
direction flags of the match (``dst,dst,src``) say, dimension by dimension, which side of the packet each one
is taken from. What the kernel does, and this module with it (``net/netfilter/ipset``):

- fewer flags than the set has dimensions: never a match; more flags: the extra ones are ignored;
- a set of another family (``inet`` for an IPv6 packet) never matches;
- ``bitmap:port`` takes the port of TCP and UDP packets only (``ip_set_get_ip_port``); the port dimension of
  the ``hash:*port*`` types compares protocol and port (ICMP: type and code; a protocol without ports: 0);
- address dimensions are networks: ``hash:ip`` with ``netmask``, ``hash:net`` prefixes. The most specific
  matching element decides: an element flagged ``nomatch`` makes the packet not match (``--return-nomatch``
  reverses that);
- ``list:set`` matches when one of its member sets does, tried in order.

What the packet state cannot say (a destination MAC, an unknown interface, the element counters that
``--packets-gt`` compares) makes the match undecidable, as do sets whose members were not given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from .errors import Diagnostic

__all__ = ["ADDRESS_DIMS", "DIMENSIONS", "Element", "IpSet", "IpsetTable", "Part", "SetMatch", "legacy_sets"]

# The packet side of a match (which value each dimension takes, the kernel's rules) is
# :mod:`kptui.engine.ipset_match`; this module is the sets themselves and their lookup.

# the dimensions of each set type, and which of them hold addresses (compared as networks)
DIMENSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "bitmap:ip": ("ip",), "bitmap:ip,mac": ("ip", "mac"), "bitmap:port": ("port",),
    "hash:ip": ("ip",), "hash:mac": ("mac",), "hash:ip,mac": ("ip", "mac"), "hash:net": ("net",),
    "hash:net,net": ("net", "net"), "hash:ip,port": ("ip", "port"), "hash:net,port": ("net", "port"),
    "hash:ip,port,ip": ("ip", "port", "ip"), "hash:ip,port,net": ("ip", "port", "net"),
    "hash:ip,mark": ("ip", "mark"), "hash:net,port,net": ("net", "port", "net"),
    "hash:net,iface": ("net", "iface"), "list:set": ("set",),
})  # fmt: skip
ADDRESS_DIMS = frozenset({"ip", "net"})


class Part(NamedTuple):
    """One dimension of an element: an address as (network int, prefix length, IP version), a port as
    (protocol number or -1 for ``bitmap:port``, port), a mark, an interface or MAC as text."""

    kind: str  # ip, port, mark, iface, mac, set
    value: int | str
    prefix: int = 0  # addresses: prefix length; ports: 0
    version: int = 0  # addresses: 4 or 6


@dataclass(frozen=True, slots=True)
class Element:
    """One member of a set, as saved (``10.96.0.1,tcp:443``) and decoded."""

    text: str
    parts: tuple[Part, ...]
    nomatch: bool = False
    options: tuple[tuple[str, str], ...] = ()  # timeout, packets, bytes, comment, skbmark, …
    line: int | None = None


@dataclass(frozen=True, eq=False)
class IpSet:
    """One ipset: its type, header options and members (``members_known`` is False for ``ipset list -t``)."""

    name: str
    type: str
    family: str | None = None  # inet, inet6; None for family-less types (bitmap:port, list:set)
    options: tuple[tuple[str, str], ...] = ()
    elements: tuple[Element, ...] = ()
    members_known: bool = True
    line: int | None = None
    known_type: bool = True  # False: members given as bare CIDRs (the old NodeContext form): one dimension only
    _index: dict[tuple[int, ...], dict[tuple[int | str, ...], Element]] = field(default_factory=dict, repr=False)
    _scan: list[Element] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        dims = self.dimensions
        for el in self.elements:
            if len(el.parts) != len(dims) or any(p.kind == "mac" or p.kind == "iface" for p in el.parts):
                self._scan.append(el)
                continue
            prefixes = tuple(p.prefix for p in el.parts)
            self._index.setdefault(prefixes, {}).setdefault(_key(el.parts), el)
        # most specific first: the kernel walks the prefix lengths from the longest (hash:net nomatch)
        ordered = sorted(self._index.items(), key=lambda kv: tuple(-p for p in kv[0]))
        self._index.clear()
        self._index.update(ordered)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return DIMENSIONS.get(self.type, ())

    @property
    def version(self) -> int | None:
        """4 or 6 for a family-bound set, None when it has no family (it matches either)."""
        return {"inet": 4, "inet6": 6}.get(self.family or "")

    def option(self, name: str) -> str | None:
        for key, value in self.options:
            if key == name:
                return value
        return None

    def __len__(self) -> int:
        return len(self.elements)

    def lookup(self, values: tuple[int | str, ...], version: int) -> Element | None:
        """The element deciding for packet ``values`` (one per dimension: an address as int, a port as
        ``(proto << 16) | port``, a mark, a name), or None: the most specific match, nomatch or not."""
        bits = 32 if version == 4 else 128
        for prefixes, table in self._index.items():
            if any(p > bits for p in prefixes):
                continue
            key = tuple(_masked(v, p, version) if isinstance(v, int) and d in ADDRESS_DIMS else v
                        for v, p, d in zip(values, prefixes, self.dimensions, strict=True))  # fmt: skip
            hit = table.get(key)
            if hit is not None and _same_version(hit, version):
                return hit
        for el in self._scan:
            if _scan_match(el, values, version):
                return el
        return None


def _key(parts: tuple[Part, ...]) -> tuple[int | str, ...]:
    return tuple(p.value for p in parts)


def _masked(value: int, prefix: int, version: int) -> int:
    bits = 32 if version == 4 else 128
    return value >> (bits - prefix) << (bits - prefix) if prefix < bits else value


def _same_version(el: Element, version: int) -> bool:
    return all(p.version in (0, version) for p in el.parts)


def _scan_match(el: Element, values: tuple[int | str, ...], version: int) -> bool:
    if len(el.parts) != len(values) or not _same_version(el, version):
        return False
    for p, v in zip(el.parts, values, strict=True):
        if p.kind == "ip":
            if not isinstance(v, int) or _masked(v, p.prefix, version) != p.value:
                return False
        elif p.value != v:
            return False
    return True


class SetMatch(NamedTuple):
    """``-m set [!] --match-set NAME FLAGS [--return-nomatch]`` as a test of a packet."""

    name: str
    flags: tuple[str, ...]
    negated: bool = False
    return_nomatch: bool = False

    @property
    def key(self) -> str:
        """The variable an undecidable answer assumes (the same for every rule testing this set so)."""
        return f"set {self.name} {','.join(self.flags)}"


@dataclass(frozen=True, eq=False)
class IpsetTable:
    """The ipsets of a node, by name, with the warnings their parse left."""

    sets: Mapping[str, IpSet] = field(default_factory=dict)
    source: str | None = None
    warnings: tuple[Diagnostic, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sets", MappingProxyType(dict(self.sets)))

    def __contains__(self, name: object) -> bool:
        return name in self.sets

    def __iter__(self) -> Iterator[str]:
        return iter(self.sets)

    def __len__(self) -> int:
        return len(self.sets)

    def get(self, name: str) -> IpSet | None:
        return self.sets.get(name)

    def members(self, name: str) -> tuple[str, ...]:
        """The members of set ``name`` as saved (empty for an unknown set)."""
        s = self.sets.get(name)
        return tuple(e.text for e in s.elements) if s is not None else ()

def legacy_sets(sets: Mapping[str, Iterable[str]]) -> IpsetTable:
    """Sets given the old way, name → member CIDRs, as an :class:`IpsetTable` of one-dimension address sets
    (their real type is not known, so a match with several direction flags stays undecidable)."""
    out: dict[str, IpSet] = {}
    for name, members in sets.items():
        elements = []
        for m in members:
            net = ipaddress.ip_network(m.strip(), strict=False)
            elements.append(Element(str(net), (Part("ip", int(net.network_address), net.prefixlen, net.version),)))
        out[name] = IpSet(name, "hash:net", None, (), tuple(elements), known_type=False)
    return IpsetTable(out)
