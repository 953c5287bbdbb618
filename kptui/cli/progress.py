"""What a command reading a big dump tells on a terminal's standard error while it parses: the lines parsed
of the total and what it is doing, on one line rewritten in place and cleared before the answer. Nothing is
written when standard error is not a terminal (a pipe or a file gets only the answer and the warnings)."""

from __future__ import annotations

import time
from typing import TextIO

from kptui.fmt import parse_progress, printable

__all__ = ["TerminalProgress"]

MIN_LINES = 50_000  # smaller dumps parse before anyone could read a progress line
EVERY = 0.1  # seconds between two updates


class TerminalProgress:
    """``progress(lines done, lines)`` for the parser; :meth:`clear` removes the line."""

    def __init__(self, err: TextIO, source: str) -> None:
        self.err = err
        self.source = printable(source)
        self.shown = False
        self._last = 0.0
        try:
            self.enabled = err.isatty()
        except (AttributeError, ValueError):
            self.enabled = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < MIN_LINES:
            return
        now = time.monotonic()
        if done < total and now - self._last < EVERY:
            return
        self._last = now
        self.err.write(f"\r\x1b[K{self.source}: {parse_progress(done, total)}")
        self.err.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self.shown = False
