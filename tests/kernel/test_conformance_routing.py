"""Kernel conformance of the routing decisions between the hooks (issue 14.5), on the ``nodeport-cluster``
sample: the same packet with a sysctl (or route) on and off in the lab's node namespace — the kernel's own
trace, the probe's outcome, and the engine told the namespace's real sysctls and routes.

- route_localnet: the node → 127.0.0.1:NODEPORT; after nat OUTPUT's DNAT the packet is routed again and its
  127.0.0.1 source may leave by the pod's veth only with route_localnet on.
- ip_forward: a pod → the service's cluster IP is forwarded only with forwarding on.
- no route: a pod → an address nothing routes (no default route) is dropped after PREROUTING.
- rp_filter: an outside host sending from a pod's address (spoofed) to the NodePort: strict reverse-path
  filtering drops it (the route back leaves by the pod's veth), loose and off let it through.

Every sysctl and route is set inside the lab's own node namespace and restored; the host is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.packet import NodeContext
from kptui.engine.trace import trace
from kptui.engine.trace_compare import engine_steps, kernel_steps, same_steps
from kptui.engine.trace_model import TracePath
from samples.scenarios import BY_NAME

from .harness import KernelLab, Observation, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "10.0.0.2"
NODEPORT = 30080
CLUSTER_IP = "10.96.20.10"
SPOOFED = "10.244.1.100"  # the client pod's address, also put on the outside host


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(BY_NAME["nodeport-cluster"]) as k:
        yield k


def read_sysctls(klab: KernelLab) -> dict[str, str]:
    return klab.sysctls()


@contextmanager
def sysctls(klab: KernelLab, settings: dict[str, str]) -> Iterator[None]:
    before = read_sysctls(klab)
    for k, v in settings.items():
        klab.lab.sysctl(klab.lab.node, k, v)
    try:
        yield
    finally:
        for k in reversed(list(settings)):
            klab.lab.sysctl(klab.lab.node, k, before[k])


def engine_path(klab: KernelLab, obs: Observation) -> TracePath:
    """The engine's path for the kernel's walk: told the namespace's sysctls and routes, and the endpoint the
    kernel chose (the statistic branch); its matched rules must be the kernel's."""
    assert obs.kernel is not None and obs.kernel.first is not None, obs.capture[:2000]
    ctx: NodeContext = klab.context_for(obs)  # the namespace's real sysctls and routes are in it
    result = trace(parse_ruleset(obs.rules, source="kernel-save"), obs.packet(), ctx)
    ks = kernel_steps(obs.kernel)
    paths = [p for p in result.paths if p.endpoint == obs.kernel.endpoint and same_steps(ks, engine_steps(p))]
    assert paths, (obs.describe(), [(p.endpoint, p.verdict, routing_text(p)) for p in result.paths],
                   [e.short() for e in ks])
    return paths[0]


def routing_text(path: TracePath) -> str:
    return " | ".join(h.rule or "" for h in path.hops if h.kind == "routing")


def hooks(obs: Observation) -> set[str]:
    assert obs.kernel is not None
    return {e.hook for e in obs.kernel.events}


def test_route_localnet_decides_whether_a_localhost_nodeport_leaves(klab: KernelLab) -> None:
    for value in ("1", "0"):
        with sysctls(klab, {"net.ipv4.conf.all.route_localnet": value}):
            (obs,) = klab.observe([Send("node", "tcp", "127.0.0.1", NODEPORT)])
            path = engine_path(klab, obs)
        if value == "1":
            assert obs.result.ok and "POSTROUTING" in hooks(obs)
            assert path.verdict == "ACCEPT" and path.delivery == "sent", routing_text(path)
        else:
            assert not obs.result.ok and "POSTROUTING" not in hooks(obs)  # dropped when routed again after DNAT
            assert path.verdict == "DROP" and "may not leave by" in routing_text(path), routing_text(path)
            assert "route_localnet=0" in routing_text(path)


def test_forwarding_off_drops_a_pods_packet_after_prerouting(klab: KernelLab) -> None:
    for value in ("1", "0"):
        with sysctls(klab, {"net.ipv4.ip_forward": value}):
            (obs,) = klab.observe([Send("pod", "tcp", CLUSTER_IP, 80)])
            path = engine_path(klab, obs)
        if value == "1":
            assert obs.result.ok and "FORWARD" in hooks(obs) and path.delivery == "forward"
        else:
            assert not obs.result.ok and hooks(obs) == {"PREROUTING"}
            assert path.verdict == "DROP" and "forwarding is off" in routing_text(path)


def test_no_route_means_the_packet_is_not_delivered(klab: KernelLab) -> None:
    node, outside = klab.lab.node, "10.0.0.1"
    for present in (True, False):
        if not present:
            klab.lab.ip(node, "-4", "route", "del", "default")
        try:
            (obs,) = klab.observe([Send("pod", "tcp", "192.0.2.99", 80)])
            path = engine_path(klab, obs)
        finally:
            if not present:
                klab.lab.add_route(node, "default", via=outside, family=4)
        if present:
            assert "FORWARD" in hooks(obs) and path.delivery == "forward"  # routed out (nobody answers)
        else:
            assert hooks(obs) == {"PREROUTING"}
            assert path.verdict == "DROP" and "no route to 192.0.2.99" in routing_text(path)


@pytest.mark.parametrize("value", ["1", "2", "0"])
def test_strict_reverse_path_filtering_drops_a_spoofed_source(klab: KernelLab, value: str) -> None:
    outside = klab.topo.outside
    klab.lab.add_addr(outside, "lo", f"{SPOOFED}/32")
    try:
        with sysctls(klab, {"net.ipv4.conf.all.rp_filter": value}):
            (obs,) = klab.observe([Send("outside", "tcp", NODE_IP, NODEPORT, src=SPOOFED)])
            path = engine_path(klab, obs)
    finally:
        klab.lab.ip(outside, "addr", "del", f"{SPOOFED}/32", "dev", "lo")
    if value == "1":
        assert hooks(obs) == {"PREROUTING"}  # DNATed, then refused by the routing decision
        assert path.verdict == "DROP" and "strict reverse-path filtering" in routing_text(path)
        assert "leaves by vethclient" in routing_text(path)
    else:
        assert "FORWARD" in hooks(obs) and path.verdict == "ACCEPT" and path.delivery == "forward"
