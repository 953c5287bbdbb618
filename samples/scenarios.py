"""The scenarios behind ``samples/*.rules`` and ``samples/nft-*.nft``: services, node settings, extra rules, checks.

Each :class:`Scenario` is turned into a lab by ``build_samples.py``: one pod namespace per local
endpoint IP (plus a client pod), an "outside" namespace on the node's uplink that plays the router,
the other nodes (it owns the remote endpoint IPs) and external clients, and echo servers on every
endpoint. Addresses follow :data:`NET4` / :data:`NET6`. :data:`SCENARIOS` are kube-proxy's iptables mode,
:data:`NFT_SCENARIOS` its nftables mode (the same services) and one mixed node (iptables-nft plus a native
table of another component).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from samples import foreign_rules
from tools.kubegen import Endpoint as E
from tools.kubegen import NodeConfig, Ruleset, ServicePort
from tools.nft_foreign import firewalld_table


@dataclass(frozen=True)
class Addressing:
    """The addresses of one lab family (node uplink, outside host, clients, pod gateway)."""

    node_ip: str
    prefix_len: int
    outside_ip: str
    allowed_client: str  # inside the loadBalancerSourceRanges used below
    denied_client: str  # outside them
    client_pod_ip: str
    cluster_cidr: str
    loopback: str | None  # node-local address used for NodePort probes (route_localnet), if any


NET4 = Addressing("10.0.0.2", 24, "10.0.0.1", "203.0.113.10", "198.51.100.20", "10.244.1.100",
                  "10.244.0.0/16", "127.0.0.1")
NET6 = Addressing("fd00:10::2", 64, "fd00:10::1", "2001:db8:203::10", "2001:db8:198::20",
                  "fd00:10:244:1::100", "fd00:10:244::/56", None)


@dataclass
class Scenario:
    """One sample file: what to generate, how to load/save it, and what must have counted packets.

    ``checks`` are ``(regex, mode)`` pairs matched against saved rule lines (the ``-A ...`` part): with
    mode ``"all"`` every matching rule needs a non-zero packet counter, with ``"any"`` at least one;
    either way at least one rule must match.
    """

    name: str
    title: str
    services: list[ServicePort]
    node: NodeConfig = field(default_factory=NodeConfig)
    layout: str = "modern"
    backend: str = "nft"
    tries: int = 8
    calico: bool = False  # cali* pod interfaces, Calico + Docker rules, ipsets
    checks: list[tuple[str, str]] = field(default_factory=list)
    extend: Callable[[Ruleset, list[str]], None] | None = None
    # "iptables" (kube-proxy's iptables mode), "nft" (its nftables mode: tools/kubegen_nft.py) or "mixed"
    # (iptables mode through iptables-nft, plus the native tables of ``nft_extend``)
    mode: str = "iptables"
    nft_layout: str | None = None  # tools.kubegen_nft layout (default "1.33")
    # extra native tables: (nft -f text, ((family, table), ...)) for the scenario and its pod interfaces
    nft_extend: Callable[[Scenario, list[str]], tuple[str, tuple[tuple[str, str], ...]]] | None = None
    nft_checks: list[str] = field(default_factory=list)  # regexes the saved nft listing must match

    @property
    def family(self) -> int:
        """4 or 6, from the node IP."""
        return self.node.family

    @property
    def net(self) -> Addressing:
        """The addressing plan of this scenario's family."""
        return NET6 if self.family == 6 else NET4


COMMON_CHECKS = [(r"-j DNAT", "all"), (r"^-A KUBE-MARK-MASQ ", "all"),
                 (r"^-A KUBE-POSTROUTING .*MASQUERADE", "all")]


def kubernetes_api() -> ServicePort:
    """default/kubernetes: the API server on the node's own address."""
    return ServicePort("default", "kubernetes", "10.96.0.1", 443, port_name="https",
                       endpoints=[E("10.0.0.2", 6443)])


def kube_dns() -> list[ServicePort]:
    """kube-system/kube-dns: dns (UDP), dns-tcp and metrics, one local and one remote CoreDNS."""
    eps = [E("10.244.1.2", 53, True), E("10.244.2.3", 53)]
    return [ServicePort("kube-system", "kube-dns", "10.96.0.10", 53, port_name="dns", protocol="UDP",
                        endpoints=eps),
            ServicePort("kube-system", "kube-dns", "10.96.0.10", 53, port_name="dns-tcp", endpoints=eps),
            ServicePort("kube-system", "kube-dns", "10.96.0.10", 9153, port_name="metrics",
                        endpoints=[E("10.244.1.2", 9153, True), E("10.244.2.3", 9153)])]


def web() -> ServicePort:
    """default/web:http, a ClusterIP service with two local endpoints and one remote."""
    return ServicePort("default", "web", "10.96.10.20", 80, port_name="http",
                       endpoints=[E("10.244.1.11", 8080, True), E("10.244.1.12", 8080, True),
                                  E("10.244.2.13", 8080)])


def frontend(lb_ips: tuple[str, ...] = ()) -> ServicePort:
    """shop/frontend:http, NodePort (LoadBalancer if ``lb_ips``) with externalTrafficPolicy=Cluster."""
    return ServicePort("shop", "frontend", "10.96.20.10", 80, port_name="http", node_port=30080,
                       lb_ips=list(lb_ips), endpoints=[E("10.244.1.21", 8080, True), E("10.244.2.22", 8080)])


def checkout() -> ServicePort:
    """shop/checkout:http, NodePort eTP=Local with a local endpoint (and a remote one)."""
    return ServicePort("shop", "checkout", "10.96.30.10", 80, port_name="http", node_port=30090,
                       external_policy="Local", health_check_node_port=32090,
                       endpoints=[E("10.244.1.31", 8080, True), E("10.244.2.32", 8080)])


def legacy_api() -> ServicePort:
    """shop/legacy-api (unnamed port), NodePort eTP=Local with remote endpoints only."""
    return ServicePort("shop", "legacy-api", "10.96.30.20", 8080, node_port=30091, external_policy="Local",
                       health_check_node_port=32091,
                       endpoints=[E("10.244.2.33", 8080), E("10.244.2.34", 8080)])


def payments(etp: str = "Cluster") -> ServicePort:
    """shop/payments:https, LoadBalancer with loadBalancerSourceRanges (the node's /24 included)."""
    return ServicePort("shop", "payments", "10.96.50.10", 443, port_name="https", node_port=30443,
                       lb_ips=["192.0.2.50"], lb_source_ranges=["203.0.113.0/24", "10.0.0.0/24"],
                       external_policy=etp, health_check_node_port=32443 if etp == "Local" else 0,
                       endpoints=[E("10.244.1.51", 8443, True), E("10.244.2.52", 8443)])


def ingress() -> ServicePort:
    """ingress-nginx controller: LoadBalancer eTP=Local, source ranges, one local endpoint."""
    return ServicePort("ingress-nginx", "ingress-nginx-controller", "10.96.50.20", 80, port_name="http",
                       node_port=31080, lb_ips=["192.0.2.51"], lb_source_ranges=["203.0.113.0/24"],
                       external_policy="Local", health_check_node_port=32500,
                       endpoints=[E("10.244.1.55", 80, True), E("10.244.2.56", 80)])


def cart(node_port: int = 0) -> ServicePort:
    """shop/cart:http with sessionAffinity ClientIP (10800 s), three endpoints."""
    return ServicePort("shop", "cart", "10.96.60.10", 80, port_name="http", node_port=node_port,
                       affinity_timeout=10800,
                       endpoints=[E("10.244.1.61", 8080, True), E("10.244.1.62", 8080, True),
                                  E("10.244.2.63", 8080)])


def _foreign(rs: Ruleset, pod_ifaces: list[str]) -> None:
    foreign_rules.add_docker(rs)
    foreign_rules.add_calico(rs, pod_ifaces)


SCENARIOS: list[Scenario] = [
    Scenario("clusterip", "ClusterIP: 3-endpoint web service, UDP/TCP DNS, the API server on the node",
             [kubernetes_api(), web(), *kube_dns()],
             checks=[(r"-s 10\.244\.1\.1[12]/32 .*KUBE-MARK-MASQ", "any"),
                     (r"cluster IP.*KUBE-MARK-MASQ", "any")]),
    Scenario("nodeport-cluster", "NodePort, externalTrafficPolicy=Cluster (TCP and UDP)",
             [frontend(),
              ServicePort("shop", "syslog", "10.96.20.20", 514, port_name="syslog", protocol="UDP",
                          node_port=30514, endpoints=[E("10.244.1.23", 5514, True), E("10.244.2.24", 5514)])],
             checks=[(r"^-A KUBE-NODEPORTS ", "all"), (r"masquerade traffic for", "all")]),
    Scenario("nodeport-local", "NodePort eTP=Local: one service with a local endpoint, one without",
             [checkout(), legacy_api()],
             checks=[(r"has no local endpoints.*-j DROP", "all"), (r"pod traffic for", "all"),
                     (r"route LOCAL traffic", "all"), (r"health check node port", "all"),
                     (r"^-A KUBE-SVL-", "all")]),
    Scenario("no-endpoints", "Services without endpoints (REJECT in filter); masquerade-all, random-fully",
             [ServicePort("default", "broken", "10.96.40.10", 80, port_name="http", node_port=30100,
                          lb_ips=["192.0.2.40"], external_ips=["198.51.100.40"]),
              ServicePort("kube-system", "dead-dns", "10.96.40.53", 53, port_name="dns", protocol="UDP"),
              ServicePort("default", "ok", "10.96.40.20", 80, endpoints=[E("10.244.1.41", 8080, True)])],
             node=NodeConfig(masquerade_all=True, random_fully=True),
             checks=[(r"has no endpoints.*-j REJECT", "all")]),
    Scenario("loadbalancer-sourceranges",
             "LoadBalancer with loadBalancerSourceRanges (KUBE-FW, KUBE-PROXY-FIREWALL)",
             [payments(), ingress()],
             checks=[(r"^-A KUBE-PROXY-FIREWALL .*-j DROP", "all"), (r"^-A KUBE-FW-.*other traffic", "all"),
                     (r"^-A KUBE-FW-.* -s 203\.0\.113\.0/24 ", "all")]),
    Scenario("session-affinity", "sessionAffinity ClientIP (-m recent), TCP with a NodePort and UDP",
             [cart(node_port=30600),
              ServicePort("games", "matchmaker", "10.96.60.20", 7777, port_name="udp", protocol="UDP",
                          affinity_timeout=60,
                          endpoints=[E("10.244.1.65", 7777, True), E("10.244.2.66", 7777)])],
             tries=10, checks=[(r"--rcheck", "any"), (r"--set --name KUBE-SEP", "all")]),
    Scenario("kube-1.22-legacy", "kube-proxy 1.22 layout (KUBE-XLB, KUBE-MARK-DROP) with iptables-legacy",
             [kubernetes_api(), *kube_dns()[:2], frontend(), checkout(), legacy_api(), payments(), cart()],
             layout="1.22", backend="legacy", tries=6,
             checks=[(r"^-A KUBE-MARK-DROP ", "all"), (r"0x8000/0x8000 -j DROP", "all"),
                     (r"has no local endpoints", "all"), (r"Balancing rule 0", "all"), (r"--rcheck", "any")]),
    Scenario("foreign-chains",
             "kube-proxy next to Docker (DOCKER*, FORWARD DROP) and Calico (cali-*, ipsets)",
             [kubernetes_api(), *kube_dns()[:2], web(), frontend()],
             calico=True, extend=_foreign, tries=6,
             checks=[(r"^-A DOCKER .*-j DNAT", "all"), (r"^-A DOCKER .*-j ACCEPT", "all"),
                     (r"^-A cali-nat-outgoing ", "all"), (r"^-A cali-from-wl-dispatch .*-g cali-fw-", "any"),
                     (r"^-A cali-to-wl-dispatch .*-g cali-tw-", "any"),
                     (r"Policy explicitly accepted", "all"),
                     (r"-s 172\.17\.0\.0/16 ! -o docker0 -j MASQUERADE", "all")]),
    Scenario("ipv6", "IPv6 (ip6tables-nft): ClusterIP + NodePort service and UDP DNS",
             [ServicePort("default", "web6", "fd00:10:96::20", 80, port_name="http", node_port=30080,
                          endpoints=[E("fd00:10:244:1::11", 8080, True), E("fd00:10:244:2::12", 8080)]),
              ServicePort("kube-system", "kube-dns", "fd00:10:96::a", 53, port_name="dns", protocol="UDP",
                          endpoints=[E("fd00:10:244:1::2", 53, True), E("fd00:10:244:2::3", 53)])],
             node=NodeConfig(cluster_cidr="fd00:10:244::/56", node_ip="fd00:10::2")),
    Scenario("ipvs-mode", "kube-proxy in IPVS mode: ipsets, kube-ipvs0, the IPVS table (written by kptui's generator)",
             [kubernetes_api(), *kube_dns(), web(), frontend(lb_ips=("192.0.2.20",)), checkout(), cart(node_port=30600),
              payments(), ServicePort("default", "legacy-ext", "10.96.70.20", 80, external_ips=["198.51.100.70"],
                                      endpoints=[E("10.244.2.73", 80)]),
              ServicePort("default", "broken", "10.96.40.10", 80, port_name="http", node_port=30100)],
             node=NodeConfig(random_fully=True, node_addresses=("10.0.0.2", "10.244.1.1"),
                             draining=("10.244.2.13:8080",)),
             layout="ipvs", tries=4,
             checks=[(r"! -s 10\.244\.0\.0/16 .*KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ", "all"),
                     (r"KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ", "all"),
                     (r"KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN", "all"),
                     (r"^-A KUBE-IPVS-FILTER .*KUBE-IPVS-IPS dst -j REJECT", "all"),
                     (r"^-A KUBE-SOURCE-RANGES-FIREWALL -j DROP", "all"),
                     (r"KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN", "all"),
                     (r"KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT", "all"),
                     (r"^-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT", "all"),
                     (r"^-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ", "all"),
                     (r"^-A KUBE-MARK-MASQ ", "all"), (r"^-A KUBE-POSTROUTING .*MASQUERADE", "any")]),
    Scenario("mixed-all", "Default demo: a node with most of the above (modern layout, nft)",
             [kubernetes_api(), *kube_dns(), web(), frontend(lb_ips=("192.0.2.20",)), checkout(),
              legacy_api(), payments(), ingress(),
              cart(), ServicePort("default", "broken", "10.96.40.10", 80, port_name="http", node_port=30100),
              ServicePort("monitoring", "node-local-cache", "10.96.70.10", 8080, internal_policy="Local",
                          endpoints=[E("10.244.1.71", 8080, True), E("10.244.2.72", 8080)]),
              ServicePort("default", "legacy-ext", "10.96.70.20", 80, external_ips=["198.51.100.70"],
                          endpoints=[E("10.244.2.73", 80)])],
             tries=6,
             checks=[(r"^-A KUBE-PROXY-FIREWALL ", "all"), (r"has no local endpoints", "all"),
                     (r"has no endpoints", "all"), (r"--rcheck", "any"), (r"^-A KUBE-SVL-", "all"),
                     (r"external IP", "all")]),
]
BY_NAME = {sc.name: sc for sc in SCENARIOS}


def _firewalld(sc: Scenario, pod_ifaces: list[str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return firewalld_table("eth0", "veth"), (("inet", "firewalld"),)


NFT_SCENARIOS: list[Scenario] = [
    Scenario("nft-clusterip", "nftables mode: ClusterIP web service (3 endpoints), UDP/TCP DNS, the API server",
             [kubernetes_api(), web(), *kube_dns()], mode="nft",
             nft_checks=[r"numgen random mod 3 vmap", r"dnat to 10\.0\.0\.2:6443"]),
    Scenario("nft-nodeport-cluster", "nftables mode: NodePort, externalTrafficPolicy=Cluster (TCP and UDP)",
             BY_NAME["nodeport-cluster"].services, mode="nft",
             nft_checks=[r"tcp \. 30080 : goto external-", r"udp \. 30514 : goto external-"]),
    Scenario("nft-nodeport-local", "nftables mode: NodePort eTP=Local, with and without a local endpoint",
             [checkout(), legacy_api()], mode="nft",
             nft_checks=[r"goto local-", r'tcp \. 30091 comment "shop/legacy-api" : drop']),
    Scenario("nft-no-endpoints", "nftables mode: services without endpoints (reject-chain); masquerade-all",
             BY_NAME["no-endpoints"].services, node=NodeConfig(masquerade_all=True), mode="nft",
             nft_checks=[r": goto reject-chain", r"ip daddr 10\.96\.40\.20 jump mark-for-masquerade"]),
    Scenario("nft-loadbalancer-sourceranges", "nftables mode: loadBalancerSourceRanges (firewall-ips, firewall-)",
             [payments(), ingress()], mode="nft",
             nft_checks=[r"ip saddr != \{ 10\.0\.0\.0/24, 192\.0\.2\.50, 203\.0\.113\.0/24 \} drop"]),
    Scenario("nft-session-affinity", "nftables mode: sessionAffinity ClientIP (affinity sets), TCP and UDP",
             BY_NAME["session-affinity"].services, mode="nft", tries=10,
             nft_checks=[r"set affinity-[^{]*\{[^}]*flags dynamic,timeout[^}]*elements = \{"]),
    Scenario("nft-ipv6", "nftables mode, IPv6 (table ip6 kube-proxy): ClusterIP + NodePort and UDP DNS",
             BY_NAME["ipv6"].services, node=BY_NAME["ipv6"].node, mode="nft",
             nft_checks=[r"table ip6 kube-proxy", r"dnat to \[fd00:10:244:1::11\]:8080"]),
    Scenario("mixed-node", "kube-proxy iptables mode (iptables-nft) next to a firewalld-like table inet firewalld",
             [kubernetes_api(), *kube_dns()[:2], web(), frontend(), checkout()], mode="mixed", tries=6,
             nft_extend=_firewalld, nft_checks=[r"table inet firewalld", r"ct status dnat accept"]),
]
NFT_BY_NAME = {sc.name: sc for sc in NFT_SCENARIOS}
