"""Kernel conformance, ClusterIP: the ``clusterip`` sample's services on a real node.

``default/web:http`` 10.96.10.20:80 has endpoints 10.244.1.11 and .12 (local pods) and 10.244.2.13
(remote, on the outside host); ``kube-dns`` 10.96.0.10:53/udp; ``default/kubernetes`` 10.96.0.1:443 goes to
the node itself (10.0.0.2:6443).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME

from .compare import check
from .harness import KernelLab, Observation, Send, kernel_lab

pytestmark = pytest.mark.kernel

WEB = ("10.96.10.20", 80)
API = ("10.96.0.1", 443)
DNS = ("10.96.0.10", 53)


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(BY_NAME["clusterip"]) as k:
        yield k


def endpoints(obs: list[Observation]) -> set[str | None]:
    return {o.kernel.endpoint if o.kernel else None for o in obs}


def test_pod_to_cluster_ip_each_endpoint_the_kernel_picked(klab: KernelLab) -> None:
    seen = klab.observe_until(Send("pod", "tcp", *WEB), lambda obs: len(endpoints(obs) - {None}) >= 2)
    assert len(endpoints(seen) - {None}) >= 2, f"the kernel picked only {endpoints(seen)} in {len(seen)} tries"
    for obs in seen:
        path = check(obs, klab.context_for(obs))
        assert path.verdict == "ACCEPT" and not path.masquerade


def test_outside_to_cluster_ip_is_masqueraded(klab: KernelLab) -> None:
    (obs,) = klab.observe([Send("outside", "tcp", *WEB)])
    path = check(obs, klab.context_for(obs))
    assert path.masquerade and obs.result.ok


def test_node_to_cluster_ip(klab: KernelLab) -> None:
    (obs,) = klab.observe([Send("node", "tcp", *WEB)])
    path = check(obs, klab.context_for(obs))
    assert path.delivery in ("forward", "local")


def test_node_to_api_server_on_itself_loops_through_lo(klab: KernelLab) -> None:
    (obs,) = klab.observe([Send("node", "tcp", *API)])
    assert obs.kernel is not None and len(obs.kernel.ids) == 2, "the lo half has its own trace id"
    path = check(obs, klab.context_for(obs))
    assert path.delivery == "local" and path.endpoint == "10.0.0.2:6443"


def test_pod_to_api_server_is_delivered_locally(klab: KernelLab) -> None:
    (obs,) = klab.observe([Send("pod", "tcp", *API)])
    path = check(obs, klab.context_for(obs))
    assert path.delivery == "local"


def test_hairpin_pod_to_its_own_service(klab: KernelLab) -> None:
    me = "10.244.1.11"
    seen = klab.observe_until(Send(me, "tcp", *WEB), lambda obs: f"{me}:8080" in endpoints(obs), rounds=5)
    hair = [o for o in seen if o.kernel and o.kernel.endpoint == f"{me}:8080"]
    assert hair, f"the kernel never sent {me} to itself in {len(seen)} tries ({endpoints(seen)})"
    for obs in seen:
        check(obs, klab.context_for(obs))
    path = check(hair[0], klab.context_for(hair[0]))
    assert path.masquerade, "hairpin traffic is masqueraded (KUBE-SEP -s EPIP -j KUBE-MARK-MASQ)"


def test_pod_udp_to_dns(klab: KernelLab) -> None:
    seen = klab.observe([Send("pod", "udp", *DNS)] * 4)
    for obs in seen:
        path = check(obs, klab.context_for(obs))
        assert path.verdict == "ACCEPT"
