"""A rule's *shape*: its text with the values the registry can vouch for blanked out.

kube-proxy writes a few dozen kinds of rules whose values (addresses, ports, comments, chain names) vary; the
parser decodes and checks each distinct shape once, not each rule. A value is blanked (replaced by
:data:`~.values.PLACEHOLDER`) only right after an option whose value type has a fast pattern
(:func:`.registry.blankable_options`) and only when the value matches it — so the blanked value is valid
wherever it stands — and a value that does not match stays in the shape as written, where the decoder checks
it. Module names, protocols, states and targets iptables knows stay as written too (they change a shape's
meaning; there are few of them). One regular expression per family does the blanking, in C.
"""

from __future__ import annotations

import re

from .registry import TARGETS, blankable_options
from .values import CHAIN, VType

__all__ = ["blank_pattern"]

_END = r"(?![^ \t\n])"
_CACHE: dict[int | None, re.Pattern[str]] = {}
# The options whose values vary from rule to rule in a big dump (service addresses and ports, endpoints,
# comments, chain and list names, the statistic cascade), most frequent first. Other values stay in the shape as
# written: they take few distinct values, so they cost a few more shapes, and trying more options here would
# cost every rule of every dump a little.
_BLANKED = ("--comment", "-j", "-d", "--dport", "-s", "--to-destination", "--probability", "--name", "--sport")


def _pattern(family: int | None) -> re.Pattern[str]:
    by_type: dict[int, tuple[VType, list[str]]] = {}
    vouched = blankable_options(family)
    for spelling in _BLANKED:
        vtype = vouched.get(spelling)
        if vtype is not None:
            by_type.setdefault(id(vtype), (vtype, []))[1].append(spelling)

    def rank(item: tuple[VType, list[str]]) -> int:
        return min(_BLANKED.index(s) for s in item[1])

    groups: dict[str, list[str]] = {}  # first-character guard → alternatives (one guard test for all of them)
    for vtype, spellings in sorted(by_type.values(), key=rank):
        behind = "|".join(f"(?<= {re.escape(s)} )" for s in sorted(spellings, key=len, reverse=True))
        keep = ""
        if vtype is CHAIN:  # a target iptables knows changes the rule's meaning: keep its name
            keep = "(?!(?:" + "|".join(sorted(TARGETS, key=len, reverse=True)) + f"){_END})"
        groups.setdefault(vtype.first(family) or "", []).append(f"(?:{behind}){keep}(?:{vtype.fast(family)})")
    alternatives = [f"(?={first})(?:{'|'.join(alts)}){_END}" for first, alts in groups.items() if first]
    alternatives += [f"(?:{alt}){_END}" for alt in groups.get("", [])]
    return re.compile(" (?!-)(?:" + "|".join(alternatives) + ")")


def blank_pattern(family: int | None) -> re.Pattern[str]:
    """The blanking expression of ``family``'s dumps: ``pattern.sub(" " + PLACEHOLDER, " " + rest)`` is the
    shape of a rule whose options after ``-A CHAIN`` are ``rest``."""
    got = _CACHE.get(family)
    if got is None:
        got = _CACHE[family] = _pattern(family)
    return got
