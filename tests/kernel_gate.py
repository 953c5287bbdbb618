"""The policy for tests that need real netfilter in network namespaces (tests/kernel, tests/kernel_live).

When they cannot run they are skipped with a loud reason (and a banner at the end of the run) -- unless
``KPTUI_REQUIRE_KERNEL=1`` is set (CI sets it), in which case they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

REQUIRE = os.environ.get("KPTUI_REQUIRE_KERNEL") == "1"


class KernelGate:
    """Probes once whether ``tools`` exist and ``check`` (run inside a scratch namespace) works."""

    def __init__(self, label: str, purpose: str, tools: Sequence[str], check: Sequence[str], ns_tag: str) -> None:
        self.label = label  # e.g. "KERNEL CONFORMANCE TESTS"
        self.purpose = purpose  # what the tests check, for the skip message
        self.tools = tuple(tools)
        self.check_cmd = tuple(check)
        self.ns_tag = ns_tag
        self._reason: list[str | None] = []  # [reason] once probed; None inside when everything is there
        self.skipped: list[str] = []

    def _probe(self) -> str | None:
        """Why the tests cannot run here, or None."""
        if os.geteuid() != 0:
            return f"not running as root (uid {os.geteuid()})"
        path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
        missing = [t for t in self.tools if shutil.which(t, path=path) is None]
        if missing:
            return f"missing tools: {', '.join(missing)}"
        ns = f"kptlab-{os.getpid()}-{self.ns_tag}"
        try:
            add = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True, timeout=20,
                                 check=False)  # fmt: skip
            if add.returncode != 0:
                return f"cannot create a network namespace: {add.stderr.strip()}"
            run = subprocess.run(["ip", "netns", "exec", ns, *self.check_cmd], capture_output=True, text=True,
                                 timeout=20, check=False)  # fmt: skip
            if run.returncode != 0:
                return f"{self.check_cmd[0]} does not work inside a namespace: {run.stderr.strip()}"
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot create a network namespace: {exc}"
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20, check=False)
        return None

    def require(self) -> None:
        """Skip (loudly) or, with KPTUI_REQUIRE_KERNEL=1, fail when the tests cannot run."""
        if not self._reason:
            self._reason.append(self._probe())
        reason = self._reason[0]
        if reason is None:
            return
        if REQUIRE:
            pytest.fail(f"KPTUI_REQUIRE_KERNEL=1 but the {self.label.lower()} cannot run: {reason}", pytrace=False)
        msg = (f"!!! {self.label} SKIPPED: {reason}. {self.purpose}; run as root (KPTUI_REQUIRE_KERNEL=1 makes "
               "this a failure).")
        self.skipped.append(msg)
        pytest.skip(msg)


@contextmanager
def scratch_netns(tag: str) -> Iterator[str]:
    """A network namespace of the test's own (``kptlab-<pid>-<tag>``), deleted afterwards."""
    ns = f"kptlab-{os.getpid()}-{tag}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, timeout=20)
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=20)


def nft_check(ns: str, text: str) -> subprocess.CompletedProcess[str]:
    """``nft -c -f -`` of ``text`` inside namespace ``ns``: validates, changes nothing."""
    return subprocess.run(["ip", "netns", "exec", ns, "nft", "-c", "-f", "-"], input=text, text=True,
                          capture_output=True, check=False, timeout=60)  # fmt: skip
