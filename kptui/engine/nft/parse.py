"""The entry points: :func:`parse_nft` (text or JSON, recognised by content), :func:`parse_nft_bytes`,
:func:`is_nft_listing`."""

from __future__ import annotations

import codecs
import gc
import re
from dataclasses import replace

from ..errors import Diagnostic, ParseError
from .json_reader import parse_json
from .listing import parse_listing
from .model import NftRuleset

__all__ = ["is_nft_listing", "parse_nft", "parse_nft_bytes"]

_TABLE = re.compile(rb"\s*table\s+\S+(\s+\S+)?\s*\{")
_JSON = re.compile(rb'\s*\{\s*"nftables"')


def is_nft_listing(data: bytes) -> bool:
    """Whether ``data`` looks like an nft listing: after comment and blank lines a ``table …`` line, or JSON
    starting ``{"nftables"``."""
    head = data[:65536]
    if _JSON.match(head):
        return True
    for line in head.split(b"\n"):
        s = line.strip()
        if not s or s.startswith(b"#"):
            continue
        return bool(_TABLE.match(s))
    return False


def parse_nft(text: str, *, source: str | None = None, _warnings: list[Diagnostic] | None = None) -> NftRuleset:
    """Parse ``nft list ruleset`` text (any of -a, -n, -nn) or ``nft -j list ruleset`` JSON (it starts with
    ``{``). Raises :class:`ParseError` (file, line, caret) only for input that is no nft listing at all; damage
    loads what is there, with located warnings in :attr:`NftRuleset.warnings`."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    warnings = list(_warnings or ())
    if "\x00" in text:
        pos = text.index("\x00")
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        raise ParseError(Diagnostic("NUL byte: this is not an nft listing (binary or corrupted file?)",
                                    text.count("\n", 0, pos) + 1, pos - start, 1,
                                    text[start : end if end >= 0 else len(text)], source))  # fmt: skip
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the parse allocates many small objects and no cycles (as the iptables parser)
    try:
        if text.lstrip().startswith("{"):
            ruleset = parse_json(text, source, warnings)
        else:
            ruleset = parse_listing(text, source, warnings)
    except ParseError as exc:
        raise exc.with_source(source) from None
    except RecursionError:
        raise ParseError(Diagnostic("nested too deeply to read", None, source=source)) from None
    finally:
        if gc_was_enabled:
            gc.enable()
    located = tuple(replace(w, source=source) for w in ruleset.warnings)
    return replace(ruleset, warnings=located, source=source)


def parse_nft_bytes(data: bytes, *, source: str | None = None) -> NftRuleset:
    """Decode (UTF-8; bytes that are not UTF-8 are read as Latin-1, with a warning) and parse."""
    warnings: list[Diagnostic] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        shown = data[start : end if end >= 0 else len(data)].decode("utf-8", "backslashreplace")
        col = len(data[start : exc.start].decode("utf-8", "backslashreplace"))
        warnings.append(Diagnostic("invalid UTF-8; bytes that are not UTF-8 are read as Latin-1", line, col, 4,
                                   shown, source, "warning"))  # fmt: skip
        codecs.register_error("kptui-nft-latin1", _latin1)
        text = data.decode("utf-8", "kptui-nft-latin1")
    return parse_nft(text, source=source, _warnings=warnings)


def _latin1(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end
