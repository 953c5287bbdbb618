"""``icmp`` (``--icmp-type``, IPv4) and ``icmp6`` (``--icmpv6-type``, IPv6): a type name (any unambiguous prefix,
any case, as iptables reads it) or ``TYPE[/CODE]``. The packet's ICMP type is the first packet's
(:class:`flow.Env`); its code is not known, so a rule that names a code is a question once the type agrees."""

from __future__ import annotations

from collections.abc import Callable

from ...flow import Check, CheckFn, Env, Outcome, Undecidable
from ...spec import Match, Option
from ...trace_model import PacketState
from ..unitbase import Compile, MatchUnit, Opt, per_option, undecidable
from ..values import Bad, VType, parse_u32

__all__ = ["ICMP", "ICMP6", "parse_icmp_type"]

_V4 = (
    ("any", 255, None), ("echo-reply", 0, None), ("pong", 0, None), ("destination-unreachable", 3, None),
    ("network-unreachable", 3, 0), ("host-unreachable", 3, 1), ("protocol-unreachable", 3, 2),
    ("port-unreachable", 3, 3), ("fragmentation-needed", 3, 4), ("source-route-failed", 3, 5),
    ("network-unknown", 3, 6), ("host-unknown", 3, 7), ("network-prohibited", 3, 9), ("host-prohibited", 3, 10),
    ("TOS-network-unreachable", 3, 11), ("TOS-host-unreachable", 3, 12), ("communication-prohibited", 3, 13),
    ("host-precedence-violation", 3, 14), ("precedence-cutoff", 3, 15), ("source-quench", 4, None),
    ("redirect", 5, None), ("network-redirect", 5, 0), ("host-redirect", 5, 1), ("TOS-network-redirect", 5, 2),
    ("TOS-host-redirect", 5, 3), ("echo-request", 8, None), ("ping", 8, None), ("router-advertisement", 9, None),
    ("router-solicitation", 10, None), ("time-exceeded", 11, None), ("ttl-exceeded", 11, None),
    ("ttl-zero-during-transit", 11, 0), ("ttl-zero-during-reassembly", 11, 1), ("parameter-problem", 12, None),
    ("ip-header-bad", 12, 0), ("required-option-missing", 12, 1), ("timestamp-request", 13, None),
    ("timestamp-reply", 14, None), ("address-mask-request", 17, None), ("address-mask-reply", 18, None),
)  # fmt: skip
_V6 = (
    ("destination-unreachable", 1, None), ("no-route", 1, 0), ("communication-prohibited", 1, 1),
    ("beyond-scope", 1, 2), ("address-unreachable", 1, 3), ("port-unreachable", 1, 4), ("failed-policy", 1, 5),
    ("reject-route", 1, 6), ("packet-too-big", 2, None), ("time-exceeded", 3, None), ("ttl-exceeded", 3, None),
    ("ttl-zero-during-transit", 3, 0), ("ttl-zero-during-reassembly", 3, 1), ("parameter-problem", 4, None),
    ("bad-header", 4, 0), ("unknown-header-type", 4, 1), ("unknown-option", 4, 2), ("echo-request", 128, None),
    ("ping", 128, None), ("echo-reply", 129, None), ("pong", 129, None), ("router-solicitation", 133, None),
    ("router-advertisement", 134, None), ("neighbour-solicitation", 135, None),
    ("neighbor-solicitation", 135, None), ("neighbour-advertisement", 136, None),
    ("neighbor-advertisement", 136, None), ("redirect", 137, None),
)  # fmt: skip


def parse_icmp_type(text: str, v6: bool) -> tuple[int, int | None] | Bad:
    """(type, code or None) of an ``--icmp-type`` argument; type 255 is ``any``."""
    table = _V6 if v6 else _V4
    low = text.lower()
    hits = {(t, c) for name, t, c in table if name.lower().startswith(low)} if text else set()
    exact = [(t, c) for name, t, c in table if name.lower() == low]
    if exact:
        return exact[0]
    if len(hits) == 1:
        return next(iter(hits))
    if len(hits) > 1:
        return Bad(f"ambiguous ICMP type '{text}'")
    kind, slash, code = text.partition("/")
    t = parse_u32(kind, 0, 255)
    c = parse_u32(code, 0, 255) if slash else None
    if t is None or (slash and c is None):
        return Bad(f"invalid ICMP type '{text}'")
    return t, c


def _check(v6: bool) -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        got = parse_icmp_type(text, v6)
        return got if isinstance(got, Bad) else None

    return VType("ICMPv6 type" if v6 else "ICMP type", check)


_SAME_V6 = {8: 128, 0: 129}  # the echo types of an icmp rule, as ICMPv6 types


def _one_for(v6: bool) -> Callable[[Option], CheckFn]:
    def one(opt: Option) -> CheckFn:
        arg = opt.args[0] if opt.args else "any"
        got = parse_icmp_type(arg, v6)
        if isinstance(got, Bad):
            return undecidable(f"icmp type {arg}", f"ICMP type '{arg}' is not understood")
        want, code = got

        def fn(s: PacketState, e: Env) -> Outcome:
            if s.proto not in ("icmp", "icmpv6"):
                return False
            if want == 255 and not v6:
                return True
            mine = _SAME_V6.get(want, want) if s.proto == "icmpv6" and not v6 else want
            if e.icmp_type != mine:
                return False
            if code is None:
                return True
            return Undecidable(f"icmp code {want}/{code}", f"the packet's ICMP code is not known (rule: {arg})")

        return fn

    return one


def _compile(v6: bool) -> Compile:
    one = _one_for(v6)

    def compile_(match: Match, recent: object) -> list[Check]:
        return per_option(match.module, match, one)

    return compile_


ICMP = MatchUnit("icmp", (Opt(("--icmp-type",), (_check(False),)),), _compile(False),
                 family=4, doc="ICMP type")  # fmt: skip
ICMP6 = MatchUnit("icmp6", (Opt(("--icmpv6-type",), (_check(True),)),), _compile(True),
                  aliases=("icmpv6", "ipv6-icmp"), family=6, doc="ICMPv6 type")  # fmt: skip
