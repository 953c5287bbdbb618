"""Address value types of iptables options, read the way iptables reads them: ``-s``/``-d`` networks (iptables'
own dotted form, then ``inet_aton``; IPv6; masks as prefix lengths or dotted, not necessarily contiguous; a host
name is the loading machine's business), one address, netmasks, address ranges and MAC addresses; and the fast
patterns of IPv4 and IPv6 addresses the other families build on.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from .vtype import Bad, VType, parse_u32

__all__ = [
    "IP_RANGE",
    "MAC",
    "NETMASK",
    "NETWORKS",
    "V4_FAST",
    "V6_FAST",
    "Net",
    "parse_address",
    "parse_networks",
    "single_network",
]

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
V4_FAST = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_H16 = r"[0-9a-fA-F]{1,4}"
V6_FAST = (  # the usual textual forms (no embedded IPv4: those are checked as written)
    rf"(?:(?:{_H16}:){{7}}{_H16}|(?:{_H16}:){{1,7}}:|(?:{_H16}:){{1,6}}:{_H16}|(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}"
    rf"|(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}|(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}|(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}"
    rf"|{_H16}:(?::{_H16}){{1,6}}|:(?::{_H16}){{1,7}}|::)"
)
_HOSTNAME = re.compile(r"(?=.{1,253}$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?)+")


def _xt_dotted(text: str, is_mask: bool = False) -> int | None:
    """iptables' own dotted form (``__numeric_to_ipaddr``): up to four base-0 bytes; fewer than four fill
    the rest with zeros (``10`` is 10.0.0.0), except for masks."""
    parts = text[:19].split(".")  # iptables copies at most 19 characters
    if len(text) > 19 or len(parts) > 4 or (is_mask and len(parts) != 4):
        return None
    out = 0
    for i in range(4):
        b = parse_u32(parts[i], 0, 255) if i < len(parts) else 0
        if b is None:
            return None
        out = (out << 8) | b
    return out


def _inet_aton(text: str) -> int | None:
    """glibc's ``inet_aton`` (what getaddrinfo accepts as a numeric IPv4 address): ``a``, ``a.b``, ``a.b.c``,
    ``a.b.c.d``, each part base 0, the last one filling the remaining bytes."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    nums = [parse_u32(p) for p in parts]
    if any(n is None for n in nums):
        return None
    vals = [n for n in nums if n is not None]
    last_bits = 8 * (5 - len(vals))
    if any(v > 255 for v in vals[:-1]) or vals[-1] >= 1 << last_bits:
        return None
    out = 0
    for v in vals[:-1]:
        out = (out << 8) | v
    return (out << last_bits) | vals[-1]


class Net(NamedTuple):
    """One address with its mask, as integers (a mask need not be contiguous)."""

    version: int
    addr: int
    mask: int

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return ip.version == self.version and (int(ip) & self.mask) == (self.addr & self.mask)


def _v4(host: str, mask: str | None) -> Net | Bad:
    a = _xt_dotted(host)
    if a is None:
        a = _inet_aton(host)
    if a is None:
        return _unknown_host(host)
    m = 0xFFFFFFFF
    if mask is not None:
        if "." in mask:
            mm = _xt_dotted(mask, is_mask=True)
        else:
            bits = parse_u32(mask, 0, 32)
            mm = None if bits is None else (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
        if mm is None:
            return Bad(f"invalid mask '{mask}' specified")
        m = mm
    return Net(4, a, m)


def _v6(host: str, mask: str | None) -> Net | Bad:
    try:
        a = int(ipaddress.IPv6Address(host))
    except ValueError:
        return _unknown_host(host)
    m = (1 << 128) - 1
    if mask is not None:
        if ":" in mask:
            try:
                m = int(ipaddress.IPv6Address(mask))
            except ValueError:
                return Bad(f"invalid mask '{mask}' specified")
        else:
            bits = parse_u32(mask, 0, 128)
            if bits is None:
                return Bad(f"invalid mask '{mask}' specified")
            m = ((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1)
    return Net(6, a, m)


def _unknown_host(host: str) -> Bad:
    if _HOSTNAME.fullmatch(host) and not re.fullmatch(r"[0-9.]+|0[xX][0-9a-fA-F.]*", host):
        return Bad(f"'{host}' is a host name: iptables resolves it when the rule is loaded, kptui does not",
                   fatal=False)  # fmt: skip
    return Bad(f"host/network '{host}' not found (not an address)")


def parse_networks(text: str, family: int | None) -> list[Net] | Bad:
    """``-s``/``-d``: a comma-separated list of ``host[/mask]``, each as iptables reads it."""
    out: list[Net] = []
    for part in text.split(","):
        host, sep, mask = part.partition("/")
        fam = family or (6 if ":" in host else 4)
        got = (_v6 if fam == 6 else _v4)(host, mask if sep else None)
        if isinstance(got, Bad):
            if family is None and fam == 4 and not isinstance(_v6(host, None), Bad):
                got = _v6(host, mask if sep else None)
            if isinstance(got, Bad):
                return got
        out.append(got)
    return out


def _networks(text: str, family: int | None) -> Bad | None:
    got = parse_networks(text, family)
    return got if isinstance(got, Bad) else None


_PFX4, _PFX6 = r"(?:3[0-2]|[12]?\d)", r"(?:12[0-8]|1[01]\d|[1-9]?\d)"
NETWORKS = VType("address[/mask][,…]", _networks, rf"{V4_FAST}(?:/{_PFX4})?", rf"{V6_FAST}(?:/{_PFX6})?", r"\d",
                 r"[0-9a-fA-F:]")


def single_network(name: str) -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        if "," in text:
            return Bad(f"{name}: one address[/mask], not a list")
        return _networks(text, family)

    return VType("address[/mask]", check, rf"{V4_FAST}(?:/{_PFX4})?", rf"{V6_FAST}(?:/{_PFX6})?", r"\d",
                 r"[0-9a-fA-F:]")


def parse_address(text: str, family: int | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One address (no mask), as iptables reads it; None when it is not one."""
    nets = parse_networks(text, family)
    if isinstance(nets, Bad) or len(nets) != 1 or "/" in text:
        return None
    n = nets[0]
    return ipaddress.IPv4Address(n.addr) if n.version == 4 else ipaddress.IPv6Address(n.addr)


def _mask_only(text: str, family: int | None) -> Bad | None:
    fam = family or (6 if ":" in text else 4)
    if fam == 4:  # read like an address (iptables' dotted form, inet_aton)
        return None if _xt_dotted(text) is not None or _inet_aton(text) is not None else Bad(
            f"invalid netmask '{text}'")
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return Bad(f"invalid netmask '{text}'")
    return None


NETMASK = VType("netmask", _mask_only, V4_FAST, V6_FAST, r"\d", r"[0-9a-fA-F:]")


def _mac(text: str, family: int | None) -> Bad | None:
    if re.fullmatch(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5}", text):
        return None
    return Bad(f"bad mac address '{text}'")


MAC = VType("MAC address", _mac)


def _ip_range(text: str, family: int | None) -> Bad | None:
    a, dash, b = text.partition("-")
    for h in (a, b) if dash else (a,):
        if parse_address(h, family) is None:
            return Bad(f"iprange: '{h}' is not an address")
    return None


IP_RANGE = VType("address[-address]", _ip_range)
