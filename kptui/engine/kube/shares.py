"""Endpoint shares: kube-proxy's statistic cascades multiplied out exactly.

A KUBE-SVC chain lists its endpoints as ``-m statistic --mode random --probability p_i -j KUBE-SEP-…`` with
``p_i = 1/(n−i)``, the last one without statistic. A first packet reaches endpoint i when every earlier rule
said no and rule i said yes: share_i = p_i · Π_{j<i} (1 − p_j), with each p the kernel's stored value
(:func:`kptui.engine.matches.probability_of`: round(p·2³¹)/2³¹), so the shares are exact fractions.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from ..matches import probability_of

__all__ = ["CONDITIONAL", "UNCONDITIONAL", "cascade"]

UNCONDITIONAL = ""  # a rule that always jumps (the last of a cascade)
CONDITIONAL = "?"  # a rule whose match depends on the packet (kube-proxy never writes one): share unknown


@lru_cache(maxsize=256)
def _p(text: str) -> Fraction:
    return probability_of(text)


@lru_cache(maxsize=4096)
def cascade(steps: tuple[str, ...]) -> tuple[Fraction | None, ...]:
    """Shares of consecutive jumps: each step is a probability text (``"0.33333333349"``, ``"!0.5"`` for a
    negated one), :data:`UNCONDITIONAL` or :data:`CONDITIONAL`. What no step takes falls through the chain.

    Memoised: a dump has thousands of services with the same number of endpoints, hence the same cascade.
    """
    left = Fraction(1)
    shares: list[Fraction | None] = []
    for step in steps:
        if step == CONDITIONAL:
            shares.append(None)
            continue
        try:
            if step == UNCONDITIONAL:
                p = Fraction(1)
            elif step.startswith("!"):
                p = 1 - _p(step[1:])
            else:
                p = _p(step)
        except ValueError:  # not a number: the kernel would not have loaded it; say nothing about this share
            shares.append(None)
            continue
        shares.append(left * p)
        left -= left * p
    return tuple(shares)
