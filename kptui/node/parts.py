"""What a source gave, part by part, before anything is parsed: :class:`Artifact` (one command's output, or one
file) and :class:`Collection` (all of them, with facts about the node and the read).

A live read (:mod:`kptui.node.collect`) and a capture bundle (:mod:`kptui.node.bundle`) both give a
Collection; so does a file (:mod:`kptui.node.sources`): one artifact whose kind its content told.
:func:`kptui.node.snapshot.build_snapshot` turns a Collection into the :class:`~kptui.node.snapshot.NodeSnapshot`
every command works on. Bytes in, values out: no I/O here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "Artifact", "Collection"]

# Every kind of artifact, with what it holds. Readers ignore kinds they do not know (a newer bundle).
KINDS: Mapping[str, str] = {
    "rules": "an ip(6)tables-save -c dump (family, backend)",
    "nft-ruleset": "the whole nft ruleset: `nft -j list ruleset` (JSON) or a pasted `nft list ruleset` (text)",
    "nft": "format 1's nft listings: `nft list tables`, `nft list table ip|ip6 kube-proxy`",
    "ipset": "`ipset save`",
    "ipvs": "`ipvsadm -S -n` (the IPVS table)",
    "ip-addr": "`ip -j -d addr show`",
    "ip-route": "`ip -j -4|-6 route show` (family)",
    "ip-rule": "`ip -j -4|-6 rule show`: the routing policy rules (family)",
    "sysctl": "the sysctls that change what the kernel does with a packet (JSON: name → value)",
    "conntrack": "`conntrack -L -f ipv4|ipv6` (family)",
    "iptables-version": "`iptables --version`",
}


@dataclass(frozen=True)
class Artifact:
    """One command's output (or one file, or one fact file) of a collection, and how it was read."""

    name: str  # member name in the bundle, e.g. "rules/iptables-nft-save.rules"
    kind: str  # one of KINDS
    data: bytes
    family: str | None = None  # "ipv4" / "ipv6" where it matters
    backend: str | None = None  # "nf_tables" / "legacy" for rules
    command: tuple[str, ...] = ()  # the logical command (as in kptui.live.runner.ALLOWED); () for a file
    status: int | None = 0
    error: str | None = None  # "not installed", "not run: …", "timed out after 60 s", …
    stderr: str = ""
    seconds: float = 0.0  # wall time
    cpu_seconds: float = 0.0
    started: float | None = None  # Unix time the command started (None: not recorded, e.g. format 1)
    format: str | None = None  # "json" / "text" where the kind has both (nft-ruleset)
    via: tuple[str, ...] = ()  # a remote read: the kubectl/ssh argument list that carried ``command``

    @property
    def ok(self) -> bool:
        return self.status == 0 and self.error is None

    def manifest_entry(self) -> dict[str, Any]:
        entry = {"name": self.name, "kind": self.kind, "family": self.family, "backend": self.backend,
                 "command": list(self.command), "status": self.status, "error": self.error,
                 "stderr": self.stderr[-2000:], "seconds": round(self.seconds, 4),
                 "cpu_seconds": round(self.cpu_seconds, 4), "size": len(self.data),
                 "sha256": hashlib.sha256(self.data).hexdigest()}  # fmt: skip
        if self.started is not None:
            entry["started"] = round(self.started, 3)
        if self.format is not None:
            entry["format"] = self.format
        if self.via:
            entry["via"] = list(self.via)
        return entry


@dataclass(frozen=True)
class Collection:
    """Everything read from a node (or a file): the artifacts plus facts (hostname, kernel, time, proxy mode…).

    ``origin`` says where it came from: ``"live"``, ``"bundle"``, ``"file"`` or ``"stdin"``; ``source`` is
    the name messages use (the file name, ``<stdin>``, ``live (netns x)``)."""

    artifacts: tuple[Artifact, ...]
    facts: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "live"
    source: str = "live"

    def find(self, kind: str, family: str | None = None, backend: str | None = None) -> Artifact | None:
        for a in self.artifacts:
            if a.kind == kind and (family is None or a.family == family) and (backend is None or a.backend == backend):
                return a
        return None

    def all(self, kind: str) -> tuple[Artifact, ...]:
        return tuple(a for a in self.artifacts if a.kind == kind)
