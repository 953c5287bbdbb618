"""``build_ipvs_service_index(ruleset, node)``: kube-proxy's service ports on an IPVS-mode node, from its IPVS
table and ipsets (same :class:`~kptui.engine.kube.model.ServicePort` values, so ``kptui.services/1`` JSON with
keys only added).

kube-proxy writes one virtual service per cluster IP, external IP, load-balancer IP and node address × NodePort
(pkg/proxy/ipvs/proxier.go, ``syncProxyRules``), and tells their roles to its iptables rules through ipsets:
KUBE-CLUSTER-IP, KUBE-EXTERNAL-IP[-LOCAL], KUBE-LOAD-BALANCER[-LOCAL] (``IP,proto:port``), KUBE-NODE-PORT-TCP/UDP
(ports; SCTP: ``KUBE-NODE-PORT-SCTP-HASH``), with ``-LOCAL`` for externalTrafficPolicy Local, KUBE-LOOP-BACK
(``EP,proto:port,EP``: the endpoints on this node), KUBE-LOAD-BALANCER-SOURCE-CIDR (loadBalancerSourceRanges).
Names are nowhere (neither ipvsadm nor the sets carry them): a service port is labelled by its virtual service.

Grouping: each cluster-IP virtual service anchors a service port; an external IP, load-balancer IP or NodePort
(all node addresses of one protocol and port together) joins the anchor of the same protocol (and, but for
NodePorts, the same port) whose real servers are the same — or, with externalTrafficPolicy Local, a superset of
its local ones. When no anchor or several fit, it stays a service port of its own, with a note saying so.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from ..ipset import IpsetTable
from ..ipvs.model import VirtualService
from ..ipvs.node import IpvsNode
from ..ipvs.shares import shares
from ..model import Ruleset
from .build import service_index_of
from .era import detect_layout
from .model import Endpoint, ServiceIndex, ServicePort

__all__ = ["build_ipvs_service_index", "service_index_for"]

_ROLE_SETS = (("cluster", "CLUSTER-IP"), ("external", "EXTERNAL-IP"), ("external", "EXTERNAL-IP-LOCAL"),
              ("lb", "LOAD-BALANCER"))  # fmt: skip


def service_index_for(ruleset: Ruleset, node: IpvsNode | None) -> ServiceIndex:
    """The service index a command should show: from the IPVS table on an IPVS-mode node that has one, from the
    rules otherwise (``service_index_of(ruleset)``)."""
    if node is not None and node.table is not None and detect_layout(ruleset, node).mode == "ipvs":
        return build_ipvs_service_index(ruleset, node)
    return service_index_of(ruleset)


class _Sets:
    """Membership in kube-proxy's sets by the entry texts kube-proxy writes (IPv6 sets: ``KUBE-6-…``)."""

    def __init__(self, sets: IpsetTable | None) -> None:
        self.known = sets is not None
        self.members: dict[str, set[str]] = {}
        if sets is not None:
            for name in sets:
                self.members[name] = {_norm_entry(m) for m in sets.members(name)}

    def has(self, short: str, entry: str, family: int = 4) -> bool:
        name = f"KUBE-6-{short}" if family == 6 else f"KUBE-{short}"
        return _norm_entry(entry) in self.members.get(name, ())

    def entries(self, short: str, family: int = 4) -> set[str]:
        return self.members.get(f"KUBE-6-{short}" if family == 6 else f"KUBE-{short}", set())


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}(?:/(?:3[0-2]|[12]?\d))?")
_NOT_ADDRESS = re.compile(r"[a-z][a-z0-9-]*:[\w/-]+|\d+")  # tcp:80, icmp:echo-request, a bitmap:port member


def _norm_entry(entry: str) -> str:
    """A set entry or an ``IP,proto:port`` key in one spelling (IPv6 has many)."""
    return ",".join(_norm_part(p) for p in entry.split(","))


@lru_cache(maxsize=1 << 16)
def _norm_part(part: str) -> str:
    if _CANONICAL_V4.fullmatch(part) and "/" not in part:
        return part  # what ipset and ipvsadm -n print: already canonical, no need to parse it
    low = part.lower()
    if _NOT_ADDRESS.fullmatch(low):
        return low
    try:
        return str(ipaddress.ip_network(part, strict=False)) if "/" in part else str(ipaddress.ip_address(part))
    except ValueError:
        return low


@dataclass
class _Group:
    protocol: str | None
    cluster: VirtualService | None = None
    external: list[VirtualService] = field(default_factory=list)
    lb: list[VirtualService] = field(default_factory=list)
    nodeport: list[VirtualService] = field(default_factory=list)
    other: list[VirtualService] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def services(self) -> list[tuple[str, VirtualService]]:
        roles: list[tuple[str, VirtualService]] = [("cluster", self.cluster)] if self.cluster else []
        roles += [("external", v) for v in self.external] + [("lb", v) for v in self.lb]
        roles += [("nodeport", v) for v in self.nodeport] + [("other", v) for v in self.other]
        return roles


def build_ipvs_service_index(ruleset: Ruleset, node: IpvsNode) -> ServiceIndex:
    """Every service port of an IPVS-mode node (see the module doc)."""
    layout = detect_layout(ruleset, node)
    sets = _Sets(node.ipsets)
    services = list(node.table or ())
    anchors: list[_Group] = []
    rest: list[tuple[str, VirtualService]] = []
    for vs in services:
        role = _role(vs, sets)
        if role == "cluster":
            anchors.append(_Group(vs.protocol, cluster=vs))
        else:
            rest.append((role, vs))
    groups = list(anchors)
    found = _Anchors(anchors)
    nodeports: dict[tuple[str | None, int | None], list[VirtualService]] = {}
    for role, vs in rest:
        if role == "nodeport":
            nodeports.setdefault((vs.protocol, vs.port), []).append(vs)
            continue
        _attach(groups, found, role, [vs], sets)
    for vss in nodeports.values():
        _attach(groups, found, "nodeport", vss, sets)
    return ServiceIndex(tuple(_service_port(g, sets) for g in groups), layout)


def _role(vs: VirtualService, sets: _Sets) -> str:
    if vs.fwmark is not None or vs.address is None or not sets.known:
        return "other"
    entry = f"{vs.address},{vs.protocol}:{vs.port}"
    for role, short in _ROLE_SETS:
        if sets.has(short, entry, vs.family):
            return role
    proto = (vs.protocol or "").upper()
    if proto == "SCTP" and sets.has("NODE-PORT-SCTP-HASH", entry, vs.family):
        return "nodeport"
    if proto in ("TCP", "UDP") and str(vs.port) in sets.entries(f"NODE-PORT-{proto}", vs.family):
        return "nodeport"
    return "other"


def _servers(vs: VirtualService) -> frozenset[str]:
    return frozenset(r.hostport for r in vs.real_servers)


class _Anchors:
    """The cluster-IP groups, found by protocol and real servers (all of them, or one of them)."""

    def __init__(self, anchors: list[_Group]) -> None:
        self.by_servers: dict[tuple[str | None, frozenset[str]], list[_Group]] = {}
        self.by_server: dict[tuple[str | None, str], list[_Group]] = {}
        self.servers: dict[int, frozenset[str]] = {}
        for g in anchors:
            assert g.cluster is not None
            mine = _servers(g.cluster)
            self.servers[id(g)] = mine
            self.by_servers.setdefault((g.protocol, mine), []).append(g)
            for hp in mine:
                self.by_server.setdefault((g.protocol, hp), []).append(g)

    def fitting(self, vs: VirtualService, *, same_port: bool, local: bool) -> list[_Group]:
        """The anchors ``vs`` can join: the same real servers, or (externalTrafficPolicy Local) a superset."""
        mine = _servers(vs)
        cands = list(self.by_servers.get((vs.protocol, mine), ()))
        if local and mine:
            some = next(iter(mine))
            cands += [g for g in self.by_server.get((vs.protocol, some), ())
                      if g not in cands and mine <= self.servers[id(g)]]  # fmt: skip
        return [g for g in cands if not same_port or (g.cluster is not None and g.cluster.port == vs.port)]


def _attach(groups: list[_Group], anchors: _Anchors, role: str, vss: list[VirtualService], sets: _Sets) -> None:
    vs = vss[0]
    fits = anchors.fitting(vs, same_port=role != "nodeport", local=_is_local_policy(role, vs, sets))
    if len(fits) == 1:
        target = fits[0]
    else:
        target = _Group(vs.protocol)
        groups.append(target)
        if len(fits) > 1:
            target.notes.append(f"{vs.key} could belong to any of {', '.join(g.cluster.key for g in fits if g.cluster)} "
                                "(the same real servers): kept apart")  # fmt: skip
        elif role != "other":
            target.notes.append(f"{vs.key}: no cluster-IP virtual service with the same real servers")
    getattr(target, role).extend(vss)


def _is_local_policy(role: str, vs: VirtualService, sets: _Sets) -> bool:
    entry = f"{vs.address},{vs.protocol}:{vs.port}"
    if role == "external":
        return sets.has("EXTERNAL-IP-LOCAL", entry, vs.family)
    if role == "lb":
        return sets.has("LOAD-BALANCER-LOCAL", entry, vs.family)
    if role == "nodeport":
        proto = (vs.protocol or "").upper()
        if proto == "SCTP":
            return sets.has("NODE-PORT-LOCAL-SCTP-HASH", entry, vs.family)
        return str(vs.port) in sets.entries(f"NODE-PORT-LOCAL-{proto}", vs.family)
    return False


def _service_port(g: _Group, sets: _Sets) -> ServicePort:
    roles = g.services()
    first = roles[0][1]
    family = first.family
    c = g.cluster
    externals = [(role, v) for role, v in roles if role in ("external", "lb", "nodeport")]
    local_policy = [v for role, v in externals if _is_local_policy(role, v, sets)]
    etp = None
    if externals and sets.known:
        etp = "Local" if local_policy else "Cluster"
    main = c or first
    sh = shares(main)
    loop = sets.entries("LOOP-BACK", family)
    local_sh = shares(local_policy[0]) if local_policy else None
    local_servers = {r.hostport: r for r in local_policy[0].real_servers} if local_policy else {}
    endpoints = []
    for rs in main.real_servers:
        hp = rs.hostport
        entry = _norm_entry(f"{rs.address},{main.protocol}:{rs.port},{rs.address}")
        is_local = (entry in loop) if sets.known else None
        lp: Fraction | None = None
        if local_sh is not None:
            lp = local_sh.share(local_servers[hp]) if hp in local_servers else Fraction(0)
        endpoints.append(Endpoint(hp, "", sh.share(rs) if main.real_servers else None,
                                  lp, is_local, rs.weight, rs.forward, rs.active, rs.inactive))  # fmt: skip
    notes = list(g.notes)
    if not sh.exact and main.real_servers:
        notes.append(f"shares: {sh.note}")
    if sh.draining:
        notes.append(f"draining (weight 0, no new connections): {', '.join(r.hostport for r in sh.draining)}")
    if local_policy and not any(e.local for e in endpoints):
        notes.append("externalTrafficPolicy Local without endpoints on this node: kube-proxy gives the external "
                     "virtual services every endpoint (their replies from other nodes are dropped)")  # fmt: skip
    ranges: list[str] = []
    for v in g.lb:
        prefix = f"{_norm_entry(f'{v.address},{v.protocol}:{v.port}')},"
        ranges += sorted(e[len(prefix):] for e in sets.entries("LOAD-BALANCER-SOURCE-CIDR", family)
                         if e.startswith(prefix))  # fmt: skip
    return ServicePort(
        name=None, name_source=None, hash_verified=None, chain_hash=None, protocol=main.protocol,
        cluster_ip=c.address if c else None, port=_port(g),
        node_port=g.nodeport[0].port if g.nodeport else None, health_check_node_port=None,
        external_ips=tuple(_uniq(v.address for v in g.external)), load_balancer_ips=tuple(_uniq(v.address for v in g.lb)),
        external_or_lb_ips=(), source_ranges=tuple(_uniq(ranges)), external_traffic_policy=etp,
        internal_traffic_policy=None, affinity_timeout=main.persistence, endpoints=tuple(endpoints), chains={},
        no_endpoints=not main.real_servers, no_local_endpoints=False, blocking_rules=(), notes=tuple(notes),
        mode="ipvs", scheduler=main.scheduler, virtual_services=tuple((r, v.key) for r, v in roles),
    )  # fmt: skip


def _port(g: _Group) -> int | None:
    """The service port: the cluster IP's (external and load-balancer IPs listen on it too)."""
    for vs in ([g.cluster] if g.cluster else []) + g.external + g.lb:
        return vs.port
    return None


def _uniq(items: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i is not None))
