"""Which kube-proxy wrote a dump, and how it was configured, told from the rules alone.

Layout eras (REFERENCE §2), newest first, each told by something only that era writes:

* ``1.31+``: the 1.25+ layout plus ``-m nfacct`` counters (localhost NodePorts, ctstate INVALID drops);
* ``1.25+``: filter ``KUBE-PROXY-FIREWALL`` (always created, even when empty);
* ``1.24``: ``KUBE-EXT-*`` / ``KUBE-SVL-*`` chains without KUBE-PROXY-FIREWALL;
* ``1.21-1.23``: ``KUBE-XLB-*`` chains, or ``KUBE-FW-*`` chains ending in ``KUBE-MARK-DROP``;
* ``<=1.20``: masquerade rules (``-j KUBE-MARK-MASQ``) in nat KUBE-SERVICES itself.

When no per-service chain tells (a node with only ClusterIP services), the era is a range (``1.21-1.24``).
Detection only reads chain names and a few hundred rules, so ``kptui summary`` can afford it on any dump.

The proxy mode is told by what nat KUBE-SERVICES, the live entry point, does: ``-m set --match-set
KUBE-CLUSTER-IP`` (or another kube-proxy IPVS set) is IPVS mode, jumps to KUBE-SVC/SVL/EXT/FW chains iptables
mode. What the node says besides the rules (``IpvsNode``: kube-proxy's own ``/proxyMode``, a non-empty IPVS
table, addresses on ``kube-ipvs0``) decides when the rules do not, and wins over them for the proxy mode. The
other mode's chains are then leftovers: KUBE-SVC/KUBE-SEP chains on an IPVS node (an earlier iptables mode),
IPVS-mode chains and set matches on an iptables node.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import Chain, Ruleset, Table
from .era_old import OLD_MASQ_MARK, WEAK_ERAS, era_at_least, era_at_most, era_bounds, narrow_old_era
from .facts import Row, facts_of, rows_of

if TYPE_CHECKING:
    from ..ipvs.node import IpvsNode

__all__ = ["KubeLayout", "detect_layout", "era_at_least", "era_at_most", "era_bounds", "layout_to_dict",
           "nat_and_filter"]

_MARK = re.compile(r"--(?:set-xmark|or-mark|set-mark) (0x[0-9a-fA-F]+|\d+)")
_IPVS_CHAINS = ("KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER", "KUBE-LOAD-BALANCER", "KUBE-NODE-PORT",
                "KUBE-LOOP-BACK", "KUBE-IPVS-EXTERNAL-SERVICES")  # fmt: skip
_KUBELET_CHAINS = ("KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT", "KUBE-MARK-DROP")
_IPVS_SET = re.compile(r"--match-set (KUBE-(?:6-)?(?:CLUSTER-IP|NODE-PORT-[A-Z-]+|LOAD-BALANCER|EXTERNAL-IP)\S*) ")
_SERVICE_CHAIN = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")
# the userspace proxy's chains (--proxy-mode=userspace: the default before 1.2, removed in 1.26)
_USERSPACE = ("KUBE-PORTALS-CONTAINER", "KUBE-PORTALS-HOST", "KUBE-NODEPORT-CONTAINER", "KUBE-NODEPORT-HOST")
_DETECTOR_SAMPLE = 512  # per-service chains read to tell the local-traffic detector (a node-wide setting)


@dataclass(frozen=True, slots=True)
class KubeLayout:
    """What kind of kube-proxy (if any) a dump comes from. ``evidence`` says why, one line per finding."""

    kube_proxy: bool  # a KUBE-SERVICES chain exists
    mode: str | None  # "iptables", "ipvs", or None (not kube-proxy)
    era: str | None  # "1.31+", "1.25+", "1.24", "1.21-1.23", "<=1.20", or a range when nothing tells
    backend: str | None  # "nf_tables" / "legacy" from the header
    backends_present: tuple[str, ...]  # both when the nft dump warns that legacy tables exist too
    family: str | None
    ipvs_leftovers: bool  # IPVS-mode chains or ipset matches next to iptables-mode service chains
    local_detector: str | None  # "cidr", "bridge", "interface-prefix", "masquerade-all", "none", "mixed"
    local_detector_values: tuple[str, ...]  # the CIDRs / interface names of the detector
    localhost_nodeports: bool | None  # NodePorts answer on 127.0.0.1 (kube-proxy set route_localnet)
    nodeport_addresses: tuple[str, ...] | None  # --nodeport-addresses; None: every local address
    localnet_guard: bool  # KUBE-FIREWALL's "block incoming localnet connections" rule
    nfacct: tuple[str, ...]  # nfacct counter names in kube-proxy's rules
    masquerade_mark: str | None  # the bit KUBE-MARK-MASQ sets (0x4000 by default)
    drop_mark: str | None  # the bit KUBE-MARK-DROP sets (0x8000), when that chain exists
    random_fully: bool  # KUBE-POSTROUTING masquerades with --random-fully
    kubelet_chains: tuple[str, ...]
    chain_counts: tuple[tuple[str, int], ...]  # ("SVC", n), ("SVL", n), … per-service chains in nat
    evidence: tuple[str, ...]
    iptables_leftovers: bool = False  # IPVS mode, with KUBE-SVC/KUBE-SEP chains of an earlier iptables mode
    mode_source: str | None = None  # what told the mode: "rules", "proxyMode", "ipvs-table", "kube-ipvs0"


def nat_and_filter(ruleset: Ruleset) -> tuple[Table | None, Table | None]:
    """The nat and filter tables (both are the single table of an ``iptables -S`` dump)."""
    spec = ruleset.tables.get(None)
    return ruleset.tables.get("nat") or spec, ruleset.tables.get("filter") or spec


def _count_chains(nat: Table | None) -> dict[str, int]:
    counts = dict.fromkeys(("SVC", "SVL", "EXT", "FW", "XLB", "SEP"), 0)
    if nat is None:
        return counts
    names = nat.chains
    prefixes = Counter(name[:9] for name in names if len(name) == 25)  # "KUBE-SVC-" + a 16-character hash
    for kind in counts:
        counts[kind] = prefixes.get(f"KUBE-{kind}-", 0)
    counts["FW"] = sum(1 for name in names if len(name) == 24 and name.startswith("KUBE-FW-"))
    return counts


def detect_layout(ruleset: Ruleset, node: IpvsNode | None = None) -> KubeLayout:
    """The kube-proxy era, mode, backend and node settings of ``ruleset`` (cheap: see the module doc); ``node``
    adds what an IPVS-mode node says besides its rules."""
    nat, filt = nat_and_filter(ruleset)
    nat_chains: Mapping[str, Chain] = nat.chains if nat else {}
    filt_chains: Mapping[str, Chain] = filt.chains if filt else {}
    evidence: list[str] = []
    userspace = [c for c in _USERSPACE if c in nat_chains]
    kube = "KUBE-SERVICES" in nat_chains or "KUBE-SERVICES" in filt_chains or bool(userspace)
    counts = _count_chains(nat)
    services = nat_chains.get("KUBE-SERVICES")
    portal_rows = rows_of(services)
    ipvs = [c for c in _IPVS_CHAINS if c in nat_chains or c in filt_chains]
    live_sets = sorted({m.group(1) for row in portal_rows[:256] if (m := _IPVS_SET.search(row[1] + " "))})
    live_chains = sum(1 for row in portal_rows if (row[4] or "").startswith(_SERVICE_CHAIN))
    if live_sets:
        ipvs.append(f"-m set --match-set {', '.join(live_sets)} in nat KUBE-SERVICES")
    elif any("--match-set KUBE-" in row[1] for row in portal_rows[:64]):
        ipvs.append("-m set --match-set KUBE-… in nat KUBE-SERVICES")
    per_service = counts["SVC"] + counts["SVL"]
    mode: str | None = None
    source: str | None = None
    rules_mode: str | None = None
    rules_why = ""
    if kube:
        if userspace and not per_service:
            rules_mode = "userspace"
            evidence.append(f"{', '.join(userspace)}: the userspace proxy (--proxy-mode=userspace, the default "
                            "before 1.2, removed in 1.26): connections to a service are redirected to a port of "
                            "kube-proxy itself, which forwards them to an endpoint")  # fmt: skip
        elif live_sets and not live_chains:
            rules_mode, rules_why = "ipvs", f"nat KUBE-SERVICES matches kube-proxy's ipsets ({', '.join(live_sets)})"
        elif live_chains:
            rules_mode = "iptables"
        else:
            rules_mode = "ipvs" if ipvs and not per_service else "iptables"
            rules_why = f"{', '.join(ipvs)} and no KUBE-SVC chains" if rules_mode == "ipvs" else ""
        if userspace and rules_mode != "userspace":
            evidence.append(f"userspace-proxy leftovers next to {rules_mode}-mode chains: {', '.join(userspace)}")
    told = _node_mode(node)
    if told is not None:
        mode, source, why = told
        evidence.append(why)
        kube = kube or mode == "ipvs"
        if rules_mode is not None and rules_mode != mode:
            evidence.append(f"the rules alone would say {rules_mode} mode{': ' + rules_why if rules_why else ''}")
        elif rules_why:
            evidence.append(f"the rules agree: {rules_why}")
    elif kube:
        mode, source = rules_mode, "rules"
        if mode == "ipvs":
            evidence.append(f"IPVS mode: {rules_why}")
    leftovers = bool(ipvs) and mode == "iptables"
    if leftovers:
        evidence.append(f"IPVS-mode leftovers next to iptables-mode chains: {', '.join(ipvs)}")
    stale = mode == "ipvs" and (per_service + counts["SEP"] + counts["EXT"] + counts["FW"] + counts["XLB"]) > 0
    if stale:
        evidence.append(f"iptables-mode leftovers: {per_service} KUBE-SVC/SVL and {counts['SEP']} KUBE-SEP chains "
                        f"({live_chains} of them jumped to from nat KUBE-SERVICES): an earlier iptables mode's, "
                        "not used by IPVS mode")  # fmt: skip

    nfacct = _nfacct(nat_chains.get("KUBE-NODEPORTS"), filt_chains.get("KUBE-FORWARD"))
    era: str | None = None
    if mode == "iptables":
        if "KUBE-PROXY-FIREWALL" in filt_chains:
            era = "1.31+" if nfacct else "1.25+"
            evidence.append("filter KUBE-PROXY-FIREWALL exists: kube-proxy 1.25 or newer")
            if nfacct:
                evidence.append(f"nfacct counters ({', '.join(nfacct)}): kube-proxy 1.31 or newer")
        elif counts["EXT"] or counts["SVL"]:
            era = "1.24"
            evidence.append("KUBE-EXT/KUBE-SVL chains without KUBE-PROXY-FIREWALL: kube-proxy 1.24")
        elif masq_in_services := sum(1 for row in portal_rows
                                     if row[4] == "KUBE-MARK-MASQ" and "--match-set" not in row[1]):
            era = "<=1.20"
            evidence.append(f"{masq_in_services} masquerade rules in nat KUBE-SERVICES: "
                            "kube-proxy 1.20 or older")  # fmt: skip
        elif counts["XLB"] or _fw_mark_drop(nat_chains):
            era = "1.21-1.23"
            what = "KUBE-XLB chains" if counts["XLB"] else "KUBE-FW chains ending in KUBE-MARK-DROP"
            evidence.append(f"{what}: the KUBE-XLB/KUBE-MARK-DROP layout of kube-proxy 1.23 or older")
        else:
            era = "1.21-1.24" if counts["SVC"] else "<=1.24"
            evidence.append("no KUBE-PROXY-FIREWALL and no per-service chain that only some eras write")
        if era in WEAK_ERAS:
            era = narrow_old_era(era, nat, nat_chains, filt_chains, evidence)
        if era in ("1.25+", "1.31+") and "KUBE-MARK-DROP" in nat_chains:
            evidence.append("KUBE-MARK-DROP exists: created by a kubelet older than 1.28 "
                            "(or left over from one)")  # fmt: skip
    elif mode == "userspace":
        era = "<=1.25"
    elif not kube:
        evidence.append("no KUBE-SERVICES chain: not a kube-proxy node (or kube-proxy in nftables mode)")

    localhost: bool | None
    if mode == "ipvs":
        detector, values = _ipvs_detector(portal_rows, services)
        localhost, addresses = False, None  # IPVS mode never serves NodePorts on a loopback address
    else:
        detector, values = _detector(nat_chains, portal_rows, era)
        localhost, addresses = _nodeports(services, ruleset.family) if services else (None, None)
    firewall = filt_chains.get("KUBE-FIREWALL")
    guard = any(
        "block incoming localnet connections" in row[1] for row in rows_of(firewall)
    )  # fmt: skip
    backends = (ruleset.backend,) if ruleset.backend else ()
    if ruleset.legacy_tables_present:
        backends = tuple(dict.fromkeys((*backends, "legacy")))
        evidence.append("iptables-legacy tables are present too: rules in both backends "
                        "(see iptables-legacy-save)")  # fmt: skip
    postrouting = rows_of(nat_chains.get("KUBE-POSTROUTING"))
    return KubeLayout(
        kube_proxy=kube, mode=mode, era=era, backend=ruleset.backend, backends_present=backends,
        family=ruleset.family, ipvs_leftovers=leftovers, local_detector=detector,
        local_detector_values=values, localhost_nodeports=localhost, nodeport_addresses=addresses,
        localnet_guard=guard, nfacct=nfacct,
        masquerade_mark=_mark_of(nat_chains.get("KUBE-MARK-MASQ")) or (
            OLD_MASQ_MARK if any(OLD_MASQ_MARK in r[1] for r in postrouting) else None),
        drop_mark=_mark_of(nat_chains.get("KUBE-MARK-DROP")),
        random_fully=any(r[4] == "MASQUERADE" and "--random-fully" in r[1] for r in postrouting),
        kubelet_chains=tuple(c for c in _KUBELET_CHAINS
                             if any(c in t.chains for t in ruleset.tables.values())),
        chain_counts=tuple((k, v) for k, v in counts.items() if v), evidence=tuple(evidence),
        iptables_leftovers=stale, mode_source=source,
    )  # fmt: skip


def _node_mode(node: IpvsNode | None) -> tuple[str, str, str] | None:
    """(mode, source, evidence) from what the node says besides its rules, strongest first."""
    if node is None:
        return None
    if node.proxy_mode:
        return node.proxy_mode, "proxyMode", f"kube-proxy reports proxy mode {node.proxy_mode} (/proxyMode)"
    if node.table is not None and len(node.table):
        return "ipvs", "ipvs-table", f"IPVS mode: the IPVS table has {len(node.table)} virtual services"
    if node.kube_ipvs0:
        return "ipvs", "kube-ipvs0", f"IPVS mode: kube-ipvs0 holds {len(node.kube_ipvs0)} service addresses"
    return None


def _ipvs_detector(portal_rows: Sequence[Row], services: Chain | None) -> tuple[str | None, tuple[str, ...]]:
    """IPVS mode's local-traffic detector, from KUBE-SERVICES' KUBE-CLUSTER-IP masquerade rule: ``! -s CIDR``,
    ``! -i IFACE``; without one (masquerade-all) it has no other condition; ``src,dst`` is kube-proxy's form when
    no detector is implemented (it masquerades the node's own connections from a service address)."""
    for i, row in enumerate(portal_rows):
        if row[4] != "KUBE-MARK-MASQ" or "KUBE-CLUSTER-IP" not in row[1] or services is None:
            continue
        if "KUBE-CLUSTER-IP src,dst" in row[1]:
            return "none", ()
        f = facts_of(services, i, row[1])
        if f.src and f.src_neg:
            return "cidr", (f.src,)
        if f.in_iface and f.in_neg:
            return ("interface-prefix" if f.in_iface.endswith("+") else "bridge"), (f.in_iface,)
        return "masquerade-all", ()
    return None, ()


def _nfacct(*chains: Chain | None) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for chain in chains:
        if chain is None:
            continue
        for i, row in enumerate(rows_of(chain)):
            if "--nfacct-name" in row[1]:
                name = facts_of(chain, i, row[1]).nfacct
                if name:
                    names[name] = None
    return tuple(names)


def _mark_of(chain: Chain | None) -> str | None:
    for row in rows_of(chain):
        m = _MARK.search(row[1])
        if m:
            return m.group(1)
    return None


def _fw_mark_drop(nat_chains: Mapping[str, Chain]) -> bool:
    """Some KUBE-FW chain ends in KUBE-MARK-DROP (the 1.23-and-older load-balancer firewall)."""
    return any(
        (rows := rows_of(chain)) and rows[-1][4] == "KUBE-MARK-DROP"
        for name, chain in nat_chains.items() if name.startswith("KUBE-FW-")
    )  # fmt: skip


def _detector(
    nat_chains: Mapping[str, Chain], portal_rows: Sequence[Row], era: str | None
) -> tuple[str | None, tuple[str, ...]]:
    """The local-traffic detector, from the cluster-IP masquerade rules (in KUBE-SERVICES up to 1.20, in
    the SVC/SVL chains since): ``! -s CIDR``, ``! -i BRIDGE``, ``! -i PREFIX+``, nothing (masquerade-all)."""
    forms: dict[tuple[str, str | None], None] = {}
    with_endpoints = 0
    candidates: list[Chain] = []
    if era_at_most(era, 20) and "KUBE-SERVICES" in nat_chains:
        candidates.append(nat_chains["KUBE-SERVICES"])
    else:  # the cluster-IP jumps of KUBE-SERVICES name the chains, in the dump's order
        for row in portal_rows:
            target = row[4]
            if target and target.startswith(("KUBE-SVC-", "KUBE-SVL-")) and target in nat_chains:
                candidates.append(nat_chains[target])
                if len(candidates) >= _DETECTOR_SAMPLE:
                    break
    for chain in candidates:
        rows = rows_of(chain)
        if any((row[4] or "").startswith("KUBE-SEP-") for row in rows):
            with_endpoints += 1
        for i, row in enumerate(rows):
            if row[4] != "KUBE-MARK-MASQ":
                continue
            f = facts_of(chain, i, row[1])
            if f.comment and not f.comment.endswith(" cluster IP"):
                continue  # 1.20 and older also masquerade external IPs here, without the detector
            if f.src and f.src_neg:
                forms[("cidr", f.src)] = None
            elif f.in_iface and f.in_neg:
                kind = "interface-prefix" if f.in_iface.endswith("+") else "bridge"
                forms[(kind, f.in_iface)] = None
            elif f.dst and not f.other and f.src is None and f.in_iface is None:
                forms[("masquerade-all", None)] = None
    if not forms:
        return ("none", ()) if with_endpoints else (None, ())
    kinds = {k for k, _ in forms}
    values = tuple(v for _, v in forms if v)
    if len(kinds) > 1:
        return "mixed", values
    return next(iter(kinds)), values


def _nodeports(services: Chain, family: str | None) -> tuple[bool | None, tuple[str, ...] | None]:
    """From the "kubernetes service nodeports" rule(s) at the end of nat KUBE-SERVICES: do NodePorts answer
    on localhost (IPv4 only, and only without ``! -d 127.0.0.0/8``), and on which addresses."""
    addresses: list[str] = []
    every = False
    localhost: bool | None = None
    for i, row in enumerate(rows_of(services)):
        if row[4] != "KUBE-NODEPORTS":
            continue
        f = facts_of(services, i, row[1])
        if f.dst and not f.dst_neg:
            addresses.append(f.dst)
            if f.dst.startswith("127."):
                localhost = True
        else:
            every = True
            if family == "ipv6" or (f.dst and f.dst_neg and f.dst.startswith(("127.", "::1"))):
                localhost = False  # IPv6 localhost NodePorts never work; IPv4 ones were switched off
            elif localhost is None:
                localhost = True
    if not every and not addresses:
        return None, None
    if not every and localhost is None:
        localhost = False
    return localhost, (None if every else tuple(addresses))


def layout_to_dict(layout: KubeLayout) -> dict[str, Any]:
    """The detected kube-proxy layout as a JSON-ready dict (``kptui summary``'s ``kube`` key)."""
    return {
        "kube_proxy": layout.kube_proxy, "mode": layout.mode, "era": layout.era,
        "backend": layout.backend, "backends_present": list(layout.backends_present),
        "family": layout.family, "ipvs_leftovers": layout.ipvs_leftovers,
        "local_detector": layout.local_detector, "local_detector_values": list(layout.local_detector_values),
        "localhost_nodeports": layout.localhost_nodeports,
        "nodeport_addresses": (list(layout.nodeport_addresses)
                               if layout.nodeport_addresses is not None else None),
        "localnet_guard": layout.localnet_guard, "nfacct": list(layout.nfacct),
        "masquerade_mark": layout.masquerade_mark, "drop_mark": layout.drop_mark,
        "random_fully": layout.random_fully, "kubelet_chains": list(layout.kubelet_chains),
        "chains": dict(layout.chain_counts), "evidence": list(layout.evidence),
        "iptables_leftovers": layout.iptables_leftovers, "mode_source": layout.mode_source,
    }  # fmt: skip
