"""``parse_ipsets(text) -> IpsetTable``: the output of ``ipset save`` or ``ipset list`` (also concatenated, also
``ipset list -t``, whose members are then unknown).

``ipset save`` prints ``create NAME TYPE OPTIONS`` then ``add NAME ELEMENT [OPTIONS]`` per member; ``ipset list``
prints blocks of ``Name:``, ``Type:``, ``Header:`` (the create options), … ``Members:`` and one element per line.
Elements are decoded per dimension of the set type (:data:`kptui.engine.ipset.DIMENSIONS`): addresses with an
optional prefix or range (``hash:ip`` ``netmask`` applies), ``[proto:]port[-port]`` (tcp when no protocol is
named; ``icmp:echo-request``, ``icmp:8/0``), marks, interfaces, MACs, member set names. A line kptui cannot
read is an error with its file, line and column; options it does not know are warnings.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import Diagnostic, ParseError
from .ipset import DIMENSIONS, Element, IpSet, IpsetTable, Part
from .packet import PROTOCOLS

__all__ = ["parse_ipsets"]

_FLAG_OPTIONS = frozenset({"counters", "comment", "skbinfo", "forceadd", "-exist", "-!"})
_VALUE_OPTIONS = frozenset({"family", "hashsize", "maxelem", "netmask", "timeout", "range", "markmask", "size",
                            "bucketsize", "initval", "revision"})  # fmt: skip
_ELEMENT_VALUE = frozenset({"timeout", "packets", "bytes", "comment", "skbmark", "skbprio", "skbqueue"})
_ICMP_NAMES = {"echo-reply": (0, 0), "pong": (0, 0), "network-unreachable": (3, 0), "host-unreachable": (3, 1),
               "protocol-unreachable": (3, 2), "port-unreachable": (3, 3), "fragmentation-needed": (3, 4),
               "source-route-failed": (3, 5), "network-unknown": (3, 6), "host-unknown": (3, 7),
               "source-quench": (4, 0), "redirect": (5, 0), "echo-request": (8, 0), "ping": (8, 0),
               "router-advertisement": (9, 0), "router-solicitation": (10, 0), "ttl-zero-during-transit": (11, 0),
               "ttl-zero-during-reassembly": (11, 1), "parameter-problem": (12, 0), "timestamp-request": (13, 0),
               "timestamp-reply": (14, 0)}  # fmt: skip
_ICMP6_NAMES = {"destination-unreachable": (1, 0), "no-route": (1, 0), "port-unreachable": (1, 4),
                "packet-too-big": (2, 0), "ttl-zero-during-transit": (3, 0), "parameter-problem": (4, 0),
                "echo-request": (128, 0), "ping": (128, 0), "echo-reply": (129, 0), "pong": (129, 0)}  # fmt: skip
_TOKEN = re.compile(r'"[^"]*"|\S+')


class _Line:
    def __init__(self, number: int, text: str, source: str | None) -> None:
        self.number, self.text, self.source = number, text, source

    def error(self, message: str, token: str | None = None) -> ParseError:
        col = self.text.find(token) if token else 0
        return ParseError(Diagnostic(message, self.number, max(col, 0), len(token or self.text) or 1, self.text,
                                     self.source))  # fmt: skip

    def warning(self, message: str, token: str | None = None) -> Diagnostic:
        col = self.text.find(token) if token else 0
        return Diagnostic(message, self.number, max(col, 0), len(token or self.text) or 1, self.text, self.source,
                          "warning")  # fmt: skip


class _Builder:
    """Sets under construction, in the order they appear."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.heads: dict[str, tuple[str, str | None, tuple[tuple[str, str], ...], int, bool]] = {}
        self.elements: dict[str, list[Element]] = {}
        self.warnings: list[Diagnostic] = []

    def create(self, ln: _Line, name: str, set_type: str, tokens: list[str], members_known: bool = True) -> None:
        if name in self.heads:
            raise ln.error(f"ipset {name} is created twice", name)
        if set_type not in DIMENSIONS:
            self.warnings.append(ln.warning(f"set type {set_type} is not modelled: matches against {name} stay "
                                            "undecidable", set_type))  # fmt: skip
        options = self.options(ln, tokens)
        family = dict(options).get("family")
        if family is None and set_type.startswith(("hash:", "bitmap:ip")) and set_type != "hash:mac":
            family = "inet"
        if family is not None and family not in ("inet", "inet6"):
            raise ln.error(f"unknown family '{family}' (inet or inet6)", family)
        self.heads[name] = (set_type, family, options, ln.number, members_known)
        self.elements[name] = []

    def options(self, ln: _Line, tokens: list[str]) -> tuple[tuple[str, str], ...]:
        """Create options: flags (``counters``, ``comment``, …) stand alone, every other option has a value."""
        out: list[tuple[str, str]] = []
        i = 0
        while i < len(tokens):
            key = tokens[i]
            if key in _FLAG_OPTIONS:
                out.append((key, ""))
                i += 1
                continue
            if key not in _VALUE_OPTIONS:
                self.warnings.append(ln.warning(f"unknown ipset option '{key}' ignored", key))
            if i + 1 >= len(tokens):
                raise ln.error(f"option '{key}' needs a value", key)
            out.append((key, tokens[i + 1].strip('"')))
            i += 2
        return tuple(out)

    def add(self, ln: _Line, name: str, text: str, tokens: list[str]) -> None:
        head = self.heads.get(name)
        if head is None:
            raise ln.error(f"ipset {name} gets members before it is created (no 'create {name} …' line)", name)
        set_type, family, set_options, _, _ = head
        nomatch = False
        options: list[tuple[str, str]] = []
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok == "nomatch":
                nomatch = True
            elif tok in ("-exist", "-!"):
                pass
            elif tok in _ELEMENT_VALUE and i + 1 < len(tokens):
                options.append((tok, tokens[i + 1].strip('"')))
                i += 1
            elif tok in ("before", "after") and i + 1 < len(tokens):
                options.append((tok, tokens[i + 1]))
                i += 1
            else:
                self.warnings.append(ln.warning(f"unknown element option '{tok}' ignored", tok))
            i += 1
        dims = DIMENSIONS.get(set_type)
        if dims is None:
            self.elements[name].append(Element(text, (), nomatch, tuple(options), ln.number))
            return
        for parts in _element_parts(ln, set_type, dims, family, dict(set_options), text):
            self.elements[name].append(Element(text, parts, nomatch, tuple(options), ln.number))

    def finish(self) -> IpsetTable:
        sets = {}
        for name, (set_type, family, options, line, known) in self.heads.items():
            sets[name] = IpSet(name, set_type, family, options, tuple(self.elements[name]), known, line)
        return IpsetTable(sets, self.source, tuple(self.warnings))


def parse_ipsets(text: str, source: str | None = None) -> IpsetTable:
    """The sets of ``ipset save`` or ``ipset list`` output; ParseError (with file and line) on bad input."""
    b = _Builder(source)
    current: str | None = None  # the set whose ``ipset list`` block is being read
    block: dict[str, str] = {}
    in_members = False
    block_line: _Line | None = None

    def close_block() -> None:
        nonlocal current, in_members, block_line
        if current is not None and current not in b.heads and block_line is not None:
            open_block(block_line, members_known=False)
        current, in_members, block_line = None, False, None
        block.clear()

    def open_block(ln: _Line, *, members_known: bool) -> None:
        if current is None:
            return
        set_type = block.get("Type")
        if set_type is None:
            raise ln.error(f"ipset list block of {current} has no 'Type:' line")
        header = _TOKEN.findall(block.get("Header", ""))
        b.create(ln, current, set_type, header, members_known)

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        ln = _Line(number, line, source)
        stripped = line.strip()
        if not stripped:
            if current is not None:
                close_block()
            continue
        if stripped.startswith("#"):
            continue
        if stripped.startswith("<"):
            raise ln.error("this is XML (ipset list -o xml): give the output of 'ipset save' or plain 'ipset list'")
        if line.startswith("Name: "):
            close_block()
            current, block_line = line[6:].strip(), ln
            continue
        if current is not None:
            if in_members:
                tokens = _TOKEN.findall(stripped)
                b.add(ln, current, tokens[0], tokens[1:])
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise ln.error(f"expected 'Field: value' in the ipset list block of {current}")
            if key == "Members":
                in_members = True
                open_block(ln, members_known=True)
            else:
                block[key] = value.strip()
            continue
        tokens = _TOKEN.findall(stripped)
        verb = tokens[0]
        if verb in ("-N", "-A") or verb.startswith("--"):
            raise ln.error("this looks like the old ipset 4 save format: give the output of 'ipset save' (ipset 6 "
                           "or newer)", verb)  # fmt: skip
        if verb == "create" and len(tokens) >= 3:
            b.create(ln, tokens[1], tokens[2], tokens[3:])
        elif verb == "add" and len(tokens) >= 3:
            b.add(ln, tokens[1], tokens[2], tokens[3:])
        elif verb in ("create", "add"):
            raise ln.error(f"'{verb}' needs a set name and a {'type' if verb == 'create' else 'member'}", verb)
        else:
            raise ln.error(f"not ipset save or ipset list output: unexpected '{verb}'", verb)
    close_block()
    return b.finish()


# -- elements -------------------------------------------------------------------------------------------------
def _element_parts(ln: _Line, set_type: str, dims: tuple[str, ...], family: str | None,
                   options: dict[str, str], text: str) -> list[tuple[Part, ...]]:  # fmt: skip
    """The decoded parts of one element; several when a range expands into networks or ports."""
    fields = [text] if dims == ("set",) else text.split(",")
    if len(fields) != len(dims):
        raise ln.error(f"'{text}' does not fit set type {set_type} ({len(dims)} part"
                       f"{'s' if len(dims) != 1 else ''}: {','.join(dims)})", text)  # fmt: skip
    version = 6 if family == "inet6" else 4
    per_dim: list[list[Part]] = []
    for dim, value in zip(dims, fields, strict=True):
        if dim in ("ip", "net"):
            per_dim.append(_addresses(ln, dim, value, version, set_type, options))
        elif dim == "port":
            per_dim.append(_ports(ln, value, set_type, version))
        elif dim == "mark":
            try:
                mask = int(options.get("markmask", "0xffffffff"), 0)
                per_dim.append([Part("mark", int(value, 0) & mask)])
            except ValueError:
                raise ln.error(f"mark '{value}' is not a number", value) from None
        elif dim == "mac":
            if not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", value):
                raise ln.error(f"'{value}' is not a MAC address", value)
            per_dim.append([Part("mac", value.lower())])
        else:  # iface, set
            per_dim.append([Part(dim, value)])
    combos: list[tuple[Part, ...]] = [()]
    for parts in per_dim:
        combos = [c + (p,) for c in combos for p in parts]
        if len(combos) > 65536:
            raise ln.error(f"'{text}' expands to more than 65536 elements", text)
    return combos


def _addresses(ln: _Line, dim: str, value: str, version: int, set_type: str, options: dict[str, str]) -> list[Part]:
    bits = 32 if version == 4 else 128
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    try:
        if "-" in value and "/" not in value:
            lo_text, hi_text = value.split("-", 1)
            lo, hi = ipaddress.ip_address(lo_text), ipaddress.ip_address(hi_text)
            if isinstance(lo, ipaddress.IPv4Address) and isinstance(hi, ipaddress.IPv4Address):  # noqa: SIM114
                nets.extend(ipaddress.summarize_address_range(lo, hi))
            elif isinstance(lo, ipaddress.IPv6Address) and isinstance(hi, ipaddress.IPv6Address):
                nets.extend(ipaddress.summarize_address_range(lo, hi))
            else:
                raise ValueError(value)
        else:
            nets.append(ipaddress.ip_network(value, strict=False))
    except (ValueError, TypeError):
        raise ln.error(f"'{value}' is not an IPv{version} address, network or range", value) from None
    out = []
    netmask = options.get("netmask")
    for net in nets:
        if net.version != version:
            raise ln.error(f"'{value}' is not an IPv{version} address (the set's family)", value)
        prefix = net.prefixlen
        if dim == "ip" and netmask is not None and set_type in ("hash:ip", "bitmap:ip"):
            prefix = min(prefix, _netmask_bits(ln, netmask, bits))
        base = int(net.network_address) >> (bits - prefix) << (bits - prefix) if prefix < bits else int(
            net.network_address)  # fmt: skip
        out.append(Part("ip", base, prefix, version))
    return out


def _netmask_bits(ln: _Line, netmask: str, bits: int) -> int:
    if netmask.isdigit():
        return min(int(netmask), bits)
    try:
        return ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        raise ln.error(f"netmask '{netmask}' is neither a prefix length nor a dotted mask", netmask) from None


def _ports(ln: _Line, value: str, set_type: str, version: int) -> list[Part]:
    if set_type == "bitmap:port":
        lo, hi = _port_range(ln, value, value)
        return [Part("port", -1 << 16 | p) for p in range(lo, hi + 1)]
    proto_name, sep, port_text = value.rpartition(":")
    if not sep:
        proto_name, port_text = "tcp", value
    proto_name = proto_name.lower()
    if proto_name.isdigit():
        proto = int(proto_name)
    elif proto_name in PROTOCOLS:
        proto = PROTOCOLS[proto_name]
    elif proto_name == "ipv6-icmp":
        proto = 58
    else:
        raise ln.error(f"unknown protocol '{proto_name}' in '{value}'", value)
    if proto in (1, 58):
        names = _ICMP_NAMES if proto == 1 else _ICMP6_NAMES
        if port_text in names:
            t, c = names[port_text]
        else:
            t_text, _, c_text = port_text.partition("/")
            if not (t_text.isdigit() and (not c_text or c_text.isdigit())):
                raise ln.error(f"unknown ICMP type '{port_text}' in '{value}'", value)
            t, c = int(t_text), int(c_text or 0)
        return [Part("port", proto << 16 | (t << 8 | c))]
    if proto not in (6, 17, 132, 136):
        return [Part("port", proto << 16)]  # a protocol without ports: the kernel compares the protocol alone
    lo, hi = _port_range(ln, port_text, value)
    return [Part("port", proto << 16 | p) for p in range(lo, hi + 1)]


def _port_range(ln: _Line, text: str, whole: str) -> tuple[int, int]:
    lo_text, _, hi_text = text.partition("-")
    if not lo_text.isdigit() or (hi_text and not hi_text.isdigit()):
        raise ln.error(f"'{text}' is not a port or port range", whole)
    lo, hi = int(lo_text), int(hi_text or lo_text)
    if lo > hi:
        lo, hi = hi, lo
    if hi > 65535:
        raise ln.error(f"port {hi} is out of range (0-65535)", whole)
    return lo, hi
