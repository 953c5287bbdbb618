"""``addrtype`` (the kind of the source/destination address: LOCAL needs the node's addresses, else it is a
question) and ``iprange`` (``--src-range A-B``, ``--dst-range A-B``)."""

from __future__ import annotations

import ipaddress

from ...flow import Check, CheckFn, Env, Outcome, Undecidable, local_question
from ...spec import Match, Option
from ...trace_model import PacketState
from ..unitbase import MatchUnit, Opt, RuleFacts, always, per_option, undecidable
from ..values import IP_RANGE, Bad, parse_address, prefix_item, prefix_list

__all__ = ["ADDRTYPE", "IPRANGE"]

_TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE", "UNREACHABLE",
          "PROHIBIT", "THROW", "NAT", "XRESOLVE")  # fmt: skip
ADDR_TYPES = prefix_list("address type", _TYPES)


def _addrtype(field: str, arg: str) -> CheckFn:
    types = {prefix_item(t, _TYPES) or t.upper() for t in arg.split(",")}

    def fn(s: PacketState, e: Env) -> Outcome:
        addr = getattr(s, field)
        ip = ipaddress.ip_address(addr)
        if ip.is_multicast:
            return "MULTICAST" in types
        if addr == "255.255.255.255":
            return "BROADCAST" in types
        local = local_question(addr, e.node)
        if isinstance(local, Undecidable):  # one question, whichever type the rule asks for
            if "LOCAL" in types:
                return local if "UNICAST" not in types else True
            return local._replace(negated=True) if "UNICAST" in types else False
        kind = "LOCAL" if local else "UNICAST"
        return kind in types

    return fn


def _addrtype_one(opt: Option) -> CheckFn:
    if opt.name in ("--src-type", "--dst-type"):
        return _addrtype("src" if opt.name == "--src-type" else "dst", opt.args[0] if opt.args else "")
    return always  # --limit-iface-in/out: the address is checked on that interface only (same answer here)


def _addrtype_compile(match: Match, recent: object) -> list[Check]:
    return per_option("addrtype", match, _addrtype_one)


def _addrtype_validate(match: Match, facts: RuleFacts) -> Bad | None:
    names = {o.name for o in match.options}
    if not names & {"--src-type", "--dst-type"}:
        return Bad("addrtype: you must specify --src-type or --dst-type")
    if {"--limit-iface-in", "--limit-iface-out"} <= names:
        return Bad("addrtype: you can't specify both --limit-iface-in and --limit-iface-out")
    return None


ADDRTYPE = MatchUnit(
    "addrtype",
    (Opt(("--src-type",), (ADDR_TYPES,)), Opt(("--dst-type",), (ADDR_TYPES,)),
     Opt(("--limit-iface-in",), (), invert=False), Opt(("--limit-iface-out",), (), invert=False)),
    _addrtype_compile,
    validate=_addrtype_validate,
    doc="address type (LOCAL, UNICAST, …)",
)


def _iprange_one(opt: Option) -> CheckFn:
    lo, _, hi = opt.args[0].partition("-")
    a, b = parse_address(lo, None), parse_address(hi or lo, None)
    if a is None or b is None:
        return undecidable(f"iprange {opt.args[0]}", f"range '{opt.args[0]}' is not understood")
    field = "src" if opt.name == "--src-range" else "dst"
    version, x, y = a.version, int(a), int(b)

    def fn(s: PacketState, e: Env) -> Outcome:
        addr = ipaddress.ip_address(getattr(s, field))
        return addr.version == version and x <= int(addr) <= y

    return fn


def _iprange_compile(match: Match, recent: object) -> list[Check]:
    return per_option("iprange", match, _iprange_one)


IPRANGE = MatchUnit("iprange", (Opt(("--src-range",), (IP_RANGE,)), Opt(("--dst-range",), (IP_RANGE,))),
                    _iprange_compile, doc="address ranges")  # fmt: skip
