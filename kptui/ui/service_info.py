"""What the UI knows of one service: its ways in (:class:`Frontend`, for packet presets), short facts, and the
findings shown in the detail pane. Plain values, below both :mod:`.services` (the comments' answers) and
:mod:`.kube_adapter` (the kube engine's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Finding", "Frontend", "ServiceInfo"]


class Frontend(NamedTuple):
    """One way into a service: ``kind`` is cluster-ip, nodeport, external-ip or loadbalancer."""

    kind: str
    ip: str | None  # None for a NodePort (any node address)
    port: int
    proto: str


@dataclass
class ServiceInfo:
    name: str
    frontends: list[Frontend] = field(default_factory=list)
    facts: tuple[str, ...] = ()  # short facts for the detail pane ("externalTrafficPolicy Local", …)

    def add(self, fe: Frontend) -> None:
        if fe not in self.frontends:
            self.frontends.append(fe)


class Finding(NamedTuple):
    severity: str  # "info", "warning", "error"
    text: str
