"""Kernel conformance, NodePorts: eTP=Cluster (TCP and UDP) and eTP=Local with and without a local endpoint.

Services (``samples/scenarios.py``): ``shop/frontend`` NodePort 30080 (eTP Cluster, endpoints 10.244.1.21
local and 10.244.2.22 remote), ``shop/syslog`` UDP 30514, ``shop/checkout`` 30090 (eTP Local, local endpoint
10.244.1.31, health check 32090), ``shop/legacy-api`` 30091 (eTP Local, remote endpoints only).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME, Scenario, checkout, frontend, legacy_api

from .compare import check, check_one
from .harness import KernelLab, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "10.0.0.2"


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    syslog = next(s for s in BY_NAME["nodeport-cluster"].services if s.name == "syslog")
    sc = Scenario("kc-nodeport", "NodePorts, eTP Cluster and Local", [frontend(), syslog, checkout(), legacy_api()])
    with kernel_lab(sc) as k:
        yield k


def test_etp_cluster_from_outside_is_masqueraded(klab: KernelLab) -> None:
    for obs in klab.observe([Send("outside", "tcp", NODE_IP, 30080)] * 3):
        path = check(obs, klab.context_for(obs))
        assert path.masquerade and path.verdict == "ACCEPT"


def test_etp_cluster_from_the_node(klab: KernelLab) -> None:
    for obs in klab.observe([Send("node", "tcp", NODE_IP, 30080)] * 2):
        check(obs, klab.context_for(obs))


def test_etp_cluster_from_the_node_on_localhost(klab: KernelLab) -> None:
    path = check_one(klab, Send("node", "tcp", "127.0.0.1", 30080))[1]
    assert path.endpoint is not None and path.masquerade


def test_etp_cluster_from_a_pod(klab: KernelLab) -> None:
    check_one(klab, Send("pod", "tcp", NODE_IP, 30080))


def test_etp_cluster_udp_from_outside(klab: KernelLab) -> None:
    for obs in klab.observe([Send("outside", "udp", NODE_IP, 30514)] * 3):
        path = check(obs, klab.context_for(obs))
        assert path.masquerade


def test_etp_local_with_a_local_endpoint_keeps_the_client_ip(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", NODE_IP, 30090))
    assert path.endpoint == "10.244.1.31:8080" and not path.masquerade
    assert obs.result.ok and obs.result.peer and obs.result.peer[0] == "10.0.0.1"


def test_etp_local_from_the_node_is_masqueraded(klab: KernelLab) -> None:
    for obs in klab.observe([Send("node", "tcp", NODE_IP, 30090)] * 2):
        check(obs, klab.context_for(obs))


def test_etp_local_without_local_endpoints_drops_outside_traffic(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", NODE_IP, 30091))
    assert path.verdict == "DROP" and not obs.result.ok


def test_etp_local_without_local_endpoints_serves_pods(klab: KernelLab) -> None:
    for obs in klab.observe([Send("pod", "tcp", NODE_IP, 30091)] * 3):
        path = check(obs, klab.context_for(obs))
        assert path.verdict == "ACCEPT"


def test_health_check_node_port(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", NODE_IP, 32090))
    assert path.delivery == "local" and obs.result.ok
