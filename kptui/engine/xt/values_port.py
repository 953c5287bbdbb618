"""Protocol and port value types of iptables options, read the way iptables reads them: ``-p`` protocols
(numbers or /etc/protocols names), ports and port ranges (numbers base 0 or service names), multiport's lists,
and the NAT targets' ``[addr[-addr]][:port[-port]]`` and ``--to-ports``.
"""

from __future__ import annotations

import ipaddress
import re

from .values_addr import V4_FAST, V6_FAST
from .vtype import Bad, VType, parse_u32

__all__ = [
    "PORT_FAST",
    "PORT_LIST",
    "PORT_RANGE",
    "PROTOCOL",
    "PROTOCOL_NUMBERS",
    "SERVICES",
    "host_port",
    "parse_host_port",
    "parse_port",
    "parse_port_list",
    "parse_port_range",
    "parse_protocol",
    "ports_dash",
    "single_port",
]

# /etc/protocols (Debian netbase) plus iptables' own names; a name outside it may exist on the loading machine.
PROTOCOL_NUMBERS = {
    "all": 0, "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8,
    "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36,
    "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47,
    "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98,
    "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
    "mobility-header": 135, "ipv6-mh": 135, "mh": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138,
    "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143, "mptcp": 262,
}  # fmt: skip


def parse_protocol(text: str) -> int | None:
    """``-p``: a number 0..255 or a name (iptables lowercases it first); None when kptui does not know it."""
    n = parse_u32(text, 0, 255)
    if n is not None:
        return n
    return PROTOCOL_NUMBERS.get(text.lower())


def _protocol(text: str, family: int | None) -> Bad | None:
    if parse_protocol(text) is not None:
        return None
    if parse_u32(text) is not None or not text:
        return Bad(f"unknown protocol '{text}' specified")
    return Bad(f"protocol '{text}' is not in kptui's /etc/protocols: not understood", fatal=False)


PROTOCOL = VType("protocol", _protocol)

# Service names (/etc/services) kube-proxy users meet; another name depends on the loading machine's file.
SERVICES = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "bootps": 67, "bootpc": 68,
    "tftp": 69, "http": 80, "www": 80, "kerberos": 88, "pop3": 110, "sunrpc": 111, "ntp": 123, "imap2": 143,
    "imap": 143, "snmp": 161, "ldap": 389, "https": 443, "microsoft-ds": 445, "syslog": 514, "submission": 587,
    "ldaps": 636, "imaps": 993, "pop3s": 995, "mysql": 3306, "postgresql": 5432, "http-alt": 8080,
}  # fmt: skip


def parse_port(text: str) -> int | None:
    """``xtables_parse_port``: a number 0..65535 (base 0) or a service name kptui knows."""
    n = parse_u32(text, 0, 65535)
    return n if n is not None else SERVICES.get(text)


def _port_or_bad(text: str) -> int | Bad:
    n = parse_port(text)
    if n is not None:
        return n
    if not text or re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+-]*", text):  # ('' finds a udp service on Debian)
        return Bad(f"port name '{text}' depends on the loading machine's /etc/services: not understood", False)
    return Bad(f"invalid port/service '{text}' specified")


def parse_port_range(text: str, sep: str = ":") -> tuple[int, int] | Bad:
    """``port[:port]`` (``:80`` is 0..80, ``80:`` is 80..65535)."""
    if sep not in text:
        p = _port_or_bad(text)
        return p if isinstance(p, Bad) else (p, p)
    a, _, b = text.partition(sep)
    lo = _port_or_bad(a) if a else 0
    hi = _port_or_bad(b) if b else 65535
    if isinstance(lo, Bad):
        return lo
    if isinstance(hi, Bad):
        return hi
    if lo > hi:
        return Bad("invalid portrange (min > max)")
    return lo, hi


def _port_range(text: str, family: int | None) -> Bad | None:
    got = parse_port_range(text)
    return got if isinstance(got, Bad) else None


PORT_FAST = r"(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3}|0)"
PORT_RANGE = VType("port[:port]", _port_range, PORT_FAST, PORT_FAST, r"\d", r"\d")


def parse_port_list(text: str) -> list[tuple[int, int]] | Bad:
    """multiport's ``port[,port:port…]``: at most 15 ports, a range counting as two."""
    out: list[tuple[int, int]] = []
    used = 0
    for item in text.split(","):
        r = parse_port_range(item)
        if isinstance(r, Bad):
            return r
        used += 1 if r[0] == r[1] and ":" not in item else 2
        if used > 15:
            return Bad("too many ports specified (15 at most, a range counts as two)")
        out.append(r)
    return out


def _port_list(text: str, family: int | None) -> Bad | None:
    got = parse_port_list(text)
    return got if isinstance(got, Bad) else None


PORT_LIST = VType("port[,port:port…]", _port_list)


def single_port(name: str) -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        got = _port_or_bad(text)
        return got if isinstance(got, Bad) else None

    return VType("port", check, PORT_FAST, PORT_FAST, r"\d", r"\d")


def host_port(name: str, *, ports: bool = True, ranges: bool = True) -> VType:
    """NAT targets' ``[addr[-addr]][:port[-port]]`` (``[v6]:port`` for IPv6)."""

    def check(text: str, family: int | None) -> Bad | None:
        got = parse_host_port(text, family, ranges=ranges)
        if isinstance(got, Bad):
            return Bad(f"{name}: {got.message}", got.fatal)
        if not ports and got[2] is not None:
            return Bad(f"{name}: no port allowed here")
        return None

    fast4 = rf"{V4_FAST}(?::{PORT_FAST})?" if ports else V4_FAST
    fast6 = rf"\[{V6_FAST}\]:{PORT_FAST}|{V6_FAST}" if ports else V6_FAST
    return VType("address[:port]", check, fast4, fast6, r"\d", r"[0-9a-fA-F:\[]")


def parse_host_port(text: str, family: int | None, *, ranges: bool = True
                    ) -> tuple[str | None, str | None, tuple[int, int] | None] | Bad:  # fmt: skip
    """(first address, last address, port range) of ``[addr[-addr]][:port[-port]]``."""
    fam = family or (6 if text.count(":") > 1 or text.startswith("[") else 4)
    if fam == 6 and text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close:
            return Bad(f"'{text}': no closing bracket")
        if rest and not rest.startswith(":"):
            return Bad(f"'{text}': junk after the address")
        port = rest[1:] if rest else None
    elif fam == 6:
        host, port = text, None
    else:
        host, sep, port_text = text.partition(":")
        port = port_text if sep else None
    first = last = None
    if host:
        a, dash, b = host.partition("-")
        if dash and not ranges:
            return Bad(f"'{text}': an address range is not allowed here")
        for h in (a, b) if dash else (a,):
            if not _inet_pton(h, fam):  # the NAT targets read addresses with inet_pton: no short forms
                return Bad(f"bad IP address '{h}'")
        first, last = a, (b if dash else a)
    pr: tuple[int, int] | None = None
    if port is not None:
        lo_text, dash, hi_text = port.partition("-")
        ports = [_nat_port(p) for p in ((lo_text, hi_text) if dash else (lo_text,))]
        if any(isinstance(p, Bad) for p in ports):
            return next(p for p in ports if isinstance(p, Bad))
        nums = [p for p in ports if isinstance(p, int)]
        if len(nums) == 2 and nums[0] > nums[1]:
            return Bad(f"port range '{port}' funky (min > max)")
        pr = (nums[0], nums[-1])
    if not host and port is None:
        return Bad(f"'{text}' is neither an address nor a port")
    return first, last, pr


def _inet_pton(text: str, family: int) -> bool:
    if family == 4:
        return re.fullmatch(V4_FAST, text) is not None
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _nat_port(text: str) -> int | Bad:
    """A port of a NAT target: decimal (no leading zero) or a service name."""
    if re.fullmatch(r"[1-9]\d{0,4}|0", text) and int(text) <= 65535:
        return int(text)
    if text in SERVICES:
        return SERVICES[text]
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+-]*", text):
        return Bad(f"port name '{text}' depends on the loading machine's /etc/services: not understood", False)
    return Bad(f"bad port '{text}'")


def ports_dash(name: str) -> VType:
    """``--to-ports port[-port]``."""

    def check(text: str, family: int | None) -> Bad | None:
        got = parse_port_range(text, "-")
        return Bad(f"{name}: {got.message}", got.fatal) if isinstance(got, Bad) else None

    return VType("port[-port]", check, PORT_FAST, PORT_FAST, r"\d", r"\d")
