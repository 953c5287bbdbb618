"""Kernel conformance tests need root, network namespaces and the netfilter tools.

When they cannot run they are skipped with a loud reason (and a banner at the end of the run) -- unless
``KPTUI_REQUIRE_KERNEL=1`` is set (CI sets it), in which case every kernel test fails instead. The parser
tests in this directory need none of this and always run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

REQUIRE = os.environ.get("KPTUI_REQUIRE_KERNEL") == "1"
TOOLS = ("ip", "iptables-nft", "iptables-nft-restore", "iptables-nft-save", "xtables-monitor", "conntrack",
         "stdbuf", "python3")  # fmt: skip
_reason: list[str | None] = []  # [reason] once probed; None inside when everything is there
_skipped: list[str] = []


def _probe() -> str | None:
    """Why kernel tests cannot run here, or None."""
    if os.geteuid() != 0:
        return f"not running as root (uid {os.geteuid()})"
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    ns = f"kptlab-{os.getpid()}-probe"
    try:
        add = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True, timeout=20, check=False)
        if add.returncode != 0:
            return f"cannot create a network namespace: {add.stderr.strip()}"
        nft = subprocess.run(["ip", "netns", "exec", ns, "iptables-nft", "-t", "raw", "-S"], capture_output=True,
                             text=True, timeout=20, check=False)  # fmt: skip
        if nft.returncode != 0:
            return f"iptables-nft does not work inside a namespace: {nft.stderr.strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20, check=False)
    return None


def require_kernel() -> None:
    """Skip (loudly) or, with KPTUI_REQUIRE_KERNEL=1, fail when kernel tests cannot run."""
    if not _reason:
        _reason.append(_probe())
    reason = _reason[0]
    if reason is None:
        return
    if REQUIRE:
        pytest.fail(f"KPTUI_REQUIRE_KERNEL=1 but the kernel conformance tests cannot run: {reason}",
                    pytrace=False)
    msg = (f"!!! KERNEL CONFORMANCE TESTS SKIPPED: {reason}. They check the trace engine against the real "
           "kernel; run as root (KPTUI_REQUIRE_KERNEL=1 makes this a failure).")
    _skipped.append(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def kernel_ok() -> Iterator[None]:
    """Depend on this (module lab fixtures do) to run only where real netfilter is available."""
    require_kernel()
    yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A banner when kernel tests were skipped, so a green run without them does not go unnoticed."""
    if _skipped:
        terminalreporter.write_sep("!", "KERNEL CONFORMANCE TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_skipped[0])
