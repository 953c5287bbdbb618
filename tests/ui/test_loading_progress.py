"""While a dump loads, the loading screen shows the lines parsed of the total and what the load is doing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from textual.widgets import ProgressBar, Static

from kptui.engine import parser as parser_mod
from kptui.ui.app import make_app
from kptui.ui.modals import LoadingScreen

from .conftest import ready

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from gen_dump import generate_lines

pytestmark = pytest.mark.asyncio


async def test_the_loading_screen_shows_real_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser_mod, "_CHUNK", 64 * 1024)  # several pieces, so several reports
    data = "".join(line + "\n" for line in generate_lines(200, 3, seed=1)).encode()
    lines = data.count(b"\n")
    seen: list[tuple[int, int, str, str, float | None]] = []
    show = LoadingScreen.show_progress

    def recorded(self: LoadingScreen, done: int, total: int, doing: str) -> None:
        show(self, done, total, doing)
        text = str(self.query_one("#loading-progress", Static).content)
        seen.append((done, total, doing, text, self.query_one("#loading-bar", ProgressBar).progress))

    monkeypatch.setattr(LoadingScreen, "show_progress", recorded)
    app = make_app(data=data, source="gen.rules", env={})
    async with app.run_test() as pilot:
        await ready(app, pilot)
        assert app.main_screen is not None
    parsed = [s for s in seen if s[2].startswith("parsed ") and "of" in s[2]]
    assert len(parsed) >= 3
    assert [s[0] for s in parsed] == sorted(s[0] for s in parsed) and parsed[0][0] < lines
    assert all(s[1] == lines for s in seen)
    assert f"of {lines:,} lines" in parsed[0][2] and parsed[0][3] == parsed[0][2] and parsed[0][4] == parsed[0][0]
    doings = [s[2] for s in seen]
    assert any(d.startswith(f"parsed all {lines:,} lines; checking") for d in doings)
    assert doings[-2:] == [f"parsed all {lines:,} lines; indexing the services …", "drawing the first screen …"]


async def test_a_dump_loads_behind_a_bar_that_fills_not_an_animation(monkeypatch: pytest.MonkeyPatch) -> None:
    """An animation redraws the screen many times a second and the parse thread waits for the interpreter lock
    each time: a dump's loading screen has a bar of its lines, no indicator."""
    from textual.widgets import LoadingIndicator

    data = "".join(line + "\n" for line in generate_lines(200, 3, seed=1)).encode()
    screens: list[tuple[int, float | None]] = []
    show = LoadingScreen.show_progress

    def recorded(self: LoadingScreen, done: int, total: int, doing: str) -> None:
        if not screens:
            screens.append((len(self.query(LoadingIndicator)), self.query_one("#loading-bar", ProgressBar).total))
        show(self, done, total, doing)

    monkeypatch.setattr(LoadingScreen, "show_progress", recorded)
    app = make_app(data=data, source="gen.rules", env={})
    async with app.run_test() as pilot:
        await ready(app, pilot)
    assert screens == [(0, float(data.count(b"\n")))]
