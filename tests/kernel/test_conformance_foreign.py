"""Kernel conformance next to Docker and Calico (the ``foreign-chains`` sample): Calico's raw/mangle/nat/filter
chains come first in every built-in chain (``-g`` gotos, ``-m set`` ipset matches, ``-m rpfilter``, the
0x10000 accept mark), Docker sets FORWARD's policy to DROP and publishes 10.0.0.2:8080 -> 172.17.0.2:80.
Pods sit behind ``cali…`` veths; the engine is given the node's real ipset members.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.foreign_rules import CONTAINER_IP, PUBLISHED_PORT
from samples.scenarios import BY_NAME

from .compare import check, check_one
from .harness import KernelLab, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "10.0.0.2"
OUTSIDE_SERVER = ("10.0.0.1", 7000)
RPF = ("rpfilter",)  # Calico's raw "-m rpfilter --validmark --invert -j DROP" for cali+ traffic: the engine
#                      cannot decide a reverse-path lookup (NodeContext has no per-pod routes); the kernel passes it


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(BY_NAME["foreign-chains"]) as k:
        yield k


@pytest.mark.parametrize("who", ["pod", "outside", "node"])
def test_cluster_ip_through_calico_and_docker_chains(klab: KernelLab, who: str) -> None:
    for obs in klab.observe([Send(who, "tcp", "10.96.10.20", 80)] * 3):
        assert check(obs, klab.context_for(obs), undecidable_ok=RPF).verdict == "ACCEPT"


def test_nodeport_from_outside_with_forward_policy_drop(klab: KernelLab) -> None:
    for obs in klab.observe([Send("outside", "tcp", NODE_IP, 30080)] * 2):
        path = check(obs, klab.context_for(obs), undecidable_ok=RPF)
        assert path.verdict == "ACCEPT" and obs.result.ok


def test_pod_to_outside_is_masqueraded_by_calico_nat_outgoing(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("pod", "tcp", *OUTSIDE_SERVER), undecidable_ok=RPF)
    assert path.masquerade and obs.result.ok


@pytest.mark.parametrize("who", ["outside", "node"])
def test_docker_published_port(klab: KernelLab, who: str) -> None:
    obs, path = check_one(klab, Send(who, "tcp", NODE_IP, PUBLISHED_PORT))
    assert path.endpoint == f"{CONTAINER_IP}:80" and obs.result.ok


def test_container_to_outside(klab: KernelLab) -> None:
    obs, path = check_one(klab, Send("ctr", "tcp", *OUTSIDE_SERVER))
    assert path.masquerade and obs.result.ok


def test_pod_udp_dns(klab: KernelLab) -> None:
    for obs in klab.observe([Send("pod", "udp", "10.96.0.10", 53)] * 3):
        check(obs, klab.context_for(obs), undecidable_ok=RPF)
