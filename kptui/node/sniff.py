"""What a source's bytes are, told by content, never by file name.

- ``"gzip"``: gzip data (a capture bundle, or a gzip'd dump, listing or table: inflate, then look again);
- ``"bundle"``: (inflated) a POSIX tar whose first member is ``manifest.json``: a kptui capture bundle;
- ``"nft-json"``: libnftables JSON, ``nft -j list ruleset`` (starts with ``{"nftables"``);
- ``"nft-text"``: ``nft list ruleset`` text (its first line that is not blank or a ``#`` comment starts with
  ``table ``);
- ``"conntrack"``: ``conntrack -L`` output (its first line reads like a flow entry: protocol, number,
  timeout, … ``src=``);
- ``"rules"``: anything else, read as an ``iptables-save`` / ``iptables -S`` dump (whose parser says what is
  wrong with it, file and line, when it is none).
"""

from __future__ import annotations

import re

__all__ = ["BUNDLE_MAGIC", "GZIP_MAGIC", "identify", "is_bundle_tar"]

GZIP_MAGIC = b"\x1f\x8b"
BUNDLE_MAGIC = b"manifest.json\0"  # the first tar header's name field
_NFT_JSON = re.compile(rb'\A\s*\{\s*"nftables"\s*:')
_CONNTRACK = re.compile(rb"\A(?:ipv[46]\s+\d+\s+)?[a-z][a-z0-9-]*\s+\d+\s+\d+\s(?:[^\n]*\s)?src=\S")
_HEAD = 64 * 1024  # only the start is looked at


def is_bundle_tar(raw: bytes) -> bool:
    """Inflated bytes that are a kptui bundle's tar (manifest.json is its first member)."""
    return raw[: len(BUNDLE_MAGIC)] == BUNDLE_MAGIC


def _first_line(head: bytes) -> bytes:
    """The first line that is neither blank nor a ``#`` comment (a UTF-8 byte order mark dropped)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    for line in head.splitlines():
        text = line.strip()
        if text and not text.startswith(b"#"):
            return text
    return b""


def identify(data: bytes) -> str:
    """The kind of ``data`` (see the module doc): gzip, bundle, nft-json, nft-text, conntrack or rules."""
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    if is_bundle_tar(data):
        return "bundle"
    head = data[:_HEAD]
    if _NFT_JSON.match(head):
        return "nft-json"
    first = _first_line(head)
    if first.startswith(b"table "):
        return "nft-text"
    if _CONNTRACK.match(first):
        return "conntrack"
    return "rules"
