"""What a trace starts from: the packet a user describes and the node it meets.

:class:`Packet` is the user's question ("a TCP SYN from 10.244.1.5:40000 to 10.96.0.10:53, arriving from a
pod"); :class:`NodeContext` is what kptui knows about the node (its addresses, pod CIDRs, interfaces). Both are
frozen and validated on construction (:class:`ValueError` with a message meant for the user).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .ipset import IpsetTable, legacy_sets

__all__ = ["CTSTATES", "ORIGINS", "PROTOCOLS", "NodeContext", "Packet", "parse_mark"]

ORIGINS = ("pod", "external", "local")
PROTOCOLS: Mapping[str, int] = MappingProxyType(
    {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58, "udplite": 136, "dccp": 33}
)
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
CTSTATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")
DEFAULT_SPORT = 40000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_mark(text: str) -> int:
    """A packet's mark as iptables reads a number (``strtoul`` base 0): ``0x4000``, ``16384``, ``040000``
    (octal). ValueError, with a message for the user, for anything else or out of 32 bits."""
    t = text.strip()
    if "/" in t:
        raise ValueError(f"mark '{text}': a packet's mark is one value (e.g. 0x4000), not value/mask")
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", t):
        value = int(t, 16)
    elif re.fullmatch(r"0[0-7]*", t):
        value = int(t, 8)
    elif re.fullmatch(r"[1-9][0-9]*", t):
        value = int(t)
    else:
        raise ValueError(f"mark '{text}' is not a number (e.g. 0x4000 or 16384)")
    if value > 0xFFFFFFFF:
        raise ValueError(f"mark {text} is not a 32-bit value")
    return value


def _addr(text: str, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"{what} '{text}' is not an IP address") from None


def _net(text: str, what: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not an address or CIDR") from None


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection, as the user describes it."""

    src: str
    dst: str
    proto: str = "tcp"
    sport: int | None = None  # None: an ephemeral port (40000) for port protocols
    dport: int | None = None
    origin: str = "pod"  # pod: arrives on a pod interface; external: on the uplink; local: from a process
    in_iface: str | None = None  # where it arrives (pod/external); None: from the node context, if it says
    mark: int = 0
    ctstate: str = "NEW"
    icmp_type: int | None = None  # default 8 (echo request) for ICMP, 128 for ICMPv6
    length: int | None = None  # IP packet length; default: a SYN (60 bytes) or a small datagram
    mac: str | None = None  # source MAC, for -m mac

    def __post_init__(self) -> None:
        src, dst = _addr(self.src, "source"), _addr(self.dst, "destination")
        if src.version != dst.version:
            raise ValueError("source and destination must both be IPv4 or both IPv6")
        object.__setattr__(self, "src", str(src))
        object.__setattr__(self, "dst", str(dst))
        proto = self.proto.lower()
        if proto == "ipv6-icmp":
            proto = "icmpv6"
        if proto == "icmp" and src.version == 6:
            proto = "icmpv6"
        if proto not in PROTOCOLS:
            raise ValueError(f"protocol '{self.proto}' is not one of {', '.join(PROTOCOLS)}")
        object.__setattr__(self, "proto", proto)
        if self.origin not in ORIGINS:
            raise ValueError(f"origin '{self.origin}' is not one of {', '.join(ORIGINS)}")
        if self.ctstate.upper() not in CTSTATES:
            raise ValueError(f"conntrack state '{self.ctstate}' is not one of {', '.join(CTSTATES)}")
        object.__setattr__(self, "ctstate", self.ctstate.upper())
        for name in ("sport", "dport"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 65535:
                raise ValueError(f"{name} {port} is not a port number (0-65535)")
        if proto in PORT_PROTOCOLS:
            if self.dport is None:
                raise ValueError(f"a {proto} packet needs a destination port")
            if self.sport is None:
                object.__setattr__(self, "sport", DEFAULT_SPORT)
        else:
            object.__setattr__(self, "sport", None)
            object.__setattr__(self, "dport", None)
        if not 0 <= self.mark <= 0xFFFFFFFF:
            raise ValueError(f"mark {self.mark:#x} is not a 32-bit value")

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.src).version

    def describe(self) -> str:
        """``10.244.1.5:40000 → 10.96.0.10:53/udp``"""
        return f"{_hostport(self.src, self.sport)} → {_hostport(self.dst, self.dport)}/{self.proto}"


def _hostport(addr: str, port: int | None) -> str:
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


@dataclass(frozen=True)
class NodeContext:
    """What kptui knows about the node. Everything is optional; what is unknown makes matches that need it
    undecidable (the trace then branches and says so) rather than silently assumed."""

    addresses: tuple[str, ...] = ()  # the node's own addresses (127.0.0.0/8 and ::1 are always local)
    pod_cidrs: tuple[str, ...] = ()  # pod networks: this node's pod subnet first, if known
    interfaces: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name → CIDRs on it
    uplink: str | None = None  # the interface external traffic arrives on and the default route uses
    pod_iface: str | None = None  # the interface pod traffic arrives on (e.g. cni0, or a veth)
    recent: frozenset[str] = frozenset()  # recent lists (session affinity) that already hold the source
    # a returning client (session affinity): "any" — bound to one endpoint of each service, not known which
    # (traces fork, one path per endpoint); or the endpoint it is bound to (IP:PORT or IP); None: a new client
    affinity: str | None = None
    # the node's ipsets (kptui.engine.ipset_parse.parse_ipsets); None: not known (set matches are undecidable).
    # A mapping of set name → member CIDRs is taken as one-dimension address sets (kptui.engine.ipset.legacy_sets)
    ipsets: IpsetTable | Mapping[str, tuple[str, ...]] | None = None
    # addresses bound to kube-ipvs0 (IPVS mode: every service address is): local addresses, whatever else the
    # context gives or leaves unknown
    vips: tuple[str, ...] = ()
    # the node's routes (main table) as (destination CIDR or "default", device; "" for a blackhole, unreachable
    # or prohibit route), longest prefix first or in any order; None: not known (a route is then assumed)
    routes: tuple[tuple[str, str], ...] | None = None
    # sysctls as read, e.g. {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.route_localnet": "1"}; absent: unknown
    sysctls: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(str(_addr(a, "node address")) for a in self.addresses))
        object.__setattr__(self, "pod_cidrs", tuple(str(_net(c, "pod CIDR")) for c in self.pod_cidrs))
        ifaces = {}
        for name, cidrs in dict(self.interfaces).items():
            ifaces[name] = tuple(str(ipaddress.ip_interface(c)) for c in cidrs)
        object.__setattr__(self, "interfaces", MappingProxyType(ifaces))
        if self.ipsets is not None and not isinstance(self.ipsets, IpsetTable):
            object.__setattr__(self, "ipsets", legacy_sets(self.ipsets))
        object.__setattr__(self, "vips", tuple(str(_addr(a, "service address")) for a in self.vips))
        object.__setattr__(self, "sysctls", MappingProxyType(dict(self.sysctls)))
        if self.routes is not None:
            object.__setattr__(self, "routes", tuple((str(d), str(v)) for d, v in self.routes))

    def is_local(self, addr: str) -> bool:
        ip = ipaddress.ip_address(addr)
        if ip.is_loopback:
            return True
        if addr in self.addresses or addr in self.vips:
            return True
        return any(str(ipaddress.ip_interface(c).ip) == addr for cs in self.interfaces.values() for c in cs)
