"""Watch mode keeps the user's place on every read (issue 10, item 8): the screen is refreshed in place, so the
open chains, the filter, the cursor, the scroll and the focus stay, keys pressed meanwhile count, and the
detail pane and the footer never go blank. Reads are driven by FakeReader's gate (no timing races)."""

from __future__ import annotations

import pytest
from textual.widgets import Footer, Input

from kptui.ui.app import make_app
from kptui.ui.locs import Loc

from .test_watch_app import DROP_LINE, FakeReader, bumped, refreshed, settled, wait_for

EXT = Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN")
FWD = Loc("filter", "KUBE-FORWARD")
NEW_RULE = '[0:0] -A KUBE-FORWARD -m comment --comment "logged first" -j LOG --log-prefix "kube-forward: "'


def with_a_new_rule(drop: int, ext: int) -> str:
    """bumped(drop, ext) with a rule inserted at the top of KUBE-FORWARD (the DROP rule becomes :2)."""
    text = bumped(drop, ext)
    line = DROP_LINE.replace("[0:0]", f"[{drop}:{drop * 40}]")
    return text.replace(line, NEW_RULE + "\n" + line)


async def first_read(reader: FakeReader, pilot: object, app: object) -> object:
    await wait_for(pilot, lambda: settled(app), "the first read")
    return app.main_screen  # type: ignore[attr-defined]


async def second_read(reader: FakeReader, pilot: object, app: object, what: str = "the second read") -> None:
    """Let the second read (waiting at the gate) through, no third one after it, and wait for its refresh."""
    await wait_for(pilot, lambda: app.watcher.reading, f"{what}, at the gate")  # type: ignore[attr-defined]
    app.watcher.paused = True  # type: ignore[attr-defined]
    reader.gate.set()
    await wait_for(pilot, lambda: refreshed(app, 2) and app.main_screen.ruleset  # type: ignore[attr-defined]
                   is app.watcher.state.last.ruleset, "the refresh")  # type: ignore[attr-defined]  # fmt: skip


@pytest.mark.asyncio
async def test_a_refresh_keeps_open_chains_cursor_scroll_and_focus_and_shows_the_deltas() -> None:
    reader = FakeReader(bumped(0, 0), bumped(3, 5))
    reader.gate.clear()  # the second read waits until the place is set up
    app = make_app(reader=reader, watch=0.05, origin="live node (test)")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await first_read(reader, pilot, app)
        tree = screen.chains.chain_tree
        screen.chains.reveal(Loc(EXT.table, EXT.chain, 2))  # opens the chain
        screen.chains.reveal(Loc(FWD.table, FWD.chain, 1))
        tree.focus()
        await pilot.pause()
        before = tree.keep()
        assert EXT in before.chains and FWD in before.chains and before.cursor == Loc("filter", "KUBE-FORWARD", 1)
        await second_read(reader, pilot, app)
        await pilot.pause()
        assert app.main_screen is screen and app.focused is tree  # the same screen; the focus stayed
        after = tree.keep()
        assert after.chains == before.chains and after.cursor == before.cursor  # still open, same rule
        assert after.scroll_y == before.scroll_y and after.collapsed == before.collapsed
        # the +N markers watch mode exists for, on the chains the user opened
        assert "+5" in str(tree.node_for(Loc(EXT.table, EXT.chain, 2)).label)  # type: ignore[union-attr]
        assert "+3" in str(tree.node_for(Loc(FWD.table, FWD.chain, 1)).label)  # type: ignore[union-attr]
        assert "+3 pkts" in str(tree.node_for(FWD).label)  # type: ignore[union-attr]
        # the detail pane shows the rule under the cursor (its new counters), the footer is there
        assert screen.detail.loc == before.cursor and "3 packets" in screen.detail.text
        assert screen.query(Footer)


@pytest.mark.asyncio
async def test_a_refresh_on_changed_rules_keeps_the_filter_its_focus_and_the_rule_under_the_cursor() -> None:
    reader = FakeReader(bumped(0, 0), with_a_new_rule(3, 5))
    reader.gate.clear()
    app = make_app(reader=reader, watch=0.05, origin="live node (test)")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await first_read(reader, pilot, app)
        pane = screen.chains
        pane.chain_tree.focus()
        await pilot.press("slash", *"KUBE-FORWARD")  # filtered as typed; the focus stays in the filter box
        await wait_for(pilot, lambda: pane.result is not None and pane.result.query.text == "KUBE-FORWARD",
                       "the filter")  # fmt: skip
        pane.reveal(Loc(FWD.table, FWD.chain, 1))  # the INVALID drop rule
        box = pane.query_one("#tree-filter", Input)
        assert app.focused is box
        await second_read(reader, pilot, app, "the second read (not held back by the typing)")
        await pilot.pause()
        assert app.main_screen is screen and app.focused is box and box.value == "KUBE-FORWARD"
        assert pane.result is not None and pane.result.query.text == "KUBE-FORWARD"  # filtered again
        assert pane.cursor_loc == Loc(FWD.table, FWD.chain, 2)  # the same rule, renumbered by the new one
        assert FWD in pane.chain_tree.keep().chains
        assert "LOG" in str(pane.chain_tree.node_for(Loc(FWD.table, FWD.chain, 1)).label)  # type: ignore[union-attr]
        assert "+3" in str(pane.chain_tree.node_for(Loc(FWD.table, FWD.chain, 2)).label)  # type: ignore[union-attr]
        await pilot.press("x")  # typing goes on where it was
        assert box.value == "KUBE-FORWARDx"


@pytest.mark.asyncio
async def test_keys_pressed_while_a_read_arrives_all_count() -> None:
    reader = FakeReader(bumped(0, 0), with_a_new_rule(1, 1))
    reader.gate.clear()
    app = make_app(reader=reader, watch=0.05, origin="live node (test)")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await first_read(reader, pilot, app)
        tree = screen.chains.chain_tree
        tree.focus()
        screen.chains.reveal(Loc("nat", "KUBE-SERVICES"))
        await pilot.pause()
        start = tree.cursor_line
        await wait_for(pilot, lambda: app.watcher.reading, "the second read, at the gate")
        app.watcher.paused = True
        reader.gate.set()  # the read is handed over while the keys come
        await pilot.press(*["down"] * 6)
        await wait_for(pilot, lambda: refreshed(app, 2) and screen.ruleset is app.watcher.state.last.ruleset,
                       "the refresh")  # fmt: skip
        await pilot.press(*["down"] * 2)
        assert app.main_screen is screen and tree.cursor_line == start + 8


def with_a_new_chain(drop: int, ext: int) -> str:
    """bumped(drop, ext) with a new chain in filter (the tree's view is rebuilt, not just refilled)."""
    text = bumped(drop, ext)
    return text.replace(":KUBE-FORWARD - [0:0]\n", ":KUBE-FORWARD - [0:0]\n:KUBE-NEW-CHAIN - [0:0]\n")


@pytest.mark.asyncio
@pytest.mark.parametrize("changed", [with_a_new_rule, with_a_new_chain], ids=["a rule added", "a chain added"])
async def test_changed_rules_keep_the_open_chains_and_the_rule_under_the_cursor(changed: object) -> None:
    """A rule added inside a chain fills that chain again (the rest of the tree stays as it is); a chain added
    rebuilds the view: either way the open chains stay open, the cursor stays on its rule, +N shows."""
    reader = FakeReader(bumped(0, 0), changed(3, 5))  # type: ignore[operator]
    reader.gate.clear()
    app = make_app(reader=reader, watch=0.05, origin="live node (test)")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await first_read(reader, pilot, app)
        tree = screen.chains.chain_tree
        screen.chains.reveal(Loc(EXT.table, EXT.chain, 2))
        screen.chains.reveal(Loc(FWD.table, FWD.chain, 1))  # the INVALID drop rule
        tree.focus()
        await pilot.pause()
        before = tree.keep()
        await second_read(reader, pilot, app)
        await pilot.pause()
        after = tree.keep()
        assert set(after.chains) == set(before.chains) and app.focused is tree
        added = changed is with_a_new_rule
        assert tree.cursor_loc == Loc(FWD.table, FWD.chain, 2 if added else 1)  # the same rule
        assert "+3" in str(tree.node_for(tree.cursor_loc).label) and "DROP" in str(tree.node_for(tree.cursor_loc).label)  # type: ignore[arg-type, union-attr]
        assert "+5" in str(tree.node_for(Loc(EXT.table, EXT.chain, 2)).label)  # type: ignore[union-attr]
        if added:
            assert "LOG" in str(tree.node_for(Loc(FWD.table, FWD.chain, 1)).label)  # type: ignore[union-attr]
        else:
            assert tree.node_for(Loc("filter", "KUBE-NEW-CHAIN")) is not None
