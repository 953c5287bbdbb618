"""Watch mode in a real terminal on a real node (issue 10, item 8): tmux runs ``kptui --netns NS --watch 1`` on
the test's own namespace (the clusterip scenario's rules, tests/kernel_live/test_live_kernel.py), connections
raise the counters, and across several reads the chain the user opened stays open with its ``+N`` markers,
the filter stays, keys pressed while reads come all count, and no captured screen shows the detail pane or
the footer blank. The tmux server (its own socket) and the namespaces are the test's own and go afterwards."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ..ui.test_tmux_e2e import ROOT, _screen, _wait_for
from .test_live_kernel import Node, node  # noqa: F401  (the module's lab, as a fixture)

pytestmark = pytest.mark.kernel

TMUX = shutil.which("tmux")
WEB_RULE = "KUBE-SVC-CDGGSHYLG3RE2FKL  -d 10.96.10.20/32"  # the web service's rule in nat KUBE-SERVICES


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    if TMUX is None:
        pytest.skip("tmux is not installed: the real-terminal watch test did NOT run (apt-get install tmux)")
    base = [TMUX, "-L", f"kptui-watch-{os.getpid()}", "-f", os.devnull]
    try:
        yield base
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, check=False)


def keys(base: list[str], *names: str) -> None:
    subprocess.run([*base, "send-keys", "-t", "kptui", *names], check=True)


def reads(screen: str) -> int:
    """The watch bar's count of reads (``read #N``), -1 when not on screen."""
    m = re.search(r"read #(\d+)", screen)
    return int(m.group(1)) if m else -1


def wait_reads(base: list[str], after: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(base)
        if reads(screen) > after:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"no read after #{after}; the screen was:\n{screen}")


def test_watch_in_tmux_keeps_the_open_chain_the_filter_and_every_key(node: Node, tmux: list[str]) -> None:  # noqa: F811
    env = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), "KPTUI_CLIPBOARD": "osc52", "PATH": os.environ["PATH"]}
    cmd = [sys.executable, "-m", "kptui", "--netns", node.ns, "--watch", "1"]
    shell = "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(cmd)
    subprocess.run([*tmux, "new-session", "-d", "-s", "kptui", "-x", "160", "-y", "40", "-c", str(ROOT),
                    f"{shell}; echo KPTUI-EXIT=$?; sleep 30"], check=True)  # fmt: skip
    first = _wait_for(tmux, "live node", "read #", timeout=60)
    # the cursor starts on nat KUBE-SERVICES: open it (enter) and go down to the web service's rule
    keys(tmux, "Enter")
    screen = _wait_for(tmux, WEB_RULE)
    node.connect(5)  # new connections to web: the next reads show +N on its rule, in the open chain
    seen = reads(first)
    marked = ""
    for _ in range(4):
        screen = wait_reads(tmux, seen)
        seen = reads(screen)
        web = next((ln for ln in screen.splitlines() if WEB_RULE in ln), "")
        assert web, f"the open chain closed at read #{seen}:\n{screen}"  # (it used to close on every read)
        if re.search(r"\+5\b", web):
            marked = web
    assert marked, f"the +5 marker never showed on the open chain's rule:\n{screen}"
    # keys pressed while reads come: six downs and six ups bring the cursor back to KUBE-SERVICES
    for _ in range(6):
        keys(tmux, "Down")
        time.sleep(0.15)
    for _ in range(6):
        keys(tmux, "Up")
        time.sleep(0.15)
    wait_reads(tmux, reads(_screen(tmux)))
    _wait_for(tmux, "nat / KUBE-SERVICES  user chain")  # the detail pane follows the cursor: back on the chain
    # a filter, kept across reads; every capture meanwhile shows the detail pane and the footer
    keys(tmux, "/")
    keys(tmux, *"web")
    keys(tmux, "Enter")
    screen = _wait_for(tmux, "/web: ")
    seen = reads(screen)
    captures = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and reads(screen) < seen + 3:
        screen = _screen(tmux)
        captures.append(screen)
        time.sleep(0.05)
    assert reads(screen) >= seen + 3, screen
    for shot in captures:
        assert "/web: " in shot, f"the filter was cleared:\n{shot}"
        assert "2 detail" in shot and " / KUBE-" in shot, f"the detail pane was blank:\n{shot}"
        assert "^p Commands" in shot, f"the footer was blank:\n{shot}"
    keys(tmux, "q")
    _wait_for(tmux, "KPTUI-EXIT=0")
