"""``mark`` and ``connmark``: ``--mark VALUE[/MASK]`` is true when (mark AND MASK) == VALUE (the packet's mark,
or the connection's)."""

from __future__ import annotations

from ...flow import Check, CheckFn
from ...spec import Match, Option
from ..unitbase import Compile, MatchUnit, Opt, per_option, undecidable
from ..values import VALUE_MASK, parse_value_mask

__all__ = ["CONNMARK", "MARK"]


def mark_check(field: str, arg: str) -> CheckFn:
    got = parse_value_mask(arg)
    if got is None:
        return undecidable(f"mark {arg}", f"mark '{arg}' is not understood")
    v, m = got
    return lambda s, e: (getattr(s, field) & m) == v


def _compile(field: str) -> Compile:
    def one(opt: Option) -> CheckFn:
        return mark_check(field, opt.args[0] if opt.args else "")

    def compile_(match: Match, recent: object) -> list[Check]:
        return per_option(match.module, match, one)

    return compile_


_OPTS = (Opt(("--mark",), (VALUE_MASK,), mandatory=True),)
MARK = MatchUnit("mark", _OPTS, _compile("mark"), doc="the packet's mark")
CONNMARK = MatchUnit("connmark", _OPTS, _compile("ctmark"), doc="the connection's mark")
