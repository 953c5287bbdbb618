"""Kernel conformance for nft nodes: the engine's walk of each first packet against the kernel's, hop for hop.

The cases of tests/kernel/test_nft_lab.py (which proves the kernel half: what the kernel did, independent of the
engine), replayed through the engine: kube-proxy's nftables mode (1.33 and 1.31 layouts), a second native table
at the same hooks, and an iptables-nft ruleset next to a native inet table. :func:`compare_nft.check_nft` compares
every rule the kernel reported a verdict for (hook, family, table, chain, rule text or policy, verdict), the
endpoint, the verdict, the delivery and masquerade; it needs the engine's Netfilter / nft API (see
compare_nft.py's docstring).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .compare_nft import check_nft
from .nft_fixtures import (
    ALLOWED,
    API,
    BROKEN,
    BROKEN_NP,
    CART,
    CHECKOUT_NP,
    DEAD_DNS,
    DENIED,
    DNS,
    FRONTEND_EPS,
    FRONTEND_NP,
    INGRESS_LB,
    LEGACY_NP,
    MATCHMAKER,
    NODE,
    OK,
    PAYMENTS_LB,
    PAYMENTS_NP,
    SYSLOG_NP,
    UNALLOCATED,
    WEB,
    WEB6,
)
from .nft_harness import NftKernelLab, NftObservation, Send

pytestmark = pytest.mark.kernel


def observed(klab: NftKernelLab, sends: Sequence[Send], *, fresh: bool = True) -> list[NftObservation]:
    """The kernel half: every probe's first packet captured (what it did is test_nft_lab.py's to check)."""
    out = []
    for obs in klab.observe(sends, fresh=fresh):
        assert isinstance(obs, NftObservation)
        assert obs.kernel is not None and obs.kernel.first is not None, (
            f"not captured: {obs.describe()}; warnings {obs.warnings}\n{obs.capture[:3000]}")
        out.append(obs)
    return out


def check_all(klab: NftKernelLab, observations: Sequence[NftObservation]) -> None:
    for obs in observations:
        check_nft(obs, klab.context_for(obs))


def test_cluster_ip(clusterip_nft: NftKernelLab) -> None:
    sends = [Send("pod", "tcp", *WEB)] * 4 + [Send("node", "tcp", *WEB), Send("node", "tcp", *API),
                                              Send("pod", "tcp", WEB[0], 81), Send("pod", "tcp", *UNALLOCATED),
                                              Send("node", "tcp", WEB[0], 81), Send("pod", "udp", *DNS)]  # fmt: skip
    check_all(clusterip_nft, observed(clusterip_nft, sends))


def test_cluster_ip_layout_131(clusterip_nft_131: NftKernelLab) -> None:
    check_all(clusterip_nft_131, observed(clusterip_nft_131, [Send("pod", "tcp", *WEB), Send("node", "tcp", *WEB),
                                                              Send("node", "tcp", WEB[0], 81)]))


def test_nodeport_etp_cluster(nodeport_nft: NftKernelLab) -> None:
    sends = [Send("outside", "tcp", NODE, FRONTEND_NP), Send("outside", "udp", NODE, SYSLOG_NP),
             Send("node", "tcp", NODE, FRONTEND_NP), Send("pod", "tcp", NODE, FRONTEND_NP),
             Send("node", "tcp", "127.0.0.1", FRONTEND_NP)]  # fmt: skip
    check_all(nodeport_nft, observed(nodeport_nft, sends))


def test_nodeport_etp_local(local_nft: NftKernelLab) -> None:
    sends = [Send("outside", "tcp", NODE, CHECKOUT_NP), Send("outside", "tcp", NODE, LEGACY_NP),
             Send("pod", "tcp", NODE, LEGACY_NP), Send("node", "tcp", NODE, CHECKOUT_NP)]  # fmt: skip
    check_all(local_nft, observed(local_nft, sends))


def test_services_without_endpoints_and_masquerade_all(noep_nft: NftKernelLab) -> None:
    sends = [Send("pod", "tcp", *BROKEN), Send("outside", "tcp", NODE, BROKEN_NP), Send("node", "tcp", *BROKEN),
             Send("pod", "udp", *DEAD_DNS), Send("pod", "tcp", *OK)]  # fmt: skip
    check_all(noep_nft, observed(noep_nft, sends))


def test_load_balancer_source_ranges(lb_nft: NftKernelLab) -> None:
    sends = [Send("outside", "tcp", *PAYMENTS_LB, src=ALLOWED), Send("outside", "tcp", *PAYMENTS_LB, src=DENIED),
             Send("pod", "tcp", *PAYMENTS_LB), Send("node", "tcp", *PAYMENTS_LB),
             Send("outside", "tcp", NODE, PAYMENTS_NP, src=DENIED), Send("outside", "tcp", *INGRESS_LB, src=ALLOWED),
             Send("outside", "tcp", *INGRESS_LB, src=DENIED)]  # fmt: skip
    check_all(lb_nft, observed(lb_nft, sends))


@pytest.mark.parametrize(("proto", "service"), [("tcp", CART), ("udp", MATCHMAKER)])
def test_session_affinity(affinity_nft: NftKernelLab, proto: str, service: tuple[str, int]) -> None:
    """A first packet (sets flushed) is balanced; the next connection from the same client meets the element the
    first one left in its endpoint's set (each observation carries the listing from just before it)."""
    (first,) = observed(affinity_nft, [Send("pod", proto, *service)])
    (again,) = observed(affinity_nft, [Send("pod", proto, *service)], fresh=False)
    assert again.kernel and first.kernel and again.kernel.endpoint == first.kernel.endpoint
    check_all(affinity_nft, [first, again])


def test_a_second_native_table_at_the_same_hooks(guard_nft: NftKernelLab) -> None:
    seen = guard_nft.observe_until(Send("outside", "tcp", NODE, FRONTEND_NP),
                                   lambda obs: {o.kernel.endpoint for o in obs if o.kernel} >= FRONTEND_EPS, batch=6)
    assert {o.kernel.endpoint for o in seen if o.kernel} >= FRONTEND_EPS
    more = observed(guard_nft, [Send("outside", "tcp", "10.96.20.10", 80), Send("outside", "tcp", NODE, 30999)])
    check_all(guard_nft, [o for o in seen if isinstance(o, NftObservation)] + more)


def test_iptables_nft_ruleset_next_to_a_native_table(mixed_nft: NftKernelLab) -> None:
    sends = [Send("pod", "tcp", *WEB), Send("outside", "tcp", NODE, FRONTEND_NP), Send("outside", "tcp", NODE, 9999),
             Send("pod", "tcp", NODE, 9999)]  # fmt: skip
    check_all(mixed_nft, observed(mixed_nft, sends))


def test_ipv6(ipv6_nft: NftKernelLab) -> None:
    check_all(ipv6_nft, observed(ipv6_nft, [Send("pod", "tcp", *WEB6), Send("outside", "tcp", "fd00:10::2", 30080)]))
