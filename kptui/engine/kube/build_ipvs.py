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
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from ..ipset import IpsetTable
from ..ipvs.model import RealServer, VirtualService, hostport
from ..ipvs.node import IpvsNode
from ..ipvs.shares import shares
from ..model import Ruleset
from .era import detect_layout
from .model import Endpoint, ServiceIndex, ServicePort

__all__ = ["build_ipvs_service_index", "service_index_for"]

_ROLE_SETS = (("cluster", "CLUSTER-IP"), ("external", "EXTERNAL-IP"), ("external", "EXTERNAL-IP-LOCAL"),
              ("lb", "LOAD-BALANCER"))  # fmt: skip


def service_index_for(ruleset: Ruleset, node: IpvsNode | None) -> ServiceIndex:
    """The service index a command should show: from the IPVS table on an IPVS-mode node that has one, from the
    rules otherwise (``ruleset.service_index``)."""
    if node is not None and node.table is not None and detect_layout(ruleset, node).mode == "ipvs":
        return build_ipvs_service_index(ruleset, node)
    return ruleset.service_index


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


def _norm_entry(entry: str) -> str:
    parts = entry.split(",")
    out = []
    for p in parts:
        try:
            out.append(str(ipaddress.ip_interface(p).ip) if "/" not in p else str(ipaddress.ip_network(p, False)))
        except ValueError:
            out.append(p.lower())
    return ",".join(out)


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
    nodeports: dict[tuple[str | None, int | None], list[VirtualService]] = {}
    for role, vs in rest:
        if role == "nodeport":
            nodeports.setdefault((vs.protocol, vs.port), []).append(vs)
            continue
        _attach(groups, anchors, role, [vs], sets)
    for vss in nodeports.values():
        _attach(groups, anchors, "nodeport", vss, sets)
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


def _attach(groups: list[_Group], anchors: list[_Group], role: str, vss: list[VirtualService], sets: _Sets) -> None:
    vs = vss[0]
    mine = _servers(vs)
    local = _is_local_policy(role, vs, sets)
    fits = []
    for g in anchors:
        c = g.cluster
        if c is None or c.protocol != vs.protocol or (role != "nodeport" and c.port != vs.port):
            continue
        theirs = _servers(c)
        if mine == theirs or (local and mine and mine <= theirs):
            fits.append(g)
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
    endpoints = []
    for rs in main.real_servers:
        entry = _norm_entry(f"{rs.address},{main.protocol}:{rs.port},{rs.address}")
        is_local = (entry in loop) if sets.known else None
        lp: Fraction | None = local_sh.share(_same(local_policy[0], rs)) if local_sh is not None else None
        endpoints.append(Endpoint(hostport(rs.address, rs.port), "", sh.share(rs) if main.real_servers else None,
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


def _same(vs: VirtualService, rs: RealServer) -> RealServer:
    """``vs``'s real server at the same address and port as ``rs`` (shares are per real server object)."""
    return next((r for r in vs.real_servers if r.hostport == rs.hostport), rs)


def _uniq(items: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i is not None))
