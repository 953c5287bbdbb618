"""Value types of iptables options: what iptables-restore accepts for an argument, read the way it reads it.

Each :class:`VType` checks one argument (``check(text, family) -> Bad | None``) exactly as iptables 1.8 parses
it (numbers with ``strtoul`` base 0, addresses first as iptables' own dotted form and then as ``inet_aton``,
ports as numbers or service names, …). A :class:`Bad` is either *fatal* (no iptables accepts it: the dump is
refused with the line and a caret) or not (``fatal=False``: the value depends on the machine that loads it —
a host name, a service name — or a newer iptables may know it; the dump loads with a warning and the rule is
not understood). ``fast`` is a regular expression every match of which ``check`` accepts: the parser blanks
such values out of a rule's *shape* (:mod:`kptui.engine.parser`), so a kube-proxy dump is validated once per
shape, not once per rule.

The parse helpers (:func:`parse_u32`, :func:`parse_networks`, :func:`parse_port_range`, …) give the value
kptui evaluates; they accept exactly what the checks accept.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "ANY",
    "PLACEHOLDER",
    "Bad",
    "VType",
    "enum",
    "number",
    "parse_networks",
    "parse_port",
    "parse_port_range",
    "parse_u32",
    "parse_value_mask",
    "string",
]

PLACEHOLDER = "\x00"  # a value the parser blanked out of a rule's shape (NUL never survives into a rule)
MAX_PARAM = 1023  # iptables-restore's parameter buffer: "Parameter too long!"


class Bad(NamedTuple):
    message: str
    fatal: bool = True


Checker = Callable[[str, "int | None"], "Bad | None"]


@dataclass(frozen=True)
class VType:
    """One kind of argument: its name (for messages and docs), its check, and the fast patterns (for IPv4
    and IPv6 dumps; None: always checked as written)."""

    name: str
    check: Checker
    fast4: str | None = None
    fast6: str | None = None
    first4: str | None = None  # a character class every fast match starts with (lets the parser skip fast)
    first6: str | None = None

    def fast(self, family: int | None) -> str | None:
        """The fast pattern for ``family``'s dumps; for a dump whose family is not known, either family's."""
        if family == 6:
            return self.fast6
        if family == 4:
            return self.fast4
        if self.fast4 is None or self.fast6 is None or self.fast4 == self.fast6:
            return self.fast4 if self.fast4 == self.fast6 else None
        return f"(?:{self.fast4})|(?:{self.fast6})"

    def first(self, family: int | None) -> str | None:
        if family is None:
            return self.first4 if self.first4 == self.first6 else None
        return self.first6 if family == 6 else self.first4


def _ok(text: str, family: int | None) -> Bad | None:
    return None


ANY = VType("text", _ok)


# -- numbers ----------------------------------------------------------------------------------------------
_C_NUMBER = re.compile(r"\+?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")  # libxtables refuses a minus sign


def parse_u32(text: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int | None:
    """``xtables_strtoui(text, NULL, &v, lo, hi)``: ``strtoull`` base 0 (``0x…`` hex, ``0…`` octal), the
    whole text, within [lo, hi]; None otherwise."""
    if not _C_NUMBER.fullmatch(text):
        return None
    body = text.lstrip("+")
    value = int(body, 0) if body[:2] in ("0x", "0X") else int(body, 8) if body[0] == "0" else int(body)
    return value if lo <= value <= hi else None


def number(name: str, lo: int = 0, hi: int = 0xFFFFFFFF, *, what: str = "number") -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        if parse_u32(text, lo, hi) is None:
            return Bad(f"{name}: '{text}' is not a {what} in {lo}..{hi}")
        return None

    fast = r"(?:0|[1-9]\d{0,8})" if hi >= 999999999 and lo == 0 else None
    return VType(f"{what} {lo}..{hi}", check, fast, fast, r"\d", r"\d")


def parse_value_mask(text: str) -> tuple[int, int] | None:
    """``value[/mask]`` of marks (``--mark 0x4000/0x4000``): 32-bit numbers; mask 0xffffffff when absent."""
    value, sep, mask = text.partition("/")
    v = parse_u32(value)
    m = parse_u32(mask) if sep else 0xFFFFFFFF
    return None if v is None or m is None else (v, m)


def _value_mask(text: str, family: int | None) -> Bad | None:
    return None if parse_value_mask(text) is not None else Bad(f"bad value/mask '{text}' (32-bit numbers)")


VALUE_MASK = VType("value[/mask]", _value_mask)


def range_of(name: str, lo: int, hi: int) -> VType:
    """``n[:m]`` within [lo, hi] (lengths, expiry times)."""

    def check(text: str, family: int | None) -> Bad | None:
        a, sep, b = text.partition(":")
        x = parse_u32(a, lo, hi) if a or not sep else lo
        y = (parse_u32(b, lo, hi) if b else hi) if sep else x
        if x is None or y is None:
            return Bad(f"{name}: '{text}' is not a number or range in {lo}..{hi}")
        if x > y:
            return Bad(f"{name}: range '{text}' has its minimum above its maximum")
        return None

    return VType(f"range {lo}..{hi}", check)


# -- strings and names --------------------------------------------------------------------------------------
def string(name: str, max_len: int | None = None, *, fast: bool = False) -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        if max_len is not None and len(text) > max_len:
            return Bad(f"{name}: '{text[:40]}…' is longer than {max_len} characters")
        return None

    pattern = None
    if fast:
        n = MAX_PARAM if max_len is None else min(max_len, MAX_PARAM)
        pattern = rf'"(?!-)[^"\\\n]{{0,{n}}}"|[^ \t\n"\\]{{1,{n}}}'
    return VType(name, check, pattern, pattern)


def chain_name(text: str, family: int | None) -> Bad | None:
    if len(text) > 28:
        return Bad(f"invalid target name '{text}' (28 characters at most)")
    return None


CHAIN = VType("chain or target name", chain_name, r"[^ \t\n\"\\]{1,28}", r"[^ \t\n\"\\]{1,28}")


def enum(name: str, values: tuple[str, ...], *, comma_list: bool = False, fold: bool = False,
         fatal: bool = True) -> VType:  # fmt: skip
    """One of ``values`` (or a comma-separated list of them); ``fold``: case-insensitive. Not ``fatal``: a
    value a newer iptables may add (the rule loads, not understood)."""
    known = {v.lower() if fold else v for v in values}

    def check(text: str, family: int | None) -> Bad | None:
        items = text.split(",") if comma_list else [text]
        for item in items:
            if (item.lower() if fold else item) not in known:
                return Bad(f"{name}: unknown value '{item}' (known: {', '.join(values)})", fatal)
        return None

    return VType(name, check)


def prefix_item(item: str, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that ``item`` begins, any case (how iptables reads states and address types:
    ``est`` is ESTABLISHED, ``L`` is LOCAL); None for an empty or unknown item."""
    low = item.lower()
    return next((n for n in names if n.lower().startswith(low)), None) if item else None


def prefix_list(name: str, names: tuple[str, ...]) -> VType:
    """A comma-separated list of :func:`prefix_item` s."""

    def check(text: str, family: int | None) -> Bad | None:
        for item in text.split(","):
            if prefix_item(item, names) is None:
                return Bad(f"{name}: unknown value '{item}' (known: {', '.join(names)})")
        return None

    return VType(name, check)


# -- addresses ----------------------------------------------------------------------------------------------
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


def _iface(text: str, family: int | None) -> Bad | None:
    if not text:
        return Bad("empty interface name (iptables: 'Empty interface is likely to be undesired')")
    if len(text) > 15:
        return Bad(f"interface name '{text}' must be shorter than 16 characters")
    return None


IFACE = VType("interface[+]", _iface, r"[^ \t\n\"\\!+][^ \t\n\"\\]{0,14}", r"[^ \t\n\"\\!+][^ \t\n\"\\]{0,14}")


# -- protocols and ports ------------------------------------------------------------------------------------
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


def _probability(text: str, family: int | None) -> Bad | None:
    try:
        p = float(text)
    except ValueError:
        return Bad(f"--probability '{text}' is not a number")
    if not 0.0 <= p <= 1.0 or text.strip() != text:
        return Bad(f"--probability must be between 0 and 1, not {text}")
    return None


PROBABILITY = VType("probability 0..1", _probability, r"0\.\d{1,11}", r"0\.\d{1,11}", "0", "0")


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


def _rate(text: str, family: int | None) -> Bad | None:
    count, sep, unit = text.partition("/")
    n = parse_u32(count, 1) if count.isdigit() else None
    units = ("second", "minute", "hour", "day")
    if n is None or (sep and not (unit and any(u.startswith(unit.lower()) for u in units))):
        return Bad(f"bad rate '{text}' (N/second, /minute, /hour or /day)")
    return None


RATE = VType("rate", _rate)
