"""Dispatch a decoded match or target to its unit, and say what of a rule kptui does not understand.

A match, option or value no unit understands compiles to a check that is an :class:`Undecidable` (the trace
forks, each path saying what it assumed), never to a guess; so does a whole rule whose problems only the rule
can show (:func:`rule_not_understood`: the old ``--opt ! value`` placement, an over-long argument, a target's
unknown option, a jump to a chain that does not exist).
"""

from __future__ import annotations

from collections.abc import Container

from ..flow import CONTINUE, GOTO, JUMP, Check, Effect, Undecidable
from ..graph import KNOWN_TARGETS
from ..packet import NodeContext
from ..spec import HEADER, Match, RuleSpec, Target
from ..trace_model import PacketState
from .matches.recent import NO_RECENT, RecentLists
from .registry import HEADER_UNIT, MATCHES, TARGETS
from .unitbase import MatchUnit, always, opt_text, undecidable

__all__ = ["apply_target", "compile_match", "match_not_understood", "not_understood_check", "rule_not_understood"]


def match_not_understood(unit: MatchUnit, match: Match) -> str | None:
    """Why ``match`` (of a known ``unit``) is not understood: an option the unit does not have, a wrong
    number of arguments, or a value kptui cannot read; None when it is understood."""
    for o in match.options:
        opt = unit.option(o.name)
        if opt is None:
            return f"{opt_text(match.module, o)}: an option kptui does not know"
        if len(o.args) != len(opt.args):
            return f"{opt_text(match.module, o)}: {len(opt.args)} arguments expected"
        for vtype, arg in zip(opt.args, o.args, strict=True):
            bad = vtype.check(arg, None)
            if bad is not None:
                return f"{opt_text(match.module, o)}: {bad.message}"
    return None


def compile_match(match: Match, recent: RecentLists = NO_RECENT) -> list[Check]:
    """The checks of one match, in order; a rule matches when every check is true."""
    module = match.module
    unit = HEADER_UNIT if module == HEADER else MATCHES.get(module)
    if unit is None:
        if not match.options:
            return [Check(undecidable(f"-m {module}", f"module {module} is unknown"), f"-m {module}")]
        return [Check(undecidable(opt_text(module, o), f"-m {module} {o.name} cannot be decided from the packet "
                                  "and node"), opt_text(module, o)) for o in match.options]  # fmt: skip
    why = match_not_understood(unit, match)
    if why is not None:
        text = opt_text(module, match.options[0]) if len(match.options) == 1 else \
            f"-m {module} " + " ".join(opt_text("", o) for o in match.options)  # fmt: skip
        return [Check(undecidable(f"not understood: {text}", f"not understood: {why}"), text)]
    checks = unit.compile(match, recent)
    return checks or [Check(always, f"-m {module}")]


def target_not_understood(target: Target, chains: Container[str]) -> str | None:
    """Why a rule's target is not understood: it is neither a chain of the table nor a target kptui knows."""
    if target.name in chains:
        return None
    if target.name not in TARGETS and target.name not in KNOWN_TARGETS:
        return (f"'{target.name}' is neither a chain of this table nor a known target (iptables-restore would "
                "refuse the rule)")  # fmt: skip
    return None


def rule_not_understood(spec: RuleSpec, chains: Container[str]) -> str | None:
    """What the rule as a whole leaves kptui unable to evaluate (None: every part is understood, or its
    matches' own checks already say what is not)."""
    reasons = [p[0] for p in spec.problems if p[3] == "rule"]
    if spec.target is not None:
        t = target_not_understood(spec.target, chains)
        if t is not None:
            reasons.append(t)
    return "; ".join(reasons) if reasons else None


def not_understood_check(line: int, reason: str) -> Check:
    """The check a not-understood rule starts with: one question per rule line (the trace forks on it)."""
    q = Undecidable(f"not understood: line {line}", f"line {line} is not understood: {reason}")
    return Check(lambda s, e: q, f"line {line} (not understood)")


def apply_target(target: Target, state: PacketState, node: NodeContext, table: str,
                 chains: Container[str]) -> Effect:  # fmt: skip
    """Apply ``target`` (a matched rule's) to ``state``. ``chains`` are the names of the table's chains."""
    name = target.name
    if name in chains:
        return Effect("GOTO" if target.goto else "JUMP", GOTO if target.goto else JUMP, state)
    unit = TARGETS.get(name)
    if unit is not None:
        return unit.apply(target, state, node, table)
    if name in KNOWN_TARGETS:
        return Effect("UNKNOWN", CONTINUE, state, f"target {name} is not modelled; assumed to let the packet on")
    return Effect("UNKNOWN", CONTINUE, state,
                  f"'{name}' is neither a chain of table {table} nor a known target (the kernel would have "
                  f"refused this rule); assumed to continue")  # fmt: skip
