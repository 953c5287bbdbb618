"""Watch mode in a real terminal on a real node (issue 10, item 8): tmux runs ``kptui --netns NS --watch 1`` on
the test's own namespace (the clusterip scenario's rules, tests/kernel_live/test_live_kernel.py), connections
raise the counters, and across several reads the chain the user opened stays open with its ``+N`` markers,
the filter stays, keys pressed while reads come all count, and no captured screen shows the detail pane or
the footer blank. The tmux server (its own socket) and the namespaces are the test's own and go afterwards."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

from ..conftest import ROOT
from ..tmux import WAIT, Tmux
from .test_live_kernel import Node, node  # noqa: F401  (the module's lab, as a fixture)

pytestmark = pytest.mark.kernel

WEB_RULE = "KUBE-SVC-CDGGSHYLG3RE2FKL  -d 10.96.10.20/32"  # the web service's rule in nat KUBE-SERVICES


def reads(screen: str) -> int:
    """The watch bar's count of reads (``read #N``), -1 when not on screen."""
    m = re.search(r"read #(\d+)", screen)
    return int(m.group(1)) if m else -1


def wait_reads(tmux: Tmux, after: int) -> str:
    return tmux.wait_until(lambda screen: reads(screen) > after, f"no read after #{after}")


def test_watch_in_tmux_keeps_the_open_chain_the_filter_and_every_key(node: Node, tmux: Tmux) -> None:  # noqa: F811
    env = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), "KPTUI_CLIPBOARD": "osc52", "PATH": os.environ["PATH"]}
    tmux.start([sys.executable, "-m", "kptui", "--netns", node.ns, "--watch", "1"], cwd=ROOT, width=160, height=40,
               env=env)  # fmt: skip
    first = tmux.wait_for("live node", "read #")
    # the cursor starts on nat KUBE-SERVICES: open it (enter) and go down to the web service's rule
    tmux.keys("Enter")
    screen = tmux.wait_for(WEB_RULE)
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
    # keys pressed while reads come: six downs and six ups bring the cursor back to KUBE-SERVICES (the pauses
    # spread the keys over reads, as a user types; nothing waits on them)
    for _ in range(6):
        tmux.keys("Down")
        time.sleep(0.15)
    for _ in range(6):
        tmux.keys("Up")
        time.sleep(0.15)
    wait_reads(tmux, reads(tmux.screen()))
    tmux.wait_for("nat / KUBE-SERVICES  user chain")  # the detail pane follows the cursor: back on the chain
    # a filter, kept across reads; every capture meanwhile shows the detail pane and the footer
    tmux.keys("/")
    tmux.keys(*"web")
    tmux.keys("Enter")
    screen = tmux.wait_for("/web: ")
    seen = reads(screen)
    captures = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and reads(screen) < seen + 3:
        screen = tmux.screen()
        captures.append(screen)
        time.sleep(0.05)
    assert reads(screen) >= seen + 3, screen
    for shot in captures:
        assert "/web: " in shot, f"the filter was cleared:\n{shot}"
        assert "2 detail" in shot and " / KUBE-" in shot, f"the detail pane was blank:\n{shot}"
        assert "^p Commands" in shot, f"the footer was blank:\n{shot}"
    tmux.keys("q")
    tmux.wait_for("KPTUI-EXIT=0")
