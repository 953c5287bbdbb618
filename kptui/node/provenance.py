"""How each part of a snapshot was read: :class:`Run` (its command or file, when, how long, its outcome), made
from an :class:`~kptui.node.parts.Artifact` by :func:`run_of`, and :func:`read_failure`, why a read gave nothing
(``NodeSnapshot.provenance``, ``kptui summary``'s commands, the backends' errors).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .parts import Artifact

__all__ = ["Run", "read_failure", "run_of"]


class Run(NamedTuple):
    """How one part was read: its command (or file), when, how long, and what came of it."""

    part: str  # the artifact kind ("rules", "nft-ruleset", "sysctl", …)
    name: str  # the artifact (bundle member) name
    command: str  # "iptables-nft-save -c"; "" for a file
    family: str | None
    backend: str | None
    started: float | None  # Unix time (None: not recorded)
    seconds: float
    cpu_seconds: float
    status: int | None
    error: str | None
    size: int  # bytes it gave

    @property
    def ok(self) -> bool:
        return self.status == 0 and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "name": self.name, "command": self.command, "family": self.family,
                "backend": self.backend, "started": self.started, "seconds": round(self.seconds, 4),
                "cpu_seconds": round(self.cpu_seconds, 4), "status": self.status, "error": self.error,
                "size": self.size}  # fmt: skip


def run_of(a: Artifact) -> Run:
    return Run(a.kind, a.name, " ".join(a.command), a.family, a.backend, a.started, a.seconds, a.cpu_seconds,
               a.status, a.error if a.error else (None if a.ok else read_failure(a)), len(a.data))  # fmt: skip


def read_failure(a: Artifact) -> str:
    if a.error:
        return a.error
    how = f"killed by signal {-a.status} (it crashed)" if a.status is not None and a.status < 0 else \
        f"exit status {a.status}"
    detail = a.stderr.strip().splitlines()
    return how + (f": {detail[-1][:300]}" if detail else "")
