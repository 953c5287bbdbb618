"""``trace(rules, packet, node) -> Trace``: walk a connection's first packet through a node's rules the way
netfilter does, recording every hop, and branching where the outcome depends on chance (``statistic``,
``numgen``) or on something the context cannot decide.

Hook order (REFERENCE §1): per hook, every base chain of the packet's family in priority order
(:func:`kptui.engine.schedule.hook_schedule`: the iptables tables at their fixed priorities, nft base chains at
theirs, nat chains at the NAT core's priority and for NEW tracked connections only):

- arriving (pod / external): PREROUTING → routing → INPUT (local destination) or FORWARD → POSTROUTING.
- local: OUTPUT → POSTROUTING; a local destination then loops through ``lo``: PREROUTING → INPUT, without nat
  (the connection's NAT is already bound).

What the node context does not say is asked as a question (:mod:`kptui.engine.flow`); each path keeps its
answers (:mod:`kptui.engine.assume`) and answers every later question — a match, the routing decision, the
interface a packet leaves by — the same way. The paths are grouped into scenarios, one per consistent set of
answers, whose probabilities sum to 1.

This module walks the hooks: the phases, each hook's base chains, the routing decisions between them. Inside the
chains (each rule run on a path, the forks, the call stack, the policies) is :mod:`kptui.engine.trace_chains`;
one path's place and hops is :mod:`kptui.engine.trace_cursor`.
"""

from __future__ import annotations

import ipaddress
import weakref
from typing import Any

from .assume import Fact, decide, fact_text, scenarios
from .compiled import CompiledRuleset, compiled_ruleset
from .flow import PODISH_PREFIXES, ChainView, Env, Undecidable, local_question, route_iface
from .iproute import detector_hints
from .model import Ruleset
from .nft.schedule import NftHooks
from .packet import NodeContext, Packet
from .routing import Decision, input_route, output_reroute
from .schedule import CONNTRACK_PRIORITY, BaseChain, Netfilter, hook_schedule
from .trace_chains import ChainWalk
from .trace_cursor import Cursor, HopLog, hook_of
from .trace_model import Hop, PacketState, Trace, TracePath
from .traceable import input_notes

__all__ = ["MAX_PATHS", "trace"]

MAX_PATHS = 4096
MAX_DEPTH = 128  # nested jumps before the walk calls it a loop
_UPLINK_UNKNOWN = ("arrived on the uplink, whose name is not known: assumed not to be a pod or container interface "
                   "(give --in-iface or --uplink)")
_NEXT = {"PREROUTING": None, "FORWARD": "POSTROUTING", "OUTPUT": "POSTROUTING", "LO-PREROUTING": "LO-INPUT"}


class _Walker(ChainWalk):
    def __init__(self, rules: Netfilter, packet: Packet, node: NodeContext, max_paths: int) -> None:
        self.rules = rules
        self.packet = packet
        self.node = node
        self.max_paths = max_paths
        self.ruleset = rules.ruleset(packet.family)
        self.compiled: CompiledRuleset | None = compiled_ruleset(self.ruleset) if self.ruleset is not None else None
        self.nft_views: NftHooks | None = nft_hooks(rules)
        self.ipvs: Any = rules.ipvs  # kptui.engine.ipvs.step.IpvsViews, or None
        self.pod_nets = node.pod_cidrs or (detector_hints(self.ruleset, packet.family)[0] if self.ruleset else ())
        self.localnet_guard = _has_localnet_guard(self.ruleset)
        self.envs: dict[str, Env] = {}
        self.schedules: dict[str, tuple[BaseChain, ...]] = {}
        self._work: list[Cursor] = []
        self.truncated = False

    def env(self, hook: str) -> Env:
        e = self.envs.get(hook)
        if e is None:
            p = self.packet
            icmp = p.icmp_type if p.icmp_type is not None else (128 if p.proto == "icmpv6" else 8)
            flags = frozenset({"SYN"}) if p.proto == "tcp" and p.ctstate == "NEW" else frozenset({"ACK"})
            e = self.envs[hook] = Env(self.node, p.family, hook, p.length, icmp, flags, p.mac)
        return e

    def schedule(self, phase: str) -> tuple[BaseChain, ...]:
        s = self.schedules.get(phase)
        if s is None:
            hook = hook_of(phase)
            extra = self.nft_views.base_chains(hook, self.packet.family) if self.nft_views is not None else []
            if self.ipvs is not None and not phase.startswith(("LO-", "VS-")):
                extra = [*extra, *self.ipvs.base_chains(hook, self.packet.family)]
            s = hook_schedule(self.rules, hook, self.packet.family, extra)
            if phase.startswith(("LO-", "VS-")):  # the connection's NAT is bound: nat chains do not run again
                s = tuple(b for b in s if not b.nat)
            self.schedules[phase] = s
        return s

    def view(self, ns: tuple[str, ...], chain: str) -> ChainView | None:
        if ns[0] == "xt":
            return self.compiled.chain(ns[1], chain) if self.compiled is not None else None
        if ns[0] == "ipvs":
            return self.ipvs.chain(ns, chain) if self.ipvs is not None else None
        return self.nft_views.chain(ns, chain) if self.nft_views is not None else None

    # -- the walk ---------------------------------------------------------------------------------------
    def run(self) -> list[TracePath]:
        p = self.packet
        # "" is "no interface" (known: a local packet has no input interface, an arriving one no output
        # interface yet), None is "not known" (interface checks then ask the question).
        in_iface: str | None = ""
        given: tuple[Fact, ...] = ()
        notes: tuple[str, ...] = ()
        if p.origin == "pod":
            in_iface = p.in_iface or self.node.pod_iface
            if in_iface is None:
                given = (("iface:in", ("eq", "lo"), False),)
        elif p.origin == "external":
            in_iface = p.in_iface or self.node.uplink
            if in_iface is None:  # the uplink, whatever its name: not a pod's or a container's interface
                given = (("iface:in", ("eq", "lo"), False),
                         *(("iface:in", ("prefix", pfx), False) for pfx in PODISH_PREFIXES))  # fmt: skip
                notes = (_UPLINK_UNKNOWN,)
        state = PacketState(p.src, p.dst, p.proto, p.sport, p.dport, mark=p.mark, ctstate=p.ctstate,
                            orig_src=p.src, orig_dst=p.dst, orig_sport=p.sport, orig_dport=p.dport,
                            in_iface=in_iface, out_iface="")  # fmt: skip
        start = Cursor("OUTPUT" if p.origin == "local" else "PREROUTING", given=given, notes=notes)
        start.sched = self.schedule(start.phase)
        work: list[Cursor] = []
        if p.origin == "local":
            start.state = state.with_(hook="OUTPUT")
            start.state = start.state.with_(out_iface=self.out_iface(start, start.state.dst, work))
            d = output_reroute(self.node, p.src, p.dst, start.state.out_iface, first=True,
                               guard=self.localnet_guard)  # fmt: skip
            if d is not None and d.drop:  # never sent: the path is the routing decision alone
                self.decision_hop(start, p.dst, d)
                start.done = self.finish(start, "DROP", None)
        else:
            start.state = state.with_(hook="PREROUTING")
        work.append(start)
        paths: list[TracePath] = []
        while work:
            cur = work.pop()
            paths.append(self.walk(cur, work, len(paths)))
        return paths

    def walk(self, c: Cursor, work: list[Cursor], done: int) -> TracePath:
        self._work = work
        if c.done is not None:
            return c.done
        steps = 0
        while True:
            steps += 1
            if not c.frames:
                end = self.enter_next_base(c, work)
                if end is not None:
                    return self.finish(c, *end)
                continue
            ns, chain_name, pos = c.frames[-1]
            view = self.view(ns, chain_name)
            if view is None or len(c.frames) > MAX_DEPTH or steps > 1_000_000:
                return self.finish(c, "LOOP", None, f"jump loop or depth over {MAX_DEPTH} at {chain_name}")
            nxt = view.next_candidate(pos, c.state.dst, c.state.dport)
            if nxt > pos:  # provably not matching: recorded, not evaluated (thousands in KUBE-SERVICES: inlined)
                base, state, prob, log = c.base, c.state, c.prob, c.log
                hook, name, dst, dport = hook_of(c.phase), view.name, state.dst, state.dport
                for i in range(pos, nxt):
                    row = view.row(i)
                    log = HopLog(Hop(hook, base.table, name, "rule", i + 1, row.line, row.text, False, None,
                                   failed=view.miss_reason(i, dst, dport), before=state, after=state,
                                   counter=row.counter, probability=prob, family=base.family, handle=row.handle),
                               log)  # fmt: skip
                c.log = log
            if nxt >= len(view):  # fell off the end: a user chain returns, a base chain applies its policy
                policy_end = self.leave_chain(c)
                if policy_end is not None:
                    return self.finish(c, policy_end, None)
                continue
            c.frames = c.frames[:-1] + ((ns, chain_name, nxt + 1),)
            outcome = self.evaluate(c, view, nxt, work, done)
            if outcome is not None:
                return outcome

    def enter_next_base(self, c: Cursor, work: list[Cursor]) -> tuple[str, str | None] | None:
        """Move to the next base chain of this hook (or the next hook); an end (verdict, delivery) when the
        packet has gone through all hooks."""
        while True:
            left = c.sched[c.pos] if 0 <= c.pos < len(c.sched) else None
            c.pos += 1
            if left is not None and left.nat and c.phase == "OUTPUT" and c.reroute is None and \
                    (c.pos >= len(c.sched) or not c.sched[c.pos].nat):
                end = self.reroute(c, work)  # the NAT core's OUTPUT hook, right after its nat chains
                if end is not None:
                    return end
            while c.pos < len(c.sched):
                base = c.sched[c.pos]
                if base.nat and not self.nat_runs(c.state, hook_of(c.phase)):
                    c.pos += 1
                    continue
                pre = base.priority < CONNTRACK_PRIORITY and c.phase in ("PREROUTING", "OUTPUT")
                if pre != c.state.pre_ct:
                    c.state = c.state.with_(pre_ct=pre)
                c.frames = ((base.ns, base.chain, 0),)
                return None
            end = self.next_phase(c, work)
            if end is not None:
                return end

    def reroute(self, c: Cursor, work: list[Cursor]) -> tuple[str, str | None] | None:
        """nat OUTPUT changed the destination: the NAT core routes the packet again (``ip_route_me_harder``)
        before the later OUTPUT chains run; a failure drops it there. Those chains still see the interface the
        packet was first routed to (the hook's ``out``); POSTROUTING sees the new one."""
        s = c.state
        if s.dst == s.orig_dst:
            return None
        out = self.out_iface(c, s.dst, work)
        c.reroute = (out,)
        d = output_reroute(self.node, s.src, s.dst, out, first=False, guard=self.localnet_guard)
        if d is not None:
            self.decision_hop(c, s.dst, d)
            if d.drop:
                return "DROP", None
        return None

    @staticmethod
    def nat_runs(s: PacketState, hook: str) -> bool:
        """nat chains see a NEW tracked connection, until one of them bound this hook's mapping."""
        if s.ctstate != "NEW":
            return False
        return not (s.dnat if hook in ("PREROUTING", "OUTPUT") else s.snat)

    def next_phase(self, c: Cursor, work: list[Cursor]) -> tuple[str, str | None] | None:
        s = c.state
        phase = c.phase
        if phase == "PREROUTING":
            local = self.is_local(c, s.dst, work)
            d = input_route(self.node, s.src, s.dst, s.in_iface, local, guard=self.localnet_guard)
            if d is not None:
                self.decision_hop(c, s.dst, d)
                if d.drop:
                    return "DROP", None
            if local:
                nxt, s = "INPUT", s.with_(out_iface="")
            else:
                nxt, s = "FORWARD", s.with_(out_iface=route_iface(self.node, s.dst))
        elif phase == "VS-OUTPUT":
            nxt = "POSTROUTING"
        elif phase == "OUTPUT":
            if c.reroute is None and s.dst != s.orig_dst:  # no nat chain (an nft-only node's rewrite): here
                end = self.reroute(c, work)
                if end is not None:
                    return end
            out = c.reroute[0] if c.reroute is not None else s.out_iface
            nxt, s = "POSTROUTING", s.with_(out_iface=out)
        elif phase == "POSTROUTING":
            if s.out_iface == "lo" or local_question(s.dst, self.node) is True:
                nxt, s = "LO-PREROUTING", s.with_(in_iface="lo", out_iface="")
            else:
                return "ACCEPT", "sent" if self.packet.origin == "local" else "forward"
        elif phase in _NEXT and _NEXT[phase] is not None:
            nxt = str(_NEXT[phase])
        else:  # INPUT, LO-INPUT
            return "ACCEPT", "local"
        c.phase, c.pos, c.frames = nxt, -1, ()
        c.sched = self.schedule(nxt)
        c.state = s.with_(hook=hook_of(nxt))
        return None

    # -- questions the routing decision asks ------------------------------------------------------------
    def is_local(self, c: Cursor, addr: str, work: list[Cursor]) -> bool:
        """Whether ``addr`` is the node's. When the context cannot say: what this path assumed earlier (a
        match asked); for the packet's own destination, a question (the path forks, a routing hop says so);
        for an address that is a pod's or a cluster IP (virtual: kube-proxy's rules name them), or that NAT
        wrote, "not the node's", stated among the path's assumptions."""
        q = local_question(addr, self.node)
        if not isinstance(q, Undecidable):
            return q
        known = decide(c.given + c.facts, q.key, None)
        if known is not None:
            if any(f[0] == q.key for f in c.facts):
                self.route_hop(c, addr, known, f"as assumed earlier on this path: {fact_text(q.key, None, known)}")
            return known
        default = self.not_the_nodes(addr)
        if default is None and (addr != self.packet.dst or not self.can_fork(work, 0)):
            default = "written by NAT" if addr != self.packet.dst else "no more paths"
        if default is not None:
            c.take_as_given(q.key, addr, default)
            return False
        other = c.fork(facts=c.facts + ((q.key, None, False),))
        self.route_hop(other, addr, False, f"undecidable, assumed false: {q.reason}")
        work.append(other)
        c.facts = c.facts + ((q.key, None, True),)
        self.route_hop(c, addr, True, f"undecidable, assumed true: {q.reason}")
        return True

    def not_the_nodes(self, addr: str) -> str | None:
        """Why ``addr`` is not a node address though no node addresses were given (a pod's address, a cluster
        IP kube-proxy's rules name), or None."""
        if _in_any(addr, self.pod_nets):
            return "a pod address"
        if self.compiled is not None and addr in self.compiled.cluster_ips:
            return "a cluster IP"
        return None

    def decision_hop(self, c: Cursor, addr: str, d: Decision) -> None:
        c.add(Hop(hook_of(c.phase), "routing", "routing", "routing", None, None, f"route to {addr}: {d.text}", True,
                  "DROP" if d.drop else "ROUTE", before=c.state, after=c.state, note=d.note,
                  probability=c.prob))  # fmt: skip
        if d.note and d.note not in c.stated:
            c.stated = c.stated + (d.note,)

    def route_hop(self, c: Cursor, addr: str, local: bool, note: str) -> None:
        where = "a node address: delivered locally" if local else "not a node address: routed on"
        c.add(Hop(hook_of(c.phase), "routing", "routing", "routing", None, None, f"route to {addr}: {where}", True,
                  "LOCAL" if local else "ROUTE", before=c.state, after=c.state, note=note,
                  probability=c.prob))  # fmt: skip

    def out_iface(self, c: Cursor, dst: str, work: list[Cursor]) -> str | None:
        """The interface the packet leaves by toward ``dst`` (None: not known; "lo" when it is local)."""
        if self.is_local(c, dst, work):
            return "lo"
        return route_iface(self.node, dst)

    def reinject(self, c: Cursor) -> None:
        """IPVS (NAT forwarding) sent the packet on itself (``ip_vs_nat_send_or_cont``): unless the new
        destination is the node's (then this hook goes on, as an accept), the packet leaves this hook and goes
        through LOCAL_OUT's chains from the start (nat and IPVS do not run again: the mapping is bound, the
        packet is IPVS's), then POSTROUTING."""
        s = c.state
        if self.is_local(c, s.dst, self._work):
            c.frames = ()
            return
        c.phase, c.pos, c.frames = "VS-OUTPUT", -1, ()
        c.sched = self.schedule("VS-OUTPUT")
        c.reroute = (route_iface(self.node, s.dst),)
        c.state = s.with_(hook="OUTPUT", in_iface="", out_iface=c.reroute[0])


_HOOKS: weakref.WeakKeyDictionary[Netfilter, NftHooks] = weakref.WeakKeyDictionary()


def nft_hooks(rules: Netfilter) -> NftHooks | None:
    """The nft ruleset's base chains and views for the walker, kept with ``rules`` (their rules compile once).
    Tables iptables-nft manages are read from the iptables dump of their family when it is there."""
    if rules.nft is None:
        return None
    hooks = _HOOKS.get(rules)
    if hooks is None:
        skip = []
        for t in rules.nft.tables:
            fam = {"ip": 4, "ip6": 6}.get(t.family)
            rs = rules.ruleset(fam) if fam is not None else None
            if rs is not None and (t.iptables_nft or rs.table(t.name) is not None):
                skip.append((t.family, t.name))
        hooks = _HOOKS[rules] = NftHooks(rules.nft, skip)
    return hooks


def _has_localnet_guard(rs: Ruleset | None) -> bool:
    """kube-proxy's "block incoming localnet connections" rule: it writes it when it turns route_localnet on."""
    chain = rs.chain("filter", "KUBE-FIREWALL") if rs is not None else None
    if chain is None:
        return False
    rows = getattr(chain.rules, "rows", None)
    raws = (r[1] for r in rows) if rows is not None else (r.raw for r in chain.rules)
    return any("block incoming localnet connections" in raw for raw in raws)


def _in_any(addr: str, cidrs: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(addr)
    for c in cidrs:
        net = ipaddress.ip_network(c)
        if net.version == ip.version and ip in net:
            return True
    return False


def trace(rules: Ruleset | Netfilter, packet: Packet, node: NodeContext | None = None, *,
          max_paths: int = MAX_PATHS) -> Trace:  # fmt: skip
    """Every path ``packet`` (a connection's first packet, unless its ctstate says otherwise) can take
    through ``rules`` (an iptables dump, or a node's :class:`Netfilter`) on ``node``, grouped into scenarios
    (one per consistent set of assumptions) whose probabilities sum to 1."""
    node = node or NodeContext()
    walker = _Walker(Netfilter.of(rules, packet.family), packet, node, max_paths)
    paths = walker.run()
    notes: tuple[str, ...] = input_notes(rules, packet.family)  # rules missing, tables inferred (issue 14.1-2)
    if walker.truncated:
        notes += (f"stopped branching at {max_paths} paths; the last ones were not split further",)
    groups = scenarios([p.facts for p in paths], [p.prefix for p in paths], [p.probability for p in paths])
    return Trace(packet, node, tuple(paths), notes, groups)

