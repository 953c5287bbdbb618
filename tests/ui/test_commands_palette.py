"""The command palette builds its candidates once per opening, not once per keystroke, and its hits are what
:func:`best_hits` makes of those candidates; the highlight marks the letters the filter matched."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.command import CommandList, CommandPalette
from textual.fuzzy import Matcher
from textual.style import Style

from kptui.ui.commands import Candidate, best_hits, highlight
from kptui.ui.main_screen import MainScreen

from .conftest import app_for, ready

pytestmark = pytest.mark.asyncio


def counting(calls: list[int], build: Callable[[], list[Candidate]]) -> Callable[[], list[Candidate]]:
    def wrapper() -> list[Candidate]:
        calls.append(1)
        return build()

    return wrapper


async def settle(pilot: object, palette: CommandPalette) -> list[str]:
    """Wait until the palette shows the same hits three checks in a row; the candidate texts it shows."""
    shown: list[str] = []
    same = 0
    for _ in range(300):
        await pilot.pause(0.02)  # type: ignore[attr-defined]
        options = palette.query_one(CommandList)
        now = [options.get_option_at_index(i).hit.text or "" for i in range(options.option_count)]  # type: ignore[attr-defined]
        same = same + 1 if now and now == shown else 0
        shown = now
        if same >= 3:
            break
    return shown


async def test_ctrl_p_builds_the_commands_once_for_all_the_keystrokes_of_one_opening() -> None:
    app = app_for("mixed-all.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert isinstance(screen, MainScreen)
        commands: list[int] = []
        chains: list[int] = []
        build_commands, build_chains = screen.command_candidates, screen.chain_candidates
        screen.command_candidates = counting(commands, screen.command_candidates)  # type: ignore[method-assign]
        screen.chain_candidates = counting(chains, screen.chain_candidates)  # type: ignore[method-assign]
        for opening in (1, 2):
            await pilot.press("ctrl+p")
            await pilot.pause()
            palette = app.screen
            assert isinstance(palette, CommandPalette)
            typed = ""
            for key in "trace":
                await pilot.press(key)
                typed += key
                await settle(pilot, palette)
            shown = await settle(pilot, palette)
            assert (len(commands), len(chains)) == (opening, opening)  # one build per provider per opening
            # the hits are those of the whole candidate list, whichever provider found them
            matcher = Matcher(typed)
            expected = {h.text for h in best_hits(matcher, typed, build_commands() + build_chains())}
            assert shown and set(shown) == expected
            assert any(s.startswith("trace: ") for s in shown)
            await pilot.press("escape")
            await pilot.pause()


async def test_colon_builds_the_chain_list_once_per_opening() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        chains: list[int] = []
        screen.chain_candidates = counting(chains, screen.chain_candidates)  # type: ignore[method-assign]
        await pilot.press("colon")
        await pilot.pause()
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        for key in "sep":
            await pilot.press(key)
            await settle(pilot, palette)
        shown = await settle(pilot, palette)
        assert chains == [1]
        expected = {h.text for h in best_hits(Matcher("sep"), "sep", screen.chain_candidates())}
        assert chains == [1, 1]  # the palette's, then this test's
        assert shown and set(shown) == expected and any(s.startswith("chain: nat/KUBE-SEP-") for s in shown)


def run() -> None:
    pass


async def test_best_hits_keeps_subsequence_matches_only_and_highlights_their_letters() -> None:
    cands = [Candidate(t, "", run) for t in ("chain: nat/KUBE-SEP-ABC", "trace: pod", "view: focus the tree")]
    style = Style(bold=True)
    matcher = Matcher("sep", match_style=style)
    hits = best_hits(matcher, "sep", cands)
    assert [h.text for h in hits] == ["chain: nat/KUBE-SEP-ABC"]
    assert [s.start for s in highlight("chain: nat/KUBE-SEP-ABC", "S e P", style).spans] == [16, 17, 18]
    # a query whose letters are not all there in order highlights the prefix it found and is not a hit
    assert [s.start for s in highlight("trace: pod", "tx", style).spans] == [0]
    assert best_hits(Matcher("tx"), "tx", cands) == []
    assert highlight("[b]x[/b]", "x", None).plain == "[b]x[/b]"
