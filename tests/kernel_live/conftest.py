"""Kernel-backed tests of live mode: they build their own network namespaces (tools/netlab.py) and need root.

The policy is tests/kernel's: when they cannot run they are skipped with a loud reason and a banner at the end
of the run, unless ``KPTUI_REQUIRE_KERNEL=1`` is set (CI sets it), in which case they fail instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..kernel_gate import KernelGate

GATE = KernelGate(
    "LIVE-MODE KERNEL TESTS",
    "They check kptui's live reading, deltas and bundles against real netfilter",
    ("ip", "iptables-nft", "iptables-nft-restore", "iptables-nft-save", "iptables-legacy-save", "xtables-monitor",
     "conntrack", "stdbuf", "python3", "nft", "ipset"),
    ("iptables-nft-save",),
    "liveprobe",
)


@pytest.fixture(scope="session")
def live_kernel_ok() -> Iterator[None]:
    """Skip loudly (or with KPTUI_REQUIRE_KERNEL=1 fail) when real netfilter in namespaces is not available."""
    GATE.require()
    yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if GATE.skipped:
        terminalreporter.write_sep("!", "LIVE-MODE KERNEL TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(GATE.skipped[0])
