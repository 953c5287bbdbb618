"""Issue 10, items 9, 11 and 18: where the rules come from is on screen; the packet builder's focused field is
plain to see, pane keys never type into a field by surprise (nor does a stray key replace a value), the tab
order follows the screen; an empty node IPs field says what a trace then rests on."""

from __future__ import annotations

import pytest
from textual import events
from textual.color import Color
from textual.widgets import ContentSwitcher, Input

from kptui.ui.packet_builder import FIELDS, NO_NODE_HINT

from .conftest import app_for, ready, until
from .test_watch_app import FakeReader, bumped, settled, wait_for

pytestmark = pytest.mark.asyncio


async def test_the_source_is_on_screen_for_a_dump_a_bundle_and_watch_mode() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        bar = app.main_screen.query_one("#source-bar")
        assert str(bar.content) == "dump samples/nodeport-cluster.rules · nf_tables · IPv4"
        assert bar.region.height == 1 and bar.region.y == 0  # the first line of the screen
    app = app_for("nodeport-cluster.rules", origin="capture bundle node.kptui: host n1, captured 2025-06-02")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        assert str(app.main_screen.query_one("#source-bar").content).startswith("capture bundle node.kptui: host n1")
    reader = FakeReader(bumped(0, 0))
    app = app_for("nodeport-cluster.rules")
    from kptui.ui.app import make_app

    app = make_app(reader=reader, watch=30, origin="live node, network namespace n1 (read-only)")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: settled(app), "the first read")
        assert not app.main_screen.query("#source-bar")  # the watch bar says it
        assert str(app.main_screen.query_one("#watch-bar").content).startswith("live node, network namespace n1")


async def test_tab_runs_through_the_fields_in_screen_order_then_the_trace_button() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("3")
        app.main_screen.query_one("#pb-preset").focus()
        await pilot.pause()
        order = []
        for _ in range(len(FIELDS) + 2):
            order.append(app.focused.id if app.focused is not None else None)
            await pilot.press("tab")
        assert order == ["pb-preset", *(f"pb-{f}" for f in FIELDS), "pb-trace"], order


async def test_pane_keys_in_a_field_type_and_never_replace_alt_and_escape_switch_panes() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        screen.builder.set_value("dport", "8080")
        await pilot.press("3")  # the packet pane, its first field
        assert app.focused is screen.query_one("#pb-src")
        screen.builder.focus_first("dport")  # where `t` with an error, or a preset, puts the cursor
        await pilot.pause()
        assert screen.check_action("focus_pane", ("tree",)) is False  # the footer does not offer 1-4 here
        await pilot.press("3")
        assert screen.builder.value("dport") == "80803"  # typed at the end: the value was not replaced
        assert screen.query_one(ContentSwitcher).current == "builder"
        await pilot.press("backspace", "alt+1")  # alt+1-4 switch panes from inside a field
        assert app.focused is screen.chains.chain_tree and screen.builder.value("dport") == "8080"
        await pilot.press("alt+3")
        assert app.focused is screen.query_one("#pb-src")
        await pilot.press("escape", "4")  # out of the field, the plain keys work
        assert screen.query_one(ContentSwitcher).current == "trace"


def burst(app: object, *keys: str) -> None:
    """Queue keys at the app as the terminal driver does when they come in one read (tmux send-keys, a paste, a
    slow link, a busy machine): every one is queued before the first is handled. (``pilot.press`` waits for
    each key to be handled before it sends the next.)"""
    chars = {"backspace": "\x7f", "escape": "\x1b", "tab": "\t", "shift+tab": None, "down": None, "left": None}
    for key in keys:
        app.post_message(events.Key(key, chars.get(key, key)))  # type: ignore[attr-defined]


async def test_keys_in_a_burst_go_where_the_focus_was_when_each_arrived() -> None:
    """A backspace (or an arrow) with a tab, shift+tab or escape right behind it edits the field it was typed in:
    the tab moved the focus as it arrived (a priority binding) and Textual looked the backspace's binding up on
    the new focus, so the backspace was lost, or deleted a character of the next field; in the tree, downs with
    a pane key behind them moved the detail pane instead of the tree's cursor. (In a terminal an escape comes
    100 ms after the keys before it, ESCDELAY, unless the app is busy: the tmux test failed now and then.)"""
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        builder = screen.builder
        await pilot.press("3")
        for keys, focused in ((("backspace", "tab"), "pb-in_iface"), (("backspace", "shift+tab"), "pb-dst"),
                              (("backspace", "escape"), "pb-trace"),
                              (("left", "left", "backspace", "escape"), "pb-trace")):  # fmt: skip
            for name, value in (("dst", "10.96.0.10"), ("dport", "803"), ("in_iface", "eth0")):
                builder.set_value(name, value)
            builder.focus_first("dport")
            builder.query_one("#pb-dport", Input).cursor_position = 3
            await pilot.pause()
            expected = ["10.96.0.10", "03" if "left" in keys else "80", "eth0"]

            def fields() -> list[str]:
                return [builder.value(n) for n in ("dst", "dport", "in_iface")]

            burst(app, *keys)
            await until(pilot, lambda expected=expected: fields() == expected and app.focused is not None,
                        f"{keys}: the fields {expected}")  # fmt: skip
            await pilot.pause()  # (nothing more changes them)
            assert app.focused is not None and app.focused.id == focused, (keys, app.focused)
            assert fields() == expected, keys
        await pilot.press("1")
        tree = screen.chains
        start = tree.cursor_loc
        await pilot.press("down", "down")
        two_down = tree.cursor_loc
        assert two_down != start
        await pilot.press("up", "up")
        assert tree.cursor_loc == start
        burst(app, "down", "down", "2")
        await until(pilot, lambda: tree.cursor_loc == two_down, "the tree's cursor two rules down")
        await pilot.pause()
        assert tree.cursor_loc == two_down and app.focused is not None and app.focused.id == "detail-links"


async def test_the_focused_field_stands_out() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("3")
        src, dst = app.main_screen.query_one("#pb-src", Input), app.main_screen.query_one("#pb-dst", Input)
        await pilot.pause()
        assert app.focused is src

        def distance(a: Color, b: Color) -> int:
            return abs(a.r - b.r) + abs(a.g - b.g) + abs(a.b - b.b)

        focused, blurred = src.rich_style.bgcolor, dst.rich_style.bgcolor
        assert focused is not None and blurred is not None
        # one-step background tints (5 %) differ by a few levels per channel; the focus must be obvious
        assert distance(Color.from_rich_color(focused), Color.from_rich_color(blurred)) > 60
        assert src.rich_style.bold and not dst.rich_style.bold


async def test_an_empty_node_ips_field_says_traces_rest_on_assumptions() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        builder = app.main_screen.builder
        hint = builder.query_one("#pb-node-hint")
        assert hint.display and str(hint.content) == NO_NODE_HINT
        assert "no node address" in NO_NODE_HINT and "capture bundle" in NO_NODE_HINT
        await pilot.press("3")
        builder.focus_first("node_ips")
        await pilot.press(*"10.0.0.2")
        assert builder.value("node_ips") == "10.0.0.2" and not hint.display
        await pilot.press(*["backspace"] * 8)
        assert hint.display
    reader = FakeReader(bumped(0, 0))  # a live node: its addresses fill the field
    from kptui.ui.app import make_app

    app = make_app(reader=reader, watch=30, origin="live node (test)")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: settled(app) and app.main_screen.builder.value("node_ips"), "the node")
        assert not app.main_screen.builder.query_one("#pb-node-hint").display
