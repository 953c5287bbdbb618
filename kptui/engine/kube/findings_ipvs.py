"""Pitfall checks of an IPVS-mode node: its IPVS table against kube-proxy's ipsets, kube-ipvs0 and
``net.ipv4.vs.conntrack`` (run by :func:`kptui.engine.kube.findings_checks.run_checks` with an ``IpvsNode``).

- ``ipvs-set-without-virtual-service``: a service address (or NodePort) in one of kube-proxy's sets, but no
  virtual service for it: the rules mark and accept the traffic, IPVS does not take it, a local socket might;
- ``ipvs-virtual-service-without-set``: a virtual service in none of kube-proxy's sets: not kube-proxy's, or the
  sets are stale — its traffic gets no masquerade mark and KUBE-IPVS-FILTER may reject it;
- ``ipvs-no-real-servers``: a virtual service without real servers: IPVS answers ICMP port unreachable;
- ``ipvs-all-draining``: every real server has weight 0: no new connection is accepted;
- ``kube-ipvs0-address-without-service``: an address on kube-ipvs0 no virtual service listens on;
- ``ipvs-conntrack-off``: ``net.ipv4.vs.conntrack=0`` while kube-proxy's rules masquerade after IPVS;
- ``iptables-mode-leftovers``: KUBE-SVC/KUBE-SEP chains of an earlier iptables mode.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

from ..ipvs.model import VirtualService
from ..ipvs.node import CONNTRACK_SYSCTL, IpvsNode
from ..model import Ruleset
from .era import KubeLayout, nat_and_filter
from .facts import rows_of
from .findings_model import Finding, Key

__all__ = ["ipvs_checks"]

Pair = tuple[Finding, Sequence[Key]]
_ADDRESS_SETS = ("CLUSTER-IP", "EXTERNAL-IP", "EXTERNAL-IP-LOCAL", "LOAD-BALANCER")
_PORT_SETS = ("NODE-PORT-TCP", "NODE-PORT-UDP")


def ipvs_checks(ruleset: Ruleset, layout: KubeLayout, node: IpvsNode | None) -> Iterator[Pair]:
    """The IPVS-mode findings of ``ruleset`` on ``node`` (see the module doc)."""
    if layout.iptables_leftovers:
        yield _leftovers(ruleset), ()
    if node is None:
        return
    table = node.table
    if table is not None:
        yield from _real_servers(table.services)
    if node.ipsets is not None and table is not None:
        yield from _sets_vs_table(ruleset, node)
    if table is not None:
        yield from _dummy(node)
    yield from _conntrack(ruleset, node)


def _where(ruleset: Ruleset, table: str, chain: str, needle: str) -> tuple[str, str, int | None, int | None]:
    """The first rule of ``table``/``chain`` whose text holds ``needle`` (the finding's location)."""
    t = ruleset.tables.get(table) or ruleset.tables.get(None)
    c = t.chains.get(chain) if t else None
    for i, row in enumerate(rows_of(c)):
        if needle in row[1]:
            return table, chain, i + 1, row[0]
    return table, chain, None, None


def _real_servers(services: Sequence[VirtualService]) -> Iterator[Pair]:
    for vs in services:
        if not vs.real_servers:
            yield Finding(
                "ipvs-no-real-servers", "warning", f"virtual service {vs.key} has no real servers",
                f"IPVS answers every new connection to {vs.key} with ICMP port unreachable and drops it "
                "(ip_vs_leave): kube-proxy keeps the virtual service of a Service without ready endpoints, so "
                "clients see \"connection refused\".",
                "kubectl get endpointslices -A | grep the Service; check its selector and the pods' readiness.",
                service=vs.key,
            ), ()  # fmt: skip
        elif all(r.weight == 0 for r in vs.real_servers):
            yield Finding(
                "ipvs-all-draining", "warning", f"every real server of {vs.key} has weight 0",
                f"All {len(vs.real_servers)} real servers are draining (weight 0: kube-proxy's graceful termination "
                "of endpoints being removed): existing connections go on, every new one is refused with ICMP port "
                "unreachable.",
                "Check whether the Service's pods are all terminating (a rollout without ready new pods).",
                service=vs.key,
            ), ()  # fmt: skip


def _sets_vs_table(ruleset: Ruleset, node: IpvsNode) -> Iterator[Pair]:
    sets, table = node.ipsets, node.table
    assert sets is not None and table is not None
    for short in _ADDRESS_SETS:
        for name in (f"KUBE-{short}", f"KUBE-6-{short}"):
            for entry in sets.members(name):
                addr, _, rest = entry.partition(",")
                proto, _, port = rest.partition(":")
                if not port.isdigit() or table.get(proto, addr, int(port)) is not None:
                    continue
                where = _where(ruleset, "nat", "KUBE-SERVICES", f"--match-set {name} ")
                yield Finding(
                    "ipvs-set-without-virtual-service", "warning", f"{entry} is in {name} but has no virtual service",
                    f"kube-proxy's rules treat {entry} as a service address ({name}: marked, accepted in nat, let "
                    "through KUBE-IPVS-FILTER), but the IPVS table has no virtual service for it: IPVS does not "
                    "balance it, and a connection reaches whatever socket of the node listens there.",
                    "Compare ipvsadm -L -n with ipset list (kube-proxy's logs say why a sync failed); restart "
                    "kube-proxy if they stay apart.", *where, entry,
                ), ()  # fmt: skip
    node_ports = {(vs.protocol, vs.port) for vs in table if vs.protocol}
    for short in _PORT_SETS:
        proto = short.rsplit("-", 1)[1].lower()
        for name in (f"KUBE-{short}", f"KUBE-6-{short}"):
            for entry in sets.members(name):
                if entry.isdigit() and (proto, int(entry)) not in node_ports:
                    where = _where(ruleset, "nat", "KUBE-NODE-PORT", f"--match-set {name} ")
                    yield Finding(
                        "ipvs-set-without-virtual-service", "warning",
                        f"NodePort {entry}/{proto} is in {name} but has no virtual service",
                        f"kube-proxy's rules mark {proto.upper()} port {entry} as a NodePort, but no virtual service "
                        "listens on it: connections reach the node's own sockets.",
                        "Compare ipvsadm -L -n with ipset list; restart kube-proxy if they stay apart.", *where,
                        f"NodePort {entry}/{proto}",
                    ), ()  # fmt: skip
    known: set[tuple[str, str, int]] = set()
    for short in _ADDRESS_SETS:
        for name in (f"KUBE-{short}", f"KUBE-6-{short}"):
            for entry in sets.members(name):
                addr, _, rest = entry.partition(",")
                proto, _, port = rest.partition(":")
                if port.isdigit():
                    known.add((proto, _norm(addr), int(port)))
    port_members = {(short.rsplit("-", 1)[1].lower(), int(e)) for short in _PORT_SETS
                    for name in (f"KUBE-{short}", f"KUBE-6-{short}") for e in sets.members(name) if e.isdigit()}
    for vs in table:
        if vs.fwmark is not None or vs.address is None or vs.protocol is None or vs.port is None:
            what = "a firewall-mark service: kube-proxy never makes one" if vs.fwmark is not None else "no address"
            yield Finding("ipvs-virtual-service-without-set", "info", f"virtual service {vs.key} is not kube-proxy's",
                          f"{vs.key}: {what}. Another program (keepalived, a load balancer agent) manages it.",
                          "Nothing to do if that is intended.", service=vs.key), ()  # fmt: skip
            continue
        if (vs.protocol, _norm(vs.address), vs.port) in known or (vs.protocol, vs.port) in port_members:
            continue
        yield Finding(
            "ipvs-virtual-service-without-set", "warning", f"virtual service {vs.key} is in none of kube-proxy's sets",
            f"No kube-proxy set names {vs.key} (cluster IP, external IP, load balancer or NodePort): its traffic is not "
            "marked for masquerade, and KUBE-IPVS-FILTER rejects new connections when its address is on kube-ipvs0. "
            "Either another program made it, or kube-proxy's sets are stale.",
            "Compare ipvsadm -L -n with ipset list; if kube-proxy owns it, restart kube-proxy.", service=vs.key,
        ), ()  # fmt: skip


def _dummy(node: IpvsNode) -> Iterator[Pair]:
    table = node.table
    assert table is not None
    bound = list(node.kube_ipvs0 or ())
    source = "kube-ipvs0"
    if node.kube_ipvs0 is None and node.ipsets is not None:
        bound = [m for name in ("KUBE-IPVS-IPS", "KUBE-6-IPVS-IPS") for m in node.ipsets.members(name)]
        source = "KUBE-IPVS-IPS (the addresses kube-proxy bound to kube-ipvs0)"
    listening = {_norm(a) for a in table.addresses}
    for addr in bound:
        if _norm(addr) in listening:
            continue
        yield Finding(
            "kube-ipvs0-address-without-service", "warning", f"{addr} is on kube-ipvs0 but no virtual service uses it",
            f"{addr} ({source}) is a local address of the node, so connections to it are delivered to the node's own "
            "sockets; no virtual service balances them. KUBE-IPVS-FILTER rejects new ones only while the address is "
            "in KUBE-IPVS-IPS.",
            "A leftover of a deleted Service: kube-proxy removes it on its next sync; ip addr del it if it stays.",
            service=addr,
        ), ()  # fmt: skip


def _conntrack(ruleset: Ruleset, node: IpvsNode) -> Iterator[Pair]:
    if node.conntrack is not False:
        return
    nat, _ = nat_and_filter(ruleset)
    post = nat.chains.get("KUBE-POSTROUTING") if nat is not None else None
    masq = [(i, row) for i, row in enumerate(rows_of(post)) if row[4] == "MASQUERADE"]
    if not masq or post is None:
        return
    i, row = masq[0]
    yield Finding(
        "ipvs-conntrack-off", "error", f"{CONNTRACK_SYSCTL} is 0 while kube-proxy masquerades after IPVS",
        "With net.ipv4.vs.conntrack=0 IPVS leaves every connection it forwards untracked (ip_vs_notrack), so nat "
        "POSTROUTING never sees it: KUBE-POSTROUTING's masquerade (marked traffic, KUBE-LOOP-BACK hairpin) does not "
        "happen. Replies of remote endpoints then bypass this node and hairpin connections fail.",
        f"sysctl -w {CONNTRACK_SYSCTL}=1 (kube-proxy sets it at start: something reset it).",
        nat.name if nat is not None else None, post.name, i + 1, row[0],
    ), [(nat.name if nat is not None else None, post.name, j + 1) for j, _ in masq[1:]]  # fmt: skip


def _leftovers(ruleset: Ruleset) -> Finding:
    nat, _ = nat_and_filter(ruleset)
    names = [n for n in (nat.chains if nat else ()) if n.startswith(("KUBE-SVC-", "KUBE-SEP-", "KUBE-SVL-"))]
    return Finding(
        "iptables-mode-leftovers", "info", f"{len(names)} chains of kube-proxy's iptables mode are left over",
        f"This node runs kube-proxy in IPVS mode, but nat still has {len(names)} per-service chains of its iptables "
        f"mode ({', '.join(names[:3])}{', …' if len(names) > 3 else ''}). IPVS mode does not use them; they only make "
        "dumps bigger and confuse readers.",
        "kube-proxy --cleanup (in a maintenance window) removes the other mode's rules.",
        nat.name if nat else None, names[0] if names else None, count=len(names),
    )  # fmt: skip


def _norm(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr
