"""The IPVS step of a trace, as data the walker schedules: pseudo base chains at IPVS's hook priorities, whose
rules are compiled to the :mod:`kptui.engine.flow` vocabulary like any front end's.

**Modelled from the kernel's source, not checked against a kernel here** (these machines have no IPVS module).
What ``net/netfilter/ipvs/ip_vs_core.c`` registers (``ip_vs_ops4`` / ``ip_vs_ops6``) and this module models:

- ``ip_vs_in_hook`` at ``NF_INET_LOCAL_IN``, priority ``NF_IP_PRI_NAT_SRC - 1`` (99): after filter (0) and
  security (50) INPUT, before nat INPUT (100) — connections from outside or from a pod to an address of the node
  (kube-proxy binds every service address to ``kube-ipvs0`` so that routing delivers it locally);
- ``ip_vs_in_hook`` at ``NF_INET_LOCAL_OUT``, priority ``NF_IP_PRI_NAT_DST + 2`` (-98): after nat OUTPUT (-100),
  before filter OUTPUT (0) — connections from the node itself;
- not modelled, because a connection's first packet passes them unchanged: ``ip_vs_out_hook`` (LOCAL_IN 98,
  LOCAL_OUT -99, FORWARD 100: replies of existing connections) and ``ip_vs_forward_icmp`` (FORWARD 99). The hooks
  of a family exist only once a virtual service of that family does (``ip_vs_register_hooks``).

What ``ip_vs_in_hook`` does with a new connection: TCP only on a SYN (``tcp_conn_schedule``), UDP and SCTP on
the first packet, other protocols never; ``ip_vs_service_find`` (fwmark, then protocol/address/port, then port
0); no virtual service: the packet goes on (``NF_ACCEPT``: nat INPUT, then a local socket). A virtual service:
``ip_vs_schedule`` picks a real server (:mod:`.shares`; persistence: ``ip_vs_sched_persist`` reuses a returning
client's template), or when none can take the connection ``ip_vs_leave`` sends ICMP port unreachable and drops
the packet. For the Masq forwarding kube-proxy uses, ``ip_vs_nat_xmit`` rewrites the destination address and port
and ``ip_vs_nat_send_or_cont`` marks the packet as IPVS's, then either (real server on this node) accepts it in
the current hook, or hands it to ``NF_HOOK(NF_INET_LOCAL_OUT)`` and ``dst_output``: the LOCAL_OUT chains, then
POSTROUTING, where kube-proxy's KUBE-POSTROUTING masquerades (KUBE-MARK-MASQ's mark, KUBE-LOOP-BACK for
hairpin). With ``net.ipv4.vs.conntrack=1`` (kube-proxy sets it) ``ip_vs_update_conntrack`` keeps the
connection tracked, so nat POSTROUTING still runs; with 0, ``ip_vs_notrack`` makes the packet UNTRACKED and
no masquerade happens.

**The walker's contract** (the lead wires it in ``kptui/engine/trace.py``):

1. Schedule: :meth:`IpvsViews.base_chains` gives, per hook and family, the :class:`BaseChain` entries to add to
   the hook's schedule (``hook_schedule(..., extra=…)``): namespace ``("ipvs",)``, chain ``INPUT`` or ``OUTPUT``,
   table ``ipvs``, ``nat=False`` (it runs at its own priority on every packet it is reached by), priorities
   :data:`PRIORITIES`. Do not schedule it in the ``LO-`` phases (a packet IPVS already sent is
   ``ipvs_property``: the hooks let it pass) nor after a REINJECT.
2. Chains: :meth:`IpvsViews.chain` gives the :class:`flow.ChainView` of namespace ``("ipvs",)``: the base chain
   (one rule: the lookup check, then a GOTO to the virtual service's chain) and one chain per virtual service
   (named :attr:`VirtualService.key`, e.g. ``TCP 10.96.0.1:443``). :meth:`IpvsViews.policy` is ``ACCEPT``:
   falling off the base chain (no virtual service) lets the packet go on to the next base chain of the hook.
3. A virtual service's chain: for a persistent service, one rule per available real server whose check is a
   :class:`flow.Choices` (``NodeContext.affinity == "any"``), a plain bool (``affinity`` names an endpoint) or
   False (a new client); then the scheduling rule: a check that some real server is available, then an Action
   returning a :class:`flow.Spread` with one branch per real server (its exact share; draining real servers,
   weight 0, get none; the shares sum to 1, so there is no rest; the Spread is never empty); when no real
   server is available that check fails and the last rule REJECTs (``ip_vs_leave``: ICMP port unreachable,
   dropped; flow END).
4. Effects: verdict ``IPVS`` with the DNATed state (``dst``/``dport`` of the real server, ``dnat=True``;
   ``ctstate`` UNTRACKED when vs.conntrack is 0). Flow :data:`flow.STOP_TABLE` when the real server is an address
   of the node (``ip_vs_nat_send_or_cont`` local: the hook goes on, e.g. nat INPUT, then a local socket);
   :data:`flow.REINJECT` otherwise. On REINJECT the walker must: decide whether the new destination is the
   node's after all (when the node context did not say, :func:`flow.local_question`; local ⇒ as STOP_TABLE);
   otherwise route to it (the output interface), run LOCAL_OUT's base chains from the start (raw, mangle,
   filter, security OUTPUT; nat OUTPUT does not run: the connection's destination mapping was bound in
   PREROUTING/OUTPUT, and without conntrack nat never runs), not IPVS again, then POSTROUTING (nat runs: the
   source mapping is not bound yet) and out (or through ``lo`` when routing says local). The walker should list
   an effect's note equal to :data:`CONNTRACK_ASSUMED` among the path's assumptions, as it does for
   ``MASQ_ADDRESS_UNKNOWN``.
5. Caveat for ``--ctstate DNAT``: IPVS does not set the conntrack entry's DNAT status bit (it only alters the
   reply tuple), so in the kernel ``--ctstate DNAT`` does not match after IPVS although ``PacketState.dnat`` is
   True here (kept True for the reports' endpoint and so that nat OUTPUT is skipped). No kube-proxy rule after
   IPVS tests it; a walker that wants to be exact can check ``Effect.verdict == "IPVS"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..flow import (
    END,
    GOTO,
    REINJECT,
    STOP_TABLE,
    Action,
    Check,
    Choices,
    Effect,
    Env,
    Outcome,
    RuleRow,
    Spread,
    Undecidable,
)
from ..schedule import BaseChain
from ..trace_model import PacketState
from .model import IpvsTable, RealServer, VirtualService
from .parse import counter_value
from .shares import Shares, shares

__all__ = ["CONNTRACK_ASSUMED", "IPVS_NS", "PRIORITIES", "IpvsViews", "ServiceChain"]

IPVS_NS = ("ipvs",)
PRIORITIES = {"INPUT": 99, "OUTPUT": -98}  # NF_IP_PRI_NAT_SRC - 1, NF_IP_PRI_NAT_DST + 2 (ip_vs_ops4/ip_vs_ops6)
CONNTRACK_ASSUMED = ("net.ipv4.vs.conntrack is not known: taken as 1, as kube-proxy sets it (with 0 the connection "
                     "would be untracked and not masqueraded)")  # fmt: skip
_IPVS_PROTOS = ("tcp", "udp", "sctp")
Op = Check | Action


class _Rule:
    def __init__(self, row: RuleRow, ops: tuple[Op, ...]) -> None:
        self.row, self.ops = row, ops


@dataclass(eq=False)
class _Chain:
    """A ChainView over a fixed list of rules."""

    name: str
    rules: list[_Rule] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rules)

    def row(self, i: int) -> RuleRow:
        return self.rules[i].row

    def ops(self, i: int) -> tuple[Op, ...]:
        return self.rules[i].ops

    def next_candidate(self, start: int, dst: str, dport: int | None) -> int:
        return start

    def miss_reason(self, i: int, dst: str, dport: int | None) -> str:
        return self.rules[i].ops[0].text if self.rules[i].ops else "no match"


class ServiceChain(_Chain):
    """The rules of one virtual service: persistence (per real server), scheduling, and the refusal."""

    def __init__(self, vs: VirtualService, conntrack: bool | None) -> None:
        super().__init__(vs.key)
        self.vs, self.conntrack = vs, conntrack
        self.shares: Shares = shares(vs)
        avail = [r for r, _ in self.shares.servers]
        if vs.persistence is not None and avail:
            options = tuple((r.hostport, f"the client is bound to {r.hostport} (persistence {vs.persistence} s)")
                            for r in avail)  # fmt: skip
            for rs in avail:
                text = f"persistent client (template younger than {vs.persistence} s) -> {rs.hostport}"
                self.rules.append(_Rule(RuleRow(rs.line, text, _counter(rs)), (
                    Check(self._persist_fn(rs, options), f"a returning client bound to {rs.hostport}"),
                    Action(self._one(rs, f"persistence: {rs.hostport}"), f"-> {rs.hostport}"))))  # fmt: skip
        listed = ", ".join(f"{r.hostport} {p.numerator}/{p.denominator}" for r, p in self.shares.servers)
        drain = "".join(f", {r.hostport} 0 (weight 0, draining)" for r in self.shares.draining)
        text = f"schedule ({vs.scheduler or 'scheduler not listed'}): {listed or 'no real server available'}{drain}"
        available = bool(self.shares.servers)
        self.rules.append(_Rule(RuleRow(vs.line, text, None), (
            Check(lambda s, e: available, "a real server that can take a new connection"),
            Action(self._schedule, text))))  # fmt: skip
        refuse = "no real server can take the connection (ip_vs_leave): ICMP port unreachable, dropped"
        self.rules.append(_Rule(RuleRow(vs.line, refuse, None), (Action(self._refuse, refuse),)))

    def _persist_fn(self, rs: RealServer, options: tuple[tuple[str, str], ...]) -> Callable[[PacketState, Env],
                                                                                           Outcome]:  # fmt: skip
        key = f"ipvs persistence {self.vs.key}"

        def fn(s: PacketState, e: Env) -> Outcome:
            want = e.node.affinity
            if want is None:
                return False  # a new client has no persistence template
            if want == "any":
                return Choices(key, rs.hostport, options,
                               "which real server a returning client's persistence template points to is not known")
            return want in (rs.hostport, rs.address)

        return fn

    def _one(self, rs: RealServer, why: str) -> Callable[[PacketState, Env], Effect]:
        return lambda s, e: self.effect(rs, s, e, why)

    def _schedule(self, s: PacketState, e: Env) -> Spread:
        sh = self.shares
        branches = tuple((p, self.effect(rs, s, e, sh.note), f"{rs.hostport}: share {p.numerator}/{p.denominator}")
                         for rs, p in sh.servers)  # fmt: skip
        return Spread(branches, "" if branches else f"{sh.note}: the connection is refused")

    def _refuse(self, s: PacketState, e: Env) -> Effect:
        why = "no real servers" if not self.vs.real_servers else "every real server has weight 0 (draining)"
        return Effect("REJECT", END, s, f"{self.vs.key}: {why}; IPVS answers ICMP port unreachable (ip_vs_leave)",
                      "ICMP port-unreachable")  # fmt: skip

    def effect(self, rs: RealServer, s: PacketState, e: Env, why: str) -> Effect:
        """What IPVS does with the packet when ``rs`` is chosen."""
        ip = ipaddress.ip_address(rs.address)
        local = ip.is_loopback or e.node.is_local(rs.address)
        notes = [why]
        forward = rs.forward or "Masq"
        if rs.forward is None:
            notes.append("the forwarding method is not listed: Masq assumed (kube-proxy's)")
        if forward == "Local":
            notes.append("Local: delivered to a socket of the node unchanged")
            return Effect("IPVS", STOP_TABLE, s, "; ".join(notes), rs.hostport)
        if forward in ("Route", "Tunnel"):
            how = ("direct routing: sent to the real server unchanged (its MAC address)" if forward == "Route" else
                   "IP-in-IP tunnel to the real server (the outer header is not modelled)")  # fmt: skip
            return Effect("IPVS", STOP_TABLE if local else REINJECT, s, "; ".join([*notes, how]), rs.hostport)
        if ip.is_loopback and e.hook == "INPUT":
            notes.append("IPVS does not DNAT a connection from the network to a loopback address (ip_vs_nat_xmit)")
            return Effect("DROP", END, s, "; ".join(notes), rs.hostport)
        port = rs.port or s.dport
        tracked = self.conntrack is not False
        if self.conntrack is None:
            notes.append(CONNTRACK_ASSUMED)
        after = s.with_(dst=rs.address, dport=port, dnat=True, ctstate=s.ctstate if tracked else "UNTRACKED")
        if not tracked:
            notes.append("net.ipv4.vs.conntrack=0: the packet leaves IPVS untracked (ip_vs_notrack): no NAT after")
        notes.append("real server on this node: the hook goes on" if local else
                     "sent on through LOCAL_OUT and POSTROUTING (ip_vs_nat_send_or_cont)")  # fmt: skip
        return Effect("IPVS", STOP_TABLE if local else REINJECT, after, "; ".join(notes), rs.hostport)


def _counter(rs: RealServer) -> tuple[int, int] | None:
    stats = dict(rs.stats)
    if "InPkts" in stats and "InBytes" in stats:
        return counter_value(stats["InPkts"]), counter_value(stats["InBytes"])
    return None


class IpvsViews:
    """The IPVS step's chains for one node's table (see the module doc for the walker's contract)."""

    def __init__(self, table: IpvsTable, *, conntrack: bool | None = None) -> None:
        self.table = table
        self.conntrack = conntrack  # net.ipv4.vs.conntrack; None: not known (taken as 1, said so)
        self._chains: dict[str, _Chain] = {}
        self._families = {vs.family for vs in table.services}

    def base_chains(self, hook: str, family: int) -> list[BaseChain]:
        """The IPVS pseudo base chain of ``hook`` for a packet of ``family`` (none: no hook there)."""
        if hook not in PRIORITIES or family not in self._families:
            return []
        return [BaseChain(PRIORITIES[hook], IPVS_NS, hook, "ipvs", "ip6" if family == 6 else "ip", False)]

    def policy(self, base: BaseChain) -> str:
        return "ACCEPT"

    def chain(self, ns: Sequence[str], name: str) -> _Chain | None:
        if tuple(ns) != IPVS_NS:
            return None
        c = self._chains.get(name)
        if c is None:
            if name in PRIORITIES:
                c = self._lookup_chain(name)
            else:
                vs = next((v for v in self.table.services if v.key == name), None)
                if vs is None:
                    return None
                c = ServiceChain(vs, self.conntrack)
            self._chains[name] = c
        return c

    def _lookup_chain(self, hook: str) -> _Chain:
        text = "ip_vs_in_hook: the virtual service of the packet (protocol, destination address and port, or mark)"
        check = Check(self._lookup, "an IPVS virtual service for the packet")
        return _Chain(hook, [_Rule(RuleRow(None, text, None), (check, Action(self._goto, text)))])

    def service_for(self, s: PacketState) -> VirtualService | None:
        return self.table.lookup(s.proto, s.dst, s.dport, s.mark)

    def _lookup(self, s: PacketState, e: Env) -> Outcome:
        if s.proto not in _IPVS_PROTOS:
            return False  # ip_vs_proto_data_get: IPVS balances TCP, UDP and SCTP (AH/ESP only with DR/tunnels)
        if s.ctstate != "NEW":
            if self.service_for(s) is None:
                return False
            return Undecidable(f"ipvs connection {s.src}:{s.sport} {s.dst}:{s.dport}",
                               "whether IPVS has a connection entry for this packet is not known (it schedules only "
                               "new connections)")  # fmt: skip
        if s.proto == "tcp" and ("SYN" not in e.tcp_flags or "RST" in e.tcp_flags):
            return False  # tcp_conn_schedule: only a SYN starts a connection
        return self.service_for(s) is not None

    def _goto(self, s: PacketState, e: Env) -> Effect:
        vs = self.service_for(s)
        assert vs is not None  # the check before this action found it
        return Effect("GOTO", GOTO, s, f"virtual service {vs.key}", vs.key)
