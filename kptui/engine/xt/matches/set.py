"""``set``: ``--match-set NAME FLAGS`` asks whether the packet's values are a member of ipset NAME, decided as
the kernel does from the node's parsed ipsets (:mod:`kptui.engine.ipset_match`, ``NodeContext.ipsets``), else
a question."""

from __future__ import annotations

from ...flow import Check
from ...ipset_match import set_check
from ...spec import Match
from ..unitbase import MatchUnit, Opt, RuleFacts, opt_text
from ..values import Bad, VType, number, string

__all__ = ["SET"]


def _compile(match: Match, recent: object) -> list[Check]:
    # set_check applies its own '!' (``! --update-counters`` negates no membership)
    return [Check(set_check(match, opt), opt_text("set", opt)) for opt in match.options]


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
