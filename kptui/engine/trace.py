"""``trace(ruleset, packet, node) -> Trace``: walk a connection's first packet through the rules the way
netfilter does, recording every hop, and branching where the outcome depends on chance (``statistic``) or on
something the context cannot decide.

Hook order (REFERENCE §1), per hook the tables in priority order:

- arriving (pod / external): PREROUTING raw, mangle, nat → routing → INPUT mangle, filter, security, nat
  (local destination) or FORWARD mangle, filter, security → POSTROUTING mangle, nat.
- local: OUTPUT raw, mangle, nat, filter, security → POSTROUTING mangle, nat; a local destination then loops
  through ``lo``: PREROUTING raw, mangle → INPUT mangle, filter, security (its NAT is already bound).
- nat runs only for a NEW, tracked connection.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

from .compiled import ChainIndex, CompiledRuleset, compiled_ruleset
from .flow import CONTINUE, END, GOTO, JUMP, RETURN, STOP_TABLE
from .matches import Chance, Env, Undecidable
from .model import Ruleset
from .packet import NodeContext, Packet
from .targets import apply_target
from .trace_model import Hop, PacketState, Trace, TracePath

__all__ = ["MAX_PATHS", "trace"]

MAX_PATHS = 4096
MAX_DEPTH = 128  # nested jumps before the walk calls it a loop
_TABLES = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "security", "nat"),
    "FORWARD": ("mangle", "filter", "security"),
    "OUTPUT": ("raw", "mangle", "nat", "filter", "security"),
    "POSTROUTING": ("mangle", "nat"),
    "LO-PREROUTING": ("raw", "mangle"),
    "LO-INPUT": ("mangle", "filter", "security"),
}


@dataclass
class _Cursor:
    """Where one path is: hook phase, table, call stack, packet state, and what it went through."""

    phase: str
    table_pos: int = 0
    frames: tuple[tuple[str, int], ...] = ()  # (chain, next rule index), innermost last
    base: str | None = None  # the built-in chain whose policy applies when the stack empties
    state: PacketState = field(default=None)  # type: ignore[assignment]
    prob: Fraction = Fraction(1)
    log: Any = None  # a cons list: (hop, previous) or None
    assumptions: tuple[tuple[str, bool], ...] = ()
    notes: tuple[str, ...] = ()

    def fork(self, **changes: Any) -> _Cursor:
        # Freeze the hops so far into one tuple both branches share (paths share long prefixes).
        self.log = _materialize(self.log)
        c = _Cursor(self.phase, self.table_pos, self.frames, self.base, self.state, self.prob, self.log,
                    self.assumptions, self.notes)  # fmt: skip
        for k, v in changes.items():
            setattr(c, k, v)
        return c

    def add(self, hop: Hop) -> None:
        self.log = _Log(hop, self.log)


def _route(node: NodeContext, dst: str) -> str | None:
    """The interface the node would send ``dst`` out of, when the context says."""
    if node.is_local(dst):
        return "lo"
    ip = ipaddress.ip_address(dst)
    best: tuple[int, str] | None = None
    for name, cidrs in node.interfaces.items():
        for c in cidrs:
            net = ipaddress.ip_interface(c).network
            if net.version == ip.version and ip in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, name)
    if best:
        return best[1]
    if node.pod_cidrs and node.pod_iface:
        local_pods = ipaddress.ip_network(node.pod_cidrs[0])
        if local_pods.version == ip.version and ip in local_pods:
            return node.pod_iface
    return node.uplink


class _Walker:
    def __init__(self, ruleset: Ruleset, packet: Packet, node: NodeContext, max_paths: int) -> None:
        self.rs = ruleset
        self.compiled: CompiledRuleset = compiled_ruleset(ruleset)
        self.packet = packet
        self.node = node
        self.max_paths = max_paths
        self.envs: dict[str, Env] = {}
        self.truncated = False

    def env(self, hook: str) -> Env:
        e = self.envs.get(hook)
        if e is None:
            p = self.packet
            icmp = p.icmp_type if p.icmp_type is not None else (128 if p.proto == "icmpv6" else 8)
            flags = frozenset({"SYN"}) if p.proto == "tcp" and p.ctstate == "NEW" else frozenset({"ACK"})
            e = self.envs[hook] = Env(self.node, p.family, hook, p.length, icmp, flags, p.mac)
        return e

    # -- the walk ---------------------------------------------------------------------------------------
    def run(self) -> list[TracePath]:
        p = self.packet
        # "" is "no interface" (known: a local packet has no input interface, an arriving one no output
        # interface yet), None is "not known" (makes -i/-o undecidable).
        in_iface: str | None = ""
        if p.origin == "pod":
            in_iface = p.in_iface or self.node.pod_iface
        elif p.origin == "external":
            in_iface = p.in_iface or self.node.uplink
        state = PacketState(p.src, p.dst, p.proto, p.sport, p.dport, mark=p.mark, ctstate=p.ctstate,
                            orig_src=p.src, orig_dst=p.dst, orig_sport=p.sport, orig_dport=p.dport,
                            in_iface=in_iface, out_iface="")  # fmt: skip
        if p.origin == "local":
            state = state.with_(out_iface=_route(self.node, p.dst), hook="OUTPUT")
            start = _Cursor("OUTPUT", state=state)
        else:
            start = _Cursor("PREROUTING", state=state.with_(hook="PREROUTING"))
        work = [start]
        paths: list[TracePath] = []
        while work:
            cur = work.pop()
            paths.append(self.walk(cur, work, len(paths)))
        return paths

    def walk(self, c: _Cursor, work: list[_Cursor], done: int) -> TracePath:
        steps = 0
        while True:
            steps += 1
            if not c.frames:
                end = self.enter_next_table(c)
                if end is not None:
                    return self.finish(c, *end)
                continue
            chain_name, pos = c.frames[-1]
            table = _TABLES[c.phase][c.table_pos]
            idx = self.compiled.chain(table, chain_name)
            if idx is None or len(c.frames) > MAX_DEPTH or steps > 1_000_000:
                return self.finish(c, "LOOP", None, f"jump loop or depth over {MAX_DEPTH} at {chain_name}")
            nxt = idx.next_candidate(pos, c.state.dst, c.state.dport)
            for i in range(pos, nxt):  # provably not matching: recorded, not evaluated
                self.miss(c, table, idx, i, idx.miss_reason(i, c.state.dst, c.state.dport))
            if nxt >= len(idx):  # fell off the end: a user chain returns, a built-in one applies its policy
                policy_end = self.leave_chain(c, table)
                if policy_end is not None:
                    return self.finish(c, policy_end, None)
                continue
            c.frames = c.frames[:-1] + ((chain_name, nxt + 1),)
            outcome = self.evaluate(c, table, idx, nxt, work, done)
            if outcome is not None:
                return outcome

    def enter_next_table(self, c: _Cursor) -> tuple[str, str | None] | None:
        """Move to the next table with this hook's chain (or the next hook); an end (verdict, delivery) when
        the packet has gone through all hooks."""
        while True:
            tables = _TABLES[c.phase]
            if c.base is not None:
                c.table_pos += 1
                c.base = None
            while c.table_pos < len(tables):
                table = tables[c.table_pos]
                chain = _chain_name(c.phase)
                if table == "nat" and (c.state.ctstate != "NEW"):
                    c.table_pos += 1
                    continue
                if self.rs.chain(table, chain) is not None:
                    c.frames = ((chain, 0),)
                    c.base = chain
                    return None
                c.table_pos += 1
            end = self.next_phase(c)
            if end is not None:
                return end

    def next_phase(self, c: _Cursor) -> tuple[str, str | None] | None:
        s = c.state
        phase = c.phase
        if phase == "PREROUTING":
            if self.node.is_local(s.dst):
                nxt, s = "INPUT", s.with_(out_iface="")
            else:
                nxt, s = "FORWARD", s.with_(out_iface=_route(self.node, s.dst))
        elif phase == "FORWARD":
            nxt = "POSTROUTING"
        elif phase == "OUTPUT":
            nxt, s = "POSTROUTING", s.with_(out_iface=_route(self.node, s.dst))
        elif phase == "POSTROUTING":
            if s.out_iface == "lo" or self.node.is_local(s.dst):
                nxt, s = "LO-PREROUTING", s.with_(in_iface="lo", out_iface="")
            else:
                return "ACCEPT", "forward"
        elif phase == "LO-PREROUTING":
            nxt = "LO-INPUT"
        else:  # INPUT, LO-INPUT
            return "ACCEPT", "local"
        c.phase, c.table_pos, c.base, c.frames = nxt, 0, None, ()
        c.state = s.with_(hook=_chain_name(nxt))
        return None

    def leave_chain(self, c: _Cursor, table: str) -> str | None:
        """Return from the innermost chain (end of chain or RETURN). When that empties the stack, the built-in
        chain's policy applies: its verdict when it ends the packet, else None (the table is done)."""
        c.frames = c.frames[:-1]
        if c.frames:
            return None
        chain = self.rs.chain(table, c.base or "")
        policy = (chain.policy if chain else None) or "ACCEPT"
        counters = (chain.counters.packets, chain.counters.bytes) if chain and chain.counters else None
        c.add(Hop(_chain_name(c.phase), table, c.base or "", "policy", None, None, None, True, policy,
                  before=c.state, after=c.state, counter=counters, probability=c.prob))  # fmt: skip
        return policy if policy in ("DROP", "REJECT") else None

    def miss(self, c: _Cursor, table: str, idx: ChainIndex, i: int, why: str, note: str | None = None) -> None:
        row = idx.rows[i]
        counter = (int(row[2]), int(row[3] or 0)) if row[2] is not None else None
        c.add(Hop(_chain_name(c.phase), table, idx.chain.name, "rule", i + 1, row[0], row[1], False, None,
                  failed=why, before=c.state, after=c.state, counter=counter, note=note,
                  probability=c.prob))  # fmt: skip

    def evaluate(self, c: _Cursor, table: str, idx: ChainIndex, i: int, work: list[_Cursor],
                 done: int) -> TracePath | None:  # fmt: skip
        rule = idx.compiled(i)
        env = self.env(_chain_name(c.phase))
        notes: list[str] = []
        for check in rule.checks:
            r = check.fn(c.state, env)
            if r is True:
                continue
            if r is False:
                self.miss(c, table, idx, i, check.text)
                return None
            if isinstance(r, Chance):
                if r.p == 0:
                    self.miss(c, table, idx, i, check.text, f"{r.note}: never true")
                    return None
                if r.p < 1 and self.can_fork(work, done):
                    other = c.fork(prob=c.prob * (1 - r.p))
                    self.miss(other, table, idx, i, check.text, f"{r.note}: not taken (p={float(1 - r.p):.6g})")
                    work.append(other)
                    c.prob *= r.p
                    notes.append(f"{r.note}: taken (p={float(r.p):.6g})")
                continue
            assert isinstance(r, Undecidable)
            # Assumptions are about the key; a negated check is true exactly when its key is false.
            known = dict(c.assumptions).get(r.key)
            if known is None:
                if self.can_fork(work, done):
                    other = c.fork(assumptions=c.assumptions + ((r.key, r.negated),))
                    self.miss(other, table, idx, i, check.text, f"undecidable, assumed false: {r.reason}")
                    work.append(other)
                c.assumptions = c.assumptions + ((r.key, not r.negated),)
                notes.append(f"undecidable, assumed true: {r.reason}")
            elif known == r.negated:
                self.miss(c, table, idx, i, check.text, f"undecidable, assumed false: {r.reason}")
                return None
        return self.matched(c, table, idx, i, rule, "; ".join(notes) or None)

    def can_fork(self, work: list[_Cursor], done: int) -> bool:
        if done + len(work) + 1 >= self.max_paths:
            self.truncated = True
            return False
        return True

    def matched(self, c: _Cursor, table: str, idx: ChainIndex, i: int, rule: Any, note: str | None
                ) -> TracePath | None:  # fmt: skip
        before = c.state
        state = before
        if rule.recent_set:
            state = state.with_(recent=state.recent | {rule.recent_set})
        target = rule.target
        row = idx.rows[i]
        counter = (int(row[2]), int(row[3] or 0)) if row[2] is not None else None
        if target is None:
            verdict, flow, tnote = "CONTINUE", CONTINUE, None
        else:
            eff = apply_target(target, state, self.node, table, idx.table_chains)
            verdict, flow, state, tnote = eff.verdict, eff.flow, eff.state, eff.note
        if tnote:
            note = f"{note}; {tnote}" if note else tnote
        c.state = state
        c.add(Hop(_chain_name(c.phase), table, idx.chain.name, "rule", i + 1, row[0], row[1], True, verdict,
                  target=target.name if target else None, before=before, after=state, counter=counter,
                  note=note, probability=c.prob))  # fmt: skip
        if flow == CONTINUE:
            return None
        if flow == JUMP:
            c.frames = c.frames + ((target.name, 0),)
        elif flow == GOTO:
            c.frames = c.frames[:-1] + ((target.name, 0),)
        elif flow == RETURN:
            end = self.leave_chain(c, table)
            if end is not None:
                return self.finish(c, end, None)
        elif flow == STOP_TABLE:
            c.frames = ()
        elif flow == END:
            return self.finish(c, verdict, None)
        return None

    def finish(self, c: _Cursor, verdict: str, delivery: str | None, note: str | None = None) -> TracePath:
        hops = _materialize(c.log)
        notes = c.notes + ((note,) if note else ())
        assumptions = tuple(f"{k}: assumed {'true' if v else 'false'}" for k, v in c.assumptions)
        return TracePath(c.prob, verdict, hops, c.state, delivery, assumptions, notes)


class _Log(NamedTuple):
    """A cons cell of the hop log; the innermost ``rest`` is None or a frozen tuple of earlier hops."""

    hop: Hop
    rest: Any


def _materialize(log: Any) -> tuple[Hop, ...]:
    recent = []
    while isinstance(log, _Log):
        recent.append(log.hop)
        log = log.rest
    recent.reverse()
    return (log or ()) + tuple(recent)


def _chain_name(phase: str) -> str:
    return phase.removeprefix("LO-")


def trace(ruleset: Ruleset, packet: Packet, node: NodeContext | None = None, *,
          max_paths: int = MAX_PATHS) -> Trace:  # fmt: skip
    """Every path ``packet`` (a connection's first packet, unless its ctstate says otherwise) can take
    through ``ruleset`` on ``node``, with probabilities that sum to 1 for each set of assumptions."""
    node = node or NodeContext()
    walker = _Walker(ruleset, packet, node, max_paths)
    paths = walker.run()
    notes: tuple[str, ...] = ()
    if walker.truncated:
        notes = (f"stopped branching at {max_paths} paths; the last ones were not split further",)
    return Trace(packet, node, tuple(paths), notes)
