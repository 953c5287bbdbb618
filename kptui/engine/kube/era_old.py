"""Eras of the layouts people still paste (issue 14.4): era strings compared by their bounds, and the narrowing
of an era no newer chain settles by what only older kube-proxies wrote: kube-proxy 1.3's masquerade mark
``0x4d415351`` ("MASQ"), 5-decimal statistic probabilities, no canary chain, filter INPUT → KUBE-SERVICES.
A 2016 dump is not 1.21-1.24 merely because it lacks 1.24's chains."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..model import Chain, Table
from .facts import rows_of

__all__ = ["OLD_MASQ_MARK", "WEAK_ERAS", "era_at_least", "era_at_most", "era_bounds", "narrow_old_era"]

_PROB = re.compile(r"--probability ([0-9.]+)")
OLD_MASQ_MARK = "0x4d415351"  # "MASQ" in ASCII: the masquerade mark before KUBE-MARK-MASQ (kube-proxy 1.3 and older)
WEAK_ERAS = {"1.21-1.24": (21, 24), "1.21-1.23": (21, 23), "<=1.24": (None, 24)}  # what older dumps also look like
_ERA = re.compile(r"(?:1\.(\d+)(\+)?)?(?:(?:-|<=)1\.(\d+))?")


def era_bounds(era: str | None) -> tuple[int | None, int | None]:
    """The oldest and newest kube-proxy minor version an era string allows (``"1.21-1.23"`` → (21, 23),
    ``"<=1.20"`` → (None, 20), ``"1.25+"`` → (25, None), ``"1.24"`` → (24, 24); None: no bound)."""
    if not era:
        return None, None
    m = _ERA.fullmatch(era)
    if not m:
        return None, None
    lo = int(m.group(1)) if m.group(1) else None
    hi = int(m.group(3)) if m.group(3) else (None if m.group(2) or lo is None else lo)
    return lo, hi


def era_at_most(era: str | None, minor: int) -> bool:
    """The era is kube-proxy 1.MINOR or older for sure."""
    hi = era_bounds(era)[1]
    return hi is not None and hi <= minor


def era_at_least(era: str | None, minor: int) -> bool:
    lo = era_bounds(era)[0]
    return lo is not None and lo >= minor


def narrow_old_era(era: str, nat: Table | None, nat_chains: Mapping[str, Chain], filt_chains: Mapping[str, Chain],
                   evidence: list[str]) -> str:  # fmt: skip
    """Narrow an era no newer chain settles with what only older kube-proxies wrote (a 2016 dump is not
    1.21-1.24 merely because it lacks 1.24's chains)."""
    lo, hi = WEAK_ERAS[era]
    bounds: list[tuple[int | None, int, str]] = []  # (oldest, newest minor version, why)
    post = [*rows_of(nat_chains.get("KUBE-POSTROUTING")), *rows_of(nat_chains.get("POSTROUTING"))]
    if any(OLD_MASQ_MARK in row[1] for row in post):
        why = f"masquerade mark {OLD_MASQ_MARK} ('MASQ'): kube-proxy 1.3 or older (1.4 brought KUBE-MARK-MASQ)"
        bounds.append((None, 3, why))
    elif "KUBE-MARK-MASQ" in nat_chains:
        bounds.append((4, 99, "KUBE-MARK-MASQ: kube-proxy 1.4 or newer"))
    if _five_decimals(nat_chains):
        bounds.append((None, 16, "statistic probabilities written with 5 decimals: kube-proxy 1.16 or older"))
    if nat is not None and "PREROUTING" in nat_chains and "KUBE-PROXY-CANARY" not in nat_chains:
        bounds.append((None, 16, "no KUBE-PROXY-CANARY chain: older than kube-proxy 1.17, which creates it"))
    if any(row[4] == "KUBE-SERVICES" for row in rows_of(filt_chains.get("INPUT"))):
        bounds.append((13, 19, "filter INPUT jumps to KUBE-SERVICES: kube-proxy 1.13 to 1.19"))
    old = [b for b in bounds if b[1] < 99]
    if not old:
        return era
    new_hi = min(b[1] for b in old)
    new_lo = max((b[0] for b in bounds if b[0] is not None and b[0] <= new_hi), default=None)
    evidence.extend(why for _, _, why in bounds)
    if lo is not None and new_hi < lo:
        evidence.append(f"(the chains that suggested {era} exist in older kube-proxies too)")
    elif lo is not None:
        new_lo = max(new_lo or lo, lo)
    new_hi = min(new_hi, hi)
    return f"1.{new_lo}-1.{new_hi}" if new_lo is not None and new_lo < new_hi else f"<=1.{new_hi}"


def _five_decimals(nat_chains: Mapping[str, Chain]) -> bool:
    """Some statistic cascade uses 5-decimal probabilities (``0.33333``, saved as ``0.33332999982``)."""
    seen = 0
    for name, chain in nat_chains.items():
        if not name.startswith("KUBE-SVC-"):
            continue
        for row in rows_of(chain):
            m = _PROB.search(row[1])
            if m:
                text = m.group(1)
                p = float(text)
                decimals = len(text.partition(".")[2])
                if (decimals <= 5 and p not in (0.5, 0.25, 0.75)) or 0 < abs(p - round(p, 5)) < 5e-10:
                    return True
        seen += 1
        if seen >= 64:
            break
    return False
