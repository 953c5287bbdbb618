"""One end-to-end run in a real terminal: tmux runs ``python -m kptui`` on a sample with a packet, keys step
through the trace, and the captured screen shows the hop and the mark. A private tmux server (its own
socket) is used and killed afterwards."""

from __future__ import annotations

import sys

from ..tmux import Tmux, footer
from .conftest import ROOT

ENV = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), "KPTUI_CLIPBOARD": "osc52"}
CMD = [sys.executable, "-m", "kptui", "samples/nodeport-cluster.rules", "--src", "10.0.0.1", "--dst", "10.0.0.2",
       "--dport", "30080", "--from", "external", "--node-ip", "10.0.0.2"]  # fmt: skip


def test_kptui_in_tmux_traces_and_steps(tmux: Tmux) -> None:
    tmux.start(CMD, cwd=ROOT, width=140, height=36, env=ENV)
    # the first hop and the path summary (the hop list has the focus once the trace is on screen)
    tmux.wait_for("1/17 PRE mangle PREROUTING policy", "1. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.1.21:8080")
    tmux.keys(*"n" * 5)
    # the step label, the mark change in the state panel and the hop in the list
    tmux.wait_for("6/17 PRE nat KUBE-MARK-MASQ:1", "mark    0x0 → 0x4000 (masq)", "KUBE-MARK-MASQ:1  → CONTINUE")
    tmux.keys(*"n" * 3)
    tmux.wait_for("9/17 PRE nat KUBE-SEP-2ATXUOYIKDUXCR7P:2", "dst     10.0.0.2:30080 → 10.244.1.21:8080")
    tmux.keys("q")
    tmux.wait_for("KPTUI-EXIT=0")


def test_packet_builder_keys_in_tmux(tmux: Tmux) -> None:
    """Issue 10, items 9 and 11, in a real terminal: the source is on the first line; keys sent in one burst
    right behind a pane key reach the pane it opened (a key goes to the widget focused when it arrives); in a
    field a digit is typed (it never replaced the value, nor pretended to switch panes); a backspace with a tab
    right behind it edits the field it was typed in (it was lost: the tab had moved the focus when Textual looked
    the backspace's binding up); escape, then a digit, switches panes again. (An escape and a key right behind
    it reach the app as one alt+key: after an escape the test waits for the screen to show it handled.)"""
    tmux.start([sys.executable, "-m", "kptui", "samples/nodeport-cluster.rules"], cwd=ROOT, width=120, height=36,
               env=ENV)  # fmt: skip
    screen = tmux.wait_for("dump samples/nodeport-cluster.rules · nf_tables · IPv4", "no node address")
    assert screen.splitlines()[0].startswith("dump samples/nodeport-cluster.rules")

    def in_field(screen: str) -> bool:
        return "esc Leave field" in footer(screen)

    def out_of_field(screen: str) -> bool:
        return "Leave field" not in footer(screen) and "t Run trace" in footer(screen)

    def leave_field() -> None:
        """Escape, once the footer says the focus is in a field (it may lag behind the fields: its bindings are
        redrawn after the focus moved), and wait until it no longer does: then the escape was handled, and the
        next key is read on its own."""
        tmux.wait_until(in_field, "the focus in a field (the footer: esc Leave field)")
        tmux.keys("Escape")
        tmux.wait_until(out_of_field, "the focus out of the field (the footer: t Run trace, no Leave field)")

    tmux.keys("3", literal="10.244.1.5")  # the packet pane, and at once the source address
    tmux.keys("Tab", "Tab", literal="10.96.20.10")
    tmux.keys("Tab", literal="80")
    tmux.keys("3")  # in the port field: typed, no pane switch
    tmux.wait_for("source   10.244.1.5 ", "dest     10.96.20.10 ", "dport    803\n")
    tmux.keys("BSpace", "Tab")  # in one burst: the backspace edits the port, then the next field
    leave_field()
    tmux.keys("t")  # traces
    tmux.wait_for("10.244.1.5:40000 → 10.96.20.10:80/tcp", "1. ACCEPT")
    tmux.keys("1", "/", literal="10.96.20.0/24")  # the tree, its filter, and the query typed in one burst
    tmux.wait_for("/10.96.20.0/24: ")
    tmux.keys("Escape")  # the filter box: cleared, the tree has the focus
    tmux.wait_for("45 rules in 37 chains")
    tmux.keys("3", literal="9")  # back in the packet pane's first field
    tmux.wait_for("source   10.244.1.59 ")
    leave_field()
    tmux.keys("q")
    tmux.wait_for("KPTUI-EXIT=0")


def test_kptui_in_tmux_steps_an_nft_trace(tmux: Tmux) -> None:
    """Issue 13: the explorer on kube-proxy's nftables mode in a real terminal. `kptui LISTING` with a NodePort
    packet: the hops are nft rules (table kube-proxy), the mark set by mark-for-masquerade, the numgen vmap's fork
    (two paths of 1/2), the DNAT in the endpoint chain and the masquerade, the detail pane decoding each rule."""
    cmd = [sys.executable, "-m", "kptui", "samples/nft-nodeport-cluster.nft", "--src", "203.0.113.10", "--dst",
           "10.0.0.2", "--dport", "30080", "--from", "external", "--node-ip", "10.0.0.2", "--iface",
           "eth0=10.0.0.2/24", "--uplink", "eth0"]  # fmt: skip
    tmux.start(cmd, cwd=ROOT, width=160, height=44, env=ENV)

    def step(n: int) -> None:
        tmux.keys(*"n" * n)

    tmux.wait_for("1/15 PRE kube-proxy", "filter-prerouting-pre-dnat:1  → JUMP firewall-check",
                  "1. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.1.21:8080",
                  "2. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.2.22:8080", "ip kube-proxy  nft · ")  # fmt: skip
    step(5)
    tmux.wait_for("6/15 PRE kube-proxy", "mark-for-masquerade:1", "mark    0x0 → 0x4000 (masq)",
                  "meta mark set meta mark | 0x00004000")  # fmt: skip
    step(2)
    tmux.wait_for("8/15 PRE kube-proxy", "note    numgen random mod 2 = 0", "10.244.1.21:8080 (1 in 2)")  # fmt: skip
    step(1)
    tmux.wait_for("9/15 PRE kube-proxy", "dst     10.0.0.2:30080 → 10.244.1.21:8080",
                  "meta l4proto tcp dnat to 10.244.1.21:8080")  # fmt: skip
    step(6)
    tmux.wait_for("15/15 POST kube-proxy", "masquerading:3", "src     203.0.113.10:40000 → 10.0.0.2",
                  "masquerade fully-random")  # fmt: skip
    tmux.keys("q")
    tmux.wait_for("KPTUI-EXIT=0")
