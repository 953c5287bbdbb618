"""Kernel conformance, REJECT and DROP: services without endpoints, loadBalancerSourceRanges.

``no-endpoints`` sample: ``default/broken`` (cluster IP 10.96.40.10, NodePort 30100, LB IP 192.0.2.40,
external IP 198.51.100.40) and UDP ``kube-system/dead-dns`` have no endpoints; ``default/ok`` shows
masquerade-all. ``loadbalancer-sourceranges`` sample: ``shop/payments`` LB 192.0.2.50:443 (ranges
203.0.113.0/24 and 10.0.0.0/24) and ``ingress-nginx-controller`` LB 192.0.2.51:80 (eTP Local, range
203.0.113.0/24). Both samples' services share one lab here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME, NET4, Scenario, ingress, payments

from .compare import check, check_one
from .harness import KernelLab, Observation, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "10.0.0.2"


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    ne = BY_NAME["no-endpoints"]
    sc = Scenario("kc-firewall", "no endpoints + source ranges", [*ne.services, payments(), ingress()], node=ne.node)
    with kernel_lab(sc) as k:
        yield k


NO_ENDPOINTS = [
    Send("pod", "tcp", "10.96.40.10", 80),
    Send("outside", "tcp", "10.96.40.10", 80),
    Send("node", "tcp", "10.96.40.10", 80),
    Send("pod", "udp", "10.96.40.53", 53),
    Send("outside", "tcp", NODE_IP, 30100),
    Send("node", "tcp", NODE_IP, 30100),
    Send("outside", "tcp", "192.0.2.40", 80),
    Send("outside", "tcp", "198.51.100.40", 80),
    Send("pod", "tcp", "198.51.100.40", 80),
]


@pytest.fixture(scope="module")
def rejected(klab: KernelLab) -> list[Observation]:
    """All probes to services without endpoints, in one capture per protocol."""
    return klab.observe(NO_ENDPOINTS)


@pytest.mark.parametrize("i", range(len(NO_ENDPOINTS)), ids=[f"{s.who}-{s.proto}-{s.dst}:{s.port}"
                                                            for s in NO_ENDPOINTS])  # fmt: skip
def test_service_without_endpoints_is_rejected(klab: KernelLab, rejected: list[Observation], i: int) -> None:
    obs = rejected[i]
    path = check(obs, klab.context_for(obs))
    assert path.verdict == "REJECT"
    assert obs.result.error == "refused"


def test_masquerade_all(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("pod", "tcp", "10.96.40.20", 80))
    assert path.masquerade and obs.result.ok


@pytest.mark.parametrize("src", [NET4.allowed_client, NET4.outside_ip])
def test_lb_source_range_allows(klab: KernelLab, src: str) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", "192.0.2.50", 443, src=src))
    assert path.verdict == "ACCEPT" and obs.result.ok


def test_lb_source_range_blocks(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", "192.0.2.50", 443, src=NET4.denied_client))
    assert path.verdict == "DROP" and not obs.result.ok


def test_lb_etp_local_source_range_allows_and_keeps_client_ip(klab: KernelLab) -> None:
    path = check_one(klab, Send("outside", "tcp", "192.0.2.51", 80, src=NET4.allowed_client))[1]
    assert path.verdict == "ACCEPT" and not path.masquerade


@pytest.mark.parametrize("who", ["pod", "node"])
def test_lb_etp_local_source_range_blocks_pods_and_node(klab: KernelLab, who: str) -> None:
    path = check_one(klab, Send(who, "tcp", "192.0.2.51", 80))[1]
    assert path.verdict == "DROP"
