"""When the cyclic garbage collector runs, for :class:`kptui.ui.app.KptuiApp`: after a big dump's long-lived data
is built it is moved out of the collector's sight, and full collections wait until the user pauses instead of
landing in the middle of a keypress (100+ ms on a big dump: a visible stall while stepping through a trace)."""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING

from textual import events

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[int]
else:
    _AppBase = object

__all__ = ["GC_FULL_AFTER", "GC_FULL_NEVER", "IDLE_SECONDS", "GcPacing"]

GC_FULL_NEVER = 1_000_000  # generation-1 collections before an automatic full one: never, in practice
GC_FULL_AFTER = 10  # Python's default threshold2, applied by collect_when_idle instead
IDLE_SECONDS = 1.0


class GcPacing(_AppBase):
    """Mixed into :class:`kptui.ui.app.KptuiApp` (which provides what is declared here)."""

    big: bool  # a dump of FREEZE_GC_LINES lines or more
    last_input: float
    _refreeze: bool

    def settle(self) -> None:
        """After building long-lived data from a big dump (the ruleset, a trace's compiled prefilters), move it
        out of the cyclic garbage collector's sight, as the CLI does: otherwise every full collection walks
        millions of objects (100+ ms: a visible stall while stepping through a trace). Full collections then
        run when the user pauses (:meth:`collect_when_idle`), not in the middle of a keypress."""
        if self.big:
            gc.freeze()
            threshold0, threshold1, _ = gc.get_threshold()
            gc.set_threshold(threshold0, threshold1, GC_FULL_NEVER)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self.last_input = time.monotonic()
        await super().on_event(event)

    def collect_when_idle(self) -> None:
        """The full collections Python would have run during the last burst of keys, once keys stop."""
        if time.monotonic() - self.last_input < IDLE_SECONDS:
            return
        if not gc.isenabled():  # a worker builds long-lived data with the collector off (the parse, the service
            return  # index): a collection now would walk its half-built objects for nothing (0.3 s seen)
        if self._refreeze:  # a watch refresh replaced the rules: free the old ones, then freeze the new
            self._refreeze = False
            gc.collect()
            gc.freeze()
        elif gc.get_count()[2] >= GC_FULL_AFTER:
            gc.collect()
