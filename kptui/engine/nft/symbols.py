"""nft's datatypes and symbol tables: what each key expression holds and how its constants are named.

A value's canonical form is the name ``nft list ruleset`` prints (``-nn`` prints the number instead; the
tables here turn it back into the name), so both listing forms give equal values. The tables are nft's own
(``nft describe``, the man page's DATA TYPES section, checked against nft 1.0.6 listings); protocol names are
/etc/protocols', as nft prints them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "BITMASK_TYPES",
    "PRIORITY_NAMES",
    "SERVICES",
    "SYMBOLS",
    "format_time",
    "name_of",
    "number_of",
    "parse_time",
    "priority_text",
    "resolve_priority",
]


def _table(pairs: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(pairs)


PROTOCOLS = _table({
    "ip": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8, "igp": 9, "pup": 12,
    "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37,
    "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47,
    "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73,
    "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103,
    "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135,
    "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142,
    "ethernet": 143,
})  # fmt: skip
# Service names older nft versions printed for ports (``tcp dport ssh``); nft ≥ 0.9.1 prints numbers.
SERVICES = _table({
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "bootps": 67, "bootpc": 68,
    "tftp": 69, "http": 80, "www": 80, "kerberos": 88, "pop3": 110, "sunrpc": 111, "ntp": 123,
    "netbios-ns": 137, "netbios-dgm": 138, "netbios-ssn": 139, "imap2": 143, "imap": 143, "snmp": 161,
    "snmp-trap": 162, "bgp": 179, "ldap": 389, "https": 443, "microsoft-ds": 445, "isakmp": 500,
    "syslog": 514, "dhcpv6-client": 546, "dhcpv6-server": 547, "submission": 587, "ldaps": 636,
    "imaps": 993, "pop3s": 995, "openvpn": 1194, "mysql": 3306, "ipsec-nat-t": 4500, "mdns": 5353,
    "postgresql": 5432, "http-alt": 8080, "webcache": 8080,
})  # fmt: skip
CT_STATE = _table({"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64})
CT_STATUS = _table({"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16, "dnat": 32,
                    "dying": 512})  # fmt: skip
TCP_FLAGS = _table({"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32, "ecn": 64, "cwr": 128})
FIB_ADDRTYPE = _table({"unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
                       "blackhole": 6, "unreachable": 7, "prohibit": 8})  # fmt: skip
ICMP_TYPE = _table({
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5, "echo-request": 8,
    "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11, "parameter-problem": 12,
    "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
    "address-mask-request": 17, "address-mask-reply": 18,
})  # fmt: skip
ICMP_CODE = _table({"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2, "port-unreachable": 3,
                    "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10,
                    "admin-prohibited": 13})  # fmt: skip
ICMPV6_TYPE = _table({
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
    "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
    "mld-listener-done": 132, "nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
    "nd-neighbor-advert": 136, "nd-redirect": 137, "router-renumbering": 138, "ind-neighbor-solicit": 141,
    "ind-neighbor-advert": 142, "mld2-listener-report": 143,
})  # fmt: skip
ICMPV6_CODE = _table({"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3, "port-unreachable": 4,
                      "policy-fail": 5, "reject-route": 6})  # fmt: skip
ICMPX_CODE = _table({"no-route": 0, "port-unreachable": 1, "host-unreachable": 2, "admin-prohibited": 3})
ETHER_TYPE = _table({"ip": 0x0800, "arp": 0x0806, "ip6": 0x86DD, "vlan": 0x8100, "8021ad": 0x88A8})
NF_PROTO = _table({"ipv4": 2, "ipv6": 10})
PKT_TYPE = _table({"host": 0, "broadcast": 1, "multicast": 2, "other": 3})
CT_DIR = _table({"original": 0, "reply": 1})
IFACE_TYPE = _table({"ether": 1, "ppp": 512, "ipip": 768, "ipip6": 769, "loopback": 772, "sit": 776,
                     "ipgre": 778})  # fmt: skip
DSCP = _table({"cs0": 0, "cs1": 8, "cs2": 16, "cs3": 24, "cs4": 32, "cs5": 40, "cs6": 48, "cs7": 56,
               "af11": 10, "af12": 12, "af13": 14, "af21": 18, "af22": 20, "af23": 22, "af31": 26, "af32": 28,
               "af33": 30, "af41": 34, "af42": 36, "af43": 38, "va": 44, "ef": 46, "le": 1})  # fmt: skip
ECN = _table({"not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3})

SYMBOLS: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "inet_proto": PROTOCOLS, "ct_state": CT_STATE, "ct_status": CT_STATUS, "tcp_flag": TCP_FLAGS,
    "fib_addrtype": FIB_ADDRTYPE, "icmp_type": ICMP_TYPE, "icmp_code": ICMP_CODE, "icmpv6_type": ICMPV6_TYPE,
    "icmpv6_code": ICMPV6_CODE, "icmpx_code": ICMPX_CODE, "ether_type": ETHER_TYPE, "nf_proto": NF_PROTO,
    "pkt_type": PKT_TYPE, "ct_dir": CT_DIR, "iface_type": IFACE_TYPE, "dscp": DSCP, "ecn": ECN,
})  # fmt: skip
BITMASK_TYPES = frozenset({"ct_state", "ct_status", "tcp_flag"})
_NAMES: dict[str, dict[int, str]] = {}
for _type, _table_ in SYMBOLS.items():
    _rev: dict[int, str] = {}
    for _name, _num in _table_.items():
        _rev.setdefault(_num, _name)  # the first name of a number is the one nft prints
    _NAMES[_type] = _rev


def name_of(datatype: str, number: int) -> str | None:
    """The name nft prints for ``number`` of ``datatype`` (None: nft prints the number)."""
    names = _NAMES.get(datatype)
    return names.get(number) if names else None


def number_of(datatype: str, name: str) -> int | None:
    """The number a symbol of ``datatype`` stands for (services accepted for inet_service)."""
    if datatype == "inet_service":
        return SERVICES.get(name)
    table = SYMBOLS.get(datatype)
    return table.get(name) if table else None


# -- time values: ``1h``, ``1m40s``, ``1m39s992ms``, ``10800s`` -----------------------------------------------
_TIME = re.compile(r"(\d+)(d|h|ms|m|s)")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_time(text: str) -> float | None:
    """Seconds for an nft time string, or None when it is not one."""
    pos, total = 0, 0.0
    for m in _TIME.finditer(text):
        if m.start() != pos:
            return None
        total += int(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        return None
    return round(total, 3)


def format_time(seconds: float) -> str:
    """Seconds as ``nft list ruleset`` prints a time (``1m40s``, ``3h``)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    if ms:
        out.append(f"{ms}ms")
    return "".join(out)


# -- base chain priorities ------------------------------------------------------------------------------
# name → (value, hooks it is valid on: None = every hook); the bridge family has names of its own (nft(8)).
_STD: Mapping[str, tuple[int, frozenset[str] | None]] = MappingProxyType({
    "raw": (-300, None), "mangle": (-150, None), "dstnat": (-100, frozenset({"prerouting"})),
    "filter": (0, None), "security": (50, None), "srcnat": (100, frozenset({"postrouting"})),
})  # fmt: skip
_BRIDGE: Mapping[str, tuple[int, frozenset[str] | None]] = MappingProxyType({
    "dstnat": (-300, frozenset({"prerouting"})), "filter": (-200, None), "out": (100, frozenset({"output"})),
    "srcnat": (300, frozenset({"postrouting"})),
})  # fmt: skip
_ONLY_FILTER = frozenset({"arp", "netdev"})
PRIORITY_NAMES = frozenset(_STD) | frozenset(_BRIDGE)
_PRIO = re.compile(r"^\s*([a-z]+)?\s*(?:([+-])\s*(\d+))?\s*$")


def _names(family: str) -> Mapping[str, tuple[int, frozenset[str] | None]]:
    if family == "bridge":
        return _BRIDGE
    if family in _ONLY_FILTER:
        return MappingProxyType({"filter": _STD["filter"]})
    return _STD


def resolve_priority(text: str, family: str) -> int | None:
    """``dstnat - 10`` → -110 for the family (bridge has its own names); a number as is; None if neither."""
    t = text.strip()
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    m = _PRIO.match(t)
    if not m or not m.group(1):
        return None
    std = _names(family).get(m.group(1)) or _STD.get(m.group(1))
    if std is None:
        return None
    offset = int(m.group(3) or 0)
    return std[0] + (-offset if m.group(2) == "-" else offset)


def priority_text(prio: int, family: str, hook: str | None) -> str:
    """The priority as ``nft list ruleset`` prints it: a standard name valid for the hook when the value is
    within 10 of it (``dstnat - 10``), else the number."""
    for name, (value, hooks) in _names(family).items():
        if hooks is not None and hook not in hooks:
            continue
        offset = prio - value
        if abs(offset) <= 10:
            if offset == 0:
                return name
            return f"{name} {'+' if offset > 0 else '-'} {abs(offset)}"
    return str(prio)
