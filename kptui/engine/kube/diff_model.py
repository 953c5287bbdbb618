"""The values of a service-level diff (:func:`kptui.engine.kube.diff.diff_services`): all frozen.

A :class:`ServiceDiff` holds the service ports only one dump has, the matched pairs that differ (each a
:class:`ServiceChange`: endpoints added and removed, share and locality changes, chain renames, changed
settings) and the node-level changes (:class:`NodeDiff`: layout, kube-proxy's fixed chains). Values taken
from dumps are kept as they are; reports pass them through ``printable``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

from .model import ServicePort

__all__ = ["ChainRename", "EndpointDelta", "FieldChange", "NodeDiff", "NodeRule", "ServiceChange", "ServiceDiff"]

# A setting's value, JSON-ready: tuples are sets (sorted), None is "absent / none".
Value = str | int | bool | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One setting that differs: ``field`` is a :func:`service_to_dict` key (or a layout key)."""

    field: str
    old: Value
    new: Value


@dataclass(frozen=True, slots=True)
class ChainRename:
    """The same service port (``endpoint`` None) or endpoint (``IP:PORT``) under another chain name."""

    kind: str  # "SVC", "SVL", "EXT", "FW", "XLB", "SEP"
    old: str
    new: str
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointDelta:
    """An endpoint both dumps have whose share or locality differs."""

    endpoint: str  # "IP:PORT" (the SEP chain when the DNAT rule gives no address)
    field: str  # "probability", "local_probability" (exact shares) or "local"
    old: Fraction | bool | None
    new: Fraction | bool | None


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """A service port both dumps have, and how it differs."""

    old: ServicePort
    new: ServicePort
    matched_by: str  # "name", "hash" (chain hash), "address" (cluster IP / NodePort / external IP + port)
    endpoints_added: tuple[str, ...]
    endpoints_removed: tuple[str, ...]
    endpoint_changes: tuple[EndpointDelta, ...]
    renames: tuple[ChainRename, ...]
    fields: tuple[FieldChange, ...]

    @property
    def label(self) -> str:
        """The name if either dump tells it, else ``?HASH`` (or ``?``)."""
        return self.new.name or self.old.name or self.new.label

    @property
    def scale(self) -> tuple[int, int]:
        """Endpoint counts, old and new."""
        return len(self.old.endpoints), len(self.new.endpoints)

    @property
    def empty(self) -> bool:
        return not (self.endpoints_added or self.endpoints_removed or self.endpoint_changes or self.renames
                    or self.fields)  # fmt: skip


@dataclass(frozen=True, slots=True)
class NodeRule:
    """A rule of kube-proxy's fixed chains (or a built-in chain's jump to one) that only one dump has."""

    table: str | None
    chain: str
    text: str  # the rule as in the dump, without counters
    count: int = 1  # how many more copies this side has


@dataclass(frozen=True, slots=True)
class NodeDiff:
    """Node-level changes: the detected layout, and kube-proxy's fixed chains and their rules."""

    layout: tuple[FieldChange, ...] = ()
    chains_added: tuple[tuple[str | None, str], ...] = ()
    chains_removed: tuple[tuple[str | None, str], ...] = ()
    rules_added: tuple[NodeRule, ...] = ()
    rules_removed: tuple[NodeRule, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.layout or self.chains_added or self.chains_removed or self.rules_added
                    or self.rules_removed)  # fmt: skip


@dataclass(frozen=True)
class ServiceDiff:
    """Two dumps compared service by service (see :mod:`.diff`)."""

    added: tuple[ServicePort, ...]
    removed: tuple[ServicePort, ...]
    changed: tuple[ServiceChange, ...]
    unchanged: tuple[tuple[ServicePort, ServicePort], ...]
    node: NodeDiff
    old_source: str | None = None
    new_source: str | None = None
    old_count: int = 0  # service ports in the old dump
    new_count: int = 0
    filtered: bool = False  # restricted by :meth:`only` (the node section is then left out)
    old_mode: str = "iptables"  # kube-proxy's mode of each side: "iptables", "nftables"
    new_mode: str = "iptables"

    @property
    def mode_switch(self) -> bool:
        """The two sides come from different kube-proxy modes (the same cluster before and after a switch?)."""
        return self.old_mode != self.new_mode

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed) and self.node.empty

    def only(self, keep: Callable[[ServicePort], bool]) -> ServiceDiff:
        """The service entries whose old or new side ``keep`` accepts; node-level changes are left out."""
        return replace(
            self,
            added=tuple(s for s in self.added if keep(s)),
            removed=tuple(s for s in self.removed if keep(s)),
            changed=tuple(c for c in self.changed if keep(c.old) or keep(c.new)),
            unchanged=tuple(p for p in self.unchanged if keep(p[0]) or keep(p[1])),
            node=NodeDiff(),
            filtered=True,
        )
