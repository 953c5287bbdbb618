"""Kernel conformance, the kube-proxy 1.22 layout (KUBE-XLB, KUBE-FW ending in KUBE-MARK-DROP, filter
KUBE-FIREWALL dropping 0x8000-marked packets), loaded with iptables-nft here so the kernel can trace it.

Services of the ``kube-1.22-legacy`` sample: kubernetes API, kube-dns, ``shop/frontend`` NodePort 30080,
``shop/checkout`` 30090 (eTP Local, local endpoint), ``shop/legacy-api`` 30091 (eTP Local, no local
endpoint), ``shop/payments`` LB 192.0.2.50 with source ranges, ``shop/cart`` (session affinity).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME, NET4

from .compare import check, check_one
from .harness import KernelLab, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "10.0.0.2"


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(BY_NAME["kube-1.22-legacy"]) as k:
        yield k


def test_etp_local_without_local_endpoint_is_marked_and_dropped(klab: KernelLab) -> None:
    path = check_one(klab, Send("outside", "tcp", NODE_IP, 30091))[1]
    assert path.verdict == "DROP"
    assert any(h.chain == "KUBE-MARK-DROP" for h in path.matched_hops)
    assert any(h.chain == "KUBE-FIREWALL" and h.verdict == "DROP" for h in path.matched_hops)


def test_etp_local_with_local_endpoint_via_xlb(klab: KernelLab) -> None:
    path = check_one(klab, Send("outside", "tcp", NODE_IP, 30090))[1]
    assert path.endpoint == "10.244.1.31:8080" and not path.masquerade


def test_nodeport_etp_cluster(klab: KernelLab) -> None:
    for obs in klab.observe([Send("outside", "tcp", NODE_IP, 30080)] * 3):
        assert check(obs, klab.context_for(obs)).masquerade


def test_lb_source_ranges_allowed(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", "192.0.2.50", 443, src=NET4.allowed_client))
    assert path.verdict == "ACCEPT" and obs.result.ok


def test_lb_source_ranges_denied_but_lb_ip_not_local_is_forwarded(klab: KernelLab) -> None:
    """1.22 hooks KUBE-FIREWALL (the 0x8000 DROP) into INPUT and OUTPUT only: a denied client's packet to an
    LB IP the node does not own is marked for dropping, not DNATed, and then *forwarded* (and masqueraded)."""
    path = check_one(klab, Send("outside", "tcp", "192.0.2.50", 443, src=NET4.denied_client))[1]
    assert path.verdict == "ACCEPT" and path.delivery == "forward"
    assert path.final.mark & 0x8000


def test_lb_source_ranges_denied_with_lb_ip_on_the_node_is_dropped(klab: KernelLab) -> None:
    """With the LB IP on the node (as a bare-metal LB or kube-ipvs0 puts it), the packet goes to INPUT and
    KUBE-FIREWALL drops it."""
    klab.add_node_address("lo", "192.0.2.50/32")
    try:
        obs, path = check_one(klab, Send("outside", "tcp", "192.0.2.50", 443, src=NET4.denied_client))
        assert path.verdict == "DROP" and path.matched_hops[-1].chain == "KUBE-FIREWALL"
        obs, path = check_one(klab, Send("outside", "tcp", "192.0.2.50", 443, src=NET4.allowed_client))
        assert path.verdict == "ACCEPT" and obs.result.ok
    finally:
        klab.del_node_address("lo", "192.0.2.50/32")


@pytest.mark.parametrize("who", ["pod", "outside", "node"])
def test_cluster_ip(klab: KernelLab, who: str) -> None:
    for obs in klab.observe([Send(who, "tcp", "10.96.20.10", 80)] * 2):
        check(obs, klab.context_for(obs))


def test_dns_udp_and_api_server(klab: KernelLab) -> None:
    for obs in klab.observe([Send("pod", "udp", "10.96.0.10", 53)] * 2 + [Send("node", "tcp", "10.96.0.1", 443)]):
        check(obs, klab.context_for(obs))


def test_session_affinity_first_packet(klab: KernelLab) -> None:
    check_one(klab, Send("pod", "tcp", "10.96.60.10", 80))
