"""What an iptables match or target *unit* is: one module's option set (names, arguments, value types, whether
``!`` may negate it, whether it may repeat), its checks over a whole match, and its compile or apply function.

A :class:`MatchUnit` compiles a decoded :class:`~kptui.engine.model.Match` to the walker's checks
(:mod:`kptui.engine.flow`); a :class:`TargetUnit` applies a :class:`~kptui.engine.model.Target` to the packet
state and says how the walk goes on. The decoder (:mod:`.decode`) reads options with the units' option sets
the way iptables' getopt does, and validates every argument with its :class:`~.values.VType` where the option
is declared. Adding a module is one unit in its family's file and one line in :mod:`.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ..flow import Chance, Check, CheckFn, Effect, Env, Outcome, Undecidable
from ..spec import Match, Option, Target
from .values import ANY, Bad, VType

if TYPE_CHECKING:
    from ..packet import NodeContext
    from ..trace_model import PacketState
    from .matches.recent import RecentLists

__all__ = ["Apply", "Compile", "MatchUnit", "Opt", "RuleFacts", "TargetUnit", "TargetValidate", "Validate", "always",
           "negate", "never", "opt_text", "per_option", "undecidable"]


@dataclass(frozen=True)
class Opt:
    """One option: its spellings (the first is the one iptables-save prints), one value type per argument
    (``()`` for a flag), whether ``!`` may negate it, whether it may be given more than once."""

    names: tuple[str, ...]
    args: tuple[VType, ...] = (ANY,)
    invert: bool = True
    repeat: bool = False
    mandatory: bool = False

    @property
    def name(self) -> str:
        return self.names[0]


class RuleFacts(NamedTuple):
    """What a unit's whole-match check may consult: the rule's own protocol (``-p``) and the family."""

    proto: str | None  # lower-cased, None when the rule has no -p
    proto_negated: bool
    family: int | None


Compile = Callable[[Match, "RecentLists"], list[Check]]
Validate = Callable[[Match, RuleFacts], "Bad | None"]
Apply = Callable[[Target, "PacketState", "NodeContext", str], Effect]
TargetValidate = Callable[[Target, RuleFacts], "Bad | None"]


@dataclass(frozen=True)
class MatchUnit:
    name: str
    options: tuple[Opt, ...]
    compile: Compile
    aliases: tuple[str, ...] = ()
    family: int | None = None  # 4 or 6: the module exists for that family only (icmp / icmp6)
    validate: Validate | None = None
    doc: str = ""
    _by_name: dict[str, Opt] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for o in self.options:
            for n in o.names:
                self._by_name.setdefault(n, o)

    def option(self, name: str) -> Opt | None:
        return self._by_name.get(name)


@dataclass(frozen=True)
class TargetUnit:
    name: str
    options: tuple[Opt, ...] | None  # None: kptui does not know this target's options (any is kept, not understood)
    apply: Apply
    tables: tuple[str, ...] = ()  # the only tables it exists in (empty: any); what -S table inference reads
    validate: TargetValidate | None = None
    doc: str = ""
    _by_name: dict[str, Opt] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for o in self.options or ():
            for n in o.names:
                self._by_name.setdefault(n, o)

    def option(self, name: str) -> Opt | None:
        return self._by_name.get(name)


# -- helpers units share -------------------------------------------------------------------------------------
def opt_text(module: str, opt: Option) -> str:
    """``-m tcp ! --dport 80`` (``module`` '' for the rule's own header fields)."""
    head = f"-m {module} " if module else ""
    neg = "! " if opt.negated else ""
    return f"{head}{neg}{opt.name} {' '.join(opt.args)}".rstrip()


def negate(fn: CheckFn) -> CheckFn:
    def neg(s: PacketState, e: Env) -> Outcome:
        r = fn(s, e)
        if r is True or r is False:
            return not r
        if isinstance(r, Chance):
            return Chance(1 - r.p, f"not ({r.note})")
        if isinstance(r, Undecidable):
            return r._replace(negated=not r.negated)
        return r  # Choices are never negated: their checks are compiled as they are

    return neg


def undecidable(key: str, reason: str) -> CheckFn:
    q = Undecidable(key, reason)
    return lambda s, e: q


def per_option(module: str, match: Match, one: Callable[[Option], CheckFn]) -> list[Check]:
    """One check per option (``!`` applied), for modules whose options are independent tests."""
    checks = []
    for opt in match.options:
        fn = one(opt)
        checks.append(Check(negate(fn) if opt.negated else fn, opt_text(module, opt)))
    return checks


def always(s: PacketState, e: Env) -> Outcome:
    return True


def never(s: PacketState, e: Env) -> Outcome:
    return False
