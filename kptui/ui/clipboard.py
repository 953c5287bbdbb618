"""Clipboard policy: OSC 52 through the terminal (works over SSH and in tmux with ``set-clipboard on``) and/or
the local machine's clipboard through pyperclip, chosen by ``KPTUI_CLIPBOARD``:

- ``osc52``: OSC 52 only (``App.copy_to_clipboard``);
- ``native``: pyperclip only;
- ``auto`` (default): OSC 52 only when ``SSH_TTY``, ``SSH_CONNECTION`` or ``TMUX`` is set (pyperclip would reach
  the wrong machine) or pyperclip has no backend; otherwise both. Any other value acts as ``auto`` and every
  copy's sentence says so.

The decision is taken from the environment first: pyperclip is probed (it reads ``/proc``, searches ``PATH``,
may import Qt bindings) only when ``auto`` has no remote variable to go by, or when it is about to be used.

OSC 52 payloads are capped (:data:`OSC52_MAX`: many terminals drop longer sequences); the native clipboard
takes up to :data:`NATIVE_MAX`. Every copy returns a sentence saying what happened, for a notification.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from kptui.fmt import plural, printable

__all__ = ["MODES", "NATIVE_MAX", "OSC52_MAX", "Clipboard", "Plan", "choose"]

MODES = ("auto", "osc52", "native")
OSC52_MAX = 100_000  # bytes of UTF-8 text (≈ 133 KB once base64-encoded)
NATIVE_MAX = 10_000_000
REMOTE_VARS = ("SSH_TTY", "SSH_CONNECTION", "TMUX")
SHOWN_MAX = 40  # characters of a not-understood KPTUI_CLIPBOARD value quoted back


class Terminal(Protocol):
    def copy_to_clipboard(self, text: str) -> None: ...


@dataclass(frozen=True)
class Plan:
    osc52: bool
    native: bool
    why: str
    note: str = ""  # said with every copy: a KPTUI_CLIPBOARD value that was not understood


def _channels(osc52: bool, native: bool) -> str:
    return " and ".join(n for n, on in (("OSC 52", osc52), ("the system clipboard", native)) if on)


def choose(env: Mapping[str, str], native_available: bool | Callable[[], bool]) -> Plan:
    """The channels for ``env``. ``native_available`` may be a probe: it is called only when ``auto`` has no
    remote variable to decide by."""
    raw = env.get("KPTUI_CLIPBOARD", "auto").strip()
    mode = raw.lower() or "auto"
    if mode == "osc52":
        return Plan(True, False, "KPTUI_CLIPBOARD=osc52")
    if mode == "native":
        return Plan(False, True, "KPTUI_CLIPBOARD=native")
    unknown = mode != "auto"
    prefix = f"KPTUI_CLIPBOARD={mode!r} is not one of {', '.join(MODES)}; using auto. " if unknown else ""
    remote = next((v for v in REMOTE_VARS if env.get(v)), None)
    if remote is not None:
        osc52, native, reason = True, False, f"{remote} is set"
    elif not (native_available() if callable(native_available) else native_available):
        osc52, native, reason = True, False, "no local clipboard tool"
    else:
        osc52, native, reason = True, True, "local session"
    note = ""
    if unknown:
        shown = printable(raw if len(raw) <= SHOWN_MAX else raw[:SHOWN_MAX] + "…")
        note = (f"KPTUI_CLIPBOARD={shown} not understood ({'|'.join(MODES)}): "
                f"used auto, {_channels(osc52, native)} ({reason})")  # fmt: skip
    return Plan(osc52, native, prefix + reason, note)


def _size(n: int) -> str:
    return plural(n, "byte") if n < 10_000 else f"{n / 1000:.0f} KB" if n < 10_000_000 else f"{n / 1e6:.1f} MB"


class Clipboard:
    """``copy(text, what)`` through the channels :func:`choose` picks for ``env`` (``os.environ`` by default);
    ``native`` replaces pyperclip (tests)."""

    def __init__(self, terminal: Terminal, env: Mapping[str, str] | None = None,
                 native: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.terminal = terminal
        self.env = os.environ if env is None else env
        self._native = native
        self._probed = native is not None

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
        return choose(self.env, lambda: self.native_copy() is not None)

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
        note = f". {plan.note}" if plan.note else ""
        if channels:
            return True, f"Copied {what} ({_size(size)}) via {' and '.join(channels)}{note}"
        hint = "; save it with ctrl+s instead" if size > OSC52_MAX else ""
        return False, f"Not copied: {what}: {'; '.join(problems) or 'no clipboard channel'}{hint}{note}"
