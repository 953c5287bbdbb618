"""Kernel conformance, session affinity (``-m recent``): ``shop/cart`` TCP (3 endpoints, NodePort 30600) and
``games/matchmaker`` UDP, from the ``session-affinity`` sample.

A client's first connection has no ``recent`` entry, so the statistic rules pick an endpoint and its KUBE-SEP
chain records the client (``-m recent --set --name KUBE-SEP-…``). The next connection from the same client
matches that endpoint's ``--rcheck`` rule: the engine is told so with ``NodeContext(recent={that list})``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME

from .compare import check
from .harness import KernelLab, Observation, Send, kernel_lab

pytestmark = pytest.mark.kernel

CART = ("10.96.60.10", 80)
MATCHMAKER = ("10.96.60.20", 7777)


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(BY_NAME["session-affinity"]) as k:
        yield k


def sep_chain(obs: Observation) -> str:
    """The KUBE-SEP chain whose DNAT the kernel applied."""
    assert obs.kernel is not None
    dnat = [e.chain for e in obs.kernel.events if e.rule_text and "-j DNAT" in e.rule_text]
    assert dnat, "no DNAT in the kernel trace"
    return dnat[-1]


@pytest.mark.parametrize("who, proto, dst, port", [
    ("pod", "tcp", *CART), ("outside", "tcp", *CART), ("outside", "tcp", "10.0.0.2", 30600),
    ("pod", "udp", *MATCHMAKER),
])  # fmt: skip
def test_first_and_second_connection(klab: KernelLab, who: str, proto: str, dst: str, port: int) -> None:
    (first,) = klab.observe([Send(who, proto, dst, port)])  # recent lists flushed: a first-ever client
    path = check(first, klab.context_for(first))
    assert not any("--rcheck" in (h.rule or "") for h in path.matched_hops)
    sep = sep_chain(first)
    (second,) = klab.observe([Send(who, proto, dst, port)], fresh=False)
    assert second.kernel is not None and second.kernel.endpoint == first.kernel.endpoint  # type: ignore[union-attr]
    assert any("--rcheck" in (e.rule_text or "") for e in second.kernel.events), "the kernel used the recent entry"
    path2 = check(second, klab.context_for(second, recent=frozenset({sep})))
    assert path2.endpoint == first.kernel.endpoint  # type: ignore[union-attr]
