"""The IPVS table of a node: virtual services and their real servers, as ``ipvsadm`` lists them.

Values are frozen; what a listing does not show is None (``ipvsadm -L -n --stats`` shows counters but neither
schedulers nor weights, ``ipvsadm -S -n`` no counters). :meth:`IpvsTable.lookup` finds the virtual service a
packet meets the way the kernel's ``ip_vs_service_find`` does: a firewall-mark service by the packet's mark
first, then the one of its protocol, destination address and port, then a port-zero service of that address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType

from ..errors import Diagnostic

__all__ = ["FORWARDS", "PROTOCOLS", "IpvsTable", "RealServer", "VirtualService", "hostport"]

PROTOCOLS = ("tcp", "udp", "sctp")
FORWARDS = ("Masq", "Local", "Route", "Tunnel")  # ipvsadm's names of the forwarding methods (-m, -g, -i)


def hostport(addr: str, port: int | None) -> str:
    """``10.0.0.1:80``, ``[fd00::1]:80``; the address alone without a port."""
    host = f"[{addr}]" if ":" in addr else addr
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class RealServer:
    """One destination of a virtual service."""

    address: str
    port: int
    forward: str | None  # Masq, Local, Route, Tunnel; None: not listed (--stats, --rate, …)
    weight: int | None  # None: the listing does not show it (--stats, --rate)
    active: int | None = None  # ActiveConn
    inactive: int | None = None  # InActConn
    persistent_conns: int | None = None  # PersistConn (--persistent-conn)
    stats: tuple[tuple[str, str], ...] = ()  # (column, value as printed): Conns, InPkts, … or CPS, InPPS, …
    line: int | None = None

    @property
    def hostport(self) -> str:
        return hostport(self.address, self.port)

    @property
    def draining(self) -> bool:
        """Weight 0: the schedulers give it no new connections (existing ones go on)."""
        return self.weight == 0


@dataclass(frozen=True, slots=True)
class VirtualService:
    """One IPVS virtual service: protocol, address and port, or a firewall mark."""

    protocol: str | None  # tcp, udp, sctp; None for a firewall-mark service
    address: str | None
    port: int | None
    fwmark: int | None = None
    family: int = 4
    scheduler: str | None = None  # rr, wrr, lc, …; None: not listed
    persistence: int | None = None  # persistent timeout (seconds): ClientIP session affinity
    netmask: str | None = None  # persistence granularity (-M), when not a single address
    flags: tuple[str, ...] = ()  # ops (one-packet scheduling), pe NAME, scheduler flags
    real_servers: tuple[RealServer, ...] = ()
    stats: tuple[tuple[str, str], ...] = ()
    line: int | None = None

    @property
    def key(self) -> str:
        """``TCP 10.96.0.1:443``, ``UDP [fd00::a]:53``, ``FWM 1`` (``FWM 1 IPv6``): as ipvsadm -L names it."""
        if self.fwmark is not None:
            return f"FWM {self.fwmark}" + (" IPv6" if self.family == 6 else "")
        return f"{(self.protocol or '?').upper()} {hostport(self.address or '?', self.port)}"

    def with_(self, **changes: object) -> VirtualService:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class IpvsTable:
    """Every virtual service of a node, with lookups; ``listing`` says which ipvsadm output it came from."""

    services: tuple[VirtualService, ...] = ()
    source: str | None = None
    listing: str = "save"  # save (-S -n), list (-L -n), stats (--stats), rate (--rate), thresholds, persistent
    warnings: tuple[Diagnostic, ...] = field(default=())

    def __iter__(self) -> Iterator[VirtualService]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)

    @cached_property
    def _by_key(self) -> Mapping[tuple[object, ...], VirtualService]:
        out: dict[tuple[object, ...], VirtualService] = {}
        for vs in self.services:
            out.setdefault(_key(vs), vs)
        return MappingProxyType(out)

    @cached_property
    def addresses(self) -> frozenset[str]:
        """Every address a virtual service listens on."""
        return frozenset(vs.address for vs in self.services if vs.address is not None)

    def get(self, protocol: str, address: str, port: int) -> VirtualService | None:
        """The virtual service of exactly this protocol, address and port."""
        return self._by_key.get((protocol, _norm(address), port))

    def by_fwmark(self, mark: int, family: int) -> VirtualService | None:
        return self._by_key.get(("fwm", mark, family))

    def lookup(self, protocol: str, address: str, port: int | None, mark: int = 0) -> VirtualService | None:
        """The service a packet meets (``ip_vs_service_find``): fwmark service of ``mark`` (if non-zero),
        then protocol + address + port, then protocol + address + port 0 (a catch-all)."""
        family = 6 if ":" in address else 4
        if mark:
            hit = self.by_fwmark(mark, family)
            if hit is not None:
                return hit
        if protocol not in PROTOCOLS:
            return None
        return self.get(protocol, address, port or 0) or (self.get(protocol, address, 0) if port else None)

    def merged(self, other: IpvsTable) -> IpvsTable:
        """This table with what ``other`` (another listing of the same node) adds: schedulers, weights and
        flags a ``--stats`` listing lacks, or the counters a save lacks. Services only ``other`` has are
        appended."""
        theirs = {_key(vs): vs for vs in other.services}
        out = []
        for vs in self.services:
            o = theirs.pop(_key(vs), None)
            out.append(vs if o is None else _merge(vs, o))
        out.extend(theirs.values())
        listing = self.listing if self.listing == other.listing else f"{self.listing}+{other.listing}"
        return IpvsTable(tuple(out), self.source or other.source, listing, self.warnings + other.warnings)


def _key(vs: VirtualService) -> tuple[object, ...]:
    if vs.fwmark is not None:
        return ("fwm", vs.fwmark, vs.family)
    return (vs.protocol, _norm(vs.address or ""), vs.port or 0)


def _norm(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def _merge(a: VirtualService, b: VirtualService) -> VirtualService:
    rs_b = {(_norm(r.address), r.port): r for r in b.real_servers}
    servers = []
    for r in a.real_servers:
        o = rs_b.pop((_norm(r.address), r.port), None)
        if o is None:
            servers.append(r)
            continue
        servers.append(replace(r, weight=r.weight if r.weight is not None else o.weight,
                               active=r.active if r.active is not None else o.active,
                               inactive=r.inactive if r.inactive is not None else o.inactive,
                               persistent_conns=r.persistent_conns if r.persistent_conns is not None
                               else o.persistent_conns, stats=r.stats or o.stats))  # fmt: skip
    servers.extend(rs_b.values())
    return replace(a, scheduler=a.scheduler or b.scheduler,
                   persistence=a.persistence if a.persistence is not None else b.persistence,
                   netmask=a.netmask or b.netmask, flags=a.flags or b.flags, real_servers=tuple(servers),
                   stats=a.stats or b.stats)  # fmt: skip
