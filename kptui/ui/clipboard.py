"""Clipboard policy: OSC 52 through the terminal (works over SSH and in tmux with ``set-clipboard on``) and/or
the local machine's clipboard through pyperclip, chosen by ``KPTUI_CLIPBOARD``:

- ``osc52``: OSC 52 only (``App.copy_to_clipboard``);
- ``native``: pyperclip only;
- ``auto`` (default): OSC 52 only when ``SSH_TTY``, ``SSH_CONNECTION`` or ``TMUX`` is set (pyperclip would reach
  the wrong machine) or pyperclip has no backend; otherwise both.

OSC 52 payloads are capped (:data:`OSC52_MAX`: many terminals drop longer sequences); the native clipboard
takes up to :data:`NATIVE_MAX`. Every copy returns a sentence saying what happened, for a notification.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from kptui.fmt import plural

__all__ = ["MODES", "NATIVE_MAX", "OSC52_MAX", "Clipboard", "Plan", "choose"]

MODES = ("auto", "osc52", "native")
OSC52_MAX = 100_000  # bytes of UTF-8 text (≈ 133 KB once base64-encoded)
NATIVE_MAX = 10_000_000
REMOTE_VARS = ("SSH_TTY", "SSH_CONNECTION", "TMUX")


class Terminal(Protocol):
    def copy_to_clipboard(self, text: str) -> None: ...


@dataclass(frozen=True)
class Plan:
    osc52: bool
    native: bool
    why: str


def choose(env: Mapping[str, str], native_available: bool) -> Plan:
    mode = env.get("KPTUI_CLIPBOARD", "auto").strip().lower() or "auto"
    if mode == "osc52":
        return Plan(True, False, "KPTUI_CLIPBOARD=osc52")
    if mode == "native":
        return Plan(False, True, "KPTUI_CLIPBOARD=native")
    note = "" if mode == "auto" else f"KPTUI_CLIPBOARD={mode!r} is not one of {', '.join(MODES)}; using auto. "
    remote = [v for v in REMOTE_VARS if env.get(v)]
    if remote:
        return Plan(True, False, f"{note}{remote[0]} is set")
    if not native_available:
        return Plan(True, False, f"{note}no local clipboard tool")
    return Plan(True, True, f"{note}local session")


def _size(n: int) -> str:
    return plural(n, "byte") if n < 10_000 else f"{n / 1000:.0f} KB" if n < 10_000_000 else f"{n / 1e6:.1f} MB"


class Clipboard:
    """``copy(text, what)`` through the chosen channels; ``last`` keeps what was copied (tests, native mode)."""

    def __init__(self, terminal: Terminal, env: Mapping[str, str] | None = None,
                 native: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.terminal = terminal
        self.env = os.environ if env is None else env
        self._native = native
        self._probed = native is not None
        self.last: str | None = None

    def native_copy(self) -> Callable[[str], None] | None:
        if not self._probed:
            self._probed = True
            try:
                import pyperclip  # type: ignore[import-untyped]

                copy, _paste = pyperclip.determine_clipboard()
                self._native = copy if copy else None
            except (ImportError, OSError, RuntimeError):  # pyperclip's errors are RuntimeErrors
                self._native = None
        return self._native

    @property
    def plan(self) -> Plan:
        mode = self.env.get("KPTUI_CLIPBOARD", "auto").strip().lower()
        native_ok = True if mode in ("osc52", "native") else self.native_copy() is not None
        return choose(self.env, native_ok)

    def copy(self, text: str, what: str) -> tuple[bool, str]:
        """(copied, message)."""
        plan = self.plan
        size = len(text.encode("utf-8"))
        channels: list[str] = []
        problems: list[str] = []
        if plan.native:
            copy = self.native_copy()
            if copy is None:
                problems.append("no local clipboard tool (install xclip, xsel or wl-clipboard)")
            elif size > NATIVE_MAX:
                problems.append(f"{_size(size)} is over the {_size(NATIVE_MAX)} limit")
            else:
                try:
                    copy(text)
                    channels.append("the system clipboard")
                except (OSError, RuntimeError) as exc:  # PyperclipException is a RuntimeError
                    problems.append(f"the system clipboard failed: {exc}")
        if plan.osc52:
            if size > OSC52_MAX:
                problems.append(f"{_size(size)} is over the {_size(OSC52_MAX)} OSC 52 limit")
            else:
                self.terminal.copy_to_clipboard(text)
                channels.append("OSC 52 (the terminal)")
        if channels:
            self.last = text
            return True, f"Copied {what} ({_size(size)}) via {' and '.join(channels)}"
        hint = "; save it with ctrl+s instead" if size > OSC52_MAX else ""
        return False, f"Not copied: {what}: {'; '.join(problems) or 'no clipboard channel'}{hint}"
