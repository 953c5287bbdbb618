"""The real-terminal tests' tmux (tests/ui/test_tmux_e2e.py, tests/fleet/test_fleet_screen_tmux.py,
tests/kernel_live/test_watch_tmux.py): a private server (its own socket) per test, killed afterwards, one
session ``kptui`` running the command; keys sent to it and waits on what its screen shows.

Every wait is on the screen: ``capture-pane`` is polled until the texts (or a condition) are there, with a
deadline made for a busy machine (the CI machine has 2 cores and runs other jobs: :data:`WAIT`), and a wait that
runs out fails with the last screen captured. A test never sleeps a fixed time to let the app catch up: before it
sends a key that depends on an earlier one, it waits for what the earlier key changes on the screen. After an
escape this matters most: an escape and the key behind it read together are one alt+key (Textual waits
``ESCDELAY``, 100 ms, for what follows an escape, and a busy app reads late), so the test waits for the screen
to change from a state only the escape ends (the footer redraws its keys a moment after the focus moved: wait
for it to show the old state first). A key whose effect comes from a thread (a trace on every node) waits
for that result on screen: a key goes to the widget focused when it arrives."""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
WAIT = 60.0  # seconds a screen may take to show what a test waits for (a first paint on a loaded machine)
POLL = 0.1
_SERVERS = itertools.count()


@dataclass(frozen=True)
class Tmux:
    """A private tmux server; its session ``kptui`` once :meth:`start` ran."""

    base: tuple[str, ...]  # tmux -L SOCKET -f /dev/null: every command goes to this server only

    def start(self, cmd: list[str], *, cwd: Path, width: int, height: int, env: Mapping[str, str]) -> None:
        """Run ``cmd`` in a ``width``×``height`` terminal; when it ends the pane shows ``KPTUI-EXIT=CODE`` (and
        stays, with what the command printed, until the server is killed)."""
        # env -u: a COLUMNS/LINES inherited from the test runner would override the real terminal size
        shell = ("env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " "
                 + shlex.join(cmd))  # fmt: skip
        subprocess.run([*self.base, "new-session", "-d", "-s", "kptui", "-x", str(width), "-y", str(height),
                        "-c", str(cwd), f"{shell}; echo KPTUI-EXIT=$?; sleep 3600"], check=True)  # fmt: skip

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "kptui"], capture_output=True, text=True,
                              check=False).stdout  # fmt: skip

    def keys(self, *names: str, literal: str | None = None) -> None:
        """Send tmux key names (``Escape``, ``Tab``, ``n``), then ``literal`` as typed text: one burst."""
        if names:
            subprocess.run([*self.base, "send-keys", "-t", "kptui", *names], check=True)
        if literal is not None:
            subprocess.run([*self.base, "send-keys", "-t", "kptui", "-l", literal], check=True)

    def wait_until(self, ok: Callable[[str], bool], what: str | Callable[[str], str], timeout: float = WAIT) -> str:
        """The first captured screen ``ok`` accepts; when none did within ``timeout`` seconds, AssertionError
        saying ``what`` (or what ``what`` says of the last screen) with that screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if ok(screen):
                return screen
            if time.monotonic() >= deadline:
                said = what(screen) if callable(what) else what
                raise AssertionError(f"{said} within {timeout:.0f} s; the screen was:\n{screen}")
            time.sleep(POLL)

    def wait_for(self, *texts: str, timeout: float = WAIT) -> str:
        """Wait until every text is on one captured screen: the hop list, the state panel and the step label
        are separate widgets that may repaint in consecutive frames, so a single capture can show one updated
        and another not yet."""
        return self.wait_until(lambda screen: all(text in screen for text in texts),
                               lambda screen: f"{[t for t in texts if t not in screen]!r} never appeared",
                               timeout)  # fmt: skip


def footer(screen: str) -> str:
    """The screen's last line that is not blank: Textual's footer."""
    lines = screen.rstrip().splitlines()
    return lines[-1] if lines else ""


@contextmanager
def tmux_server(name: str) -> Iterator[Tmux]:
    """A private tmux server (socket ``name-PID-N``), killed afterwards; the test is skipped, loudly, without
    tmux."""
    if TMUX is None:
        pytest.skip("tmux is not installed: the real-terminal test did NOT run (apt-get install tmux)")
    server = Tmux((TMUX, "-L", f"{name}-{os.getpid()}-{next(_SERVERS)}", "-f", os.devnull))
    try:
        yield server
    finally:
        subprocess.run([*server.base, "kill-server"], capture_output=True, check=False)
