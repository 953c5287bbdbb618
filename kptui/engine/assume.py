"""What a path assumed about the things the node context does not say, and how paths group by it.

A *fact* is ``(key, pred, truth)``: for a yes/no question (``pred`` None: "is 10.0.0.2 a node address?") its
answer; for a variable with a value (``pred`` ``("eq", "eth0")`` or ``("prefix", "cali")`` about the input
interface) whether the value satisfies the predicate. :func:`decide` says what a path's facts already imply for
a new question — the same question is always answered the same way, and a question that no value consistent
with the facts can answer "yes" (``-i docker0`` after ``-i cali+`` held) is answered "no", not forked.

:func:`scenarios` groups the paths of a trace by what they assumed: each scenario is one consistent set of
answers, and the paths that can happen under it, whose probabilities sum to 1. A path that never met a
question belongs to every scenario that does not contradict it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

from .flow import Pred

__all__ = ["Fact", "Scenario", "decide", "fact_phrase", "fact_text", "satisfiable", "scenarios"]

Fact = tuple[str, "Pred | None", bool]


def _holds(name: str, pred: Pred) -> bool:
    kind, arg = pred
    if kind == "eq":
        return name == arg
    if kind == "prefix":
        return name.startswith(arg)
    if kind == "in":  # alternatives (space- or comma-separated), each a name or a prefix ending in '*'
        return any(name.startswith(a[:-1]) if a.endswith("*") else name == a for a in _alternatives(arg))
    raise ValueError(f"unknown predicate {kind!r}")


def _alternatives(arg: str) -> list[str]:
    return arg.replace(",", " ").split()


def _candidates(preds: Sequence[Pred]) -> list[str]:
    """Names that between them realise every pattern of truths the predicates can take (module docstring):
    each literal name, each prefix followed by a character no name has, and a name that is none of them."""
    out = ["\x00"]
    for kind, arg in preds:
        parts = _alternatives(arg) if kind == "in" else [arg + ("*" if kind == "prefix" else "")]
        for a in parts:
            out.append(a[:-1] + "\x00" if a.endswith("*") else a)
    return out


def satisfiable(constraints: Sequence[tuple[Pred, bool]]) -> bool:
    """Whether some value satisfies every (predicate, truth) pair."""
    if not constraints:
        return True
    return any(all(_holds(c, p) == t for p, t in constraints) for c in _candidates([p for p, _ in constraints]))


def decide(facts: Sequence[Fact], key: str, pred: Pred | None) -> bool | None:
    """What ``facts`` imply about ``key`` (and ``pred``): True, False, or None (not implied either way)."""
    relevant = [(p, t) for k, p, t in facts if k == key]
    if not relevant:
        return None
    if pred is None:
        for p, t in relevant:
            if p is None:
                return t
        return None
    valued = [(p, t) for p, t in relevant if p is not None]
    can_true = satisfiable([*valued, (pred, True)])
    can_false = satisfiable([*valued, (pred, False)])
    if can_true and not can_false:
        return True
    if can_false and not can_true:
        return False
    return None


def fact_phrase(key: str, pred: Pred | None, truth: bool) -> str:
    """The assumption as a condition: ``10.0.0.2 is a node address``, ``input interface is not cali+``,
    ``set ALLOW src true``."""
    if key.startswith("local "):
        return f"{key.removeprefix('local ')} is {'' if truth else 'not '}a node address"
    if key.startswith("affinity ") and pred is not None:
        return f"the client is {'' if truth else 'not '}bound to {pred[1]}"
    if pred is None:
        return f"{key} {'true' if truth else 'false'}"
    if key == "iface:in":
        what = "input interface"
    elif key.startswith("iface:out "):
        what = f"output interface toward {key.removeprefix('iface:out ')}"
    else:
        what = key
    kind, arg = pred
    shown = arg + "+" if kind == "prefix" else "one of " + ", ".join(_alternatives(arg)) if kind == "in" else arg
    return f"{what} is {'' if truth else 'not '}{shown}"


def fact_text(key: str, pred: Pred | None, truth: bool) -> str:
    """An assumption for a list of them: ``set ALLOW src: assumed true``, ``10.0.0.2 is a node address``."""
    if pred is None and not key.startswith("local "):
        return f"{key}: assumed {'true' if truth else 'false'}"
    return fact_phrase(key, pred, truth)


class Scenario(NamedTuple):
    """One consistent answer to the questions a trace asked before any chance decided anything, and the paths
    possible under it.

    ``facts`` are those answers. Paths of the scenario that assumed more later (below a ``statistic`` or
    ``numgen`` branch: the output interface toward one endpoint, say) are alternatives of one another: for any
    one choice of those later answers, the paths consistent with it have probabilities summing to 1.
    ``probability`` is that sum for the first such choice (``example``): 1 unless branching was cut short."""

    facts: tuple[Fact, ...]
    paths: tuple[int, ...]  # indexes into Trace.paths
    probability: Fraction
    example: tuple[int, ...] = ()  # the paths of one choice of the later answers (all paths when there are none)

    @property
    def label(self) -> str:
        """``10.0.0.2 is a node address; input interface is cali+`` (or ``no assumptions``)."""
        return "; ".join(fact_phrase(*f) for f in self.facts) or "no assumptions"

    @property
    def alternatives(self) -> bool:
        """Whether some of its paths are alternatives (they assumed more than the scenario's facts)."""
        return len(self.example) != len(self.paths)

    @property
    def assumptions(self) -> tuple[str, ...]:
        return tuple(fact_text(*f) for f in self.facts)


def _consistent(world: Sequence[Fact], fact: Fact) -> bool:
    key, pred, truth = fact
    implied = decide(world, key, pred)
    return implied is None or implied == truth


def scenarios(path_facts: Sequence[Sequence[Fact]], prefixes: Sequence[int],
              probabilities: Sequence[Fraction]) -> tuple[Scenario, ...]:  # fmt: skip
    """Group paths by the answers they gave before any chance split (``prefixes[i]``: how many of path i's
    facts those are). A path whose prefix is shorter (it met no question before its first chance split,
    where a sibling path did) joins every scenario consistent with it."""
    keys: dict[tuple[Fact, ...], list[int]] = {}
    for i, fs in enumerate(path_facts):
        keys.setdefault(tuple(sorted(fs[: prefixes[i]], key=repr)), []).append(i)
    worlds = sorted(keys, key=lambda k: keys[k][0])
    out = []
    for world in worlds:
        members = [i for i, fs in enumerate(path_facts)
                   if all(_consistent(world, f) for f in fs[: prefixes[i]])
                   and set(fs[: prefixes[i]]) <= set(world)]  # fmt: skip
        chosen: list[Fact] = list(world)
        example = []
        for i in members:  # one choice of the later answers: greedily, the first path's, then whatever fits
            later = path_facts[i][prefixes[i]:]
            if all(_consistent(chosen, f) for f in later):
                chosen.extend(later)
                example.append(i)
        total = sum((probabilities[i] for i in example), Fraction(0))
        out.append(Scenario(world, tuple(members), total, tuple(example)))
    return tuple(out)
