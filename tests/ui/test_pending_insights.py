"""A big dump's first screen does not wait for its kube service index (issue 16): the screen comes up with
:class:`PendingInsights`, which answer nothing rather than something wrong (no service names, a word in the detail
pane), the filter waits for the index (it matches service names), and once the index is there every pane answers
as it would have with the index from the start."""

from __future__ import annotations

import sys
import threading
from types import FrameType

import pytest
from textual.widgets import Input, Static

from kptui.engine.kube import service_index_of
from kptui.ui import app as app_module
from kptui.ui import chain_tree
from kptui.ui.locs import Loc
from kptui.ui.pending_insights import PENDING_NOTE, PendingInsights, is_pending
from kptui.ui.search import compile_query, run_filter
from kptui.ui.text_view import TextView

from .conftest import SAMPLES, ready

pytestmark = pytest.mark.asyncio
DUMP = "nodeport-cluster.rules"


def _detail_text(screen: object) -> str:
    return str(screen.detail.query_one(TextView).text.plain)  # type: ignore[attr-defined]


def _gate_the_index(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The loading thread's service index waits for the returned event (set by the test)."""
    gate = threading.Event()
    real_view_insights = app_module.view_insights

    def gated(view: object, nft: object) -> object:
        assert gate.wait(30), "the test never opened the gate"
        return real_view_insights(view, nft)  # type: ignore[arg-type]

    monkeypatch.setattr(app_module, "view_insights", gated)
    return gate


async def test_the_first_screen_comes_before_the_service_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "FREEZE_GC_LINES", 10)  # this dump counts as big
    monkeypatch.setattr(chain_tree, "LIVE_FILTER_MAX_RULES", 0)  # and filters in the background, as a big one
    gate = _gate_the_index(monkeypatch)
    data = (SAMPLES / DUMP).read_bytes()
    app = app_module.make_app(data=data, source=DUMP, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None and isinstance(screen.insights, PendingInsights) and is_pending(screen.insights)
        rs = screen.ruleset
        index = service_index_of(rs)
        sp = next(s for s in index if s.chains.get("SVC"))
        svc = sp.chains["SVC"]
        tree = screen.chains.chain_tree
        node = tree.node_for(Loc("nat", svc))
        assert node is not None
        assert sp.label not in node.label.plain  # type: ignore[union-attr]  # no name before the index
        screen.chains.reveal(Loc("nat", svc))
        await pilot.pause()
        assert PENDING_NOTE in _detail_text(screen)
        # a filter typed now waits for the index (it matches service names)
        await pilot.press("slash")
        box = screen.chains.query_one("#tree-filter", Input)
        box.value = sp.label
        await pilot.press("enter")
        for _ in range(20):
            await pilot.pause(0.02)
        assert screen.chains.result is None
        status = str(screen.chains.query_one("#tree-status", Static).content)
        assert "waiting for the service index" in status
        gate.set()
        for _ in range(500):
            if screen.chains.result is not None and "insights" in app.timings:
                break
            await pilot.pause(0.02)
        assert not is_pending(screen.insights) and app.timings["insights"] >= app.timings["painted"]
        query = compile_query(sp.label)
        assert query is not None
        real = screen.insights.real  # type: ignore[attr-defined]
        expected = run_filter(rs, query, real.service_of)
        got = screen.chains.result
        assert got is not None and (got.tables, got.rules, got.chains) == (expected.tables, expected.rules,
                                                                          expected.chains)  # fmt: skip
        await pilot.press("escape")
        screen.chains.reveal(Loc("nat", svc))
        await pilot.pause()
        node = tree.node_for(Loc("nat", svc))
        assert node is not None and sp.label in node.label.plain  # type: ignore[union-attr]  # relabelled
        text = _detail_text(screen)
        assert PENDING_NOTE not in text and f"service  {sp.label}" in text
        assert screen.builder.detected_pod_cidr == real.pod_cidr


async def test_quitting_before_the_first_screen_leaves_no_thread_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loading thread waits for the first screen to be drawn before it indexes the services: an app that
    ends first must not leave it (or a filter) waiting for ever."""
    monkeypatch.setattr(app_module, "FREEZE_GC_LINES", 10)
    data = (SAMPLES / DUMP).read_bytes()
    app = app_module.make_app(data=data, source=DUMP, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(160, 48)) as pilot:
        app.exit()
        await pilot.pause()
    for _ in range(200):
        if not _loading_threads():
            break
        threading.Event().wait(0.02)
    assert not _loading_threads()



async def test_quitting_as_the_service_index_comes_is_no_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index handed over while the app ends (ctrl+q just then): its screen's panes are gone; nothing raises."""
    monkeypatch.setattr(app_module, "FREEZE_GC_LINES", 10)
    gate = _gate_the_index(monkeypatch)
    handed: list[bool] = []
    ready_ = app_module.KptuiApp._insights_ready

    def recorded(self: app_module.KptuiApp, pending: PendingInsights, real: object) -> None:
        ready_(self, pending, real)  # type: ignore[arg-type]
        handed.append(True)

    monkeypatch.setattr(app_module.KptuiApp, "_insights_ready", recorded)
    data = (SAMPLES / DUMP).read_bytes()
    app = app_module.make_app(data=data, source=DUMP, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        await screen.chains.remove()  # what the app's ending does to the screen's panes first
        gate.set()
        for _ in range(500):
            if handed:
                break
            await pilot.pause(0.02)
        assert handed  # handed over, on a screen without its panes, without raising
        app.exit()


def _loading_threads() -> list[str]:
    """The threads (of any executor) that are inside the app's loading worker."""
    found = []
    for ident, frame in sys._current_frames().items():
        f: FrameType | None = frame
        while f is not None:
            if f.f_code.co_name == "_load" and f.f_code.co_filename == app_module.__file__:
                found.append(str(ident))
                break
            f = f.f_back
    return found
