"""``set``: ``--match-set NAME FLAGS`` asks whether the packet's address is a member of ipset NAME; known only
when the node context lists the set's members (``NodeContext.ipsets``), else a question."""

from __future__ import annotations

import ipaddress

from ...flow import Check, CheckFn, Env, Outcome, Undecidable
from ...model import Match, Option
from ...trace_model import PacketState
from ..unitbase import MatchUnit, Opt, RuleFacts, per_option, undecidable
from ..values import Bad, VType, number, string

__all__ = ["SET"]


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def _set(opt: Option) -> CheckFn:
    name, flags = opt.args[0], (opt.args[1] if len(opt.args) > 1 else "src")
    dims = flags.split(",")

    def fn(s: PacketState, e: Env) -> Outcome:
        sets = e.node.ipsets
        if sets is None or name not in sets or len(dims) != 1:
            return Undecidable(f"set {name} {flags}", f"the members of ipset {name} are not known")
        addr = ipaddress.ip_address(s.src if dims[0] == "src" else s.dst)
        return any(addr in _network(m) for m in sets[name] if _network(m).version == addr.version)

    return fn


def _one(opt: Option) -> CheckFn:
    if opt.name == "--match-set":
        return _set(opt)
    text = f"-m set {'! ' if opt.negated else ''}{opt.name} {' '.join(opt.args)}".rstrip()
    return undecidable(text, f"-m set {opt.name} cannot be decided from the packet and node")


def _compile(match: Match, recent: object) -> list[Check]:
    return per_option("set", match, _one)


def _flags(text: str, family: int | None) -> Bad | None:
    dims = text.split(",")
    if len(dims) > 6 or any(d not in ("src", "dst") for d in dims):
        return Bad(f"--match-set: bad flags '{text}' (src or dst, comma-separated, at most 6)")
    return None


def _validate(match: Match, facts: RuleFacts) -> Bad | None:
    if match.option("--match-set") is None:
        return Bad("set: you must specify --match-set")
    return None


_COUNTS = ("--packets-eq", "--packets-lt", "--packets-gt", "--bytes-eq", "--bytes-lt", "--bytes-gt")
SET = MatchUnit(
    "set",
    (Opt(("--match-set",), (string("--match-set", 31), VType("src|dst[,…]", _flags))),
     Opt(("--return-nomatch",), (), invert=False), Opt(("--update-counters",), ()),
     Opt(("--update-subcounters",), ()), *(Opt((c,), (number(c, 0, (1 << 64) - 1),)) for c in _COUNTS)),
    _compile,
    validate=_validate,
    doc="ipset membership",
)
