"""Watch mode's refresh, for :class:`kptui.ui.app.KptuiApp`: a read arrives and the main screen is refreshed in
place on the new rules (:meth:`kptui.ui.screen_watch.WatchScreen.reload`: nothing the user set up is lost), a
failed read keeps the last good rules, and the next read is scheduled (the interval adapts to a 10 % budget:
:class:`kptui.ui.watch.Watcher`). The reads themselves run in the app's reading worker; this only handles what
they bring."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kptui.fmt import printable
from kptui.top import Reading

from .entry_counts import EntryCounts
from .services import Insights

if TYPE_CHECKING:
    from textual.app import App

    from kptui.engine import Ruleset
    from kptui.engine.packet import NodeContext

    from .main_screen import MainScreen
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
    _refreeze: bool
    _unshown: tuple[Reading, Insights, EntryCounts] | None
    _skipped: bool

    if TYPE_CHECKING:

        @property
        def main_screen(self) -> MainScreen | None: ...

        def show_ruleset(self, ruleset: Ruleset, insights: Insights) -> None: ...


    def live_read(self, reading: Reading, insights: Insights, first: bool,
                  entries: EntryCounts | None = None) -> None:  # fmt: skip
        """A read arrived: the first shows the main screen; later ones (watch mode) refresh it in place on the
        new rules."""
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
        self._skipped = self._skipped or waiting
        self._unshown = (reading, insights, entries or EntryCounts(reading.ruleset))  # only the latest is shown
        if not waiting:
            self.call_later(self._refresh)

    def _refresh(self) -> None:
        screen = self.main_screen
        if self._unshown is None or screen is None or not screen.is_attached:  # (the app is ending)
            return
        if not screen.ready:  # still mounting: a moment later
            self.set_timer(0.05, self._refresh)
            return
        reading, insights, entries = self._unshown
        diff = self.watcher.diff if self.watcher is not None else None
        since_shown = not self._skipped  # the diff is from the rules on screen
        self._unshown, self._skipped = None, False
        self.ruleset, self.insights = reading.ruleset, insights
        screen.nft = reading.nft  # the nft listing behind the new view's nft tables (traces walk it)
        screen.reload(reading.ruleset, insights, entries=entries, same=diff is not None and diff.unchanged,
                      since_shown=since_shown)  # fmt: skip
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
        if not self.screen_stack or self.screen is not self.main_screen:
            # a dialog is open (it shows what was read so far), or the first screen is still being switched to
            self.set_timer(1.0, self._watch_tick)
            return
        if self._unshown is not None:
            # the last read is not on screen yet (a big dump, a loaded machine): reading again now would pile
            # up reads the screen never shows
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
