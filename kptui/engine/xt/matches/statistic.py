"""``statistic``: ``--mode random --probability P`` is true with the kernel's exact probability (it stores
round(P·2³¹)); ``--mode nth --every N`` one packet in N."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

from ...flow import Chance, Check, CheckFn
from ...spec import Match
from ..unitbase import MatchUnit, Opt, RuleFacts, opt_text, undecidable
from ..values import PROBABILITY, Bad, enum, number, parse_u32

__all__ = ["STATISTIC", "probability_of"]


def probability_of(text: str) -> Fraction:
    """The kernel's probability for ``--probability TEXT``: it stores round(p·2³¹) and compares a 31-bit
    random number against it, so the exact probability is that integer over 2³¹."""
    try:
        p = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"probability '{text}' is not a number") from None
    stored = int((p * (1 << 31)).to_integral_value())
    return Fraction(max(0, min(stored, 1 << 31)), 1 << 31)


def _check(match: Match) -> CheckFn:
    mode = match.option("--mode")
    if mode is not None and mode.value == "nth":
        every = match.option("--every")
        n = (parse_u32(every.value, 1) or 1) if every else 1
        neg = bool(every and every.negated)
        p = Fraction(1, n)
        note = f"statistic nth every {n}: one packet in {n}"
        return lambda s, e: Chance(1 - p if neg else p, note)
    prob = match.option("--probability")
    if prob is None:
        return undecidable("statistic", "statistic without --probability")
    p = probability_of(prob.value)
    if prob.negated:
        p = 1 - p
    note = f"statistic random p={prob.value}"
    return lambda s, e: Chance(p, note)


def _compile(match: Match, recent: object) -> list[Check]:
    return [Check(_check(match), opt_text("statistic", match.options[0]) if match.options else "")]


def _validate(match: Match, facts: RuleFacts) -> Bad | None:
    mode = match.option("--mode")
    names = {o.name for o in match.options}
    if mode is None:
        return Bad("statistic: --mode is required")
    if mode.value == "random" and "--probability" not in names:
        return Bad("statistic: --mode random needs --probability")
    if mode.value == "nth" and "--every" not in names:
        return Bad("statistic: --mode nth needs --every")
    if mode.value == "random" and names & {"--every", "--packet"}:
        return Bad("statistic: both nth and random parameters given")
    if mode.value == "nth" and "--probability" in names:
        return Bad("statistic: both nth and random parameters given")
    if "--packet" in names and "--every" not in names:
        return Bad("statistic: --packet can only be used with --every")
    every, packet = match.option("--every"), match.option("--packet")
    if every and packet:
        n, p = parse_u32(every.value), parse_u32(packet.value)
        if n is None or p is None or p > n - 1:  # (a blanked shape value: not vouched for)
            return Bad("statistic: --packet can't be larger than --every")
    return None


STATISTIC = MatchUnit(
    "statistic",
    (Opt(("--mode",), (enum("--mode", ("random", "nth")),), invert=False),
     Opt(("--probability",), (PROBABILITY,)), Opt(("--every",), (number("--every", 1),)),
     Opt(("--packet",), (number("--packet"),), invert=False)),
    _compile,
    validate=_validate,
    doc="random or every-nth packets",
)
