"""Kernel conformance, IPv6 (issue 14.6): ip6tables-nft rules traced with ``nft -a monitor trace``
(xtables-monitor 1.8.9 aborts on IPv6 rules with ports), each rule event mapped back to its ip6tables-save
rule by handle (:mod:`kptui.engine.kernel_handles`), and compared with the engine hop by hop.

Services: ``default/web6`` ClusterIP + NodePort 30080 (eTP Cluster; endpoints fd00:10:244:1::21 local and
fd00:10:244:2::22 remote), ``shop/checkout6`` NodePort 30090 (eTP Local, local endpoint fd00:10:244:1::31),
``shop/legacy6`` NodePort 30091 (eTP Local, remote endpoints only), ``default/broken6`` (no endpoints).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import Scenario
from tools.kubegen import Endpoint as E
from tools.kubegen import NodeConfig, ServicePort

from .compare import check, check_one
from .harness import KernelLab, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "fd00:10::2"
OUTSIDE = "fd00:10::1"


def services() -> list[ServicePort]:
    return [
        ServicePort("default", "web6", "fd00:10:96::20", 80, port_name="http", node_port=30080,
                    endpoints=[E("fd00:10:244:1::21", 8080, True), E("fd00:10:244:2::22", 8080)]),
        ServicePort("shop", "checkout6", "fd00:10:96::30", 80, port_name="http", node_port=30090,
                    external_policy="Local", health_check_node_port=32090,
                    endpoints=[E("fd00:10:244:1::31", 8080, True), E("fd00:10:244:2::32", 8080)]),
        ServicePort("shop", "legacy6", "fd00:10:96::40", 8080, node_port=30091, external_policy="Local",
                    health_check_node_port=32091, endpoints=[E("fd00:10:244:2::33", 8080)]),
        ServicePort("default", "broken6", "fd00:10:96::50", 80, port_name="http", node_port=30100),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    sc = Scenario("kc-ipv6", "IPv6 ClusterIP, NodePorts, eTP Local, no endpoints", services(),
                  node=NodeConfig(cluster_cidr="fd00:10:244::/56", node_ip=NODE_IP))
    with kernel_lab(sc) as k:
        yield k


def test_the_kernel_trace_is_nft_and_mapped_to_the_ip6tables_rules(klab: KernelLab) -> None:
    (obs,) = klab.observe([Send("pod", "tcp", "fd00:10:96::20", 80)])
    assert obs.kernel is not None and obs.kernel.family == 10  # nft's family number for ip6
    rules = [e.rule_text for e in obs.kernel.events if e.kind == "rule"]
    assert rules and all(t and t.startswith("-A ") for t in rules), rules  # every rule event mapped by handle
    assert any('"default/web6:http cluster IP"' in t for t in rules if t)  # comments are back


def test_pod_to_cluster_ip(klab: KernelLab) -> None:
    for obs in klab.observe([Send("pod", "tcp", "fd00:10:96::20", 80)] * 4):
        path = check(obs, klab.context_for(obs))
        assert path.verdict == "ACCEPT" and path.endpoint in ("[fd00:10:244:1::21]:8080", "[fd00:10:244:2::22]:8080")


def test_outside_to_node_port_is_masqueraded(klab: KernelLab) -> None:
    seen = set()
    for obs in klab.observe([Send("outside", "tcp", NODE_IP, 30080)] * 4):
        path = check(obs, klab.context_for(obs))
        assert path.masquerade and path.verdict == "ACCEPT"
        seen.add(path.endpoint)
    assert seen


def test_etp_local_keeps_the_client_address(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", NODE_IP, 30090))
    assert path.endpoint == "[fd00:10:244:1::31]:8080" and not path.masquerade
    assert obs.result.ok and obs.result.peer and obs.result.peer[0] == OUTSIDE


def test_etp_local_without_local_endpoints_drops_outside_traffic(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("outside", "tcp", NODE_IP, 30091))
    assert path.verdict == "DROP" and not obs.result.ok


def test_a_service_without_endpoints_rejects(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("pod", "tcp", "fd00:10:96::50", 80))
    assert path.verdict == "REJECT" and not obs.result.ok
