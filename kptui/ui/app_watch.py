"""Watch mode's refresh, for :class:`kptui.ui.app.KptuiApp`: a read arrives and the main screen is rebuilt on
the new rules (keeping the cursor, the packet and the trace step), a failed read keeps the last good rules, and
the next read is scheduled (the interval adapts to a 10 % budget: :class:`kptui.ui.watch.Watcher`). The reads
themselves run in the app's reading worker; this only handles what they bring."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.widgets import Input

from kptui.fmt import printable
from kptui.top import Reading

from .services import Insights

if TYPE_CHECKING:
    from textual.app import App

    from kptui.engine import Ruleset
    from kptui.engine.packet import NodeContext

    from .main_screen import Carry, MainScreen
    from .watch import Watcher

    _AppBase = App[int]
else:
    _AppBase = object

__all__ = ["WatchRefresh"]


class WatchRefresh(_AppBase):
    """Mixed into :class:`kptui.ui.app.KptuiApp` (which provides what is declared here)."""

    watcher: Watcher | None
    ruleset: Ruleset | None
    insights: Insights | None
    node: NodeContext | None
    reader: Any  # kptui.ui.app.LiveSource | None
    _read_live: Callable[..., object]  # the app's reading worker
    big: bool
    _switching: bool
    _refreeze: bool
    _unshown: tuple[Reading, Insights] | None

    if TYPE_CHECKING:

        @property
        def main_screen(self) -> MainScreen | None: ...

        def show_ruleset(self, ruleset: Ruleset, insights: Insights) -> None: ...

        def _main_screen(self, ruleset: Ruleset, insights: Insights, carry: Carry | None = None) -> MainScreen: ...

    def live_read(self, reading: Reading, insights: Insights, first: bool) -> None:
        """A read arrived: the first shows the main screen; later ones (watch mode) rebuild it on the new rules,
        keeping the cursor, the packet and the trace step."""
        w = self.watcher
        if w is not None:
            w.reading = False
            w.state.update(reading)
            w.schedule()
            self.set_timer(max(0.05, w.due - time.monotonic()), self._watch_tick)
        if first:
            if self.node is None:
                self.node = getattr(self.reader, "node", None)
            for warning in getattr(self.reader, "warnings", ()):
                self.notify(printable(warning), title="live", severity="warning", markup=False)
            self.show_ruleset(reading.ruleset, insights)
            return
        waiting = self._unshown is not None
        self._unshown = (reading, insights)  # only the latest read is ever shown
        if not waiting:
            self.call_later(self._rebuild)

    async def _rebuild(self) -> None:
        old = self.main_screen
        if self._unshown is None:
            return
        if old is None or self.screen is not old:
            self._unshown = None
            return  # a dialog is open: the next read rebuilds the screen
        if not old.ready or self._switching:  # still mounting: a moment later
            self.set_timer(0.05, self._rebuild)
            return
        reading, insights = self._unshown
        self._unshown = None
        screen = self._main_screen(reading.ruleset, insights, carry=old.carry_over())
        self.ruleset, self.insights = reading.ruleset, insights
        self._switching = True
        try:
            await self.switch_screen(screen)  # the new screen mounted, the old one removed
        finally:
            self._switching = False
        if self.big:  # the old rules are garbage now: let the collector see (and free) them once idle
            gc.unfreeze()
            self._refreeze = True

    def read_failed(self, message: str) -> None:
        w = self.watcher
        if w is None:
            return
        w.reading = False
        w.state.failed(message)
        w.schedule()
        self.set_timer(max(0.05, w.due - time.monotonic()), self._watch_tick)
        if self.main_screen is not None:
            self.main_screen.update_watch_bar()

    def _watch_tick(self) -> None:
        w = self.watcher
        if w is None or w.paused or w.reading:
            return
        if self.screen is not self.main_screen or isinstance(self.focused, Input):
            # a dialog is open or the user is typing: rebuilding the screen now would take it away
            self.set_timer(1.0, self._watch_tick)
            return
        if self._unshown is not None or self._switching:
            # the screen of the last read is still being built (a big dump, a loaded machine): reading again
            # now would pile up reads the screen never shows
            self.set_timer(0.05, self._watch_tick)
            return
        w.reading = True
        if self.main_screen is not None:
            self.main_screen.update_watch_bar()
        self._read_live(first=False)

    def resume_watch(self) -> None:
        w = self.watcher
        if w is not None and not w.reading and time.monotonic() >= w.due:
            self._watch_tick()
        elif w is not None and not w.reading:
            self.set_timer(max(0.05, w.due - time.monotonic()), self._watch_tick)
