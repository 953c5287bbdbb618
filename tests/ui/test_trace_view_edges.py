"""The trace view at its edges: a path with no hop, the packet state in an 80×24 terminal (the counter and
the change still visible), the verdict first on each path line, and hop places for kernel hops."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Static

from kptui.engine import parse_ruleset
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace_model import Hop
from kptui.engine.trace_report import hop_place
from kptui.ui.app import make_app
from kptui.ui.hop_list import HopList

from .conftest import NODEPORT_NODE, NODEPORT_PACKET, app_for, ready

S_DUMP = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-A INPUT -s 10.0.0.9/32 -j DROP\n"
UNPLACED = "-N MINE\n-A MINE -s 10.0.0.9/32 -j DROP\n"  # iptables -S MINE: no -P line, nothing tells the table


async def first_hop(app: object, pilot: object) -> HopList:
    """The hop list once the app's start-up trace shows its first hop."""
    await ready(app, pilot)  # type: ignore[arg-type]
    hops: HopList = app.main_screen.trace_view.hops  # type: ignore[attr-defined]
    for _ in range(100):
        if hops.hop is not None:
            break
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    return hops


def screen_text(app: object) -> str:
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


@pytest.mark.asyncio
async def test_a_dump_whose_tables_cannot_be_told_is_refused_and_leaves_no_stale_step() -> None:
    """iptables -S output that nothing places in a table: the trace refuses with the chains and what to paste
    instead; it never answers with a verdict and no hops (issue 14.2)."""
    rs = parse_ruleset(UNPLACED, source="rules.S")
    app = make_app(ruleset=rs, source="rules.S")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        screen.builder.fill(Packet("127.0.0.1", "127.0.0.1", "tcp", None, 80, "local"), NodeContext())
        screen.action_trace()
        await pilot.pause(0.2)
        assert screen.trace is None and screen.step is None
        title = str(screen.trace_view.query_one("#trace-title", Static).content)
        state = str(screen.trace_view.query_one("#trace-state", Static).content)
        assert title.startswith("cannot trace") and "MINE" in state and "iptables-save" in state


async def _trace_from_outside(screen: Any, pilot: Any) -> None:
    """Trace 10.0.0.9 -> the node 10.0.0.2 tcp/80 and wait for the result."""
    screen.builder.fill(Packet("10.0.0.9", "10.0.0.2", "tcp", None, 80, "external"),
                        NodeContext(addresses=("10.0.0.2",)))
    screen.action_trace()
    for _ in range(100):
        await pilot.pause(0.02)
        if screen.trace is not None:
            break
    await pilot.pause()


@pytest.mark.asyncio
async def test_an_iptables_S_listing_placed_by_its_policies_traces_with_hops() -> None:
    rs = parse_ruleset(S_DUMP, source="rules.S")  # -P INPUT/FORWARD/OUTPUT: the filter table
    app = make_app(ruleset=rs, source="rules.S")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        await _trace_from_outside(screen, pilot)
        assert screen.trace is not None and all(p.hops for p in screen.trace.paths)
        assert {p.verdict for p in screen.trace.paths} == {"DROP"}


@pytest.mark.asyncio
async def test_at_80x24_the_state_panel_shows_the_change_and_the_counter() -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(80, 24)) as pilot:
        hops = await first_hop(app, pilot)
        hops.action_step(+5)  # KUBE-MARK-MASQ
        await pilot.pause(0.1)
        assert hops.hop is not None and hops.hop.chain == "KUBE-MARK-MASQ"
        text = screen_text(app)
        assert "mark    0x0 → 0x4000 (masq)" in text
        assert "counter 72 → 73 pkts" in text
        assert "1. ACCEPT (forwarded) · p=0.5" in text  # the verdict fits on an 80-column path line


def test_hop_places() -> None:
    base = {"hook": "PREROUTING", "table": "nat", "chain": "KUBE-SERVICES", "matched": True}
    hop = Hop._make([None] * len(Hop._fields))._replace(**base)
    assert hop_place(hop._replace(kind="rule", index=12)) == "KUBE-SERVICES:12"
    assert hop_place(hop._replace(kind="policy", index=None)) == "KUBE-SERVICES policy"
    assert hop_place(hop._replace(kind="rule", index=None)) == "KUBE-SERVICES:?"  # a kernel hop not in the dump


@pytest.mark.asyncio
async def test_a_theme_change_renders_the_hop_list_again() -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(120, 36)) as pilot:
        hops = await first_hop(app, pilot)
        await pilot.pause()
        line = hops.render_line(2)  # a line off the cursor: from the cache once drawn
        assert hops._cache
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        again = hops.render_line(2)
        assert [s.style for s in again] != [s.style for s in line]


@pytest.mark.asyncio
async def test_a_step_is_one_frame() -> None:
    """The hop list, the packet state, the tree and the detail change in the same screen refresh: no frame
    shows the hop list on the new hop and the detail still on the old one. (Painted by the hop list itself,
    the cursor was one frame and the rest the next, a timer tick later: twice the compositing per step, and
    a step took 35 ms instead of 11 on the 220k-rule dump.)"""
    from textual.screen import Screen

    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    frames: list[str] = []
    original = Screen._compositor_refresh

    def recorded(self: Screen) -> None:
        original(self)
        frames.append(screen_text(self.app))

    async with app.run_test(size=(120, 40)) as pilot:
        hops = await first_hop(app, pilot)
        await pilot.pause(0.2)
        Screen._compositor_refresh = recorded  # type: ignore[method-assign]
        try:
            for position in range(1, len(hops.rows)):
                frames.clear()
                await pilot.press("n")
                await pilot.pause(0.1)
                hop = hops.hop
                assert hop is not None and hops.cursor == position and frames
                for frame in frames:
                    assert f"{position + 1}/{len(hops.rows)} " in frame, (position, frame)  # the packet state
                    assert f"{hop.table} / {hop.chain}" in frame, (position, frame)  # the detail's heading
        finally:
            Screen._compositor_refresh = original  # type: ignore[method-assign]


@pytest.mark.asyncio
async def test_a_step_nobody_paints_is_painted_by_the_hop_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen paints the hop list's cursor; if no handler does (a step message arriving after its screen
    went), the hop list paints itself a moment later: the cursor is still scrolled into view."""
    from kptui.ui.main_screen import MainScreen

    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(80, 24)) as pilot:
        hops = await first_hop(app, pilot)
        assert len(hops.rows) > hops.scrollable_content_region.height  # the last hop is out of view
        monkeypatch.setattr(MainScreen, "on_step_changed", lambda self, message: None)
        await pilot.press("end")
        await pilot.pause(0.5)
        assert hops.cursor == len(hops.rows) - 1
        top = hops.scroll_offset.y
        assert top <= hops.cursor < top + hops.scrollable_content_region.height


@pytest.mark.asyncio
async def test_a_step_of_a_replaced_trace_moves_nothing() -> None:
    """A step message still on its way when its trace was replaced (a new trace, a watch refresh) is ignored:
    the tree, the detail and the packet state stay on the current trace's step."""
    from kptui.engine.trace import trace
    from kptui.ui.messages import StepChanged

    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(120, 40)) as pilot:
        hops = await first_hop(app, pilot)
        await pilot.press("n", "n", "n")
        await pilot.pause(0.1)
        screen = app.main_screen
        assert screen is not None
        before = (screen.step, screen.chains.cursor_loc, screen.detail.loc,
                  str(screen.trace_view.query_one("#trace-state", Static).content))  # fmt: skip
        old = trace(app.ruleset, NODEPORT_PACKET, NODEPORT_NODE)  # an equal trace, but not the one shown
        assert old is not hops.trace
        last = old.paths[0].hops[-1]
        screen.post_message(StepChanged(old, 0, len(old.paths[0].hops) - 1, last))
        await pilot.pause(0.1)
        after = (screen.step, screen.chains.cursor_loc, screen.detail.loc,
                 str(screen.trace_view.query_one("#trace-state", Static).content))  # fmt: skip
        assert after == before and before[1] != StepChanged(old, 0, 0, last).loc  # it would have moved


@pytest.mark.asyncio
async def test_the_detail_text_is_wrapped_to_the_width_left_by_its_scrollbar() -> None:
    """When the detail text is taller than the pane its scrollbar takes a column: the text must be wrapped to
    what is left (it was wrapped one column wider, so the last letter of long lines was cut off:
    "kube-prox" for "kube-proxy")."""
    from kptui.ui.text_view import TextView

    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(100, 30)) as pilot:
        await first_hop(app, pilot)
        await pilot.press("n")
        await pilot.pause(0.2)
        body = app.main_screen.detail.query_one(TextView)  # type: ignore[union-attr]
        assert body.virtual_size.height > body.scrollable_content_region.height  # it scrolls: a scrollbar
        assert body._width == body.scrollable_content_region.width
        assert "kube-proxy matches service addresses" in screen_text(app)


@pytest.mark.asyncio
async def test_a_trace_through_an_elided_paste_says_rules_are_missing() -> None:
    text = S_DUMP.replace("-A INPUT", "...\n-A INPUT")  # a paste that leaves lines out
    rs = parse_ruleset(text, source="paste")
    app = make_app(ruleset=rs, source="paste")
    async with app.run_test(size=(160, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        await _trace_from_outside(screen, pilot)
        assert screen.trace is not None
        title = str(screen.trace_view.query_one("#trace-title", Static).content)
        assert "RULES MISSING" in title
