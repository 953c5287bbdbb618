"""Capture bundles: a :class:`~kptui.node.parts.Collection` written as bytes and read back, bounded.

:func:`encode_bundle` writes a Collection (what :mod:`kptui.node.collect` read from a node) as bundle bytes;
:func:`decode_bundle` reads bundle bytes back into a Collection, and :func:`load_bundle` goes on to the
:class:`~kptui.node.snapshot.NodeSnapshot`. So a bundle opened on a laptop gives exactly the snapshot the live
node gave. No file or network I/O here: bytes in, bytes or values out.

The format (version 2; version 1 still opens) is a gzip-compressed POSIX tar archive whose first member is
``manifest.json``; every other member is one command's output, byte for byte (docs/bundle-format.md). Reading
never extracts anything and never uses a member name as a path: the archive is inflated in memory under the
ceiling of :mod:`kptui.node.limits`, members are indexed by name (regular files only, at most
:attr:`Limits.max_members`, no two of one name), and only the members the manifest lists are read, each
checked against the manifest's size and SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from kptui import __version__

from .errors import BundleError, InputTooLarge, NodeDataError, SourceError
from .limits import Limits, human_size, inflate
from .parts import Artifact, Collection
from .sniff import BUNDLE_MAGIC, GZIP_MAGIC, is_bundle_tar

if TYPE_CHECKING:
    from .snapshot import NodeSnapshot

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "READABLE_VERSIONS",
    "Artifact",
    "BundleError",
    "Collection",
    "NodeDataError",
    "decode_bundle",
    "decode_tar",
    "encode_bundle",
    "is_bundle",
    "load_bundle",
    "sniff",
]

FORMAT = "kptui-bundle"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
# What a member the manifest names may look like: relative, "/"-separated, no "." or ".." part.
_MEMBER_NAME = re.compile(r"^(?!.*(?:^|/)\.{1,2}(?:/|$))[A-Za-z0-9_][A-Za-z0-9_.+-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$")
_MAX_NAME = 255


def sniff(data: bytes) -> str:
    """``"bundle"`` (gzip'd tar starting with manifest.json), ``"gzip"`` (some other gzip data) or ``"text"``."""
    if data[:2] != GZIP_MAGIC:
        return "text"
    try:
        head = zlib.decompressobj(wbits=31).decompress(data[:4096], 512)
    except zlib.error:
        return "gzip"
    return "bundle" if head[: len(BUNDLE_MAGIC)] == BUNDLE_MAGIC else "gzip"


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


def _members(raw: bytes, limits: Limits) -> dict[str, bytes]:
    """Name → content of every regular member of the tar ``raw``, read in memory (never extracted)."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            count = 0
            while True:
                info = tar.next()
                if info is None:
                    break
                count += 1
                if count > limits.max_members:
                    raise BundleError(f"the bundle has more than {limits.max_members} members (a kptui bundle "
                                      "has about 20): refusing it")  # fmt: skip
                if info.issparse():
                    raise BundleError(f"the bundle's member {info.name[:80]!r} is a sparse file, which no kptui "
                                      "bundle has: refusing it")  # fmt: skip
                if not info.isfile():
                    continue
                if info.name in members:
                    raise BundleError(f"the bundle has two members named {info.name[:80]!r}: refusing it")
                if info.size > limits.max_input:
                    raise InputTooLarge(f"the bundle's member {info.name[:80]!r} says it holds "
                                        f"{human_size(info.size)}, more than kptui's reading ceiling: refusing it")
                fh = tar.extractfile(info)
                body = fh.read(info.size) if fh is not None else b""
                if len(body) != info.size:
                    raise BundleError(f"the bundle is truncated (member {info.name[:80]!r} is cut short)")
                members[info.name] = body
    except (tarfile.TarError, EOFError) as exc:
        if "unexpected end" in str(exc) or isinstance(exc, EOFError):
            raise BundleError("the bundle is truncated (its tar archive ends early): copy it again") from None
        raise BundleError(f"the bundle is corrupted (tar: {exc})") from None
    return members


def _manifest(members: dict[str, bytes]) -> dict[str, Any]:
    if MANIFEST not in members:
        raise BundleError("the bundle has no manifest.json")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as exc:
        raise BundleError(f"the bundle's manifest.json is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("manifest.json does not describe a kptui bundle")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"the bundle's format_version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise BundleError(f"the bundle uses format version {version}, written by kptui "
                          f"{manifest.get('kptui_version', '?')}; this kptui ({__version__}) reads versions up to "
                          f"{FORMAT_VERSION}: upgrade kptui to open it")  # fmt: skip
    return manifest


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _artifact(e: Any, members: dict[str, bytes], limits: Limits) -> Artifact:
    if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not isinstance(e.get("kind"), str):
        raise BundleError("manifest.json has a malformed artifact entry")
    name = e["name"]
    if len(name) > _MAX_NAME or not _MEMBER_NAME.match(name):
        raise BundleError(f"manifest.json names a member {name[:80]!r}, which is no name a kptui bundle uses "
                          "(absolute, '..', or odd characters): refusing the bundle")  # fmt: skip
    content = members.get(name)
    if content is None:
        raise BundleError(f"the bundle lacks {name!r}, which its manifest lists (truncated?)")
    size = e.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size != len(content)):
        raise BundleError(f"manifest.json says {name!r} holds {size!r} bytes, the archive holds {len(content)}: "
                          "the bundle is corrupted")  # fmt: skip
    if e.get("sha256") and hashlib.sha256(content).hexdigest() != e["sha256"]:
        raise BundleError(f"{name!r} in the bundle does not match its checksum: the bundle is corrupted")
    command = e.get("command") or ()
    if not isinstance(command, list | tuple) or not all(isinstance(c, str) for c in command):
        raise BundleError(f"manifest.json has a malformed command for {name!r}")
    status = e.get("status")
    started = e.get("started")
    via = e.get("via") or ()
    if not isinstance(via, list | tuple) or not all(isinstance(c, str) for c in via):
        raise BundleError(f"manifest.json has a malformed 'via' for {name!r}")
    return Artifact(name, e["kind"], content, _str_or_none(e.get("family")), _str_or_none(e.get("backend")),
                    tuple(command), status if isinstance(status, int) and not isinstance(status, bool) else None,
                    _str_or_none(e.get("error")), str(e.get("stderr") or ""), _number(e.get("seconds")),
                    _number(e.get("cpu_seconds")), _number(started) if started is not None else None,
                    _str_or_none(e.get("format")), tuple(via))  # fmt: skip


def decode_tar(raw: bytes, *, limits: Limits | None = None, source: str = "bundle") -> Collection:
    """An inflated bundle (its tar) → the :class:`Collection` it holds. Raises :class:`BundleError`."""
    limits = limits or Limits()
    if not is_bundle_tar(raw):
        raise BundleError("not a kptui bundle (no gzip'd tar starting with manifest.json)")
    members = _members(raw, limits)
    manifest = _manifest(members)
    entries = manifest.get("artifacts")
    if not isinstance(entries, list):
        raise BundleError("manifest.json has no artifact list")
    if len(entries) > limits.max_members:
        raise BundleError(f"manifest.json lists more than {limits.max_members} members: refusing the bundle")
    artifacts = tuple(_artifact(e, members, limits) for e in entries)
    facts = {k: v for k, v in manifest.items() if k != "artifacts"}
    return Collection(artifacts, MappingProxyType(facts), origin="bundle", source=source)


def decode_bundle(data: bytes, *, limits: Limits | None = None, source: str = "bundle") -> Collection:
    """Read bundle bytes back into a :class:`Collection`. Raises :class:`BundleError` with a clear message
    (InputTooLarge past the reading ceiling)."""
    limits = limits or Limits()
    if sniff(data) != "bundle":
        raise BundleError("not a kptui bundle (no gzip'd tar starting with manifest.json)")
    try:
        raw = inflate(data, limits, what="bundle")
    except InputTooLarge:
        raise
    except SourceError as exc:
        raise BundleError(str(exc)) from None
    return decode_tar(raw, limits=limits, source=source)


def load_bundle(data: bytes, *, family: str | None = None, backend: str | None = None, source: str = "bundle",
                limits: Limits | None = None) -> NodeSnapshot:  # fmt: skip
    """Bundle bytes → the node snapshot it holds (the ruleset in use, its node context, the other parts).

    Raises :class:`BundleError` (unreadable bundle) or :class:`NodeDataError` (no usable rules in it), and
    ``ParseError`` when the dump in use does not parse (on first use of ``.ruleset``)."""
    from .snapshot import build_snapshot

    return build_snapshot(decode_bundle(data, limits=limits, source=source), family=family, backend=backend)
