"""kube-proxy's IPVS mode (1.30 layout; used by :func:`tools.kubegen.generate` with ``layout="ipvs"``).

Follows pkg/proxy/ipvs/proxier.go: ``syncProxyRules`` fills the ipsets (``ipsetInfo``: every set is created,
empty or not) and the IPVS table (a virtual server per cluster IP, external IP, load-balancer IP and node
address × NodePort; real servers of weight 1, Masq; ``persistent`` for ClientIP affinity; externalTrafficPolicy
Local: local endpoints only, all of them when there are none), ``createAndLinkKubeChain`` prepends the jumps of
``iptablesJumpChain``, and ``writeIptablesRules`` writes the chains in this order: KUBE-SERVICES' localhost
RETURN, the ``ipsetWithIptablesChain`` rules of the non-empty sets, the cluster-IP masquerade rule, the external-IP
rules, the ``--dst-type LOCAL`` jump to KUBE-NODE-PORT, KUBE-LOAD-BALANCER's mark, KUBE-SOURCE-RANGES-FIREWALL's
DROP, the ACCEPTs for the cluster-IP and load-balancer sets, KUBE-FORWARD, the health-check ACCEPT,
KUBE-IPVS-FILTER, KUBE-POSTROUTING and KUBE-MARK-MASQ (mark ``0x004000``, as ``%#08x`` prints it). kubelet's
chains (KUBE-FIREWALL with its localnet rule, the canaries, KUBE-IPTABLES-HINT) are added as on a 1.28+ node.

:class:`IpvsRuleset` carries, besides the iptables rules, the ``ipset restore`` text, the addresses to bind on
kube-ipvs0 and the virtual servers, which :func:`ipvsadm_save` and :func:`ipvsadm_list` print in ipvsadm's
formats (``print_service_entry`` of ipvsadm.c: its columns, padding and sort order). Not written: the
``-m ipvs`` rules of KUBE-IPVS-OUT-FILTER (load balancers whose source ranges leave the node out), which need
the IPVS module these machines lack.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

from tools.kubegen import Endpoint, NodeConfig, Ruleset, ServicePort, cidr_contains, q

__all__ = ["IpvsRuleset", "RealServer", "VirtualServer", "generate_ipvs", "ipvsadm_list", "ipvsadm_save"]

MARK = "0x004000"  # fmt.Sprintf("%#08x", 1<<14)
SETS = [  # (name, type, comment): ipsetInfo, in its order
    ("KUBE-LOOP-BACK", "hash:ip,port,ip", "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
    ("KUBE-CLUSTER-IP", "hash:ip,port", "Kubernetes service cluster ip + port for masquerade purpose"),
    ("KUBE-EXTERNAL-IP", "hash:ip,port", "Kubernetes service external ip + port for masquerade and filter purpose"),
    ("KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port", "Kubernetes service external ip + port with externalTrafficPolicy=local"),
    ("KUBE-LOAD-BALANCER", "hash:ip,port", "Kubernetes service lb portal"),
    ("KUBE-LOAD-BALANCER-FW", "hash:ip,port",
     "Kubernetes service load balancer ip + port for load balancer with sourceRange"),
    ("KUBE-LOAD-BALANCER-LOCAL", "hash:ip,port",
     "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"),
    ("KUBE-LOAD-BALANCER-SOURCE-IP", "hash:ip,port,ip",
     "Kubernetes service load balancer ip + port + source IP for packet filter purpose"),
    ("KUBE-LOAD-BALANCER-SOURCE-CIDR", "hash:ip,port,net",
     "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"),
    ("KUBE-NODE-PORT-TCP", "bitmap:port", "Kubernetes nodeport TCP port for masquerade purpose"),
    ("KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port", "Kubernetes nodeport TCP port with externalTrafficPolicy=local"),
    ("KUBE-NODE-PORT-UDP", "bitmap:port", "Kubernetes nodeport UDP port for masquerade purpose"),
    ("KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port", "Kubernetes nodeport UDP port with externalTrafficPolicy=local"),
    ("KUBE-NODE-PORT-SCTP-HASH", "hash:ip,port",
     "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"),
    ("KUBE-NODE-PORT-LOCAL-SCTP-HASH", "hash:ip,port",
     "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"),
    ("KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port", "Kubernetes health check node port"),
    ("KUBE-IPVS-IPS", "hash:ip", "Addresses on the ipvs interface"),
]  # fmt: skip
COMMENT = {name: comment for name, _, comment in SETS}
# ipsetWithIptablesChain: (set, table, from, to, match flags, protocol)
SET_RULES = [
    ("KUBE-LOOP-BACK", "nat", "KUBE-POSTROUTING", "MASQUERADE", "dst,dst,src", ""),
    ("KUBE-LOAD-BALANCER", "nat", "KUBE-SERVICES", "KUBE-LOAD-BALANCER", "dst,dst", ""),
    ("KUBE-LOAD-BALANCER-LOCAL", "nat", "KUBE-LOAD-BALANCER", "RETURN", "dst,dst", ""),
    ("KUBE-NODE-PORT-LOCAL-TCP", "nat", "KUBE-NODE-PORT", "RETURN", "dst", "tcp"),
    ("KUBE-NODE-PORT-TCP", "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "tcp"),
    ("KUBE-NODE-PORT-LOCAL-UDP", "nat", "KUBE-NODE-PORT", "RETURN", "dst", "udp"),
    ("KUBE-NODE-PORT-UDP", "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "udp"),
    ("KUBE-NODE-PORT-LOCAL-SCTP-HASH", "nat", "KUBE-NODE-PORT", "RETURN", "dst,dst", "sctp"),
    ("KUBE-NODE-PORT-SCTP-HASH", "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst,dst", "sctp"),
    ("KUBE-LOAD-BALANCER-FW", "filter", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL", "dst,dst", ""),
    ("KUBE-LOAD-BALANCER-SOURCE-CIDR", "filter", "KUBE-SOURCE-RANGES-FIREWALL", "RETURN", "dst,dst,src", ""),
    ("KUBE-LOAD-BALANCER-SOURCE-IP", "filter", "KUBE-SOURCE-RANGES-FIREWALL", "RETURN", "dst,dst,src", ""),
]  # fmt: skip
PROTO_NUM = {"tcp": 6, "udp": 17, "sctp": 132}


@dataclass(frozen=True)
class RealServer:
    ip: str
    port: int
    weight: int = 1


@dataclass
class VirtualServer:
    proto: str
    ip: str
    port: int
    scheduler: str = "rr"
    persistent: int | None = None
    servers: list[RealServer] = field(default_factory=list)


class IpvsRuleset(Ruleset):
    """The iptables rules of an IPVS-mode node plus its ipsets, kube-ipvs0 addresses and IPVS table."""

    def __init__(self) -> None:
        super().__init__()
        self.members: dict[str, list[str]] = {name: [] for name, _, _ in SETS}
        self.vips: list[str] = []
        self.virtual_servers: list[VirtualServer] = []

    def add_member(self, name: str, entry: str) -> None:
        if entry not in self.members[name]:
            self.members[name].append(entry)

    def ipset_restore(self) -> str:
        """``ipset restore`` input creating every set kube-proxy creates, then their members."""
        out = []
        for name, set_type, _ in SETS:
            if set_type == "bitmap:port":
                out.append(f"create {name} {set_type} range 0-65535")
            else:
                out.append(f"create {name} {set_type} family inet hashsize 1024 maxelem 65536")
        for name, _, _ in SETS:
            out += [f"add {name} {entry}" for entry in self.members[name]]
        return "\n".join(out) + "\n"


def generate_ipvs(services: list[ServicePort], node: NodeConfig, *, node_addresses: tuple[str, ...] = (),
                  draining: tuple[str, ...] = ()) -> IpvsRuleset:  # fmt: skip
    """The rules, sets and IPVS table kube-proxy in IPVS mode would install for ``services``. NodePorts get a
    virtual server on every node address (``node_addresses``, default the node IP); endpoints listed in
    ``draining`` (``IP:PORT``) get weight 0, as kube-proxy's graceful termination leaves them."""
    rs = IpvsRuleset()
    addrs = node_addresses or (node.node_ip,)
    for svc in services:
        _service(rs, svc, node, addrs, draining)
    _rules(rs, node)
    return rs


def _service(rs: IpvsRuleset, svc: ServicePort, node: NodeConfig, node_addresses: tuple[str, ...],
             draining: tuple[str, ...]) -> None:  # fmt: skip
    p = svc.proto
    for ep in svc.endpoints:
        if ep.local:
            rs.add_member("KUBE-LOOP-BACK", f"{ep.ip},{p}:{ep.port},{ep.ip}")
    rs.add_member("KUBE-CLUSTER-IP", f"{svc.cluster_ip},{p}:{svc.port}")
    local = [ep for ep in svc.endpoints if ep.local]

    def servers(only_local: bool) -> list[RealServer]:
        eps: list[Endpoint] = local if (only_local and local) else list(svc.endpoints)
        return [RealServer(ep.ip, ep.port, 0 if ep.addr in draining else 1) for ep in eps]

    def vserver(ip: str, port: int, only_local: bool) -> None:
        rs.virtual_servers.append(VirtualServer(svc.proto, ip, port, "rr", svc.affinity_timeout,
                                                servers(only_local)))  # fmt: skip

    vserver(svc.cluster_ip, svc.port, svc.itp_local)
    _bind(rs, svc.cluster_ip)
    for ip in svc.external_ips:
        rs.add_member("KUBE-EXTERNAL-IP-LOCAL" if svc.etp_local else "KUBE-EXTERNAL-IP", f"{ip},{p}:{svc.port}")
        vserver(ip, svc.port, svc.etp_local)
        if ip not in node_addresses:
            _bind(rs, ip)
    for ip in svc.lb_ips:
        entry = f"{ip},{p}:{svc.port}"
        rs.add_member("KUBE-LOAD-BALANCER", entry)
        if svc.etp_local:
            rs.add_member("KUBE-LOAD-BALANCER-LOCAL", entry)
        if svc.lb_source_ranges:
            rs.add_member("KUBE-LOAD-BALANCER-FW", entry)
            for cidr in svc.lb_source_ranges:
                rs.add_member("KUBE-LOAD-BALANCER-SOURCE-CIDR", f"{entry},{cidr}")
            if any(cidr_contains(c, node.node_ip) for c in svc.lb_source_ranges):
                rs.add_member("KUBE-LOAD-BALANCER-SOURCE-IP", f"{entry},{ip}")
            else:
                raise ValueError(f"{svc.svc_port_name}: source ranges without the node need -m ipvs rules "
                                 "(KUBE-IPVS-OUT-FILTER), which these machines cannot load")  # fmt: skip
        vserver(ip, svc.port, svc.etp_local)
        if ip not in node_addresses:
            _bind(rs, ip)
    if svc.node_port:
        rs.add_member(f"KUBE-NODE-PORT-{p.upper()}", str(svc.node_port))
        if svc.etp_local:
            rs.add_member(f"KUBE-NODE-PORT-LOCAL-{p.upper()}", str(svc.node_port))
        for ip in node_addresses:
            vserver(ip, svc.node_port, svc.etp_local)
    if svc.health_check_node_port:
        rs.add_member("KUBE-HEALTH-CHECK-NODE-PORT", str(svc.health_check_node_port))


def _bind(rs: IpvsRuleset, ip: str) -> None:
    if ip not in rs.vips:
        rs.vips.append(ip)
        rs.add_member("KUBE-IPVS-IPS", ip)


def _rules(rs: IpvsRuleset, node: NodeConfig) -> None:
    rs.chain("mangle", "KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY")
    rs.chain("nat", "KUBE-KUBELET-CANARY", "KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT",
             "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ")
    rs.chain("filter", "KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-FORWARD", "KUBE-NODE-PORT",
             "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER")
    jumps = [  # iptablesJumpChain: each prepended, so the last one of a chain comes first
        ("nat", "OUTPUT", "kubernetes service portals", "KUBE-SERVICES"),
        ("nat", "PREROUTING", "kubernetes service portals", "KUBE-SERVICES"),
        ("nat", "POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING"),
        ("filter", "FORWARD", "kubernetes forwarding rules", "KUBE-FORWARD"),
        ("filter", "INPUT", "kubernetes health check rules", "KUBE-NODE-PORT"),
        ("filter", "INPUT", "kube-proxy firewall rules", "KUBE-PROXY-FIREWALL"),
        ("filter", "FORWARD", "kube-proxy firewall rules", "KUBE-PROXY-FIREWALL"),
        ("filter", "INPUT", "kubernetes ipvs access filter", "KUBE-IPVS-FILTER"),
        ("filter", "OUTPUT", "kubernetes ipvs access filter", "KUBE-IPVS-OUT-FILTER"),
    ]
    builtin: dict[tuple[str, str], list[str]] = {}
    for table, chain, comment, target in jumps:
        builtin.setdefault((table, chain), []).insert(0, f"-A {chain} -m comment --comment {q(comment)} -j {target}")
    for (table, chain), lines in builtin.items():
        rs.table(table).rules.extend(lines)
    for chain in ("INPUT", "OUTPUT"):  # kubelet's, appended after kube-proxy's prepends
        rs.add("filter", chain, "-j", "KUBE-FIREWALL")
    rs.add("filter", "KUBE-FIREWALL", "-m", "comment", "--comment", q("block incoming localnet connections"),
           "-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate",
           "RELATED,ESTABLISHED,DNAT", "-j", "DROP")

    def non_empty(name: str) -> bool:
        return bool(rs.members[name])

    def set_match(name: str, flags: str) -> list[str]:
        return ["-m", "comment", "--comment", q(COMMENT[name]), "-m", "set", "--match-set", name, flags]

    rs.add("nat", "KUBE-SERVICES", "-s", "127.0.0.0/8", "-j", "RETURN")
    for name, table, src, to, flags, proto in SET_RULES:
        if non_empty(name):
            rs.add(table, src, ["-p", proto] if proto else [], set_match(name, flags), "-j", to)
    if non_empty("KUBE-CLUSTER-IP"):
        detector = [] if node.masquerade_all else ["!", "-s", node.cluster_cidr] if node.cluster_cidr else None
        if detector is None:
            rs.add("nat", "KUBE-SERVICES", set_match("KUBE-CLUSTER-IP", "src,dst"), "-j", "KUBE-MARK-MASQ")
        else:
            rs.add("nat", "KUBE-SERVICES", set_match("KUBE-CLUSTER-IP", "dst,dst"), detector, "-j", "KUBE-MARK-MASQ")
    for name in ("KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL"):
        if non_empty(name):
            if name == "KUBE-EXTERNAL-IP":
                rs.add("nat", "KUBE-SERVICES", set_match(name, "dst,dst"), "-j", "KUBE-MARK-MASQ")
            rs.add("nat", "KUBE-SERVICES", set_match(name, "dst,dst"), "-m", "physdev", "!", "--physdev-is-in",
                   "-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "ACCEPT")
            rs.add("nat", "KUBE-SERVICES", set_match(name, "dst,dst"), "-m", "addrtype", "--dst-type", "LOCAL",
                   "-j", "ACCEPT")
    rs.add("nat", "KUBE-SERVICES", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "KUBE-NODE-PORT")
    rs.add("nat", "KUBE-LOAD-BALANCER", "-j", "KUBE-MARK-MASQ")
    rs.add("filter", "KUBE-SOURCE-RANGES-FIREWALL", "-j", "DROP")
    for name in ("KUBE-CLUSTER-IP", "KUBE-LOAD-BALANCER"):  # acceptIPVSTraffic
        if non_empty(name):
            rs.add("nat", "KUBE-SERVICES", "-m", "set", "--match-set", name, "dst,dst", "-j", "ACCEPT")
    rs.add("filter", "KUBE-FORWARD", "-m", "comment", "--comment", q("kubernetes forwarding rules"),
           "-m", "mark", "--mark", f"{MARK}/{MARK}", "-j", "ACCEPT")
    rs.add("filter", "KUBE-FORWARD", "-m", "comment", "--comment", q("kubernetes forwarding conntrack rule"),
           "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    rs.add("filter", "KUBE-NODE-PORT", set_match("KUBE-HEALTH-CHECK-NODE-PORT", "dst"), "-j", "ACCEPT")
    for name in ("KUBE-LOAD-BALANCER", "KUBE-CLUSTER-IP", "KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL"):
        rs.add("filter", "KUBE-IPVS-FILTER", "-m", "set", "--match-set", name, "dst,dst", "-j", "RETURN")
    rs.add("filter", "KUBE-IPVS-FILTER", "-m", "set", "--match-set", "KUBE-HEALTH-CHECK-NODE-PORT", "dst",
           "-j", "RETURN")
    rs.add("filter", "KUBE-IPVS-FILTER", "-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set",
           "KUBE-IPVS-IPS", "dst", "-j", "REJECT")
    rs.add("nat", "KUBE-POSTROUTING", "-m", "mark", "!", "--mark", f"{MARK}/{MARK}", "-j", "RETURN")
    rs.add("nat", "KUBE-POSTROUTING", "-j", "MARK", "--xor-mark", MARK)
    rs.add("nat", "KUBE-POSTROUTING", "-m", "comment", "--comment", q("kubernetes service traffic requiring SNAT"),
           "-j", "MASQUERADE", ["--random-fully"] if node.random_fully else [])
    rs.add("nat", "KUBE-MARK-MASQ", "-j", "MARK", "--or-mark", MARK)


# -- ipvsadm's two formats -----------------------------------------------------------------------------------
def _c_int(x: int) -> int:
    """An unsigned 32-bit difference read as a C int (ipvsadm's comparators subtract ntohl() values)."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= 1 << 31 else x


def _cmp_services(a: VirtualServer, b: VirtualServer) -> int:
    r = PROTO_NUM[a.proto] - PROTO_NUM[b.proto]
    if r:
        return r
    r = _c_int(int(ipaddress.ip_address(a.ip)) - int(ipaddress.ip_address(b.ip)))
    return r or a.port - b.port


def _cmp_dests(a: RealServer, b: RealServer) -> int:
    r = _c_int(int(ipaddress.ip_address(a.ip)) - int(ipaddress.ip_address(b.ip)))
    return r or a.port - b.port


def _sorted(rs: IpvsRuleset) -> list[VirtualServer]:
    return sorted(rs.virtual_servers, key=functools.cmp_to_key(_cmp_services))


def ipvsadm_save(rs: IpvsRuleset) -> str:
    """``ipvsadm -S -n``: ``-A`` per virtual service, ``-a`` per real server (ipvsadm's FMT_RULE)."""
    out = []
    for vs in _sorted(rs):
        name = f"{'-t' if vs.proto == 'tcp' else '-u' if vs.proto == 'udp' else '--sctp-service'} {vs.ip}:{vs.port}"
        line = f"-A {name} -s {vs.scheduler}"
        if vs.persistent is not None:
            line += f" -p {vs.persistent}"
        out.append(line)
        for d in sorted(vs.servers, key=functools.cmp_to_key(_cmp_dests)):
            out.append(f"-a {name} -r {d.ip}:{d.port} -m -w {d.weight}")
    return "\n".join(out) + "\n"


def ipvsadm_list(rs: IpvsRuleset) -> str:
    """``ipvsadm -L -n``: the title, the column headers and the table (ipvsadm's default format)."""
    out = ["IP Virtual Server version 1.2.1 (size=4096)", "Prot LocalAddress:Port Scheduler Flags",
           "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"]
    for vs in _sorted(rs):
        svc = f"{vs.proto.upper()}  {vs.ip}:{vs.port}"[:33]
        line = f"{svc} {vs.scheduler}"
        if vs.persistent is not None:
            line += f" persistent {vs.persistent}"
        out.append(line)
        for d in sorted(vs.servers, key=functools.cmp_to_key(_cmp_dests)):
            out.append(f"  -> {f'{d.ip}:{d.port}'[:28]:<28} {'Masq':<7} {d.weight:<6} {0:<10} {0:<10}")
    return "\n".join(out) + "\n"
