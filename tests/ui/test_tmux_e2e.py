"""One end-to-end run in a real terminal: tmux runs ``python -m kptui`` on a sample with a packet, keys step
through the trace, and the captured screen shows the hop and the mark. A private tmux server (its own
socket) is used and killed afterwards."""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from .conftest import ROOT

TMUX = shutil.which("tmux")
_SERVERS = itertools.count()
CMD = [sys.executable, "-m", "kptui", "samples/nodeport-cluster.rules", "--src", "10.0.0.1", "--dst", "10.0.0.2",
       "--dport", "30080", "--from", "external", "--node-ip", "10.0.0.2"]  # fmt: skip


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    if TMUX is None:
        pytest.skip("tmux is not installed: the real-terminal test did NOT run (apt-get install tmux)")
    base = [TMUX, "-L", f"kptui-test-{os.getpid()}-{next(_SERVERS)}", "-f", os.devnull]  # one server per test
    try:
        yield base
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, check=False)


def _screen(base: list[str]) -> str:
    return subprocess.run([*base, "capture-pane", "-p", "-t", "kptui"], capture_output=True, text=True,
                          check=False).stdout  # fmt: skip


def _wait_for(base: list[str], *texts: str, timeout: float = 20.0) -> str:
    """Wait until every text is on one captured screen: the hop list, the state panel and the step label are
    separate widgets that may repaint in consecutive frames, so a single capture can show one updated and
    another not yet."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(base)
        if all(text in screen for text in texts):
            return screen
        time.sleep(0.1)
    missing = [text for text in texts if text not in screen]
    raise AssertionError(f"{missing!r} never appeared; the screen was:\n{screen}")


def test_kptui_in_tmux_traces_and_steps(tmux: list[str]) -> None:
    env = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), "KPTUI_CLIPBOARD": "osc52"}
    # env -u: a COLUMNS/LINES inherited from the test runner would override the real terminal size
    shell = "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(CMD)
    subprocess.run([*tmux, "new-session", "-d", "-s", "kptui", "-x", "140", "-y", "36", "-c", str(ROOT),
                    f"{shell}; echo KPTUI-EXIT=$?; sleep 30"], check=True)  # fmt: skip
    # the first hop and the path summary
    _wait_for(tmux, "1/17 PRE mangle PREROUTING policy", "1. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.1.21:8080")
    for _ in range(5):
        subprocess.run([*tmux, "send-keys", "-t", "kptui", "n"], check=True)
    # the step label, the mark change in the state panel and the hop in the list
    _wait_for(tmux, "6/17 PRE nat KUBE-MARK-MASQ:1", "mark    0x0 → 0x4000 (masq)", "KUBE-MARK-MASQ:1  → CONTINUE")
    for _ in range(3):
        subprocess.run([*tmux, "send-keys", "-t", "kptui", "n"], check=True)
    _wait_for(tmux, "9/17 PRE nat KUBE-SEP-2ATXUOYIKDUXCR7P:2", "dst     10.0.0.2:30080 → 10.244.1.21:8080")
    subprocess.run([*tmux, "send-keys", "-t", "kptui", "q"], check=True)
    _wait_for(tmux, "KPTUI-EXIT=0")


def test_packet_builder_keys_in_tmux(tmux: list[str]) -> None:
    """Issue 10, items 9 and 11, in a real terminal: the source is on the first line; keys sent in one burst
    right behind a pane key reach the pane it opened (a key goes to the widget focused when it arrives); in a
    field a digit is typed (it never replaced the value, nor pretended to switch panes); escape, then a digit,
    switches panes again. (An escape and a key right behind it reach the app as one alt+key: the test waits.)"""
    env = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), "KPTUI_CLIPBOARD": "osc52"}
    cmd = [sys.executable, "-m", "kptui", "samples/nodeport-cluster.rules"]
    shell = "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(cmd)
    subprocess.run([*tmux, "new-session", "-d", "-s", "kptui", "-x", "120", "-y", "36", "-c", str(ROOT),
                    f"{shell}; echo KPTUI-EXIT=$?; sleep 30"], check=True)  # fmt: skip
    screen = _wait_for(tmux, "dump samples/nodeport-cluster.rules · nf_tables · IPv4", "no node address")
    assert screen.splitlines()[0].startswith("dump samples/nodeport-cluster.rules")

    def keys(*names: str, literal: str | None = None) -> None:
        subprocess.run([*tmux, "send-keys", "-t", "kptui", *names], check=True)
        if literal is not None:
            subprocess.run([*tmux, "send-keys", "-t", "kptui", "-l", literal], check=True)

    def leave_field() -> None:
        """Escape, and wait until the footer no longer offers it (the focus left the field). A key sent right
        behind an escape would reach the app with it, as one alt+key: the first look comes after a pause."""
        keys("Escape")
        deadline = time.monotonic() + 20
        time.sleep(0.3)
        while "Leave field" in _screen(tmux).rstrip().splitlines()[-1]:
            assert time.monotonic() < deadline, _screen(tmux)
            time.sleep(0.1)

    keys("3", literal="10.244.1.5")  # the packet pane, and at once the source address
    keys("Tab", "Tab", literal="10.96.20.10")
    keys("Tab", literal="80")
    keys("3")  # in the port field: typed, no pane switch
    _wait_for(tmux, "source   10.244.1.5 ", "dest     10.96.20.10 ", "dport    803\n")
    keys("BSpace")
    leave_field()
    keys("t")  # traces
    _wait_for(tmux, "10.244.1.5:40000 → 10.96.20.10:80/tcp", "1. ACCEPT")
    keys("1", "/", literal="10.96.20.0/24")  # the tree, its filter, and the query typed in one burst
    _wait_for(tmux, "/10.96.20.0/24: ")
    keys("Escape")  # the filter box: cleared, the tree has the focus
    _wait_for(tmux, "45 rules in 37 chains")
    keys("3", literal="9")  # back in the packet pane's first field
    _wait_for(tmux, "source   10.244.1.59 ")
    leave_field()
    keys("q")
    _wait_for(tmux, "KPTUI-EXIT=0")


def test_kptui_in_tmux_steps_an_nft_trace(tmux: list[str]) -> None:
    """Issue 13: the explorer on kube-proxy's nftables mode in a real terminal. `kptui LISTING` with a NodePort
    packet: the hops are nft rules (table kube-proxy), the mark set by mark-for-masquerade, the numgen vmap's fork
    (two paths of 1/2), the DNAT in the endpoint chain and the masquerade, the detail pane decoding each rule."""
    env = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), "KPTUI_CLIPBOARD": "osc52"}
    cmd = [sys.executable, "-m", "kptui", "samples/nft-nodeport-cluster.nft", "--src", "203.0.113.10", "--dst",
           "10.0.0.2", "--dport", "30080", "--from", "external", "--node-ip", "10.0.0.2", "--iface",
           "eth0=10.0.0.2/24", "--uplink", "eth0"]  # fmt: skip
    shell = "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(cmd)
    subprocess.run([*tmux, "new-session", "-d", "-s", "kptui", "-x", "160", "-y", "44", "-c", str(ROOT),
                    f"{shell}; echo KPTUI-EXIT=$?; sleep 30"], check=True)  # fmt: skip

    def step(n: int) -> None:
        for _ in range(n):
            subprocess.run([*tmux, "send-keys", "-t", "kptui", "n"], check=True)

    _wait_for(tmux, "1/15 PRE kube-proxy", "filter-prerouting-pre-dnat:1  → JUMP firewall-check", "1. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.1.21:8080",
              "2. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.2.22:8080", "ip kube-proxy  nft · ")  # fmt: skip
    step(5)
    _wait_for(tmux, "6/15 PRE kube-proxy", "mark-for-masquerade:1", "mark    0x0 → 0x4000 (masq)",
              "meta mark set meta mark | 0x00004000")  # fmt: skip
    step(2)
    _wait_for(tmux, "8/15 PRE kube-proxy", "note    numgen random mod 2 = 0",
              "10.244.1.21:8080 (1 in 2)")  # fmt: skip
    step(1)
    _wait_for(tmux, "9/15 PRE kube-proxy", "dst     10.0.0.2:30080 → 10.244.1.21:8080", "meta l4proto tcp dnat to 10.244.1.21:8080")  # fmt: skip
    step(6)
    _wait_for(tmux, "15/15 POST kube-proxy", "masquerading:3", "src     203.0.113.10:40000 → 10.0.0.2",
              "masquerade fully-random")  # fmt: skip
    subprocess.run([*tmux, "send-keys", "-t", "kptui", "q"], check=True)
    _wait_for(tmux, "KPTUI-EXIT=0")
