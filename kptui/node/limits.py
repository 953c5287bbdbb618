"""Bounded reading: how much of a source kptui holds in memory, and gzip inflated as a stream under a ceiling.

Every source goes through here: a file or standard input is read up to the ceiling, gzip data is inflated
chunk by chunk and refused as soon as it passes the ceiling (a 2 MB gzip that inflates to 2 GiB never
reaches 2 GiB), and a bundle's members are bounded in count and size (:mod:`kptui.node.bundle`).

The ceiling is :attr:`Limits.max_input` (default 1 GiB, ``--max-input`` changes it). Compressed data is
further held to :data:`INFLATE_RATIO` times its own size (at least :data:`INFLATE_FLOOR`) unless the user
set ``--max-input`` explicitly: real dumps and bundles inflate about 7×, so a 100× inflation is a bomb.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from .errors import InputTooLarge, SourceError

__all__ = ["DEFAULT_MAX_INPUT", "INFLATE_FLOOR", "INFLATE_RATIO", "MAX_MEMBERS", "Limits", "human_size",
           "inflate", "parse_size", "read_bounded"]  # fmt: skip

DEFAULT_MAX_INPUT = 1 << 30
INFLATE_RATIO = 100
INFLATE_FLOOR = 64 << 20
MAX_MEMBERS = 256  # members of a bundle (format 2 writes about 20)
CHUNK = 1 << 20
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class Limits:
    """How much kptui reads of one source. ``explicit``: the user chose ``max_input`` (no ratio rule then)."""

    max_input: int = DEFAULT_MAX_INPUT
    explicit: bool = False
    max_members: int = MAX_MEMBERS

    def inflate_ceiling(self, compressed: int) -> int:
        """The most bytes ``compressed`` bytes of gzip data may inflate to."""
        if self.explicit:
            return self.max_input
        return min(self.max_input, max(INFLATE_FLOOR, INFLATE_RATIO * compressed))


def parse_size(text: str) -> int:
    """``1G``, ``512M``, ``2GiB``, ``100000``: a size in bytes (1024-based units); ValueError otherwise."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not a size (e.g. 2G, 512M or a number of bytes)")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise ValueError(f"'{text}': the size must be at least 1 byte")
    return value


def human_size(n: int) -> str:
    """``1 GiB``, ``200 MiB``, ``3.5 MiB``, ``812 bytes``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v >= 10 or v == int(v) else f"{v:.1f} {unit}"
    return f"{n} bytes"


def _raise_hint(limits: Limits) -> str:
    return f"--max-input {human_size(max(2 * limits.max_input, 1 << 30)).replace(' ', '').replace('iB', '')}"


def read_bounded(fh: BinaryIO, limits: Limits) -> bytes:
    """All of ``fh`` if it holds at most ``limits.max_input`` bytes; InputTooLarge otherwise. Never asks for
    more memory than the data takes (``read(n)`` would reserve n bytes up front)."""
    try:
        info = os.fstat(fh.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        info = None
    if info is not None and stat.S_ISREG(info.st_mode):
        if info.st_size > limits.max_input:
            _too_large(limits)
        data = fh.read()  # sized from the file: one allocation
        if len(data) > limits.max_input:  # it grew meanwhile
            _too_large(limits)
        return data
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = fh.read(min(CHUNK, limits.max_input + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limits.max_input:
            _too_large(limits)


def _too_large(limits: Limits) -> None:
    raise InputTooLarge(f"more than {human_size(limits.max_input)} (kptui's reading ceiling): refusing it; "
                        f"{_raise_hint(limits)} raises the ceiling")  # fmt: skip


def inflate(data: bytes, limits: Limits, what: str = "gzip data") -> bytes:
    """gzip ``data`` inflated (every gzip member, as ``gunzip`` does), as a stream under the ceiling.

    SourceError for data that is not gzip or is cut short, InputTooLarge past the ceiling; the messages
    call the data ``what`` ("gzip data", "bundle") and leave naming the source to the caller."""
    ceiling = limits.inflate_ceiling(len(data))
    out = bytearray()
    rest = memoryview(data)
    while True:
        d = zlib.decompressobj(wbits=31)
        pending = rest
        try:
            while True:
                chunk = d.decompress(pending, CHUNK)
                out += chunk
                if len(out) > ceiling:
                    _too_big(what, len(data), ceiling, limits)
                pending = memoryview(d.unconsumed_tail)
                if d.eof or (not pending and not chunk):
                    break
        except zlib.error as exc:
            raise SourceError(f"the {what} is corrupted (gzip: {exc})") from None
        if not d.eof:
            raise SourceError(f"the {what} is truncated (the gzip stream ends early): copy it again")
        rest = memoryview(d.unused_data)
        if bytes(rest[:2]) != b"\x1f\x8b":  # no further gzip member (zero padding after the last is fine)
            if bytes(rest).strip(b"\0"):
                raise SourceError(f"the {what} is corrupted (bytes after its gzip stream that are not gzip)")
            return bytes(out)


def _too_big(what: str, compressed: int, ceiling: int, limits: Limits) -> None:
    if not limits.explicit and ceiling < limits.max_input:
        why = (f"more than {human_size(ceiling)}, {INFLATE_RATIO}× its compressed {human_size(compressed)} "
               "(a gzip bomb?)")  # fmt: skip
    else:
        why = f"more than {human_size(ceiling)} (kptui's reading ceiling)"
    raise InputTooLarge(f"the {what} inflates to {why}: refusing it; {_raise_hint(limits)} raises the ceiling")
