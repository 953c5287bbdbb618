"""``conntrack`` and ``state``: the connection's state (NEW, …, and the virtual SNAT/DNAT), its original and
reply tuple, status and direction, for a connection's first packet. State names are read as iptables reads
them: any case, any prefix (``est`` is ESTABLISHED), in iptables' order of trial."""

from __future__ import annotations

from ...flow import Check, CheckFn, Env, Outcome
from ...spec import Match, Option
from ...trace_model import PacketState
from ..unitbase import MatchUnit, Opt, per_option, undecidable
from ..values import PORT_RANGE, PROTOCOL, Bad, VType, parse_port_range, range_of, single_network
from .header import in_networks, protocol_check
from .l4 import port_check

__all__ = ["CONNTRACK", "STATE", "ct_states"]

_CT = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
_STATE = _CT[:5]
_STATUS = ("NONE", "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED")


def _resolve(item: str, names: tuple[str, ...]) -> str | None:
    if not item:
        return None
    low = item.lower()
    return next((n for n in names if n.lower()[: len(low)] == low), None)


def ct_states(text: str, names: tuple[str, ...] = _CT) -> set[str] | None:
    out = set()
    for item in text.split(","):
        got = _resolve(item, names)
        if got is None:
            return None
        out.add(got)
    return out


def _list_of(what: str, names: tuple[str, ...]) -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        if ct_states(text, names) is None:
            return Bad(f"bad {what} '{text}' (known: {', '.join(names)})")
        return None

    return VType(what, check)


def ctstate_check(arg: str, names: tuple[str, ...] = _CT) -> CheckFn:
    states = ct_states(arg, names)
    if states is None:
        return undecidable(f"ctstate {arg}", f"state '{arg}' is not understood")

    def fn(s: PacketState, e: Env) -> Outcome:
        if s.ct in states:
            return True
        if s.pre_ct:  # before conntrack looked the packet up: no entry, only the INVALID bit
            return False
        if "DNAT" in states and s.dnat and not s.untracked:
            return True
        return "SNAT" in states and s.snat and not s.untracked

    return fn


_ADDR_FIELDS = {"--ctorigsrc": "orig_src", "--ctorigdst": "orig_dst", "--ctreplsrc": "dst", "--ctrepldst": "src"}
_PORT_FIELDS = {"--ctorigsrcport": "orig_sport", "--ctorigdstport": "orig_dport", "--ctreplsrcport": "dport",
                "--ctrepldstport": "sport"}  # fmt: skip


def _one(opt: Option) -> CheckFn:
    arg = opt.args[0] if opt.args else ""
    name = opt.name
    if name == "--ctstate":
        return ctstate_check(arg)
    if name == "--ctproto":
        p = protocol_check(arg)
        return lambda s, e: not s.untracked and p(s, e) is True
    if name in _ADDR_FIELDS:
        check = in_networks(_ADDR_FIELDS[name], arg)
        return lambda s, e: not s.untracked and check(s, e) is True
    if name in _PORT_FIELDS:
        r = parse_port_range(arg)
        if isinstance(r, Bad):
            return undecidable(f"conntrack {name} {arg}", f"port '{arg}' is not understood")
        pc = port_check(_PORT_FIELDS[name], [r])
        return lambda s, e: not s.untracked and pc(s, e) is True
    if name == "--ctstatus":
        wanted = ct_states(arg, _STATUS) or set()
        return lambda s, e: "NONE" in wanted and not s.untracked  # a first packet: no status bits yet
    if name == "--ctdir":
        return lambda s, e: arg.upper().startswith("O")
    return undecidable(f"conntrack {name} {arg}", f"conntrack {name} cannot be evaluated for a first packet")


def _compile(match: Match, recent: object) -> list[Check]:
    return per_option("conntrack", match, _one)


_DIR = VType("ORIGINAL|REPLY", lambda t, f: None if _resolve(t, ("ORIGINAL", "REPLY")) and t else
             Bad(f"--ctdir: '{t}' is neither ORIGINAL nor REPLY"))  # fmt: skip
CONNTRACK = MatchUnit(
    "conntrack",
    (
        Opt(("--ctstate",), (_list_of("ctstate", _CT),)),
        Opt(("--ctproto",), (PROTOCOL,)),
        *(Opt((n,), (single_network(n),)) for n in _ADDR_FIELDS),
        *(Opt((n,), (PORT_RANGE,)) for n in _PORT_FIELDS),
        Opt(("--ctstatus",), (_list_of("ctstatus", _STATUS),)),
        Opt(("--ctexpire",), (range_of("--ctexpire", 0, 0xFFFFFFFF),)),
        Opt(("--ctdir",), (_DIR,), invert=False),
    ),
    _compile,
    validate=lambda m, f: None if m.options else Bad("conntrack: at least one option is required"),
    doc="connection tracking state",
)


def _state_compile(match: Match, recent: object) -> list[Check]:
    return per_option("state", match, lambda opt: ctstate_check(opt.args[0] if opt.args else "", _STATE))


STATE = MatchUnit("state", (Opt(("--state",), (_list_of("state", _STATE),)),), _state_compile,
                  doc="connection state (the old module)")  # fmt: skip
