"""Kernel conformance, ClusterIP: the ``clusterip`` sample's services on a real node.

``default/web:http`` 10.96.10.20:80 has endpoints 10.244.1.11 and .12 (local pods) and 10.244.2.13
(remote, on the outside host); ``kube-dns`` 10.96.0.10:53/udp; ``default/kubernetes`` 10.96.0.1:443 goes to
the node itself (10.0.0.2:6443).
"""

from __future__ import annotations

import pytest

from .clusterip import API, DNS, WEB
from .compare import check
from .harness import KernelLab, Observation, Send

pytestmark = pytest.mark.kernel



def endpoints(obs: list[Observation]) -> set[str | None]:
    return {o.kernel.endpoint if o.kernel else None for o in obs}


def test_pod_to_cluster_ip_each_endpoint_the_kernel_picked(clusterip_lab: KernelLab) -> None:
    seen = clusterip_lab.observe_until(Send("pod", "tcp", *WEB), lambda obs: len(endpoints(obs) - {None}) >= 2)
    assert len(endpoints(seen) - {None}) >= 2, f"the kernel picked only {endpoints(seen)} in {len(seen)} tries"
    for obs in seen:
        path = check(obs, clusterip_lab.context_for(obs))
        assert path.verdict == "ACCEPT" and not path.masquerade


def test_outside_to_cluster_ip_is_masqueraded(clusterip_lab: KernelLab) -> None:
    (obs,) = clusterip_lab.observe([Send("outside", "tcp", *WEB)])
    path = check(obs, clusterip_lab.context_for(obs))
    assert path.masquerade and obs.result.ok


def test_node_to_cluster_ip(clusterip_lab: KernelLab) -> None:
    (obs,) = clusterip_lab.observe([Send("node", "tcp", *WEB)])
    path = check(obs, clusterip_lab.context_for(obs))
    assert path.delivery in ("sent", "local")  # a packet the node sends leaves it "sent", not forwarded


def test_node_to_api_server_on_itself_loops_through_lo(clusterip_lab: KernelLab) -> None:
    (obs,) = clusterip_lab.observe([Send("node", "tcp", *API)])
    assert obs.kernel is not None and len(obs.kernel.ids) == 2, "the lo half has its own trace id"
    path = check(obs, clusterip_lab.context_for(obs))
    assert path.delivery == "local" and path.endpoint == "10.0.0.2:6443"


def test_pod_to_api_server_is_delivered_locally(clusterip_lab: KernelLab) -> None:
    (obs,) = clusterip_lab.observe([Send("pod", "tcp", *API)])
    path = check(obs, clusterip_lab.context_for(obs))
    assert path.delivery == "local"


def test_hairpin_pod_to_its_own_service(clusterip_lab: KernelLab) -> None:
    me = "10.244.1.11"
    seen = clusterip_lab.observe_until(Send(me, "tcp", *WEB), lambda obs: f"{me}:8080" in endpoints(obs), rounds=5)
    hair = [o for o in seen if o.kernel and o.kernel.endpoint == f"{me}:8080"]
    assert hair, f"the kernel never sent {me} to itself in {len(seen)} tries ({endpoints(seen)})"
    for obs in seen:
        check(obs, clusterip_lab.context_for(obs))
    path = check(hair[0], clusterip_lab.context_for(hair[0]))
    assert path.masquerade, "hairpin traffic is masqueraded (KUBE-SEP -s EPIP -j KUBE-MARK-MASQ)"


def test_pod_udp_to_dns(clusterip_lab: KernelLab) -> None:
    seen = clusterip_lab.observe([Send("pod", "udp", *DNS)] * 4)
    for obs in seen:
        path = check(obs, clusterip_lab.context_for(obs))
        assert path.verdict == "ACCEPT"
