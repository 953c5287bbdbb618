"""Whether a dump can be traced at all, and what every trace through it must say about the dump itself.

A trace walks the built-in chains of the hooks a packet meets. When a dump cannot say which table its chains
belong to (an ``iptables -S`` listing nothing places), or holds none of those chains, a walk would meet no
rule and answer ACCEPT with no hops: a confident wrong answer. :func:`trace_refusal` says why such a dump is
refused instead (the trace command and the explorer call it before tracing). :func:`input_notes` are the
caveats a trace of an incomplete dump carries: rules were elided or filtered out of the paste, tables were
inferred, tables are missing.
"""

from __future__ import annotations

from .model import BUILTIN_CHAINS, Ruleset
from .schedule import Netfilter

__all__ = ["input_notes", "trace_refusal"]

_HOOKS = frozenset(c for cs in BUILTIN_CHAINS.values() for c in cs)
_HOW = ("run 'iptables-save' (or 'ip6tables-save') on the node and paste its whole output; 'iptables -t TABLE "
        "-S' listings also work when each follows its command line")


def _ruleset(rules: Ruleset | Netfilter, family: int) -> Ruleset | None:
    return Netfilter.of(rules, family).ruleset(family)


def trace_refusal(rules: Ruleset | Netfilter, family: int) -> str | None:
    """Why a packet of ``family`` (4 or 6) cannot be traced through ``rules``; None when it can."""
    if isinstance(rules, Netfilter) and rules.nft is not None:
        return None  # nft base chains exist on their own
    rs = _ruleset(rules, family)
    if rs is None:
        held = ", ".join(sorted({r.family or "?" for r in _all(rules)})) or "no"
        return f"this dump holds {held} rules, not IPv{family}: there is nothing to trace an IPv{family} packet through"
    if rs.unplaced_chains:
        names = ", ".join(rs.unplaced_chains[:8]) + (f" and {len(rs.unplaced_chains) - 8} more"
                                                     if len(rs.unplaced_chains) > 8 else "")  # fmt: skip
        return (f"cannot trace: the table of {names} cannot be told (iptables -S output has no table headers, and "
                f"nothing in it says which table it lists); {_HOW}")
    placed = [(t, c) for t, table in rs.tables.items() if t is not None for c in table.chains]
    if not any(c in BUILTIN_CHAINS.get(t, ()) for t, c in placed):
        return (f"cannot trace: this dump holds none of the built-in chains ({', '.join(sorted(_HOOKS))}) where a "
                f"packet meets the rules, so a trace would meet no rule; {_HOW}")
    return None


def _all(rules: Ruleset | Netfilter) -> list[Ruleset]:
    if isinstance(rules, Netfilter):
        return list(rules.xtables.values())
    return [rules, *rules.companions]


def input_notes(rules: Ruleset | Netfilter, family: int) -> tuple[str, ...]:
    """What a trace through ``rules`` must say about the dump: rules missing from it, tables inferred, the
    tables a kube-proxy node has that it lacks."""
    rs = _ruleset(rules, family)
    if rs is None:
        return ()
    notes = [f"rules are missing from this dump ({why}): the answer may miss what they do"
             for why in rs.rules_missing]  # fmt: skip
    notes += [f"table {table} was inferred: {why}" for table, why in rs.inferred_tables]
    if rs.form == "spec" or rs.rules_missing:
        absent = [t for t in ("nat", "filter") if t not in rs.tables]
        if absent:
            notes.append(f"this dump holds no {' and no '.join(absent)} table: whatever the node has there is not "
                         "part of this answer")  # fmt: skip
    return tuple(notes)
