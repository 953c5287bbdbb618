"""The pitfall checks behind :func:`kptui.engine.kube.findings.find_pitfalls`, node-wide ones here and per
service port in :mod:`.findings_services`.

Each check yields ``(Finding, also)`` pairs: ``also`` lists further rules or chains (``(table, chain, index)``,
index None for a chain) the finding concerns, so that the UI finds it from any of them.

Thresholds (documented in the README): nat KUBE-SERVICES with at least :data:`LONG_INFO` rules is an info
finding and with at least :data:`LONG_WARNING` rules a warning — the first packet of every connection to a
service walks it rule by rule. Individual findings of one code stop at :data:`CAP`; the rest are summed up
in one more finding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..graph import graph_of
from ..model import Ruleset
from .build import service_index_of
from .era import KubeLayout, detect_layout, nat_and_filter
from .facts import rows_of
from .findings_ipvs import ipvs_checks
from .findings_model import Finding, Key
from .findings_services import service_checks
from .hashes import split_chain
from .model import ServiceIndex

if TYPE_CHECKING:
    from ..ipvs.node import IpvsNode

__all__ = ["CAP", "LONG_INFO", "LONG_WARNING", "Pair", "run_checks"]

LONG_INFO = 250
LONG_WARNING = 1000
CAP = 50

Pair = tuple[Finding, Sequence[Key]]


def run_checks(ruleset: Ruleset, node: IpvsNode | None = None) -> list[Pair]:
    index = service_index_of(ruleset)
    layout = index.layout if node is None else detect_layout(ruleset, node)
    out: list[Pair] = []
    out.extend(_backends(layout))
    out.extend(_input(ruleset))
    out.extend(_capped(list(_dangling(ruleset)), "dangling-jump"))
    if layout.kube_proxy and layout.mode == "iptables":
        out.extend(_capped(list(_stale(ruleset, index)), "unreferenced-chain"))
        out.extend(_localhost_nodeports(ruleset, layout))
        out.extend(_invalid_drop(ruleset))
        out.extend(_long_services(ruleset))
        out.extend(service_checks(ruleset, index))
    elif layout.kube_proxy and layout.mode == "ipvs":
        out.extend(_capped_all(list(ipvs_checks(ruleset, layout, node))))
    return out


def _capped_all(pairs: list[Pair]) -> list[Pair]:
    """:func:`_capped` per finding code, in the order the codes first appear."""
    out: list[Pair] = []
    for code in dict.fromkeys(f.code for f, _ in pairs):
        out.extend(_capped([p for p in pairs if p[0].code == code], code))
    return out


def _capped(pairs: list[Pair], code: str) -> list[Pair]:
    """At most CAP findings of one code; the rest become one finding that counts them."""
    if len(pairs) <= CAP:
        return pairs
    rest = pairs[CAP:]
    first = rest[0][0]
    also: list[Key] = [k for f, keys in rest if f.chain is not None
                       for k in ((f.table, f.chain, f.index), *keys)]  # fmt: skip
    more = Finding(code, first.severity, f"{len(rest)} more like this ({code})",
                   f"{len(rest)} further findings of the same kind, the first at {first.location}: "
                   f"{first.detail}", first.advice, first.table, first.chain, first.index, first.line,
                   None, len(rest))  # fmt: skip
    return [*pairs[:CAP], (more, also)]


def _backends(layout: KubeLayout) -> Iterator[Pair]:
    if "legacy" in layout.backends_present and "nf_tables" in layout.backends_present:
        yield Finding(
            "mixed-backends", "error", "rules in both iptables backends (legacy and nft)",
            "The dump says \"iptables-legacy tables present\": this node has rules in the legacy backend too, "
            "and iptables-nft-save does not show them. The kernel runs both sets, so a packet can be NATed or "
            "dropped by rules this dump does not contain.",
            "Run iptables-legacy-save to see the other rules; make every component (kube-proxy, kubelet, the "
            "CNI, Docker) use the same backend and flush the stale one.",
        ), ()  # fmt: skip


def _input(ruleset: Ruleset) -> Iterator[Pair]:
    """A pasted dump with left-out or filtered lines, or iptables -S listings whose table is not known."""
    if ruleset.rules_missing:
        yield Finding(
            "rules-missing", "error", "rules are missing from this dump",
            "The paste leaves lines out (" + "; ".join(ruleset.rules_missing) + "): every finding, service and "
            "trace drawn from it may miss what those rules do.",
            "Paste the whole output of iptables-save (ip6tables-save), without '...' and without | grep.",
        ), ()  # fmt: skip
    if ruleset.unplaced_chains:
        yield Finding(
            "table-unknown", "warning", "chains whose table is not known",
            f"{len(ruleset.unplaced_chains)} chains come from iptables -S output that does not say its table "
            f"({', '.join(ruleset.unplaced_chains[:6])}{', …' if len(ruleset.unplaced_chains) > 6 else ''}): "
            "kptui cannot trace through them.",
            "Paste iptables-save output, or each 'iptables -t TABLE -S' listing after its command line.",
        ), ()  # fmt: skip


def _dangling(ruleset: Ruleset) -> Iterator[Pair]:
    for ref, target in graph_of(ruleset).dangling:
        svc = service_index_of(ruleset).by_chain(target)
        yield Finding(
            "dangling-jump", "error", f"jump to undeclared chain {target}",
            f"{ref.table or '?'}/{ref.chain} rule {ref.index} jumps to {target}, which this dump does not "
            "declare: iptables-restore refuses such a rule, so the dump is incomplete, was edited, or was "
            "assembled from several saves.",
            "Take a fresh, complete iptables-save of the node; if it persists, find who writes the rule.",
            ref.table, ref.chain, ref.index, ref.line, svc.label if svc else None,
        ), ()  # fmt: skip


def _stale(ruleset: Ruleset, index: ServiceIndex) -> Iterator[Pair]:
    for ref in graph_of(ruleset).unreferenced:
        if split_chain(ref.chain) is None:
            continue
        chain = ruleset.chain(ref.table, ref.chain)
        svc = index.by_chain(ref.chain)
        yield Finding(
            "unreferenced-chain", "warning", f"stale chain {ref.chain}: no rule jumps to it",
            f"{ref.chain} is a per-service chain of kube-proxy{' (' + svc.label + ')' if svc else ''} that no rule "
            "references, so no packet ever reaches it. kube-proxy deletes the chains of removed services and "
            "endpoints when it syncs; a stale one means a sync failed or stopped half-way, another kube-proxy "
            "(or a mode change) left it, or the rules were edited.",
            "Check kube-proxy's logs for sync errors; restarting kube-proxy makes it rewrite and clean up its "
            "rules.",
            ref.table, ref.chain, None, chain.line if chain else None, svc.label if svc else None,
        ), ()  # fmt: skip


def _localhost_nodeports(ruleset: Ruleset, layout: KubeLayout) -> Iterator[Pair]:
    if not layout.localhost_nodeports:
        return
    nat, _ = nat_and_filter(ruleset)
    if nat is None:
        return
    keys: list[tuple[Key, int]] = []
    services = nat.chains.get("KUBE-SERVICES")
    for i, row in enumerate(rows_of(services)):
        if row[4] == "KUBE-NODEPORTS" and "! -d 127." not in row[1] and ("-d " not in row[1]
                                                                         or " -d 127." in row[1]):
            keys.append(((nat.name, "KUBE-SERVICES", i + 1), row[0]))  # fmt: skip
    for i, row in enumerate(rows_of(nat.chains.get("KUBE-NODEPORTS"))):
        if " -d 127." in row[1]:
            keys.append(((nat.name, "KUBE-NODEPORTS", i + 1), row[0]))
    if not keys:
        return
    (table, chain, idx), line = keys[0]
    guard = ("filter KUBE-FIREWALL's \"block incoming localnet connections\" rule limits that to replies and "
             "DNATed connections" if layout.localnet_guard else
             "and this node has no KUBE-FIREWALL \"block incoming localnet connections\" rule to limit that")
    yield Finding(
        "localhost-nodeport", "warning", "NodePorts answer on 127.0.0.1 (route_localnet)",
        "NodePort services are reachable at 127.0.0.1:NODEPORT from the node. For that kube-proxy sets "
        "net.ipv4.conf.all.route_localnet=1, which lets packets to 127.0.0.0/8 be routed: hosts on the same "
        f"link could reach services bound to localhost on this node; {guard}.",
        "If nothing on the node uses localhost NodePorts, run kube-proxy with --iptables-localhost-nodeports="
        "false (or set nodePortAddresses to the node's real addresses).",
        table, chain, idx, line, None, len(keys),
    ), [k for k, _ in keys[1:]]  # fmt: skip


def _invalid_drop(ruleset: Ruleset) -> Iterator[Pair]:
    _, filt = nat_and_filter(ruleset)
    chain = filt.chains.get("KUBE-FORWARD") if filt is not None else None
    for i, row in enumerate(rows_of(chain)):
        if row[4] == "DROP" and "--ctstate INVALID" in row[1] and "! --ctstate" not in row[1]:
            yield Finding(
                "ctstate-invalid-drop", "info", "forwarded packets in conntrack state INVALID are dropped",
                "kube-proxy drops forwarded packets conntrack considers INVALID, typically TCP segments outside the "
                "window after loss or reordering. Let through, they would reach the pod un-NATed and be answered "
                "with a reset that kills the connection; dropped, they only cost a retransmission. A growing "
                "counter on this rule explains retransmissions and stalls, not refused connections.",
                "Look at this rule's counters (iptables-save -c) and conntrack -S (invalid); kube-proxy leaves the "
                "rule out when it runs with --conntrack-tcp-be-liberal (nf_conntrack_tcp_be_liberal=1).",
                filt.name if filt else None, "KUBE-FORWARD", i + 1, row[0],
            ), ()  # fmt: skip


def _long_services(ruleset: Ruleset) -> Iterator[Pair]:
    nat, _ = nat_and_filter(ruleset)
    chain = nat.chains.get("KUBE-SERVICES") if nat is not None else None
    n = len(chain.rules) if chain is not None else 0
    if chain is None or n < LONG_INFO:
        return
    severity = "warning" if n >= LONG_WARNING else "info"
    yield Finding(
        "long-kube-services", severity, f"nat KUBE-SERVICES has {n} rules",
        f"The first packet of every new connection to a service walks nat KUBE-SERVICES rule by rule until its "
        f"service's rule matches: up to {n} rule evaluations, so first-packet latency and CPU grow linearly with "
        "the number of service addresses (and so does every rule sync).",
        "At this scale consider kube-proxy's nftables mode (GA in Kubernetes 1.33), whose verdict maps find a "
        "service in constant time; otherwise keep the number of Service ports down.",
        nat.name if nat else None, "KUBE-SERVICES", None, chain.line,
    ), ()  # fmt: skip
