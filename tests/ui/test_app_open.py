"""Opening a dump: from bytes behind the loading screen, from a parsed ruleset, and a dump that fails."""

from __future__ import annotations

import pytest

from kptui.ui.app import make_app
from kptui.ui.locs import Loc
from kptui.ui.modals import LoadingScreen

from .conftest import SAMPLES, app_for, ready

pytestmark = pytest.mark.asyncio


async def test_opening_a_sample_from_bytes_shows_the_tree_and_the_detail() -> None:
    data = (SAMPLES / "mixed-all.rules").read_bytes()
    app = make_app(data=data, source="samples/mixed-all.rules", env={})
    async with app.run_test() as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None and app.ruleset is not None
        assert app.ruleset.rule_count == 169
        # the tree holds the tables, in the kernel's order, and starts on nat/KUBE-SERVICES
        tree = screen.chains.chain_tree
        assert [n.data.loc.table for n in tree.root.children] == ["mangle", "nat", "filter"]
        assert screen.chains.cursor_loc == Loc("nat", "KUBE-SERVICES")
        assert app.focused is tree
        assert "nat / KUBE-SERVICES" in screen.detail.text
        assert "18 rules" in screen.detail.text
        assert not isinstance(app.screen, LoadingScreen)


async def test_a_dump_that_does_not_parse_ends_the_app_with_status_2_and_the_message() -> None:
    app = make_app(data=b"*nat\n-A KUBE-SERVICES --frobnicate 1 -j ACCEPT\nCOMMIT\n", source="bad.rules", env={})
    async with app.run_test() as pilot:
        for _ in range(200):
            if app.error_message:
                break
            await pilot.pause(0.01)
    assert app.return_code == 2
    assert app.error_message is not None
    assert app.error_message.startswith("bad.rules:2: unknown option '--frobnicate'")


async def test_warnings_of_a_damaged_dump_are_notified_and_the_dump_still_opens() -> None:
    data = (SAMPLES / "clusterip.rules").read_bytes().replace(b"COMMIT\n# Completed", b"# Completed", 1)
    app = make_app(data=data, source="cut.rules", env={})
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test() as pilot:
        await ready(app, pilot)
        assert app.main_screen is not None
    assert any("warning" in n or "COMMIT" in n for n in notes), notes


async def test_a_ruleset_without_kube_proxy_opens_with_comment_insights() -> None:
    app = make_app(data=b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", env={})
    async with app.run_test() as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        assert screen.chains.cursor_loc == Loc("filter")
        await pilot.press("down", "enter", "down")  # INPUT, expand it, its first rule
        assert screen.chains.cursor_loc == Loc("filter", "INPUT", 1)
        assert "-j ACCEPT" in screen.detail.text
        assert "--dport 22" in screen.detail.text


async def test_focus_keys_move_between_the_panes() -> None:
    app = app_for()
    async with app.run_test() as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        await pilot.press("3")
        assert app.focused is not None and app.focused.id == "pb-src"
        await pilot.press("escape")  # leaves the text field
        assert app.focused is not None and app.focused.id == "pb-trace"
        await pilot.press("1")
        assert app.focused is screen.chains.chain_tree
        await pilot.press("2")
        assert app.focused is not None and screen.detail in app.focused.ancestors_with_self
        await pilot.press("4")
        assert app.focused is screen.trace_view.hops


async def test_no_color_keeps_the_cursor_and_changes_visible_by_text_style(monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import NODEPORT_NODE, NODEPORT_PACKET

    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    assert app.no_color
    async with app.run_test() as pilot:
        await ready(app, pilot)
        hops = app.main_screen.trace_view.hops
        assert hops.get_component_rich_style("hop-list--cursor", partial=True).reverse
        state = app.main_screen.trace_view.get_component_rich_style("trace-state--changed", partial=True)
        assert state.reverse and state.bold
        paths = app.main_screen.trace_view.query_one("#trace-paths")  # the chosen path, among equal-looking lines
        assert paths.get_component_rich_style("option-list--option-highlighted", partial=True).reverse
