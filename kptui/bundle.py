"""Node snapshots: what ``kptui`` reads from a live node, kept in memory or in a capture bundle.

Live mode and bundles share one path: :mod:`kptui.live` runs the read-only commands and gathers their
output as a :class:`Collection`; :func:`encode_bundle` writes a Collection as bundle bytes and
:func:`decode_bundle` reads it back; :func:`build_snapshot` turns a Collection into a :class:`NodeSnapshot`
(the ruleset in use, the node context, metadata). So a bundle opened on a laptop gives exactly the node context
the live node gave. No file or network I/O here: bytes in, bytes or values out.

The bundle format (version 1) is a gzip-compressed POSIX tar archive whose first member is ``manifest.json``;
every other member is one command's output, byte for byte (see :data:`FORMAT` and the README).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kptui import __version__
from kptui.engine import Ruleset, parse_ruleset_bytes
from kptui.engine.iproute import NodeFacts, node_facts, parse_ip_json
from kptui.engine.packet import NodeContext

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Artifact",
    "BundleError",
    "Collection",
    "NodeDataError",
    "NodeSnapshot",
    "build_snapshot",
    "decode_bundle",
    "encode_bundle",
    "is_bundle",
    "load_bundle",
    "sniff",
]

FORMAT = "kptui-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_EXPANDED = 2 << 30  # refuse bundles that expand beyond 2 GiB (a 700k-line dump is 82 MB)
BACKENDS = ("nf_tables", "legacy")
_RULE_LINE = re.compile(rb"^(?:\[\d+:\d+\] )?-A ", re.MULTILINE)
_KUBE = re.compile(rb"^:KUBE-", re.MULTILINE)


class NodeDataError(ValueError):
    """The node's data cannot give a snapshot (no rules could be read, …); the message says why."""


class BundleError(NodeDataError):
    """Not a readable bundle: corrupted, truncated, or from a newer kptui; the message says which."""


@dataclass(frozen=True)
class Artifact:
    """One command's output (or one fact file) of a collection."""

    name: str  # member name in the bundle, e.g. "rules/iptables-nft-save.rules"
    kind: str  # "rules", "ip-addr", "ip-route", "conntrack", "iptables-version", "nft"
    data: bytes
    family: str | None = None  # "ipv4" / "ipv6" where it matters
    backend: str | None = None  # "nf_tables" / "legacy" for rules
    command: tuple[str, ...] = ()
    status: int | None = 0
    error: str | None = None
    stderr: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 0 and self.error is None

    def manifest_entry(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "family": self.family, "backend": self.backend,
                "command": list(self.command), "status": self.status, "error": self.error,
                "stderr": self.stderr[-2000:], "seconds": round(self.seconds, 4),
                "cpu_seconds": round(self.cpu_seconds, 4), "size": len(self.data),
                "sha256": hashlib.sha256(self.data).hexdigest()}  # fmt: skip


@dataclass(frozen=True)
class Collection:
    """Everything read from a node: command outputs plus facts (hostname, kernel, time, proxy mode, …)."""

    artifacts: tuple[Artifact, ...]
    facts: Mapping[str, Any] = field(default_factory=dict)

    def find(self, kind: str, family: str | None = None, backend: str | None = None) -> Artifact | None:
        for a in self.artifacts:
            if a.kind == kind and (family is None or a.family == family) and (backend is None or a.backend == backend):
                return a
        return None


@dataclass(frozen=True)
class NodeSnapshot:
    """A node at one moment: the ruleset in use, the node context for traces, and what else was read."""

    ruleset: Ruleset
    node: NodeContext
    facts: NodeFacts
    family: str  # "ipv4" / "ipv6"
    backend: str | None  # the backend whose rules ``ruleset`` holds
    origin: str  # "live" or "bundle"
    metadata: Mapping[str, Any]  # JSON-ready: hostname, kernel, created, proxy mode, backends, commands, node
    warnings: tuple[str, ...]
    collection: Collection

    def dump(self, family: str | None = None, backend: str | None = None) -> bytes | None:
        """The raw save output of another family/backend (parse it with ``parse_ruleset_bytes``)."""
        a = self.collection.find("rules", family or self.family, backend or self.backend)
        return a.data if a is not None and a.ok else None

    @property
    def conntrack(self) -> bytes | None:
        a = self.collection.find("conntrack", self.family)
        return a.data if a is not None and a.ok else None


# -- choosing the ruleset in use ------------------------------------------------------------------------------
def _rule_stats(data: bytes) -> tuple[int, bool]:
    return len(_RULE_LINE.findall(data)), _KUBE.search(data) is not None


def build_snapshot(collection: Collection, *, family: str | None = None, backend: str | None = None,
                   origin: str = "live", source: str = "live") -> NodeSnapshot:  # fmt: skip
    """The snapshot of one family: the backend that holds kube-proxy's rules (or ``backend``), its parsed rules,
    the node context from the collected addresses and routes. Raises :class:`NodeDataError`."""
    families = [a.family for a in collection.artifacts if a.kind == "rules" and a.ok]
    if family is None:
        family = "ipv4" if "ipv4" in families or not families else str(families[0])
    warnings: list[str] = []
    stats: dict[str, dict[str, Any]] = {}
    for b in BACKENDS:
        a = collection.find("rules", family, b)
        if a is None:
            continue
        if not a.ok:
            stats[b] = {"read": False, "error": _failure(a)}
            continue
        n, has_kube = _rule_stats(a.data)
        stats[b] = {"read": True, "rules": n, "kube": has_kube, "seconds": round(a.seconds, 4)}
    readable = [b for b in BACKENDS if stats.get(b, {}).get("read")]
    if backend is not None:
        if backend not in readable:
            why = stats.get(backend, {}).get("error", "not captured")
            raise NodeDataError(f"the {backend} backend's {family} rules could not be read: {why}")
        chosen = backend
    elif not readable:
        errs = "; ".join(f"{b}: {s['error']}" for b, s in stats.items()) or "no rule dump was collected"
        raise NodeDataError(f"no {family} rules could be read ({errs})")
    else:
        holding = [b for b in readable if stats[b]["rules"] > 0]
        kube = [b for b in holding if stats[b]["kube"]]
        ranked = sorted(kube or holding or readable, key=lambda b: -stats[b].get("rules", 0))
        chosen = ranked[0]
        if len(holding) > 1:
            counts = " and ".join(f"iptables-{'nft' if b == 'nf_tables' else 'legacy'} {stats[b]['rules']}"
                                  for b in holding)  # fmt: skip
            warnings.append(f"both iptables backends hold {family} rules ({counts}): the kernel runs both, "
                            f"in separate tables; showing {chosen}"
                            + (" (kube-proxy's chains are in both!)" if len(kube) > 1 else
                               " (it holds kube-proxy's chains)" if kube else ""))  # fmt: skip
        failed = {b: str(s.get("error")) for b, s in stats.items() if not s["read"] and _real_failure(s.get("error"))}
        if not holding and failed:  # an empty backend must not stand in for one that could not be read
            why = "; ".join(f"{b}: {e}" for b, e in failed.items())
            raise NodeDataError(f"the {family} rules could not be read ({why}), and the other backend is empty")
        if not holding:
            warnings.append(f"no {family} iptables rules in either backend (kube-proxy in nftables or ipvs "
                            "mode, or not running?)")  # fmt: skip
    for b, s in stats.items():
        err = str(s.get("error") or "")
        if not s["read"] and b != chosen and _real_failure(err):
            warnings.append(f"the {b} backend could not be read: {err}")
    rules = collection.find("rules", family, chosen)
    assert rules is not None
    ruleset = parse_ruleset_bytes(rules.data, source=f"{source}: {' '.join(rules.command) or rules.name}")
    facts = _node_facts(collection, family, ruleset, warnings)
    proxy_mode = collection.facts.get("proxy_mode")
    if proxy_mode and proxy_mode != "iptables":
        warnings.append(f"kube-proxy reports proxy mode '{proxy_mode}': its own rules are not (all) iptables")
    metadata = {**collection.facts, "origin": origin, "family": family, "backend": chosen, "backends": stats,
                "node": facts.to_dict(),
                "commands": [{"command": " ".join(a.command), "status": a.status, "error": a.error,
                              "seconds": round(a.seconds, 4), "cpu_seconds": round(a.cpu_seconds, 4)}
                             for a in collection.artifacts if a.command]}  # fmt: skip
    return NodeSnapshot(ruleset, facts.context, facts, family, chosen, origin, MappingProxyType(metadata),
                        tuple(warnings), collection)  # fmt: skip


def _failure(a: Artifact) -> str:
    if a.error:
        return a.error
    how = f"killed by signal {-a.status} (it crashed)" if a.status is not None and a.status < 0 else \
        f"exit status {a.status}"
    detail = a.stderr.strip().splitlines()
    return how + (f": {detail[-1][:300]}" if detail else "")


def _real_failure(error: object) -> bool:
    """A failure worth a warning: not a tool that is absent or was deliberately not run."""
    text = str(error or "")
    return bool(text) and "not installed" not in text and not text.startswith("not run")


def _node_facts(collection: Collection, family: str, ruleset: Ruleset, warnings: list[str]) -> NodeFacts:
    fam = 6 if family == "ipv6" else 4
    addr = collection.find("ip-addr")
    route = collection.find("ip-route", family)
    try:
        addrs = parse_ip_json(addr.data if addr is not None and addr.ok else None, "ip -j -d addr show")
        routes = parse_ip_json(route.data if route is not None and route.ok else None, "ip -j route show")
    except ValueError as exc:
        warnings.append(f"node addresses/routes unusable: {exc}")
        addrs, routes = [], []
    if addr is None or not addr.ok:
        warnings.append("the node's addresses could not be read: traces will treat its addresses as unknown")
    return node_facts(addrs, routes, fam, ruleset)


# -- the bundle ------------------------------------------------------------------------------------------------
def sniff(data: bytes) -> str:
    """``"bundle"`` (gzip'd tar starting with manifest.json), ``"gzip"`` (some other gzip data) or ``"text"``."""
    if data[:2] != b"\x1f\x8b":
        return "text"
    try:
        head = zlib.decompressobj(wbits=31).decompress(data[:4096], 512)
    except zlib.error:
        return "gzip"
    return "bundle" if head[:len(MANIFEST) + 1] == MANIFEST.encode() + b"\0" else "gzip"


def is_bundle(data: bytes) -> bool:
    return sniff(data) == "bundle"


def encode_bundle(collection: Collection, *, mtime: float = 0.0) -> bytes:
    """The bundle bytes of ``collection`` (deterministic for the same collection and ``mtime``)."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kptui_version": __version__,
                **{k: v for k, v in collection.facts.items() if k not in ("format", "format_version")},
                "artifacts": [a.manifest_entry() for a in collection.artifacts]}  # fmt: skip
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        members = [(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")]
        members += [(a.name, a.data) for a in collection.artifacts]
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(body), int(mtime), 0o644
            tar.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=int(mtime))


def _gunzip(data: bytes) -> bytes:
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, MAX_EXPANDED)
        if d.unconsumed_tail:
            raise BundleError(f"the bundle expands to more than {MAX_EXPANDED >> 30} GiB: refusing it")
        out += d.flush()
    except zlib.error as exc:
        raise BundleError(f"the bundle is corrupted (gzip: {exc})") from None
    if not d.eof:
        raise BundleError("the bundle is truncated (the gzip stream ends early): copy it again")
    return out


def decode_bundle(data: bytes) -> Collection:
    """Read bundle bytes back into a :class:`Collection`. Raises :class:`BundleError` with a clear message."""
    if sniff(data) != "bundle":
        raise BundleError("not a kptui bundle (no gzip'd tar starting with manifest.json)")
    raw = _gunzip(data)
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                fh = tar.extractfile(info)
                body = fh.read() if fh is not None else b""
                if len(body) != info.size:
                    raise BundleError(f"the bundle is truncated (member {info.name!r} is cut short)")
                members[info.name] = body
    except (tarfile.TarError, EOFError) as exc:
        if "unexpected end" in str(exc) or isinstance(exc, EOFError):
            raise BundleError("the bundle is truncated (its tar archive ends early): copy it again") from None
        raise BundleError(f"the bundle is corrupted (tar: {exc})") from None
    if MANIFEST not in members:
        raise BundleError("the bundle has no manifest.json")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as exc:
        raise BundleError(f"the bundle's manifest.json is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("manifest.json does not describe a kptui bundle")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"the bundle's format_version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise BundleError(f"the bundle uses format version {version}, written by kptui "
                          f"{manifest.get('kptui_version', '?')}; this kptui ({__version__}) reads versions up to "
                          f"{FORMAT_VERSION}: upgrade kptui to open it")  # fmt: skip
    artifacts = []
    entries = manifest.get("artifacts")
    if not isinstance(entries, list):
        raise BundleError("manifest.json has no artifact list")
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not isinstance(e.get("kind"), str):
            raise BundleError("manifest.json has a malformed artifact entry")
        content = members.get(e["name"])
        if content is None:
            raise BundleError(f"the bundle lacks {e['name']!r}, which its manifest lists (truncated?)")
        if e.get("sha256") and hashlib.sha256(content).hexdigest() != e["sha256"]:
            raise BundleError(f"{e['name']!r} in the bundle does not match its checksum: the bundle is corrupted")
        artifacts.append(Artifact(e["name"], e["kind"], content, e.get("family"), e.get("backend"),
                                  tuple(e.get("command") or ()), e.get("status"), e.get("error"),
                                  str(e.get("stderr") or ""), float(e.get("seconds") or 0.0),
                                  float(e.get("cpu_seconds") or 0.0)))  # fmt: skip
    facts = {k: v for k, v in manifest.items() if k != "artifacts"}
    return Collection(tuple(artifacts), MappingProxyType(facts))


def load_bundle(data: bytes, *, family: str | None = None, backend: str | None = None,
                source: str = "bundle") -> NodeSnapshot:  # fmt: skip
    """Bundle bytes → the node snapshot it holds (the ruleset in use, its node context, metadata).

    Raises :class:`BundleError` (unreadable bundle) or :class:`NodeDataError` (no usable rules in it), and
    ``ParseError`` when a dump inside does not parse."""
    return build_snapshot(decode_bundle(data), family=family, backend=backend, origin="bundle", source=source)
