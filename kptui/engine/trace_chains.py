"""Inside the chains, for the trace walker of :mod:`kptui.engine.trace` (which mixes this in): one rule's
checks and actions run on one path, the path forked where the outcome depends on chance (``statistic``,
``numgen``), on one of several alternatives, or on a question the node context cannot answer; the hop each rule
gives (matched or not, and why); and the call stack: a verdict's jump, goto or return, and the base chain's
policy when the stack empties.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .assume import decide, fact_text
from .flow import (
    CONTINUE,
    END,
    GOTO,
    JUMP,
    REINJECT,
    RETURN,
    STOP_TABLE,
    Action,
    ChainView,
    Chance,
    Choices,
    Effect,
    Env,
    Spread,
    Undecidable,
)  # fmt: skip
from .ipvs.step import CONNTRACK_ASSUMED
from .model import Ruleset
from .nft.schedule import NftHooks
from .schedule import BaseChain
from .trace_cursor import Cursor, hook_of, materialize
from .trace_model import MASQ_ADDRESS_UNKNOWN, Hop, PacketState, TracePath

__all__ = ["ChainWalk"]

_MASQ_UNKNOWN = "masquerade source: the address of the interface the packet leaves by, which is not known"


class ChainWalk:
    """Mixed into the trace walker (``kptui.engine.trace._Walker``), which provides what is declared here."""

    max_paths: int
    truncated: bool
    ruleset: Ruleset | None
    nft_views: NftHooks | None

    if TYPE_CHECKING:

        def env(self, hook: str) -> Env: ...

        def reinject(self, c: Cursor) -> None: ...

        def not_the_nodes(self, addr: str) -> str | None: ...

    def leave_chain(self, c: Cursor) -> str | None:
        """Return from the innermost chain (end of chain or RETURN). When that empties the stack, the base
        chain's policy applies: its verdict when it ends the packet, else None (the base chain is done)."""
        c.frames = c.frames[:-1]
        if c.frames:
            return None
        base = c.base
        policy, counters = self.policy(base)
        c.add(Hop(hook_of(c.phase), base.table, base.chain, "policy", None, None, None, True, policy,
                  before=c.state, after=c.state, counter=counters, probability=c.prob, family=base.family,
                  note=_tie_note(base)))  # fmt: skip
        return policy if policy in ("DROP", "REJECT") else None

    def policy(self, base: BaseChain) -> tuple[str, tuple[int, int] | None]:
        if base.ns[0] == "xt":
            chain = self.ruleset.chain(base.ns[1], base.chain) if self.ruleset is not None else None
            counters = (chain.counters.packets, chain.counters.bytes) if chain and chain.counters else None
            return (chain.policy if chain else None) or "ACCEPT", counters
        if base.ns[0] == "ipvs":
            return "ACCEPT", None
        return (self.nft_views.policy(base) if self.nft_views is not None else "ACCEPT"), None

    def miss(self, c: Cursor, view: ChainView, i: int, why: str, note: str | None = None,
             state: PacketState | None = None) -> None:  # fmt: skip
        row = view.row(i)
        base = c.base
        after = state if state is not None else c.state
        c.add(Hop(hook_of(c.phase), base.table, view.name, "rule", i + 1, row.line, row.text, False, None,
                  failed=why, before=c.state, after=after, counter=row.counter, note=note, probability=c.prob,
                  family=base.family, handle=row.handle))  # fmt: skip
        if state is not None:
            c.state = state

    def evaluate(self, c: Cursor, view: ChainView, i: int, work: list[Cursor], done: int, *, start: int = 0,
                 before: PacketState | None = None, notes: list[str] | None = None,
                 verdict: str = "CONTINUE", target: str | None = None) -> TracePath | None:  # fmt: skip
        """Run rule ``i``'s ops from ``start``. A fork of a spread resumes here after its action."""
        ops = view.ops(i)
        env = self.env(hook_of(c.phase))
        before = c.state if before is None else before
        notes = [] if notes is None else notes
        flow = CONTINUE
        for n in range(start, len(ops)):
            op = ops[n]
            if isinstance(op, Action):
                r: Any = op.fn(c.state, env)
                if isinstance(r, Undecidable):  # an action kptui cannot model: as an undecidable match
                    if not self.resolve(c, r, view, i, op.text, work, done, notes, before):
                        return None
                    continue
                if isinstance(r, Spread):
                    r = self.spread(c, r, view, i, op.text, work, done, notes, before, n)
                    if r is None:
                        return None
                eff: Effect = r
                c.state = eff.state
                verdict, flow, target = eff.verdict, eff.flow, eff.target
                if eff.note:
                    notes.append(eff.note)
                    if eff.note == MASQ_ADDRESS_UNKNOWN and _MASQ_UNKNOWN not in c.stated:
                        c.stated = c.stated + (_MASQ_UNKNOWN,)
                    elif eff.note == CONNTRACK_ASSUMED and eff.note not in c.stated:
                        c.stated = c.stated + (eff.note,)
                if flow != CONTINUE:
                    break
                continue
            res = op.fn(c.state, env)
            if res is True:
                continue
            if res is False:
                self.restore_miss(c, view, i, op.text, before)
                return None
            if isinstance(res, Chance):
                if res.p == 0:
                    self.restore_miss(c, view, i, op.text, before, f"{res.note}: never true")
                    return None
                if res.p < 1 and self.can_fork(work, done):
                    c.chance()
                    other = c.fork(prob=c.prob * (1 - res.p))
                    self.restore_miss(other, view, i, op.text, before,
                                      f"{res.note}: not taken (p={float(1 - res.p):.6g})")  # fmt: skip
                    work.append(other)
                    c.prob *= res.p
                    notes.append(f"{res.note}: taken (p={float(res.p):.6g})")
                continue
            if isinstance(res, Choices):
                if not self.choose(c, res, view, i, op.text, work, done, notes, before):
                    return None
                continue
            if not self.resolve(c, res, view, i, op.text, work, done, notes, before):
                return None
        return self.matched(c, view, i, before, verdict, flow, target, "; ".join(notes) or None)

    def restore_miss(self, c: Cursor, view: ChainView, i: int, why: str, before: PacketState,
                     note: str | None = None) -> None:  # fmt: skip
        """The rule did not match. Statements before the failing match (nft) have already acted: the state
        they left stays; the hop shows the state before and after."""
        after = c.state
        c.state = before
        self.miss(c, view, i, why, note, state=after if after is not before else None)

    def resolve(self, c: Cursor, r: Undecidable, view: ChainView, i: int, text: str, work: list[Cursor],
                done: int, notes: list[str], before: PacketState) -> bool:  # fmt: skip
        """An undecidable check: decided by what the path already assumed, else forked (this path assumes the
        answer that makes the check true, the other path the other one). False: the check failed here."""
        known = decide(c.given + c.facts, r.key, r.pred)
        if known is None and r.key.startswith("local ") and r.pred is None:
            addr = r.key.removeprefix("local ")
            why = self.not_the_nodes(addr)
            if why is not None:
                c.take_as_given(r.key, addr, why)
                known = False
        if known is None:
            true_answer = not r.negated
            if self.can_fork(work, done):
                other = c.fork(facts=c.facts + ((r.key, r.pred, not true_answer),))
                self.restore_miss(other, view, i, text, before, f"undecidable, assumed false: {r.reason}")
                work.append(other)
            c.facts = c.facts + ((r.key, r.pred, true_answer),)
            notes.append(f"undecidable, assumed true: {r.reason}")
            return True
        if known == r.negated:
            self.restore_miss(c, view, i, text, before, f"as assumed on this path: {r.reason}")
            return False
        return True

    def choose(self, c: Cursor, r: Choices, view: ChainView, i: int, text: str, work: list[Cursor],
               done: int, notes: list[str], before: PacketState) -> bool:  # fmt: skip
        """One of several alternatives holds: decided by the path's assumption, else one path per option."""
        facts = c.given + c.facts
        known = [v for v, _ in r.options if decide(facts, r.key, ("eq", v)) is True]
        if known:
            if known[0] != r.value:
                self.restore_miss(c, view, i, text, before, f"as assumed on this path: not {r.value}")
                return False
            notes.append(f"as assumed on this path: {dict(r.options).get(r.value, r.value)}")
            return True
        open_ = [(v, what) for v, what in r.options if decide(facts, r.key, ("eq", v)) is None]
        if not any(v == r.value for v, _ in open_):
            self.restore_miss(c, view, i, text, before)
            return False
        for v, what in open_:
            if v == r.value:
                continue
            if not self.can_fork(work, done):
                break
            other = c.fork(facts=c.facts + ((r.key, ("eq", v), True),))
            self.restore_miss(other, view, i, text, before, f"assumed: {what}")
            work.append(other)
        what = next(w for v, w in open_ if v == r.value)
        c.facts = c.facts + ((r.key, ("eq", r.value), True),)
        notes.append(f"assumed: {what} ({r.reason})")
        return True

    def spread(self, c: Cursor, r: Spread, view: ChainView, i: int, text: str, work: list[Cursor], done: int,
               notes: list[str], before: PacketState, n: int) -> Effect | None:  # fmt: skip
        """An action with several outcomes (numgen): this path takes the first, a fork each other one (walked
        on from the action now, finished when popped); the share no branch covers goes on as a rule that did
        not match."""
        branches = [b for b in r.branches if b[0] > 0]
        rest = 1 - sum((b[0] for b in branches), Fraction(0))
        if not branches:  # the lookup found no element: the rule ends here, no verdict
            self.restore_miss(c, view, i, text, before, r.rest_note or None)
            return None
        if len(branches) + (rest > 0) > 1:
            c.chance()
        if rest > 0 and self.can_fork(work, done):
            other = c.fork(prob=c.prob * rest)
            self.restore_miss(other, view, i, text, before, r.rest_note or f"no branch taken (p={float(rest):.6g})")
            work.append(other)
        first, *others = branches
        for p, eff, note in others:
            if not self.can_fork(work, done):
                break
            other = c.fork(prob=c.prob * p)
            other.state = eff.state
            other_notes = [*notes, note] + ([eff.note] if eff.note else [])
            if eff.flow == CONTINUE:
                end = self.evaluate(other, view, i, work, done, start=n + 1, before=before, notes=other_notes,
                                    verdict=eff.verdict, target=eff.target)  # fmt: skip
            else:
                end = self.matched(other, view, i, before, eff.verdict, eff.flow, eff.target,
                                   "; ".join(other_notes) or None)  # fmt: skip
            other.done = end
            work.append(other)
        c.prob *= first[0]
        notes.append(first[2])
        return first[1]

    def can_fork(self, work: list[Cursor], done: int) -> bool:
        if done + len(work) + 1 >= self.max_paths:
            self.truncated = True
            return False
        return True

    def matched(self, c: Cursor, view: ChainView, i: int, before: PacketState, verdict: str, flow: str,
                target: str | None, note: str | None) -> TracePath | None:  # fmt: skip
        row = view.row(i)
        base = c.base
        state = c.state
        c.add(Hop(hook_of(c.phase), base.table, view.name, "rule", i + 1, row.line, row.text, True, verdict,
                  target=target, before=before, after=state, counter=row.counter, note=note, probability=c.prob,
                  family=base.family, handle=row.handle))  # fmt: skip
        if flow == CONTINUE:
            return None
        ns = c.frames[-1][0]
        if flow == JUMP:
            c.frames = c.frames + ((ns, target or "", 0),)
        elif flow == GOTO:
            c.frames = c.frames[:-1] + ((ns, target or "", 0),)
        elif flow == RETURN:
            end = self.leave_chain(c)
            if end is not None:
                return self.finish(c, end, None)
        elif flow == STOP_TABLE:
            c.frames = ()
        elif flow == END:
            return self.finish(c, verdict, None)
        elif flow == REINJECT:
            self.reinject(c)
        return None

    def finish(self, c: Cursor, verdict: str, delivery: str | None, note: str | None = None) -> TracePath:
        hops = materialize(c.log)
        notes = c.notes + ((note,) if note else ())
        assumptions = tuple(fact_text(*f) for f in c.facts) + c.stated
        prefix = len(c.facts) if c.prefix is None else c.prefix
        return TracePath(c.prob, verdict, hops, c.state, delivery, assumptions, notes, c.facts, prefix)



def _tie_note(base: BaseChain) -> str | None:
    if not base.tie:
        return None
    return "another base chain of this hook has the same priority: the kernel runs them in registration order"

