"""Copying (y / Y, through the clipboard policy) and saving a trace (ctrl+s) as Markdown or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kptui.ui.clipboard import OSC52_MAX, Clipboard, choose
from kptui.ui.export import trace_markdown
from kptui.ui.locs import Loc

from .conftest import NODEPORT_NODE, NODEPORT_PACKET, app_for, ready


class FakeTerminal:
    def __init__(self) -> None:
        self.copied: list[str] = []

    def copy_to_clipboard(self, text: str) -> None:
        self.copied.append(text)


@pytest.mark.parametrize(
    ("env", "native", "osc52", "native_used"),
    [
        ({}, True, True, True),  # local session with a clipboard tool: both
        ({}, False, True, False),  # no clipboard tool: OSC 52
        ({"SSH_TTY": "/dev/pts/3"}, True, True, False),  # over SSH pyperclip would reach the wrong machine
        ({"TMUX": "/tmp/tmux-0/default,1,0"}, True, True, False),
        ({"KPTUI_CLIPBOARD": "native"}, True, False, True),
        ({"KPTUI_CLIPBOARD": "osc52"}, True, True, False),
        ({"KPTUI_CLIPBOARD": "bogus", "SSH_CONNECTION": "1 2 3 4"}, True, True, False),
    ],
)
def test_the_clipboard_policy(env: dict[str, str], native: bool, osc52: bool, native_used: bool) -> None:
    plan = choose(env, native)
    assert (plan.osc52, plan.native) == (osc52, native_used)
    if env.get("KPTUI_CLIPBOARD") == "bogus":
        assert "not one of auto, osc52, native" in plan.why


def test_copies_go_through_every_chosen_channel_and_say_so() -> None:
    term, native = FakeTerminal(), []
    clip = Clipboard(term, env={}, native=native.append)
    ok, message = clip.copy("-A X -j ACCEPT", "a rule")
    assert ok and term.copied == ["-A X -j ACCEPT"] and native == ["-A X -j ACCEPT"]
    assert message == "Copied a rule (14 bytes) via the system clipboard and OSC 52 (the terminal)"
    big = "x" * (OSC52_MAX + 1)
    ok, message = Clipboard(term, env={"SSH_TTY": "x"}, native=native.append).copy(big, "the trace")
    assert not ok and "over the 100 KB OSC 52 limit" in message and "ctrl+s" in message
    ok, message = clip.copy(big, "the trace")  # locally the native clipboard still takes it
    assert ok and "via the system clipboard" in message and "OSC 52" not in message


def test_a_failing_native_clipboard_is_reported_not_raised() -> None:
    def broken(text: str) -> None:
        raise RuntimeError("xclip: cannot open display")

    ok, message = Clipboard(FakeTerminal(), env={"KPTUI_CLIPBOARD": "native"}, native=broken).copy("t", "x")
    assert not ok and "cannot open display" in message


@pytest.mark.asyncio
async def test_y_copies_the_rule_Y_the_list_command_and_y_in_the_trace_the_trace() -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        await pilot.press("y")  # focus is on the trace: the trace as text
        assert app.clipboard.startswith("path 1: 10.0.0.1:40000 → 10.0.0.2:30080/tcp ⇒ DNAT 10.244.1.21:8080")
        assert "KUBE-MARK-MASQ:1  → CONTINUE  [mark 0x0 → 0x4000 (masq)]" in app.clipboard
        assert notes[-1].startswith("Copied the trace as text (")
        await pilot.press("1")
        screen.chains.reveal(Loc("nat", "KUBE-SEP-2ATXUOYIKDUXCR7P", 2))
        await pilot.pause()
        await pilot.press("y")
        assert app.clipboard == ('-A KUBE-SEP-2ATXUOYIKDUXCR7P -p tcp -m comment --comment "shop/frontend:http" '
                                 "-m tcp -j DNAT --to-destination 10.244.1.21:8080")
        assert notes[-1].startswith("Copied rule nat/KUBE-SEP-2ATXUOYIKDUXCR7P:2 as an iptables-save line")
        await pilot.press("Y")
        assert app.clipboard == "iptables -t nat -L KUBE-SEP-2ATXUOYIKDUXCR7P -nv"


@pytest.mark.asyncio
async def test_ctrl_s_saves_the_trace_as_markdown_or_json(tmp_path: Path) -> None:
    from kptui.cli.explorer import write_text  # the CLI gives the app its writer; the UI writes no files

    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE, writer=write_text)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        for name in ("trace.md", "trace.json"):
            await pilot.press("ctrl+s")
            await pilot.pause()
            box = app.screen.query_one("#save-path")
            box.value = str(tmp_path / name)
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is app.main_screen
        md = (tmp_path / "trace.md").read_text()
        assert md.startswith("# kptui trace: 10.0.0.1:40000 → 10.0.0.2:30080/tcp\n")
        assert "## Path 1: ACCEPT, p=0.5" in md and "## Path 2: ACCEPT, p=0.5" in md
        assert "| 6 | PREROUTING | nat | `KUBE-MARK-MASQ:1` | `MARK (continue)` |" in md
        data = json.loads((tmp_path / "trace.json").read_text())
        assert data["schema"] == "kptui.trace/1" and len(data["paths"]) == 2
        assert data["paths"][0]["endpoint"] == "10.244.1.21:8080"
        # a path that cannot be written is reported in the dialog, which stays open
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#save-path").value = str(tmp_path / "missing" / "dir" / "t.md")
        await pilot.press("enter")
        await pilot.pause()
        assert "cannot write" in str(app.screen.query_one("#save-error").content)
        await pilot.press("escape")
        assert app.screen is app.main_screen


def test_markdown_escapes_what_the_dump_says() -> None:
    from kptui.engine import parse_ruleset
    from kptui.engine.packet import NodeContext, Packet
    from kptui.engine.trace import trace

    rs = parse_ruleset('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment "a|b ```x``` \x1b[31m" '
                       "-j ACCEPT\nCOMMIT\n")
    t = trace(rs, Packet("10.0.0.1", "10.0.0.2", "tcp", None, 22, "external"), NodeContext(addresses=("10.0.0.2",)))
    assert "\x1b" in t.paths[0].hops[-1].rule
    md = trace_markdown(t, source="x|y")
    assert "`x\\|y`" in md
    assert "\x1b" not in md
    assert "````text" in md  # a fence longer than the backticks in the comment


@pytest.mark.asyncio
async def test_an_app_without_a_writer_says_so_instead_of_writing(tmp_path: Path) -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#save-path").value = str(tmp_path / "t.md")
        await pilot.press("enter")
        await pilot.pause()
        assert "without a file writer" in str(app.screen.query_one("#save-error").content)
    assert not (tmp_path / "t.md").exists()


@pytest.mark.asyncio
async def test_a_saved_trace_names_the_dump_and_the_node_and_lists_each_hop_once(tmp_path: Path) -> None:
    """Issue 10, item 15: the JSON named neither the dump nor the node context (the Markdown did), and the
    Markdown listed every path twice (the hop table, then every hop again above its rule)."""
    from kptui.cli.explorer import write_text

    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE, writer=write_text,
                  origin="capture bundle node.kptui: host n1")  # fmt: skip
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        for name in ("t.json", "t.md"):
            assert app.main_screen.save_trace(str(tmp_path / name)) is None  # type: ignore[union-attr]
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["dump"] == "samples/nodeport-cluster.rules" and data["origin"] == "capture bundle node.kptui: host n1"
    assert data["node"]["addresses"] == ["10.0.0.2"] and data["node"]["pod_cidrs"] == ["10.244.0.0/16"]  # detected
    assert data["schema"] == "kptui.trace/1" and data["packet"]["dport"] == 30080  # the rest as before
    md = (tmp_path / "t.md").read_text()
    assert "- dump: `samples/nodeport-cluster.rules`" in md and "- rules from: capture bundle node.kptui" in md
    path1 = md.split("## Path 1")[1].split("## Path 2")[0]
    hop6 = [line for line in path1.splitlines() if "KUBE-MARK-MASQ:1" in line]
    assert len(hop6) == 1 and hop6[0].startswith("| 6 |"), hop6  # once, in the table
    assert "  6  -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in path1  # its rule, by hop number
    assert "policy ACCEPT" in path1 and "PREROUTING policy  → ACCEPT" not in path1


def test_markdown_says_when_no_node_address_was_given() -> None:
    from kptui.engine import parse_ruleset
    from kptui.engine.packet import NodeContext, Packet
    from kptui.engine.trace import trace

    rs = parse_ruleset("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n")
    t = trace(rs, Packet("10.0.0.1", "10.0.0.2", "tcp", None, 22, "external"), NodeContext())
    assert "- node addresses: none given: matches on this node's addresses" in trace_markdown(t)
