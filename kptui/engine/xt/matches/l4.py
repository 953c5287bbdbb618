"""Transport matches: ``tcp``, ``udp``, ``sctp``, ``dccp`` (loaded by ``-p`` too) and ``multiport``.

Ports are the packet's; ``--tcp-flags``/``--syn`` look at the first packet's flags (:class:`flow.Env`).
A port match is false for a packet of another protocol (the kernel only loads it with its ``-p``).
"""

from __future__ import annotations

from collections.abc import Callable

from ...flow import Check, CheckFn, Env, Outcome
from ...spec import Match, Option
from ...trace_model import PacketState
from ..unitbase import Compile, MatchUnit, Opt, RuleFacts, per_option, undecidable
from ..values import PORT_LIST, PORT_RANGE, Bad, VType, enum, number, parse_port_list, parse_port_range

__all__ = ["DCCP", "MULTIPORT", "SCTP", "TCP", "UDP", "port_check"]

_FLAGS = ("SYN", "ACK", "FIN", "RST", "URG", "PSH", "ALL", "NONE")
TCP_FLAGS = enum("tcp flags", _FLAGS, comma_list=True, fold=True)
_ALL_FLAGS = frozenset({"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"})
_SPORT = ("--sport", "--source-port")
_DPORT = ("--dport", "--destination-port")


def port_check(field: str, ranges: list[tuple[int, int]]) -> CheckFn:
    def fn(s: PacketState, e: Env) -> Outcome:
        port = getattr(s, field)
        return port is not None and any(lo <= port <= hi for lo, hi in ranges)

    return fn


def _ranges(text: str, multi: bool) -> list[tuple[int, int]] | None:
    got = parse_port_list(text) if multi else parse_port_range(text)
    if isinstance(got, Bad):
        return None
    return got if isinstance(got, list) else [got]


def _tcp_flags(text: str) -> set[str]:
    out: set[str] = set()
    for f in text.upper().split(","):
        out |= set(_ALL_FLAGS) if f == "ALL" else set() if f == "NONE" else {f}
    return out


def _l4(protos: tuple[str, ...], multi: bool) -> Callable[[Option], CheckFn]:
    def one(opt: Option) -> CheckFn:
        arg = opt.args[0] if opt.args else ""
        name = opt.name
        check: CheckFn
        if name in ("--ports",) or name in _SPORT + _DPORT + ("--sports", "--source-ports", "--dports",
                                                              "--destination-ports"):
            ranges = _ranges(arg, multi)
            if ranges is None:
                return undecidable(f"{name} {arg}", f"ports '{arg}' are not understood")
            if name == "--ports":
                sp, dp = port_check("sport", ranges), port_check("dport", ranges)
                check = lambda s, e: sp(s, e) is True or dp(s, e) is True
            elif name in _SPORT + ("--sports", "--source-ports"):
                check = port_check("sport", ranges)
            else:
                check = port_check("dport", ranges)
        elif name in ("--tcp-flags", "--syn"):
            mask, comp = (opt.args[0], opt.args[1]) if name == "--tcp-flags" else ("SYN,RST,ACK,FIN", "SYN")
            m, c = _tcp_flags(mask), _tcp_flags(comp)
            check = lambda s, e: (set(e.tcp_flags) & m) == c
        else:
            text = f"{name} {arg}".strip()
            return undecidable(text, f"{name} cannot be decided from the packet and node")
        return lambda s, e: s.proto in protos and check(s, e) is True

    return one


def _compile_for(module: str, protos: tuple[str, ...], multi: bool = False) -> Compile:
    one = _l4(protos, multi)

    def compile_(match: Match, recent: object) -> list[Check]:
        return per_option(module, match, one)

    return compile_


def _ports(*extra: Opt) -> tuple[Opt, ...]:
    return (Opt(_SPORT, (PORT_RANGE,)), Opt(_DPORT, (PORT_RANGE,)), *extra)


def _tcp_validate(match: Match, facts: RuleFacts) -> Bad | None:
    names = {o.name for o in match.options}
    if "--syn" in names and "--tcp-flags" in names:
        return Bad("tcp: only one of --syn or --tcp-flags allowed")
    return None


TCP = MatchUnit(
    "tcp",
    _ports(Opt(("--tcp-flags",), (TCP_FLAGS, TCP_FLAGS)), Opt(("--syn",), ()),
           Opt(("--tcp-option",), (number("--tcp-option", 0, 255),))),
    _compile_for("tcp", ("tcp",)),
    validate=_tcp_validate,
    doc="TCP ports and flags",
)
UDP = MatchUnit("udp", _ports(), _compile_for("udp", ("udp",)), doc="UDP ports")
_CHUNK_MODE = enum("--chunk-types", ("all", "any", "only"))
_CHUNKS = VType("chunk types", lambda t, f: None)
SCTP = MatchUnit(
    "sctp", _ports(Opt(("--chunk-types",), (_CHUNK_MODE, _CHUNKS))),
    _compile_for("sctp", ("sctp",)),
    doc="SCTP ports and chunk types",
)  # fmt: skip
DCCP = MatchUnit(
    "dccp",
    _ports(Opt(("--dccp-types",), (VType("dccp types", lambda t, f: None),)),
           Opt(("--dccp-option",), (number("--dccp-option", 0, 255),))),
    _compile_for("dccp", ("dccp",)),
    doc="DCCP ports and packet types",
)
_MULTI_PROTOS = ("tcp", "udp", "udplite", "sctp", "dccp")


def _multiport_validate(match: Match, facts: RuleFacts) -> Bad | None:
    if facts.proto not in _MULTI_PROTOS + ("6", "17", "136", "132", "33") or facts.proto_negated:
        return Bad("multiport needs '-p tcp', '-p udp', '-p udplite', '-p sctp' or '-p dccp'")
    if len(match.options) > 1:
        return Bad("multiport can only have one option")
    return None


MULTIPORT = MatchUnit(
    "multiport",
    (Opt(("--source-ports", "--sports"), (PORT_LIST,)), Opt(("--destination-ports", "--dports"), (PORT_LIST,)),
     Opt(("--ports",), (PORT_LIST,))),
    _compile_for("multiport", _MULTI_PROTOS, multi=True),
    validate=_multiport_validate,
    doc="up to 15 ports or ranges",
)
