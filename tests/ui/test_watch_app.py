"""Watch mode in the explorer, driven by a reader that returns prepared snapshots (the real one, reading a
namespace's rules, is tests/kernel_live/test_live_app.py): deltas in the tree, the status bar, the hot-rules
dialog, pause, and a refresh that keeps the cursor, the packet and the trace step."""

from __future__ import annotations

import re
import threading

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.packet import NodeContext
from kptui.top import ReadFailed, Reading
from kptui.ui.app import make_app
from kptui.ui.hot_rules import HotRulesScreen, hot_rows
from kptui.ui.locs import Loc
from kptui.ui.main_screen import MainScreen

from .conftest import NODEPORT_PACKET, SAMPLES, until

BASE = (SAMPLES / "nodeport-cluster.rules").read_text()
DROP_LINE = "[0:0] -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
EXT_LINE = '[18:1080] -A KUBE-EXT-PY4JZH2ITZYEO4CN -j KUBE-SVC-PY4JZH2ITZYEO4CN'
INTO_FORWARD = '[360:24928] -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'


def bumped(drop: int, ext: int) -> str:
    """The sample with the INVALID drop rule's (and the jump to its chain's) and a KUBE-EXT jump's packet
    counters raised."""
    text = BASE.replace(DROP_LINE, DROP_LINE.replace("[0:0]", f"[{drop}:{drop * 40}]"))
    text = text.replace(INTO_FORWARD, INTO_FORWARD.replace("[360:24928]", f"[{360 + drop}:{24928 + drop * 40}]"))
    return text.replace(EXT_LINE, EXT_LINE.replace("[18:1080]", f"[{18 + ext}:{1080 + ext * 60}]"))


class FakeReader:
    """Returns the prepared dumps one per call (then repeats the last); an Exception in the list is raised."""

    def __init__(self, *items: str | Exception) -> None:
        self.items = list(items)
        self.calls = 0
        self.gate = threading.Event()  # reads from ``block_from`` on wait for it (the app reads in a thread)
        self.gate.set()
        self.block_from = 1
        self.node = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.0.0/16",))
        self.warnings: tuple[str, ...] = ()

    def __call__(self) -> Reading:
        if self.calls >= self.block_from:
            assert self.gate.wait(20)
        item = self.items[min(self.calls, len(self.items) - 1)]
        self.calls += 1
        if isinstance(item, Exception):
            raise item
        return Reading.of(parse_ruleset(item, source="live (test)"), 0.01, 0.01, "live (test)")


async def wait_for(pilot: object, cond: object, what: str) -> None:
    await until(pilot, cond, what)  # type: ignore[arg-type]


def settled(app: object) -> bool:
    """The main screen of the latest rules read is mounted, refreshed and showing (a rebuild can wait for the
    old screen and sets the app's rules only before it switches: the old screen is still ``ready`` meanwhile,
    and keys would go to a screen about to go)."""
    screen = app.main_screen  # type: ignore[attr-defined]
    watcher = app.watcher  # type: ignore[attr-defined]
    last = watcher.state.last if watcher is not None else None  # the latest good read (a rebuild may wait for
    latest = app.ruleset if last is None else last.ruleset  # the screen to be ready: not yet the app's rules)
    return screen is not None and screen.ready and screen.ruleset is latest and app.screen is screen  # type: ignore[attr-defined]


def refreshed(app: object, reads: int) -> bool:
    """The screen shows read number ``reads`` (or a later one), refreshed in place."""
    watcher = app.watcher  # type: ignore[attr-defined]
    return watcher.state.reads >= reads and not watcher.reading and settled(app)


async def trace_on_first_read(app: object, pilot: object) -> MainScreen:
    """The screen of the first read, with the NodePort packet's trace asked for."""
    await wait_for(pilot, lambda: settled(app), "the first read")
    screen: MainScreen | None = app.main_screen  # type: ignore[attr-defined]
    assert screen is not None
    screen.builder.fill(NODEPORT_PACKET)
    screen.action_trace()
    return screen


def tree_line(app: object, loc: Loc) -> str:
    node = app.main_screen.chains.chain_tree.node_for(loc)  # type: ignore[attr-defined]
    return str(node.label)


@pytest.mark.asyncio
async def test_watch_shows_deltas_rising_drops_and_keeps_the_cursor_and_trace_step() -> None:
    reader = FakeReader(bumped(0, 0), bumped(3, 5), bumped(3, 9))
    reader.gate.clear()  # the second read waits until the screen is set up
    app = make_app(reader=reader, watch=0.05, origin="live node (test)", env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: "painted" in app.timings, "the first read")
        screen = app.main_screen
        assert screen is not None
        # the live node's context fills the packet builder
        assert screen.builder.value("node_ips") == "10.0.0.2"
        screen.builder.fill(NODEPORT_PACKET)
        screen.chains.reveal(Loc("filter", "KUBE-FORWARD", 1))
        screen.action_trace()
        await wait_for(pilot, lambda: screen.trace is not None, "the trace")
        screen.trace_view.hops.action_step(+3)
        await pilot.pause()
        step_before = screen.trace_view.hops.rows[screen.trace_view.hops.cursor]
        assert app.watcher is not None
        await wait_for(pilot, lambda: app.watcher.reading, "the second read, waiting at the gate")  # type: ignore[union-attr]
        app.watcher.paused = True  # the read under way ends, no third one follows: the deltas stay the second's
        reader.gate.set()
        # the second read: the same screen, refreshed in place on the new rules, the packet traced again
        traced = screen.trace
        await wait_for(pilot, lambda: refreshed(app, 2) and screen.trace is not traced, "the refresh")
        new = app.main_screen
        assert new is screen
        await pilot.pause()
        assert new.trace_view.hops.rows[new.trace_view.hops.cursor] == step_before  # same hop of the same path
        assert new.builder.value("dst") == NODEPORT_PACKET.dst and new.builder.value("dport") == "30080"
        drop = tree_line(app, Loc("filter", "KUBE-FORWARD", 1))
        assert re.search(r"\+3 +DROP", drop), drop
        assert "+5" in tree_line(app, Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN", 2))
        assert "+3 pkts" in tree_line(app, Loc("filter", "KUBE-FORWARD"))
        bar = str(new.query_one("#watch-bar").content)
        assert "live node (test)" in bar and "DROP/REJECT rising" in bar and "rules moved" in bar
        assert new.query_one("#watch-bar").has_class("-rising")
        # the hot rules: hottest first, the drop flagged; enter jumps to the rule
        rows = hot_rows(app.watcher, app.insights)
        assert [(r.loc, r.packets, r.drops) for r in rows[:3]] == [
            (Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN", 2), 5, False), (Loc("filter", "FORWARD", 2), 3, False),
            (Loc("filter", "KUBE-FORWARD", 1), 3, True)]
        assert [r.loc for r in hot_rows(app.watcher, app.insights, needle="invalid")] == [
            Loc("filter", "KUBE-FORWARD", 1)]
        new.trace_view.hops.blur()
        new.chains.chain_tree.focus()
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HotRulesScreen), "the hot-rules dialog")
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: app.screen is new, "the dialog closing")
        assert new.chains.cursor_loc == Loc("filter", "KUBE-FORWARD", 1)


@pytest.mark.asyncio
async def test_pause_stops_reading_and_a_failed_read_keeps_the_last_rules() -> None:
    reader = FakeReader(bumped(0, 0), ReadFailed("iptables-nft-save: exit 1"), bumped(1, 1))
    reader.block_from = 3  # the fourth read waits for the gate: the screen holds still meanwhile
    reader.gate.clear()
    app = make_app(reader=reader, watch=0.05, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(120, 36)) as pilot:
        w = app.watcher
        assert w is not None
        await wait_for(pilot, lambda: w.state.errors == 1 and w.state.reads == 2 and reader.calls == 3,
                       "a good read, a failed one, a good one")  # fmt: skip
        assert app.ruleset is not None and app.ruleset.rule_count > 0
        await wait_for(pilot, lambda: settled(app), "the rebuilt screen")
        screen = app.main_screen
        assert screen is not None and w.state.error is None  # the good read after the failure cleared it
        screen.chains.chain_tree.focus()
        await pilot.press("w")
        assert w.paused
        reader.gate.set()  # the read under way (if any) ends; none follows while paused
        await pilot.pause(0.3)
        calls = reader.calls
        await pilot.pause(0.5)
        assert reader.calls == calls
        await wait_for(pilot, lambda: settled(app), "the screen")
        assert "paused" in str(app.main_screen.query_one("#watch-bar").content)  # type: ignore[union-attr]
        app.main_screen.chains.chain_tree.focus()  # type: ignore[union-attr]
        await pilot.press("w")
        assert not w.paused
        await wait_for(pilot, lambda: reader.calls > calls, "reading again after resume")


@pytest.mark.asyncio
async def test_a_failed_read_shows_in_the_bar_and_keeps_the_rules() -> None:
    reader = FakeReader(bumped(0, 0), ReadFailed("iptables-nft-save: exit 1"), bumped(1, 1))
    reader.block_from = 2  # the read after the failure waits: the failure stays on screen
    reader.gate.clear()
    app = make_app(reader=reader, watch=0.05, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None and app.watcher.state.errors == 1, "the failed read")
        screen = app.main_screen
        assert screen is not None and app.ruleset is not None and app.ruleset.rule_count > 0
        screen.update_watch_bar()
        bar = screen.query_one("#watch-bar")
        assert "last read failed: iptables-nft-save: exit 1" in str(bar.content) and bar.has_class("-failed")
        reader.gate.set()


@pytest.mark.asyncio
async def test_a_first_read_that_fails_ends_the_app_with_the_message() -> None:
    reader = FakeReader(ReadFailed("iptables-nft-save: permission denied (run kptui as root: sudo kptui)"))
    app = make_app(reader=reader, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.return_code is not None, "the app ending")
    assert app.return_code == 2 and app.error_message is not None and "sudo kptui" in app.error_message


def test_watch_without_a_reader_is_refused() -> None:
    with pytest.raises(ValueError, match="watch mode needs"):
        make_app(data=BASE.encode(), watch=2.0)


@pytest.mark.asyncio
async def test_watch_mode_indexes_the_rules_for_the_filter_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from kptui.ui import app as app_module
    from kptui.ui import chain_tree

    monkeypatch.setattr(chain_tree, "LIVE_FILTER_MAX_RULES", 0)  # a "big" node: each read would pay for an index
    monkeypatch.setattr(app_module, "FREEZE_GC_LINES", 0)
    reader = FakeReader(bumped(0, 0))
    app = make_app(reader=reader, watch=30, origin="live node (test)")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.main_screen is not None and app.main_screen.callers_indexed, "the jumps")
        screen = app.main_screen
        assert screen is not None
        await pilot.pause(0.2)
        assert not screen.chains.search.ready  # not built behind the user's back on every read
        await pilot.press("slash")
        await wait_for(pilot, lambda: screen.chains.search.ready, "the index, on the first /")


@pytest.mark.asyncio
async def test_a_refresh_keeps_the_step_on_a_path_other_than_the_first() -> None:
    reader = FakeReader(bumped(0, 0), bumped(1, 1))
    reader.gate.clear()  # the second read waits until the step is set
    app = make_app(reader=reader, watch=0.05, origin="live node (test)")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await trace_on_first_read(app, pilot)
        await wait_for(pilot, lambda: screen.trace is not None and screen.trace_view.hops.hop is not None, "the trace")
        assert len(screen.trace.paths) == 2  # type: ignore[union-attr]
        screen.trace_view.select_path(1)
        screen.trace_view.hops.action_step(+7)
        await pilot.pause()
        hops = screen.trace_view.hops
        before = (hops.path_index, hops.rows[hops.cursor])
        assert before[0] == 1 and before[1] > 0
        traced = screen.trace
        # the second read ends, no third follows: no trace of a later read still runs when the test ends (its
        # result would come while run_test takes the screen down, which does not set the app exiting)
        await wait_for(pilot, lambda: app.watcher.reading, "the second read, waiting at the gate")  # type: ignore[union-attr]
        app.watcher.paused = True  # type: ignore[union-attr]
        reader.gate.set()
        await wait_for(pilot, lambda: refreshed(app, 2) and screen.trace is not traced, "the refresh")
        await pilot.pause(0.2)  # any queued highlight of the path list has been handled by now
        new = app.main_screen.trace_view  # type: ignore[union-attr]
        assert (new.hops.path_index, new.hops.rows[new.hops.cursor]) == before
        assert new.query_one("#trace-paths").highlighted == 1


@pytest.mark.asyncio
async def test_a_trace_still_running_at_a_refresh_is_run_again_on_the_new_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from kptui.engine import trace as trace_module

    release = threading.Event()
    real = trace_module.trace

    def slow_first(*args: object, **kwargs: object) -> object:
        if not release.is_set():
            release.wait(10)  # the first trace is still running when the refresh comes
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trace_module, "trace", slow_first)
    reader = FakeReader(bumped(0, 0), bumped(1, 1))
    reader.gate.clear()  # the second read waits for the gate
    app = make_app(reader=reader, watch=0.05, origin="live node (test)")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await trace_on_first_read(app, pilot)
        await pilot.pause(0.1)
        assert screen.trace is None  # still running
        await wait_for(pilot, lambda: app.watcher.reading, "the second read, waiting at the gate")  # type: ignore[union-attr]
        app.watcher.paused = True  # type: ignore[union-attr]  # (no later read: no trace running at the end)
        reader.gate.set()
        await wait_for(pilot, lambda: refreshed(app, 2), "the refresh")
        release.set()
        await wait_for(pilot, lambda: app.main_screen.trace is not None, "the trace on the new screen")  # type: ignore[union-attr]
        assert app.main_screen.trace.packet.dport == 30080  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_reads_wait_while_the_screen_of_the_last_read_is_still_being_built(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """On a loaded machine or a big dump a rebuilt screen takes longer than the watch interval: the reads wait
    for it rather than piling up (each would be one more screen to build, and the deltas shown would belong to a
    read the screen never showed); the screen that ends up shown is the latest read's."""
    original = MainScreen._fill_builder
    built: list[MainScreen] = []

    def slow_fill(self: MainScreen) -> None:
        built.append(self)  # the screen is ready when the test says (it used a 2.5 s timer: on a loaded machine
        # the 2 s below, counted from later, outlasted it and the reads resumed before the check)

    monkeypatch.setattr(MainScreen, "_fill_builder", slow_fill)
    reader = FakeReader(bumped(0, 0), bumped(1, 1), bumped(2, 2), bumped(3, 3))
    app = make_app(reader=reader, watch=0.05, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: len(built) == 1 and reader.calls >= 2, "the screen, and a second read")
        calls = reader.calls
        await pilot.pause(2.0)  # the screen is not ready yet (40 watch intervals): at most the read that had begun
        assert reader.calls <= calls + 1, (calls, reader.calls)
        built[0].call_later(original, built[0])  # the screen is ready now
        await wait_for(pilot, lambda: reader.calls >= calls + 2 and settled(app), "reading again once it is ready")
        assert len(built) == 1  # one screen, refreshed in place
