"""The fleet screen end to end in a real terminal (issue 17, item 4): tmux runs ``kptui DIR`` on the directory
``kptui fleet capture`` wrote through the stand-in kubectl (the five namespace nodes of tests/fleet/cluster.py).
The table shows c's other endpoints and the service port it lacks, d not compared (nftables mode), the NodePort
that drops on e; ``p`` traces shop/frontend's NodePort on every node (e: dropped by the foreign rule in front);
enter on e's outcome opens e's explorer on that packet, escape comes back, q ends with 0. The tmux server (its
own socket) is the test's own and goes afterwards."""

from __future__ import annotations

import sys

import pytest

from ..tmux import Tmux
from .conftest import ROOT, Captures

pytestmark = pytest.mark.kernel


def test_the_fleet_screen_in_tmux(tmux: Tmux, captures: Captures) -> None:
    env = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), "KPTUI_CLIPBOARD": "osc52"}
    tmux.start([sys.executable, "-m", "kptui", str(captures.kubectl)], cwd=ROOT, width=150, height=44, env=env)
    keys = tmux.keys
    screen = tmux.wait_for("5 nodes · 4 compared · 6 service ports, 2 differ", "service port ")
    lines = screen.splitlines()
    row = {ln.split()[0]: ln.split()[1:] for ln in lines if ln.startswith((" default/", " shop/"))}
    # the columns: a b c d e; d (nftables mode) is not compared
    assert row["default/web:http"] == ["=", "=", "≠", "endpoints", "·", "="], screen
    assert row["shop/new:http"] == ["=", "=", "missing", "·", "="], screen
    assert row["shop/frontend:http"] == ["=", "=", "=", "·", "=", "·", "drops"], screen
    assert any(ln.split()[:2] == ["d", "nftables"] for ln in lines), screen  # the node list
    # shop/frontend's NodePort from outside, on every node
    keys("Down", "Down", "Down", "Down")
    tmux.wait_for("e          as the majority", "NodePort here: drop")
    keys("p")  # the outcomes take the focus once the trace is on screen
    screen = tmux.wait_for("majority: to 10.244.1.21:8080, 10.244.2.22:8080 · masqueraded", "DROP at filter/FORWARD:1")
    outcome = {ln.split()[0]: ln for ln in screen.splitlines() if ln[:3] in (" a ", " b ", " c ", " d ", " e ")}
    assert "= majority" in outcome["a"] and "DROP at filter/FORWARD:1" in outcome["e"], screen
    # e's outcome: its explorer, the packet traced there
    keys("Down", "Down", "Down", "Down", "Enter")
    screen = tmux.wait_for("node e of fleet", "203.0.113.10:40000 → 10.0.0.15:30080/tcp", "DROP at filter/FORWARD:1")
    keys("Escape")  # the hop list has no use for it: back to the fleet
    # the fleet screen again: the escape was handled, a q now is not read with it as alt+q
    tmux.wait_for("5 nodes · 4 compared", "4 one packet on every node")
    keys("q")
    screen = tmux.wait_for("KPTUI-EXIT=0")
    assert "Traceback" not in screen, screen
