"""The small values a rule is made of: its options, matches, target and counters.

They sit below :mod:`.model` (which re-exports them) so that the rule decoder (:mod:`.rules`) and printer
(:mod:`.render`) can build and read them without importing the model that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["HEADER", "Counters", "Match", "Option", "RuleSpec", "Target"]

HEADER = ""  # module name of the rule's own header fields (-s -d -i -o -p -f), which need no -m


class Counters(NamedTuple):
    packets: int
    bytes: int

    def __str__(self) -> str:
        return f"[{self.packets}:{self.bytes}]"


@dataclass(frozen=True, slots=True)
class Option:
    """One option with its arguments, e.g. ``! --dport 80`` → Option("--dport", ("80",), negated=True)."""

    name: str
    args: tuple[str, ...] = ()
    negated: bool = False

    @property
    def value(self) -> str:
        """The arguments joined by spaces ('' for a flag)."""
        return " ".join(self.args)


@dataclass(frozen=True, slots=True)
class Match:
    """A match: ``module`` is the ``-m`` module name, or HEADER ('') for one of -s/-d/-i/-o/-p/-f.

    ``implicit`` is true for a protocol match iptables loaded without ``-m`` (``-p tcp --dport 80``); it does
    not take part in equality, because iptables-save prints the same rule with ``-m tcp``.
    """

    module: str
    options: tuple[Option, ...] = ()
    implicit: bool = field(default=False, compare=False)

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None

    @property
    def negated(self) -> bool:
        return any(o.negated for o in self.options)


@dataclass(frozen=True, slots=True)
class Target:
    """``-j NAME opts`` (goto=False) or ``-g NAME`` (goto=True)."""

    name: str
    options: tuple[Option, ...] = ()
    goto: bool = False

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a rule says: its matches in evaluation order and its target (None when it has none)."""

    matches: tuple[Match, ...]
    target: Target | None
    # what kptui does not understand in this rule, though the rule loads (message, column, length, scope): an
    # unknown module or option, a host or service name, … — iptables-restore here would refuse the rule. Scope
    # "match": that match's checks are questions themselves; "rule": the rule as a whole is (xt.compile).
    problems: tuple[tuple[str, int, int, str], ...] = field(default=(), compare=False)
