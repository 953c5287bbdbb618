"""Small helpers of the network-namespace lab (:mod:`tools.netlab` re-exports them).

Running commands without a shell, naming xtables binaries, reading trace output, listing leftover
namespaces and making signals unwind ``with Lab()`` blocks.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

NS_PREFIX = "kptlab-"


class LabError(RuntimeError):
    """A lab command failed; the message holds the command and its stderr."""


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell), capture its output as text, raise :class:`LabError` on failure."""
    proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"{' '.join(argv[:8])}{' ...' if len(argv) > 8 else ''} "
                       f"failed with exit code {proc.returncode}: {detail}")
    return proc


def family_of(addr: str) -> int:
    """Return 6 for an IPv6 address or CIDR, else 4."""
    return 6 if ":" in addr else 4


def xtables_tool(kind: str, backend: str = "nft", family: int = 4) -> str:
    """Name of an xtables binary: ``xtables_tool("save", "legacy", 6)`` -> ``ip6tables-legacy-save``.

    ``kind`` is ``"restore"``, ``"save"`` or ``""`` (the plain ``iptables-nft`` command).
    """
    if backend not in ("nft", "legacy") or family not in (4, 6):
        raise ValueError(f"unknown backend/family {backend!r}/{family!r}")
    base = f"{'ip6tables' if family == 6 else 'iptables'}-{backend}"
    return f"{base}-{kind}" if kind else base


def leftover_namespaces(prefix: str = NS_PREFIX) -> list[str]:
    """Names from ``ip netns list`` that start with ``prefix`` (to check that cleanup worked)."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


def first_packet_trace(text: str) -> str:
    """The lines of the first traced packet in ``xtables-monitor --trace`` / ``nft monitor trace`` output.

    Trace ids are reused by later packets (a SYN and the FIN of the same connection can share one),
    so this keeps the consecutive run of lines that carry the first id.
    """
    out: list[str] = []
    first = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0] not in ("PACKET:", "TRACE:", "trace"):
            continue
        first = first or parts[2]
        if parts[2] != first:
            break
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def wait_idle(path: Path, fh: IO[str], *, quiet: float, timeout: float) -> bool:
    """Wait until nothing has been written to ``path`` (through ``fh``, flushed) for ``quiet`` seconds; False
    when ``timeout`` ran out first (a trace monitor looks up every traced rule before printing it, so it can
    lag behind the traffic)."""
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        fh.flush()
        now = path.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
        time.sleep(0.05)
    return False


def install_signal_cleanup() -> None:
    """Turn SIGTERM/SIGHUP into ``SystemExit`` (and SIGINT into ``KeyboardInterrupt`` even when it was
    inherited as ignored) so ``with Lab()`` blocks and ``finally`` clauses run and clean up."""
    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)
    signal.signal(signal.SIGINT, signal.default_int_handler)
