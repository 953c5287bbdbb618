"""Kernel conformance, kube-proxy's interface-based local-traffic detector
(``--detect-local-mode=InterfaceNamePrefix``): the ``clusterip`` sample with every ``! -s 10.244.0.0/16``
replaced by ``! -i veth+`` (the lab's pod veths are ``veth…``), as kube-proxy writes it in that mode.

A packet the node sends itself has no input interface: ``-i X`` never matches it and ``! -i X`` always does,
so node-originated traffic to a cluster IP is masqueraded, pod traffic is not, outside traffic is.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME
from tools.kubegen import Ruleset

from .compare import check
from .harness import KernelLab, Send, kernel_lab

pytestmark = pytest.mark.kernel

WEB = ("10.96.10.20", 80)


def by_interface(rs: Ruleset, _klab: KernelLab) -> None:
    """Rewrite the CIDR detector into the interface-prefix one."""
    for table in rs.tables.values():
        table.rules = [r.replace("! -s 10.244.0.0/16", "! -i veth+") for r in table.rules]


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(BY_NAME["clusterip"], extend=by_interface) as k:
        assert "! -i veth+" in k.lab.save_rules(counters=False)
        yield k


@pytest.mark.parametrize("who, masquerade", [("pod", False), ("outside", True), ("node", True)])
def test_cluster_ip_with_interface_detector(klab: KernelLab, who: str, masquerade: bool) -> None:
    for obs in klab.observe([Send(who, "tcp", *WEB)] * 2):
        path = check(obs, klab.context_for(obs))
        assert path.masquerade == masquerade
