"""Kernel conformance tests need root, network namespaces and the netfilter tools.

When they cannot run they are skipped with a loud reason (and a banner at the end of the run) -- unless
``KPTUI_REQUIRE_KERNEL=1`` is set (CI sets it), in which case every kernel test fails instead. The parser
tests in this directory need none of this and always run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.scenarios import BY_NAME

from ..kernel_gate import KernelGate
from .harness import KernelLab, kernel_lab
from .nft_fixtures import (  # noqa: F401 - module-scoped labs of the nft kernel tests
    affinity_nft,
    clusterip_nft,
    clusterip_nft_131,
    guard_nft,
    ipv6_nft,
    lb_nft,
    local_nft,
    mixed_nft,
    nodeport_nft,
    noep_nft,
)

GATE = KernelGate(
    "KERNEL CONFORMANCE TESTS",
    "They check the trace engine against the real kernel",
    ("ip", "iptables-nft", "iptables-nft-restore", "iptables-nft-save", "xtables-monitor", "conntrack", "stdbuf",
     "python3"),
    ("iptables-nft", "-t", "raw", "-S"),
    "probe",
)


NFT_GATE = KernelGate(
    "KERNEL NFT TESTS",
    "They check kube-proxy's nftables mode, the nft lab and the engine against the real kernel",
    ("ip", "nft", "iptables-nft-restore", "iptables-nft-save", "conntrack", "stdbuf", "python3"),
    ("nft", "list", "ruleset"),
    "nftprobe",
)


@pytest.fixture(scope="session")
def nft_kernel_ok() -> Iterator[None]:
    """Depend on this to run only where nf_tables and the nft tool work in a network namespace."""
    NFT_GATE.require()
    yield


def require_kernel() -> None:
    """Skip (loudly) or, with KPTUI_REQUIRE_KERNEL=1, fail when kernel tests cannot run."""
    GATE.require()


@pytest.fixture(scope="session")
def kernel_ok() -> Iterator[None]:
    """Depend on this (module lab fixtures do) to run only where real netfilter is available."""
    require_kernel()
    yield


@pytest.fixture(scope="module")
def clusterip_lab(kernel_ok: None) -> Iterator[KernelLab]:
    """The clusterip scenario's lab (addresses in tests/kernel/clusterip.py), built once per test module."""
    with kernel_lab(BY_NAME["clusterip"]) as lab:
        yield lab


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A banner when kernel tests were skipped, so a green run without them does not go unnoticed."""
    for gate in (GATE, NFT_GATE):
        if gate.skipped:
            terminalreporter.write_sep("!", f"{gate.label} WERE SKIPPED", red=True, bold=True)
            terminalreporter.write_line(gate.skipped[0])
