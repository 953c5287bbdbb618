"""Kernel harness for native nftables rulesets: kube-proxy's nftables mode, other components' tables, mixed nodes.

:func:`nft_lab` builds the lab of a :class:`samples.scenarios.Scenario` (the same topology as
:mod:`tests.kernel.harness`: node, client pod, one pod per local endpoint, an outside host owning the remote
endpoints), loads kube-proxy's nftables ruleset (:func:`tools.kubegen_nft.generate_nft`, ``nft -f``) -- or, for a
mixed node, kube-proxy's iptables rules with iptables-nft-restore -- plus any native tables of other components,
and runs echo servers. :meth:`NftKernelLab.observe` sends probes from fixed source ports while ``nft monitor
trace`` runs (a trace table of the lab's own, :mod:`tools.netlab_nft`) and returns an :class:`NftObservation`
per probe: the first packet's kernel walk with every base chain visit named by its hook (the listing's base
chains are passed to the parser), the trace table's own events removed; the echo server's answer (endpoint
reached, address it saw); and the listings before and after the capture.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from kptui.engine.kernel_trace import BaseChains, KernelTrace, first_packet, parse_kernel_trace
from kptui.engine.packet import NodeContext
from samples.build_samples import build_topology
from samples.scenarios import Scenario
from tools.kubegen import Ruleset
from tools.kubegen_nft import generate_nft
from tools.netlab import Probe, ProbeResult
from tools.netlab_nft import TRACE_TABLE, NftLab

from .harness import KernelLab, Observation, Send

__all__ = ["NftKernelLab", "NftObservation", "Send", "base_chains_of", "nft_lab", "strip_counters", "strip_trace"]

PROBE_TIMEOUT = 0.5
POD6_SUBNET = "fd00:10:244:1::/64"  # this node's IPv6 pod subnet (samples/scenarios.NET6)
FAMILY_NAMES = {2: "ip", 10: "ip6", 1: "inet", 3: "arp", 7: "bridge", 5: "netdev"}
_SPORTS = itertools.count(47000)
_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")


def strip_counters(text: str) -> str:
    """``counter packets 3 bytes 180`` -> ``counter`` (the trace prints the values when the monitor looked)."""
    return _COUNTER.sub("counter", text)


def base_chains_of(ruleset_json: Mapping[str, Any]) -> dict[tuple[str, str, str], tuple[str, str, int]]:
    """(family, table, chain) -> (hook, type, priority) of every base chain in ``nft -j list ruleset`` output."""
    out = {}
    for obj in ruleset_json.get("nftables", []):
        c = obj.get("chain")
        if c and "hook" in c:
            out[(c["family"], c["table"], c["name"])] = (c["hook"], c["type"], int(c["prio"]))
    return out


@dataclass
class NftObservation(Observation):
    """One probe on an nft node. ``kernel`` has the trace table's events removed; ``rules`` is the node's
    iptables-nft-save text (empty on a node without iptables rules)."""

    nft: str = ""  # the native tables as ``nft list table`` printed them after the capture
    nft_before: str = ""  # the same just before the capture (what the first packet met: dynamic sets)
    nft_json: Mapping[str, Any] = field(default_factory=dict)  # ``nft -j list ruleset`` after the capture
    nft_all: str = ""  # ``nft -a list ruleset`` after the capture (iptables-nft tables included, with handles)
    family: int = 4
    native: tuple[tuple[str, str], ...] = ()  # (family, name) of the native tables (the rest is iptables-nft's)

    @property
    def visits(self) -> list[tuple[str | None, str, str, str]]:
        """(hook, family, table, base chain) of every base chain visit of the first packet, in the kernel's order
        (a visit's first event is in its base chain)."""
        out: dict[tuple[str, int | None], tuple[str | None, str, str, str]] = {}
        for e in self.kernel.events if self.kernel else ():
            key = (e.trace_id, e.packet.line if e.packet else None)
            out.setdefault(key, (e.hook, FAMILY_NAMES.get(e.family, str(e.family)), e.table, e.chain))
        return list(out.values())

    @property
    def masqueraded(self) -> bool | None:
        """The echo server saw another source address than the client's (None: no answer)."""
        if not self.result.ok or not self.result.peer or self.kernel is None or self.kernel.first is None:
            return None
        return self.result.peer[0] != self.kernel.first.src


@dataclass
class NftKernelLab(KernelLab):
    """A running nft lab: what :class:`~tests.kernel.harness.KernelLab` has, plus the native tables."""

    native: tuple[tuple[str, str], ...] = ()  # (family, name) of each native table loaded (kube-proxy's included)
    iptables: bool = False  # kube-proxy's rules are iptables rules (a mixed node)
    _base: dict[tuple[str, str, str], tuple[str, str, int]] | None = field(default=None, repr=False)

    @property
    def nftlab(self) -> NftLab:
        assert isinstance(self.lab, NftLab)
        return self.lab

    @property
    def family(self) -> int:
        return self.scenario.family

    # ---- the node -------------------------------------------------------------------------------
    def interfaces(self) -> dict[str, tuple[str, ...]]:
        """Interface name -> CIDRs of the scenario's family in the node namespace (read once)."""
        if self._iface_cache is None:
            fam = "-6" if self.family == 6 else "-4"
            data = json.loads(self.lab.exec(self.lab.node, ["ip", "-j", fam, "addr", "show"]).stdout)
            self._iface_cache = {d["ifname"]: tuple(f"{a['local']}/{a['prefixlen']}" for a in d.get("addr_info", []))
                                 for d in data}  # fmt: skip
        return dict(self._iface_cache)

    def context(self, *, pod_iface: str | None = None, recent: frozenset[str] = frozenset(),
                affinity: str | None = None) -> NodeContext:  # fmt: skip
        """The node as the engine needs it; an IPv6 node's pod CIDRs are its own family's."""
        ctx = super().context(pod_iface=pod_iface, recent=recent, affinity=affinity)
        if self.family == 6 and self.scenario.node.cluster_cidr:
            ctx = replace(ctx, pod_cidrs=(POD6_SUBNET, self.scenario.node.cluster_cidr))
        return ctx

    def base_chains(self) -> BaseChains:
        """The base chains of the node's ruleset (read once) and of the trace table."""
        if self._base is None:
            self._base = base_chains_of(self.nftlab.ruleset_json())
        fam = "ip6" if self.family == 6 else "ip"
        return {**self._base, (fam, TRACE_TABLE, "pre"): ("prerouting", "filter", -310),
                (fam, TRACE_TABLE, "out"): ("output", "filter", -310)}

    def native_listing(self) -> str:
        """``nft list table`` of every native table, in load order."""
        return "".join(self.nftlab.list_ruleset(family=f, table=t) for f, t in self.native)

    # ---- traffic --------------------------------------------------------------------------------
    def forget(self) -> None:
        """Flush conntrack, ``recent`` lists and the dynamic (affinity) sets: every probe is a first packet."""
        self.lab.flush_conntrack()
        if self.iptables:
            self.lab.flush_recent()
        self.nftlab.flush_dynamic_sets()

    def observe(self, sends: Sequence[Send], *, fresh: bool = True, attempts: int = 3) -> list[Observation]:
        """Send ``sends`` (one trace capture per protocol, fresh source ports) and observe each; a capture that
        lost the end of a walk is repeated (first packets again when ``fresh``)."""
        if fresh:
            self.forget()
        out: dict[int, Observation] = {}
        for proto in dict.fromkeys(s.proto for s in sends):
            for attempt in range(attempts):
                before = self.native_listing()
                batch = [(i, s, next(_SPORTS)) for i, s in enumerate(sends) if s.proto == proto]
                results, text = self._nft_capture(proto, batch)
                log = parse_kernel_trace(text, base_chains=self.base_chains())
                walks = [first_packet(log, proto, p) for _, _, p in batch]
                if all(_complete(k) for k in walks):
                    break
                if fresh and attempt + 1 < attempts:
                    self.forget()
            after, js = self.native_listing(), self.nftlab.ruleset_json()
            full = self.lab.exec(self.lab.node, ["nft", "-a", "list", "ruleset"]).stdout
            rules = self.lab.save_rules(counters=False, family=self.family) if self.iptables else ""
            for (i, s, p, res), k in zip(results, walks, strict=True):
                out[i] = NftObservation(s, p, self.source(s.who)[1], res, strip_trace(k), rules, text, log.warnings,
                                        nft=after, nft_before=before, nft_json=js, nft_all=full,
                                        family=self.family, native=self.native)  # fmt: skip
        return [out[i] for i in range(len(sends))]

    def _nft_capture(self, proto: str, batch: list[tuple[int, Send, int]]
                     ) -> tuple[list[tuple[int, Send, int, ProbeResult]], str]:  # fmt: skip
        ports = [p for _, _, p in batch]
        self.nftlab.nft_trace_start(proto, (min(ports), max(ports)), family=self.family)
        try:
            results = [(i, s, p, self.lab.probe(self.source(s.who)[0],
                                                [Probe(proto, s.dst, s.port, s.src, p, PROBE_TIMEOUT)])[0])
                       for i, s, p in batch]  # fmt: skip
            self.nftlab.nft_trace_wait_idle()
        finally:
            text = self.nftlab.nft_trace_stop()
        return results, text


def _complete(k: KernelTrace | None) -> bool:
    """A walk that reached its end: dropped, or delivered locally / sent out."""
    return k is not None and (k.verdict != "ACCEPT" or k.delivery in ("local", "forward"))


def strip_trace(k: KernelTrace | None) -> KernelTrace | None:
    """The walk without the trace table's rule and policy events."""
    if k is None:
        return None
    return replace(k, events=tuple(e for e in k.events if e.table != TRACE_TABLE and not e.is_trace_rule))


@contextmanager
def nft_lab(scenario: Scenario, *, layout: str = "1.33", extra: Callable[[NftKernelLab], str] | None = None,
            extra_tables: Sequence[tuple[str, str]] = ()) -> Iterator[NftKernelLab]:  # fmt: skip
    """The lab of ``scenario`` with kube-proxy's nftables ruleset (``layout``) -- or, when ``scenario.mode`` is
    ``"mixed"``, its iptables rules (iptables-nft) -- plus ``extra(lab)`` native tables (named in
    ``extra_tables``) and the scenario's own (``scenario.nft_extend``); everything torn down afterwards."""
    with NftLab(f"kn-{scenario.name}"[:12]) as lab:
        for key in ("net.ipv4.icmp_ratelimit", "net.ipv6.icmp.ratelimit"):
            lab.sysctl(lab.node, key, "0")  # every REJECT answered at once
        topo = build_topology(lab, scenario)
        mixed = scenario.mode == "mixed"
        fam = "ip6" if scenario.family == 6 else "ip"
        native: list[tuple[str, str]] = []
        rs = Ruleset()
        klab = NftKernelLab(lab, topo, scenario, rs, iptables=mixed)
        if mixed:
            from tools.kubegen import generate
            rs = generate(scenario.services, scenario.node, scenario.layout)
            if scenario.extend is not None:
                scenario.extend(rs, topo.pod_ifaces)
            lab.load_rules(rs.render(), backend="nft", family=scenario.family)
            klab.ruleset = rs
        else:
            lab.load_nft(generate_nft(scenario.services, scenario.node, scenario.nft_layout or layout).render())
            native.append((fam, "kube-proxy"))
        if scenario.nft_extend is not None:
            text, tables = scenario.nft_extend(scenario, topo.pod_ifaces)
            lab.load_nft(text)
            native += tables
        if extra is not None:
            lab.load_nft(extra(klab))
            native += list(extra_tables)
        klab.native = tuple(native)
        yield klab
