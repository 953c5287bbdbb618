"""Kernel conformance, rules from other components next to kube-proxy's: a raw-table NOTRACK (the packet
never sees nat) and mangle MARK rules (a CNI/policy agent marking pod traffic), on the ``clusterip`` sample.

Extra rules: raw PREROUTING and OUTPUT ``-p udp --dport 9999 -j NOTRACK`` with a UDP echo server on the node
(10.0.0.2:9999) and a NOTRACK for the kube-dns cluster IP served by a node-local cache bound to
10.96.0.10:53 on an interface of its own (NodeLocal DNSCache's trick); mangle PREROUTING
``-i vethclient -j MARK --set-xmark 0x100/0x100`` and a mangle FORWARD rule that ACCEPTs marked packets
(ending the mangle table early; filter still runs).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME
from tools.kubegen import Ruleset

from .compare import check, check_one
from .harness import KernelLab, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "10.0.0.2"
DNS_IP = "10.96.0.10"


def extend(rs: Ruleset, klab: KernelLab) -> None:
    """Add the other components' rules and what serves them."""
    lab = klab.lab
    rs.add("raw", "PREROUTING", "-p", "udp", "-m", "udp", "--dport", "9999", "-j", "NOTRACK")
    rs.add("raw", "OUTPUT", "-p", "udp", "-m", "udp", "--dport", "9999", "-j", "NOTRACK")
    rs.add("raw", "PREROUTING", "-d", f"{DNS_IP}/32", "-p", "udp", "-m", "udp", "--dport", "53", "-j", "NOTRACK")
    rs.add("mangle", "PREROUTING", "-i", klab.pod_iface(klab.topo.client), "-j", "MARK", "--set-xmark",
           "0x100/0x100")
    rs.add("mangle", "FORWARD", "-m", "mark", "--mark", "0x100/0x100", "-j", "ACCEPT")
    lab.add_bridge("nodelocaldns", [f"{DNS_IP}/32"])  # a dummy device in real life (no dummy module here)
    lab.start_echo(lab.node, [("udp", NODE_IP, 9999), ("udp", DNS_IP, 53)], tag="node")


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(BY_NAME["clusterip"], extend=extend) as k:
        yield k


@pytest.mark.parametrize("who", ["outside", "pod", "node"])
def test_notrack_skips_nat(klab: KernelLab, who: str) -> None:
    obs, path = check_one(klab, Send(who, "udp", NODE_IP, 9999))
    assert path.verdict == "ACCEPT" and path.delivery == "local" and obs.result.ok
    assert not any(h.table == "nat" for h in path.matched_hops)
    assert obs.kernel is not None and not any(e.table == "nat" for e in obs.kernel.events)


def test_notrack_for_a_cluster_ip_served_on_the_node(klab: KernelLab) -> None:
    """The kube-dns cluster IP is NOTRACKed and answered by the node-local cache, not DNATed to CoreDNS."""
    obs, path = check_one(klab, Send("pod", "udp", DNS_IP, 53))
    assert path.endpoint is None and path.delivery == "local"
    assert obs.result.ok and obs.result.server == "node"


def test_mangle_mark_from_another_component(klab: KernelLab) -> None:
    for obs in klab.observe([Send("pod", "tcp", "10.96.10.20", 80)] * 4):
        path = check(obs, klab.context_for(obs))
        assert path.final.mark & 0x100
        assert path.verdict == "ACCEPT"


def test_unmarked_traffic_from_outside(klab: KernelLab) -> None:
    for obs in klab.observe([Send("outside", "tcp", "10.96.10.20", 80)] * 2):
        assert not check(obs, klab.context_for(obs)).final.mark & 0x100


def test_udp_dns_tcp_from_pod(klab: KernelLab) -> None:
    for obs in klab.observe([Send("pod", "tcp", DNS_IP, 53)] * 3):
        check(obs, klab.context_for(obs))
