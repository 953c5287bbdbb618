"""A fleet on disk: a ``kptui fleet capture`` directory (its bundles and ``fleet.json``, which names the nodes
whose capture failed), a directory of bundles, or bundle files; each node read into the
:class:`~kptui.engine.kube.fleet_model.NodeParts` the fleet comparison takes (its rules parsed, its node context,
what its capture could not read). A node that cannot be read becomes NodeParts with ``error``: the comparison
lists it as a failed capture rather than stopping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from kptui.engine import ParseError
from kptui.engine.iproute import parse_ip_json
from kptui.engine.kube.fleet_model import NodeParts

from .errors import NodeDataError
from .limits import Limits
from .snapshot import NodeSnapshot, build_snapshot
from .sources import read_source

__all__ = ["INDEX", "FleetEntry", "fleet_entries", "is_fleet_dir", "load_parts", "parts_of"]

INDEX = "fleet.json"
BUNDLE_SUFFIX = ".kptui"
MAX_INDEX = 16 << 20


@dataclass(frozen=True)
class FleetEntry:
    """One node of a fleet on disk: its bundle (None: its capture failed, ``error`` says why)."""

    name: str | None  # the name the index gives it (None: take it from the bundle)
    path: str | None
    error: str | None = None


def is_fleet_dir(path: str) -> bool:
    """A directory holding ``fleet.json`` or capture bundles (``*.kptui``)."""
    if not os.path.isdir(path):
        return False
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return INDEX in names or any(n.endswith(BUNDLE_SUFFIX) for n in names)


def _index(path: str) -> list[FleetEntry]:
    try:
        with open(os.path.join(path, INDEX), "rb") as fh:
            data = fh.read(MAX_INDEX + 1)
        doc = json.loads(data) if len(data) <= MAX_INDEX else None
    except (OSError, ValueError) as exc:
        raise NodeDataError(f"{path}/{INDEX}: cannot be read ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "kptui-fleet" or not isinstance(doc.get("nodes"), list):
        raise NodeDataError(f"{path}/{INDEX}: not the index of a kptui fleet capture")
    out = []
    for e in doc["nodes"]:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise NodeDataError(f"{path}/{INDEX}: a node entry without a name")
        file = e.get("file")
        if isinstance(file, str) and file and "/" not in file and not file.startswith("."):
            out.append(FleetEntry(e["name"], os.path.join(path, file)))
        else:
            out.append(FleetEntry(e["name"], None, str(e.get("error") or "not captured")))
    return out


def fleet_entries(paths: Sequence[str]) -> list[FleetEntry]:
    """The nodes ``paths`` name: each directory's index (and bundles it does not list), each bundle file."""
    out: list[FleetEntry] = []
    for path in paths:
        if os.path.isdir(path):
            entries = _index(path) if os.path.exists(os.path.join(path, INDEX)) else []
            listed = {os.path.basename(e.path) for e in entries if e.path}
            extra = sorted(n for n in os.listdir(path) if n.endswith(BUNDLE_SUFFIX) and n not in listed)
            entries += [FleetEntry(None, os.path.join(path, n)) for n in extra]
            if not entries:
                raise NodeDataError(f"{path}: a directory without fleet.json or capture bundles (*.kptui)")
            out += entries
        else:
            out.append(FleetEntry(None, path))
    return out


def _stem(path: str) -> str:
    base = os.path.basename(path)
    return base.removesuffix(BUNDLE_SUFFIX)


def _interfaces(snap: NodeSnapshot) -> tuple[str, ...]:
    try:
        data = parse_ip_json(snap.addresses.data if snap.addresses is not None else None, "ip addr")
    except ValueError:
        return ()
    return tuple(str(i.get("ifname")) for i in data if isinstance(i, dict) and i.get("ifname"))


def _addresses(snap: NodeSnapshot) -> tuple[str, ...]:
    ctx = snap.node
    first = [c.split("/")[0] for c in ctx.interfaces.get(ctx.uplink or "", ())]
    rest = [a for a in ctx.addresses if a not in first]
    return tuple(a for a in dict.fromkeys([*first, *rest]) if not a.startswith("127.") and a != "::1")


def _real(error: str | None) -> bool:
    text = error or ""
    return bool(text) and "not installed" not in text and not text.startswith("not run")


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8", "replace") if data is not None else None


def parts_of(snap: NodeSnapshot, name: str) -> NodeParts:
    """The NodeParts of one node's snapshot; rules that do not parse make an ``error``."""
    failed = tuple(f"{r.command or r.name}: {r.error}" for r in snap.missing() if _real(r.error))
    created = snap.host.get("created_unix")
    captured = float(created) if isinstance(created, int | float) else None
    try:
        ruleset = snap.ruleset if snap.rules is not None else None
    except ParseError as exc:
        return NodeParts(name, snap.source, error=f"its rules do not parse: {exc.diagnostic.format()}",
                         captured=captured, failed_parts=failed)  # fmt: skip
    try:
        nft = snap.nft_ruleset
    except ParseError as exc:
        nft, failed = None, (*failed, f"the nft ruleset does not parse: {exc.diagnostic.message}")
    try:  # the trace's rules and node context (an IPVS node's ipsets and table among them)
        netfilter = snap.netfilter() if snap.has_rules else None
        context, addresses, ipvs = snap.node, _addresses(snap), snap.ipvs_node
    except ParseError as exc:
        netfilter, context, addresses, ipvs = None, None, (), None
        failed = (*failed, f"not traced: {exc.diagnostic.message}")
    return NodeParts(name, snap.source, ruleset, nft, snap.proxy_mode, snap.backend, _text(snap.conntrack),
                     _text(snap.ipvs.data if snap.ipvs else None), _text(snap.ipsets.data if snap.ipsets else None),
                     _interfaces(snap), addresses, captured, failed, None, netfilter, context, ipvs)  # fmt: skip


def load_parts(entry: FleetEntry, limits: Limits | None = None) -> NodeParts:
    """One node's NodeParts (a capture that failed, or a bundle that cannot be read: ``error``)."""
    if entry.path is None:
        return NodeParts(entry.name or "?", "", error=entry.error or "not captured")
    fallback = entry.name or _stem(entry.path)
    try:
        col = read_source(entry.path, limits=limits)
        if col.origin != "bundle":
            return NodeParts(fallback, entry.path, error=f"{entry.path}: not a capture bundle (kptui capture "
                             "writes them; a plain dump does not say which node it is)")  # fmt: skip
        node_name = col.facts.get("node_name")
        name = entry.name or (node_name if isinstance(node_name, str) and node_name else fallback)
        snap = build_snapshot(col, need_rules="any")
    except NodeDataError as exc:
        return NodeParts(fallback, entry.path, error=str(exc))
    return parts_of(snap, name)
