"""A five-node cluster played by network namespaces, each node with the rules its kube-proxy would have, and
three of them deliberately wrong:

- ``a``, ``b``: in step (kube-proxy iptables mode, the cluster's current services and endpoints);
- ``c``: stale: its kube-proxy stopped syncing before default/web lost 10.244.9.99 and gained 10.244.5.15,
  and before shop/new was created;
- ``d``: kube-proxy in nftables mode (``/proxyMode`` says so), with the iptables-mode chains of the mode it
  ran before still there (leftovers);
- ``e``: in step, but another component put ``-I FORWARD 1 -p tcp --dport 8080 -j DROP`` in front of
  kube-proxy's rules (so shop/frontend's NodePort, DNATed to port 8080, is dropped there), and a conntrack entry
  still DNATs to an endpoint that is gone.

shop/checkout is externalTrafficPolicy=Local with endpoints on ``a`` and ``b`` only: its NodePort 30090
blackholes (drops) on ``c`` and ``e`` (and on ``d``, whose services kptui compares once the nftables builder
is there). Every node has a kube-proxy stand-in answering ``/proxyMode`` on 127.0.0.1:10249.
"""

from __future__ import annotations

import select
import subprocess
from dataclasses import dataclass, field

from tools.kubegen import Endpoint, NodeConfig, ServicePort, generate
from tools.kubegen_nft import generate_nft
from tools.netlab import Lab

from ..node_state import FAKE_KUBE_PROXY, READ_SYSCTLS, undated

NODES = ("a", "b", "c", "d", "e")
POD_CIDR = {"a": "10.244.1.", "b": "10.244.2.", "c": "10.244.3.", "d": "10.244.4.", "e": "10.244.5."}
NODE_IP = {n: f"10.0.0.1{i + 1}" for i, n in enumerate(NODES)}
MODE = {"a": "iptables", "b": "iptables", "c": "iptables", "d": "nftables", "e": "iptables"}
FOREIGN_RULE = ("-I", "FORWARD", "1", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DROP")
GONE_ENDPOINT = "10.244.8.88"


def _ep(ip: str, port: int, node: str) -> Endpoint:
    return Endpoint(ip, port, ip.startswith(POD_CIDR[node]))


def services(node: str, *, stale: bool = False) -> list[ServicePort]:
    """The cluster's service ports as ``node``'s kube-proxy sees them (``stale``: as they were before)."""
    web_ips = ["10.244.1.11", "10.244.2.12", "10.244.9.99" if stale else "10.244.5.15"]
    out = [
        ServicePort("default", "kubernetes", "10.96.0.1", 443, port_name="https",
                    endpoints=[Endpoint(NODE_IP["a"], 6443)]),
        ServicePort("default", "web", "10.96.10.20", 80, port_name="http",
                    endpoints=[_ep(ip, 8080, node) for ip in web_ips]),
        ServicePort("shop", "frontend", "10.96.20.10", 80, port_name="http", node_port=30080,
                    endpoints=[_ep("10.244.1.21", 8080, node), _ep("10.244.2.22", 8080, node)]),
        ServicePort("shop", "checkout", "10.96.30.10", 80, port_name="http", node_port=30090,
                    external_policy="Local", health_check_node_port=32090,
                    endpoints=[_ep("10.244.1.31", 8080, node), _ep("10.244.2.32", 8080, node)]),
        ServicePort("kube-system", "kube-dns", "10.96.0.10", 53, port_name="dns", protocol="UDP",
                    endpoints=[_ep("10.244.1.2", 53, node), _ep("10.244.2.3", 53, node)]),
    ]
    if not stale:
        out.append(ServicePort("shop", "new", "10.96.80.10", 80, port_name="http",
                               endpoints=[_ep("10.244.2.81", 8080, node)]))
    return out


def iptables_rules(node: str, *, stale: bool = False) -> str:
    return generate(services(node, stale=stale), NodeConfig(node_ip=NODE_IP[node])).render()


def nft_rules(node: str) -> str:
    return generate_nft(services(node), NodeConfig(node_ip=NODE_IP[node])).render()


@dataclass
class Cluster:
    lab: Lab
    netns: dict[str, str] = field(default_factory=dict)  # node → its namespace

    def save(self, node: str) -> str:
        return self.lab.save_rules(ns=self.netns[node], counters=False)


def build(lab: Lab) -> Cluster:
    """The five nodes in ``lab`` (namespaces ``<prefix>a`` … ``<prefix>e``)."""
    cluster = Cluster(lab)
    for node in NODES:
        ns = cluster.netns[node] = lab.add_netns(node, router=True)
        lab.ip(ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")  # no dummy module here
        lab.ip(ns, "link", "set", "eth0-peer", "up")
        lab.ip(ns, "link", "set", "eth0", "up")
        lab.add_addr(ns, "eth0", f"{NODE_IP[node]}/24")
        lab.add_route(ns, "default", via="10.0.0.1", dev="eth0")
        if node == "d":
            lab.load_rules(iptables_rules(node, stale=True), ns=ns)  # the iptables mode it ran before
            lab.exec(ns, ["nft", "-f", "-"], input=nft_rules(node))
        else:
            lab.load_rules(iptables_rules(node, stale=node == "c"), ns=ns)
        proc = lab.spawn(ns, ["python3", "-c", FAKE_KUBE_PROXY, MODE[node]], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline().strip() == "READY", f"fake kube-proxy of {node} did not start"
    e = cluster.netns["e"]
    lab.exec(e, ["iptables-nft", *FOREIGN_RULE])
    lab.exec(e, ["conntrack", "-I", "-p", "tcp", "-s", "10.244.5.100", "-d", "10.96.10.20", "--sport", "40000",
                 "--dport", "80", "--reply-src", GONE_ENDPOINT, "--reply-dst", "10.244.5.100",
                 "--reply-port-src", "8080", "--reply-port-dst", "40000", "--state", "ESTABLISHED",
                 "-t", "3000", "-u", "SEEN_REPLY"])  # fmt: skip
    return cluster




def node_state(lab: Lab, ns: str) -> dict[str, str]:
    """What a capture must not change on a node: tables, chains, rules, sets, ipsets, sysctls (not counters:
    the capture's one request, /proxyMode on 127.0.0.1:10249, is a packet through the node's rules)."""
    return {
        "nft list ruleset": lab.exec(ns, ["nft", "-s", "list", "ruleset"]).stdout,
        "ipset save": lab.exec(ns, ["ipset", "save"]).stdout,
        "iptables-nft-save": undated(lab.save_rules(counters=False, ns=ns)),
        "ip6tables-nft-save": undated(lab.save_rules(counters=False, family=6, ns=ns)),
        "sysctls": lab.exec(ns, ["python3", "-c", READ_SYSCTLS]).stdout,
        "addresses": lab.ip(ns, "-j", "addr", "show"),
    }
