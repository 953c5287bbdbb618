"""Kernel-backed tests of live mode: they build their own network namespaces (tools/netlab.py) and need root.

The policy is tests/kernel's: when they cannot run they are skipped with a loud reason and a banner at the end
of the run, unless ``KPTUI_REQUIRE_KERNEL=1`` is set (CI sets it), in which case they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

REQUIRE = os.environ.get("KPTUI_REQUIRE_KERNEL") == "1"
TOOLS = ("ip", "iptables-nft", "iptables-nft-restore", "iptables-nft-save", "iptables-legacy-save",
         "xtables-monitor", "conntrack", "stdbuf", "python3")  # fmt: skip
_reason: list[str | None] = []
_skipped: list[str] = []


def _probe() -> str | None:
    """Why the tests cannot run here, or None."""
    if os.geteuid() != 0:
        return f"not running as root (uid {os.geteuid()})"
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    ns = f"kptlab-{os.getpid()}-liveprobe"
    try:
        add = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True, timeout=20, check=False)
        if add.returncode != 0:
            return f"cannot create a network namespace: {add.stderr.strip()}"
        nft = subprocess.run(["ip", "netns", "exec", ns, "iptables-nft-save"], capture_output=True, text=True,
                             timeout=20, check=False)  # fmt: skip
        if nft.returncode != 0:
            return f"iptables-nft-save does not work inside a namespace: {nft.stderr.strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20, check=False)
    return None


@pytest.fixture(scope="session")
def live_kernel_ok() -> Iterator[None]:
    """Skip loudly (or with KPTUI_REQUIRE_KERNEL=1 fail) when real netfilter in namespaces is not available."""
    if not _reason:
        _reason.append(_probe())
    reason = _reason[0]
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"KPTUI_REQUIRE_KERNEL=1 but the live-mode kernel tests cannot run: {reason}", pytrace=False)
        msg = (f"!!! LIVE-MODE KERNEL TESTS SKIPPED: {reason}. They check kptui's live reading, deltas and "
               "bundles against real netfilter; run as root (KPTUI_REQUIRE_KERNEL=1 makes this a failure).")
        _skipped.append(msg)
        pytest.skip(msg)
    yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.write_sep("!", "LIVE-MODE KERNEL TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_skipped[0])
