"""Sources → snapshots: a file or standard input (recognised by content: a dump, an nft listing, a conntrack
table, a capture bundle, gzip of any of these) and the live node or a network namespace.

:func:`read_source` reads a file (``-``: standard input) under the ceiling of :mod:`kptui.node.limits`
and gives its :class:`~kptui.node.parts.Collection`; :func:`open_source` goes on to the
:class:`~kptui.node.snapshot.NodeSnapshot`; :func:`open_live` reads the live node. Every error is a
:class:`~kptui.node.errors.NodeDataError` whose message names the source; running out of memory is the
caller's to report.
"""

from __future__ import annotations

import sys
import time

from .bundle import decode_tar
from .collect import load_live
from .errors import BundleError, InputTooLarge, NodeDataError, SourceError
from .limits import Limits, inflate, read_bounded
from .parts import Artifact, Collection
from .snapshot import NodeSnapshot, build_snapshot
from .sniff import identify, is_bundle_tar

__all__ = ["STDIN", "collection_of", "open_live", "open_source", "read_bytes", "read_source"]

STDIN = "<stdin>"
_KIND = {"nft-json": ("nft-ruleset", "json"), "nft-text": ("nft-ruleset", "text"), "conntrack": ("conntrack", None),
         "rules": ("rules", None)}  # fmt: skip


def read_bytes(path: str, limits: Limits) -> tuple[bytes, str]:
    """The bytes of FILE (``-``: standard input), at most the ceiling, and the name messages use."""
    if path == "-":
        stdin = sys.stdin
        if stdin is None or stdin.isatty():
            raise SourceError("'-' reads a dump from standard input, but standard input is a terminal "
                              "(try: iptables-save | kptui summary -)")  # fmt: skip
        try:
            return read_bounded(stdin.buffer, limits), STDIN
        except InputTooLarge as exc:
            raise InputTooLarge(f"{STDIN}: {exc}") from None
    try:
        with open(path, "rb") as fh:
            return read_bounded(fh, limits), path
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, not a dump") from None
    except InputTooLarge as exc:
        raise InputTooLarge(f"{path}: {exc}") from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def collection_of(data: bytes, name: str, *, origin: str = "file", limits: Limits | None = None,
                  seconds: float = 0.0, started: float | None = None) -> Collection:  # fmt: skip
    """The Collection ``data`` holds: a bundle's, or one artifact of the kind its content tells."""
    limits = limits or Limits()
    kind = identify(data)
    if kind == "gzip":
        from .bundle import sniff

        what = "bundle" if sniff(data) == "bundle" else "gzip data"
        try:
            data = inflate(data, limits, what=what)
        except SourceError as exc:  # InputTooLarge included
            raise type(exc)(f"{name}: {exc}") from None
        kind = identify(data)
        if kind == "gzip":
            raise SourceError(f"{name}: gzip data inside gzip data: gunzip it first")
    if kind == "bundle" or is_bundle_tar(data):
        try:
            return decode_tar(data, limits=limits, source=name)
        except NodeDataError as exc:  # BundleError, InputTooLarge
            raise type(exc)(f"{name}: {exc}") from None
    art_kind, fmt = _KIND[kind]
    art = Artifact(name, art_kind, data, seconds=seconds,
                   started=started, format=fmt)  # fmt: skip
    return Collection((art,), {}, origin=origin, source=name)


def read_source(path: str, *, limits: Limits | None = None) -> Collection:
    """FILE (``-``: standard input) as a Collection, told apart by content."""
    limits = limits or Limits()
    started, t0 = time.time(), time.perf_counter()
    data, name = read_bytes(path, limits)
    return collection_of(data, name, origin="stdin" if path == "-" else "file", limits=limits,
                         seconds=time.perf_counter() - t0, started=started)  # fmt: skip


def open_source(path: str, *, family: str | None = None, backend: str | None = None, limits: Limits | None = None,
                need_rules: bool | str = True) -> NodeSnapshot:  # fmt: skip
    """FILE (``-``: standard input) as a snapshot: a bundle's for ``family``/``backend``, else the file's own.

    NodeDataError (the message names the file) when it cannot be read or holds no usable rules."""
    col = read_source(path, limits=limits)
    try:
        return build_snapshot(col, family=family, backend=backend, need_rules=need_rules)
    except BundleError:
        raise
    except NodeDataError as exc:
        raise type(exc)(f"{col.source}: {exc}") from None


def open_live(*, netns: str | None = None, family: str = "ipv4", backend: str | None = None) -> NodeSnapshot:
    """This node (or network namespace ``netns``), read only (LiveError says what to do when it cannot be)."""
    return load_live(netns=netns, family=family, backend=backend)
