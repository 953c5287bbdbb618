"""Enter on an nft rule follows where it leads when no single target names it: a numgen verdict map's chains (asked
which, in a chooser), a named verdict map (``vmap @service-ips``: the map's elements)."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList

from kptui.ui.app import KptuiApp
from kptui.ui.locs import Loc
from kptui.ui.main_screen import MainScreen
from kptui.ui.modals import ChooseScreen

from .conftest import SAMPLES, ready
from .test_nft_panes import KP, WEB, explorer

pytestmark = pytest.mark.asyncio
EPS = ["endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080",
       "endpoint-IT6PTZ7B-default/web/tcp/http__10.244.1.12/8080",
       "endpoint-AEEJN5SZ-default/web/tcp/http__10.244.2.13/8080"]  # fmt: skip


async def _enter_on(app: KptuiApp, pilot: Pilot[int], loc: Loc) -> MainScreen:
    """The main screen up, the tree's cursor on ``loc``, enter pressed."""
    await ready(app, pilot)
    screen = app.main_screen
    assert screen is not None
    screen.chains.reveal(loc)
    screen.chains.chain_tree.focus()
    await pilot.pause()
    await pilot.press("enter")
    return screen


async def test_enter_on_a_numgen_vmap_asks_which_endpoint_and_follows_it() -> None:
    app = explorer(str(SAMPLES / "nft-clusterip.nft"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _enter_on(app, pilot, Loc(KP, WEB, 2))
        await pilot.pause()
        chooser = app.screen
        assert isinstance(chooser, ChooseScreen) and list(chooser.choices) == EPS
        options = chooser.query_one("#choose-list", OptionList)
        assert [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)] == EPS
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is screen and screen.chains.cursor_loc == Loc(KP, EPS[1])
        await pilot.press("backspace")  # back to the rule it was followed from
        await pilot.pause()
        assert screen.chains.cursor_loc == Loc(KP, WEB, 2)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChooseScreen)
        await pilot.press("escape")  # nothing chosen: nothing moves
        await pilot.pause()
        assert app.screen is screen and screen.chains.cursor_loc == Loc(KP, WEB, 2)


async def test_enter_on_a_named_vmap_lookup_goes_to_the_map() -> None:
    app = explorer(str(SAMPLES / "nft-clusterip.nft"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _enter_on(app, pilot, Loc(KP, "services", 1))
        await pilot.pause()
        assert app.screen is screen and screen.chains.cursor_loc is not None
        assert screen.chains.cursor_loc.chain_loc == Loc(KP, "@service-ips")
