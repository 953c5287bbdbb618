"""Diagnostics: parse errors and warnings that point at a file, a line and a column.

A diagnostic renders like a compiler message::

    dump.rules:1834: unknown option '--frobnicate'
      -A KUBE-SERVICES --frobnicate 1 -j ACCEPT
                       ^~~~~~~~~~~~

The quoted source line is made safe for a terminal: control characters (ESC and friends) are shown as
``\\xNN`` escapes, so text from an untrusted dump never reaches the terminal raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Diagnostic", "ParseError", "printable"]

# C0 controls except TAB, DEL and C1 controls: anything a terminal might interpret.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_QUOTE_LIMIT = 200  # characters of the offending line shown around the caret


def printable(text: str) -> str:
    """Return ``text`` with terminal control characters replaced by visible ``\\xNN`` escapes."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about the input: an error (fatal) or a warning (the dump still loads)."""

    message: str
    line: int | None = None  # 1-based line number in the source, when it concerns a line
    column: int = 0  # 0-based column of the offending span in ``text``
    length: int = 1  # width of the offending span
    text: str = ""  # the source line (without its newline)
    source: str | None = None  # file name, "<stdin>", or None
    severity: str = "error"  # "error" or "warning"

    @property
    def location(self) -> str:
        where = self.source or "<input>"
        return f"{where}:{self.line}" if self.line is not None else where

    def format(self, *, quote: bool = True) -> str:
        """Render as ``FILE:LINE: [warning: ]message`` plus, when known, the line and a caret."""
        prefix = "warning: " if self.severity == "warning" else ""
        head = f"{self.location}: {prefix}{printable(self.message)}"
        if not quote or not self.text:
            return head
        text, col = self.text, self.column
        if len(text) > _QUOTE_LIMIT:  # show a window around the caret, not a megabyte of comment
            start = max(0, min(col - _QUOTE_LIMIT // 4, len(text) - _QUOTE_LIMIT))
            text = ("…" if start else "") + text[start : start + _QUOTE_LIMIT] + "…"
            col = col - start + (1 if start else 0)
        shown = printable(text.expandtabs(1))
        # The caret must sit under the escaped text, so measure the escaped prefix.
        caret_col = len(printable(text[:col].expandtabs(1)))
        width = max(1, min(self.length, len(shown) - caret_col, _QUOTE_LIMIT))
        return f"{head}\n  {shown}\n  {' ' * caret_col}^{'~' * (width - 1)}"

    def __str__(self) -> str:
        return self.format()


class ParseError(ValueError):
    """A dump that cannot be loaded; ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic

    def with_source(self, source: str | None) -> ParseError:
        d = self.diagnostic
        return ParseError(
            Diagnostic(d.message, d.line, d.column, d.length, d.text, source, d.severity)
        )
