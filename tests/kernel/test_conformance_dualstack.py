"""Kernel conformance, one dual-stack node (issue 14.6): the same service with an IPv4 and an IPv6 cluster IP
and NodePort, both families' kube-proxy rules loaded with ip{,6}tables-nft-restore; IPv4 traced with
xtables-monitor, IPv6 with ``nft -a monitor trace``. The engine is given what a user pastes: the IPv4 save
followed by the IPv6 save in one text, and traces each packet through its family's dump."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from samples.build_samples import Topology
from samples.scenarios import Scenario
from tools.kubegen import Endpoint as E
from tools.kubegen import NodeConfig, ServicePort, generate
from tools.netlab import Lab

from .compare import check
from .harness import KernelLab, Observation, Send

pytestmark = pytest.mark.kernel

V4, V6 = ("10.0.0.2", "10.0.0.1"), ("fd00:10::2", "fd00:10::1")  # node, outside
LOCAL, REMOTE = ("10.244.1.21", "fd00:10:244:1::21"), ("10.244.2.22", "fd00:10:244:2::22")


def services(v6: bool) -> list[ServicePort]:
    i = 1 if v6 else 0
    cip = "fd00:10:96::20" if v6 else "10.96.20.10"
    return [ServicePort("shop", "frontend", cip, 80, port_name="http", node_port=30080,
                        endpoints=[E(LOCAL[i], 8080, True), E(REMOTE[i], 8080)])]  # fmt: skip


@contextmanager
def dual_stack_lab() -> Iterator[KernelLab]:
    with Lab("kc-dual") as lab:
        outside = lab.add_uplink_host("outside", node_cidrs=[f"{V4[0]}/24", f"{V6[0]}/64"],
                                      host_cidrs=[f"{V4[1]}/24", f"{V6[1]}/64"], extra_ips=list(REMOTE))
        client = lab.add_pod("client", ["10.244.1.100", "fd00:10:244:1::100"])
        pod = lab.add_pod("pod1", list(LOCAL))
        lab.start_echo(pod, [("tcp", ip, 8080) for ip in LOCAL], tag="pod1")
        lab.start_echo(outside, [("tcp", ip, 8080) for ip in REMOTE], tag="outside")
        v4 = generate(services(False), NodeConfig())
        v6 = generate(services(True), NodeConfig(cluster_cidr="fd00:10:244::/56", node_ip=V6[0]))
        lab.load_rules(v4.render(), backend="nft", family=4)
        lab.load_rules(v6.render(), backend="nft", family=6)
        sc = Scenario("kc-dual", "dual-stack node", services(False))
        topo = Topology(lab, sc, outside, client, {"10.244.1.100": client, LOCAL[0]: pod}, ["vethclient", "vethpod1"])
        yield KernelLab(lab, topo, sc, v4, families=(4, 6))


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with dual_stack_lab() as k:
        yield k


def pasted(klab: KernelLab, obs: Observation) -> Observation:
    """The observation with the rules as a user pastes them: the IPv4 save, then the IPv6 save."""
    obs.rules = klab.lab.save_rules(counters=False, family=4) + klab.lab.save_rules(counters=False, family=6)
    return obs


@pytest.mark.parametrize(("who", "dst", "port"), [
    ("pod", "10.96.20.10", 80), ("pod", "fd00:10:96::20", 80),
    ("outside", V4[0], 30080), ("outside", V6[0], 30080),
])  # fmt: skip
def test_each_family_through_its_own_dump_of_one_paste(klab: KernelLab, who: str, dst: str, port: int) -> None:
    for obs in klab.observe([Send(who, "tcp", dst, port)] * 3):
        path = check(pasted(klab, obs), klab.context_for(obs))
        assert path.verdict == "ACCEPT" and path.endpoint is not None
        assert path.endpoint.startswith("[") == (":" in dst)  # the IPv6 packet met the IPv6 rules
        assert path.masquerade == (who == "outside")
