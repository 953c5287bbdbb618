"""Kernel-vs-engine conformance harness: send a real packet, read the kernel's trace, replay it in the engine.

:func:`kernel_lab` builds a lab from a :class:`samples.scenarios.Scenario` (node, client pod, one pod per local
endpoint, an outside host that also owns the remote endpoints: ``samples/build_samples.build_topology``), loads
kube-proxy's rules with ``iptables-nft-restore`` (whatever the scenario's backend: only nft rules are traced)
and runs echo servers. :meth:`KernelLab.observe` sends probes with fixed source ports while
``xtables-monitor --trace`` runs (TRACE rules for the first packets of that source-port range in the node's raw
PREROUTING/OUTPUT, deleted again before the rules are saved), and returns an :class:`Observation` per probe:
the first packet's kernel events without the TRACE rules, the echo server's answer, and the rules as
``iptables-nft-save`` printed them afterwards. :func:`tests.kernel.compare.check` replays it in the engine.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from kptui.engine import parse_ruleset
from kptui.engine.ipset import IpsetTable
from kptui.engine.ipset_parse import parse_ipsets
from kptui.engine.kernel_handles import rule_handles, with_iptables_rules
from kptui.engine.kernel_trace import KernelTrace, first_packet, parse_kernel_trace
from kptui.engine.packet import NodeContext, Packet
from samples.build_samples import Topology, build_topology, setup_ipvs
from samples.scenarios import Scenario
from tools.kubegen import Ruleset, generate
from tools.netlab import Lab, Probe, ProbeResult

POD_CIDRS = ("10.244.1.0/24", "10.244.0.0/16")  # this node's pod subnet first, then the cluster CIDR
POD_CIDRS6 = ("fd00:10:244:1::/64", "fd00:10:244::/56")
UPLINK = "eth0"
PROBE_TIMEOUT = 0.5
OVERFLOW = "No buffer space available"  # xtables-monitor's netlink socket overflowed: it exits, events are lost
_SPORTS = itertools.count(43000)


@dataclass(frozen=True)
class Send:
    """One probe to send: from ``who`` ("pod", "outside", "node", or a local endpoint's IP) to dst:port."""

    who: str
    proto: str
    dst: str
    port: int
    src: str | None = None  # source address to bind (outside clients own several)


@dataclass
class Observation:
    """What happened to one probe: the kernel's view of its first packet and the rules it met."""

    send: Send
    sport: int
    origin: str  # engine origin: pod, external, local
    result: ProbeResult
    kernel: KernelTrace | None  # first SYN/datagram, TRACE rules removed; None if not captured
    rules: str  # iptables-nft-save of the node after the capture (TRACE rules already deleted)
    capture: str  # the whole monitor output of the batch
    warnings: tuple[str, ...] = ()

    def packet(self) -> Packet:
        """The engine's Packet for this probe, with the addresses the kernel saw on the first packet."""
        assert self.kernel is not None and self.kernel.first is not None
        first = self.kernel.first
        assert first.src and first.dst, f"first packet without addresses: {first}"
        return Packet(first.src, first.dst, proto=self.send.proto, sport=first.sport, dport=first.dport,
                      origin=self.origin, in_iface=first.iif if self.origin != "local" else None)

    def describe(self) -> str:
        """``pod tcp 10.244.1.100:43001 -> 10.96.10.20:80 => pod1 (peer 10.244.1.100)``"""
        s = self.send
        src = self.kernel.first.src if self.kernel and self.kernel.first else (s.src or "?")
        outcome = self.result.outcome + (f" (peer {self.result.peer[0]})" if self.result.peer else "")
        return f"{s.who} {s.proto} {src}:{self.sport} -> {s.dst}:{s.port} => {outcome}"


@dataclass
class KernelLab:
    """A running lab plus what the engine needs to know about its node."""

    lab: Lab
    topo: Topology
    scenario: Scenario
    ruleset: Ruleset
    _iface_cache: dict[str, tuple[str, ...]] | None = field(default=None, repr=False)
    _ipset_cache: IpsetTable | None = field(default=None, repr=False)
    families: tuple[int, ...] = ()  # the families of the node's rules (a dual-stack node has both); () = the scenario's

    def __post_init__(self) -> None:
        if not self.families:
            self.families = (self.scenario.family,)

    @property
    def family(self) -> int:
        return self.families[0]

    # ---- sources -------------------------------------------------------------------------------
    def source(self, who: str) -> tuple[str, str, str | None]:
        """(namespace, engine origin, interface the node receives on) of a probe source."""
        if who == "pod":
            return self.topo.client, "pod", self.pod_iface(self.topo.client)
        if who == "outside":
            return self.topo.outside, "external", UPLINK
        if who == "node":
            return self.lab.node, "local", None
        if who == "ctr":  # the Docker container of the foreign-chains scenario, behind bridge docker0
            return self.lab.prefix + "ctr", "pod", "docker0"
        ns = self.topo.pods[who]
        return ns, "pod", self.pod_iface(ns)

    def pod_iface(self, ns: str) -> str:
        """The node-side veth of a pod namespace (``veth<short>``, or ``cali…`` in Calico scenarios)."""
        return dict(zip(self.topo.pods.values(), self.topo.pod_ifaces, strict=True))[ns]

    def ipset_save(self) -> str:
        """``ipset save`` of the node, verbatim."""
        return self.lab.exec(self.lab.node, ["ipset", "save"]).stdout

    def ipsets(self) -> IpsetTable | None:
        """The node's ipsets as kptui parses ``ipset save``, or None when the scenario has none."""
        if not (self.scenario.calico or self.scenario.layout == "ipvs"):
            return None
        if self._ipset_cache is None:  # the sets do not change while a lab runs
            self._ipset_cache = parse_ipsets(self.ipset_save(), "ipset save")
        return self._ipset_cache

    # ---- the node as the engine sees it --------------------------------------------------------
    def interfaces(self) -> dict[str, tuple[str, ...]]:
        """Interface name -> CIDRs of the node's families in the node namespace (read once; IPv6 link-local
        addresses left out)."""
        if self._iface_cache is None:
            found: dict[str, list[str]] = {}
            for fam in self.families:
                data = json.loads(self.lab.exec(self.lab.node, ["ip", "-j", f"-{fam}", "addr", "show"]).stdout)
                for d in data:
                    found.setdefault(d["ifname"], []).extend(
                        f"{a['local']}/{a['prefixlen']}" for a in d.get("addr_info", [])
                        if not a["local"].startswith("fe80:"))  # fmt: skip
            self._iface_cache = {k: tuple(v) for k, v in found.items()}
        return dict(self._iface_cache)

    def add_node_address(self, dev: str, cidr: str) -> None:
        """Put another address on the node (the engine's context follows)."""
        self.lab.add_addr(self.lab.node, dev, cidr)
        self._iface_cache = None

    def del_node_address(self, dev: str, cidr: str) -> None:
        """Remove an address added by :meth:`add_node_address`."""
        self.lab.ip(self.lab.node, "addr", "del", cidr, "dev", dev)
        self._iface_cache = None

    def context(self, *, pod_iface: str | None = None, recent: frozenset[str] = frozenset(),
                affinity: str | None = None) -> NodeContext:  # fmt: skip
        """NodeContext with the node's real addresses and interfaces."""
        ifaces = self.interfaces()
        addrs = tuple(dict.fromkeys(c.split("/")[0] for cs in ifaces.values() for c in cs
                                    if not c.startswith(("127.", "::1/"))))  # fmt: skip
        cidrs = tuple(c for fam in self.families for c in (POD_CIDRS6 if fam == 6 else POD_CIDRS))
        return NodeContext(addresses=addrs, pod_cidrs=cidrs, interfaces=ifaces, uplink=UPLINK,
                           pod_iface=pod_iface or self.pod_iface(self.topo.client), recent=recent,
                           affinity=affinity, ipsets=self.ipsets(), sysctls=self.sysctls(),
                           routes=self.routes())  # fmt: skip

    def sysctls(self) -> dict[str, str]:
        """The node's sysctls that change what routing does with a packet, as the kernel has them now."""
        out = self.lab.exec(self.lab.node, ["sysctl", "-a", "-r", r"route_localnet|rp_filter|ip_forward|forwarding"],
                            check=False).stdout  # fmt: skip
        return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in out.splitlines()) if v}

    def routes(self) -> tuple[tuple[str, str], ...]:
        """The node's main-table routes of its families: (destination, device; "" when not unicast). A dual-stack
        node has both families' routes, so "default" is spelled as the family's 0.0.0.0/0 or ::/0."""
        out: list[tuple[str, str]] = []
        for family in self.families:
            data = json.loads(self.lab.ip(self.lab.node, "-j", f"-{family}", "route", "show") or "[]")
            zero = "::/0" if family == 6 else "0.0.0.0/0"
            out.extend((zero if r.get("dst") == "default" else str(r.get("dst")),
                        "" if r.get("type", "unicast") != "unicast" else str(r.get("dev") or ""))
                       for r in data)  # fmt: skip
        return tuple(out)

    def context_for(self, obs: Observation, **kw: object) -> NodeContext:
        """NodeContext for one observation. NodeContext has a single ``pod_iface`` for "the interface pod traffic
        arrives on" and "the route to this node's pods"; the lab routes each pod over its own veth. The Packet
        names the arrival interface itself, so ``pod_iface`` is set to the veth the kernel routed the packet
        out of when that is a pod's (so ``-o cali…`` matches see the real interface), else to the arrival one."""
        iface = None
        if obs.kernel is not None:
            pod_ifaces = set(self.topo.pod_ifaces)
            out = [p.oif for p in obs.kernel.packets if p.oif in pod_ifaces]
            first = obs.kernel.first
            iface = out[-1] if out else (first.iif if obs.origin == "pod" and first else None)
        return self.context(pod_iface=iface, **kw)  # type: ignore[arg-type]

    # ---- traffic ------------------------------------------------------------------------------
    def forget(self) -> None:
        """Flush conntrack and every ``recent`` list in the node: every probe is a first packet again."""
        self.lab.flush_conntrack()
        self.lab.flush_recent()

    def observe(self, sends: Sequence[Send], *, fresh: bool = True, attempts: int = 3,
                family: int | None = None) -> list[Observation]:  # fmt: skip
        """Send ``sends`` (one trace capture per protocol, fresh source ports) and observe each. A capture
        that lost events (the monitor overflowed, or subscribed late on a slow machine) is repeated."""
        if fresh:
            self.forget()
        fam = family or (6 if ":" in sends[0].dst else 4)
        out: dict[int, Observation] = {}
        for proto in dict.fromkeys(s.proto for s in sends):
            for attempt in range(attempts):
                batch = [(i, s, next(_SPORTS)) for i, s in enumerate(sends) if s.proto == proto]
                results, text = self._capture(proto, batch, fam)
                log = parse_kernel_trace(text)
                walks = [first_packet(log, proto, p) for _, _, p in batch]
                if OVERFLOW not in text and all(_complete(k) for k in walks):
                    break
                if fresh and attempt + 1 < attempts:  # retry from fresh ports, as first packets again
                    self.forget()
            rules = self.lab.save_rules(counters=False, family=fam)
            handles = None
            if fam == 6:  # nft monitor trace: its rules are nft translations; the handles name the save's rules
                listing = self.lab.exec(self.lab.node, ["nft", "-a", "list", "ruleset"]).stdout
                handles = (rule_handles(listing), parse_ruleset(rules, source="kernel-save"))
            for (i, s, p, res), k in zip(results, walks, strict=True):
                if k is not None and handles is not None:
                    k = with_iptables_rules(k, *handles)
                out[i] = Observation(s, p, self.source(s.who)[1], res, k.without_trace_rules() if k else None,
                                     rules, text, log.warnings)  # fmt: skip
        return [out[i] for i in range(len(sends))]

    def _capture(self, proto: str, batch: list[tuple[int, Send, int]], family: int = 4
                 ) -> tuple[list[tuple[int, Send, int, ProbeResult]], str]:  # fmt: skip
        """One trace session: TRACE only the first packets (``--syn`` for TCP: fewer events, so the monitor,
        which looks every traced rule up in the kernel, keeps up), send the batch, return results and text."""
        ports = [p for _, _, p in batch]
        match = ["-p", proto, "--sport", f"{min(ports)}:{max(ports)}"] + (["--syn"] if proto == "tcp" else [])
        self.lab.trace_start(match, family=family)
        try:
            results = [(i, s, p, self.lab.probe(self.source(s.who)[0],
                                                [Probe(proto, s.dst, s.port, s.src, p, PROBE_TIMEOUT)])[0])
                       for i, s, p in batch]  # fmt: skip
            self.lab.trace_wait_idle()
        finally:
            text = self.lab.trace_stop()
        return results, text

    def observe_until(self, send: Send, want: Callable[[list[Observation]], bool], *, batch: int = 8,
                      rounds: int = 4) -> list[Observation]:  # fmt: skip
        """Repeat ``send`` in batches of ``batch`` (fresh source ports, conntrack flushed) until ``want``
        holds for everything observed so far; return all observations (the caller checks ``want``)."""
        seen: list[Observation] = []
        for _ in range(rounds):
            seen += self.observe([send] * batch)
            if want(seen):
                break
        return seen


def _complete(k: KernelTrace | None) -> bool:
    """A first packet's walk that reached its end: dropped, or delivered locally / sent out."""
    return k is not None and (k.verdict != "ACCEPT" or k.delivery in ("local", "forward"))


@contextmanager
def kernel_lab(scenario: Scenario, *, extend: Callable[[Ruleset, KernelLab], None] | None = None,
               layout: str | None = None) -> Iterator[KernelLab]:  # fmt: skip
    """Build the lab of ``scenario`` (optionally with extra rules from ``extend``), load the rules with
    iptables-nft-restore whatever the scenario's backend, and tear everything down afterwards."""
    with Lab(f"kc-{scenario.name}"[:12]) as lab:
        for key in ("net.ipv4.icmp_ratelimit",):
            lab.sysctl(lab.node, key, "0")  # every REJECT answered at once
        topo = build_topology(lab, scenario)
        rs = generate(scenario.services, scenario.node, layout or scenario.layout)
        klab = KernelLab(lab, topo, scenario, rs, families=(scenario.family,))
        if scenario.extend is not None:  # the scenario's own extra rules (Docker, Calico)
            scenario.extend(rs, topo.pod_ifaces)
        if extend is not None:
            extend(rs, klab)
        setup_ipvs(lab, rs)  # IPVS mode: kube-ipvs0 and the ipsets, before the rules that match them
        lab.load_rules(rs.render(), backend="nft", family=scenario.family)
        yield klab
