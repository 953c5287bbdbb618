"""Watch mode on the main screen (:class:`kptui.ui.main_screen.MainScreen`): the status bar, the hot-rules
dialog (``h``), pause (``w``), and the refresh of the screen in place on each read (:meth:`WatchScreen.reload`:
the open chains, the filter, the scroll, the cursor, the focus, the fields and the trace step all stay)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.screen import Screen

from kptui.engine.packet import NodeContext, Packet

from .entry_counts import EntryCounts
from .header import HeaderBar
from .locs import Loc
from .watch import chain_deltas, rule_deltas

if TYPE_CHECKING:
    from kptui.engine import Ruleset
    from kptui.engine.trace_model import Trace

    from .chain_tree import ChainTreePane
    from .commands import Candidate
    from .kernel_trace_view import KernelTraceController
    from .packet_builder import PacketBuilder
    from .rule_detail import RuleDetail
    from .services import Insights, ServiceInfo
    from .trace_view import TraceView
    from .watch import Watcher

    _ScreenBase = Screen[None]
else:
    _ScreenBase = object

__all__ = ["WatchScreen"]


class WatchScreen(_ScreenBase):
    """Mixed into :class:`kptui.ui.main_screen.MainScreen` (which provides what is declared here)."""

    watcher: Watcher | None
    ruleset: Ruleset
    insights: Insights
    trace: Trace | None
    kernel: KernelTraceController | None
    all_hops: bool
    entries: EntryCounts
    _shown_request: int
    _trace_request: int
    _refresh_request: int
    _quiet_since: float
    _asked: tuple[Packet, NodeContext] | None
    _chains: list[Candidate] | None
    _trace_in_thread: Callable[..., object]  # the screen's trace worker
    _count_entries: Callable[..., object]  # the screen's worker counting what entered each chain

    if TYPE_CHECKING:

        @property
        def chains(self) -> ChainTreePane: ...

        @property
        def detail(self) -> RuleDetail: ...

        @property
        def builder(self) -> PacketBuilder: ...

        @property
        def trace_view(self) -> TraceView: ...

        def goto(self, loc: Loc) -> None: ...

        def service_info(self, loc: Loc) -> ServiceInfo | None: ...

        def new_trace_request(self) -> int: ...

    def update_watch_bar(self) -> None:
        w = self.watcher
        bar = next(self.query("#watch-bar").results(HeaderBar), None)
        if w is None or bar is None:  # (a timer may fire before the screen's widgets are mounted)
            return
        bar.show_watch(w, getattr(self.app, "origin", None) or self.ruleset.source or "live")

    def action_hot_rules(self) -> None:  # check_action: only in watch mode
        if self.watcher is None:
            return
        from .hot_rules import HotRulesScreen

        def jump(loc: Loc | None) -> None:
            if loc is not None:
                self.goto(loc)

        self.app.push_screen(HotRulesScreen(self.watcher, self.insights), jump)

    def action_pause_watch(self) -> None:  # check_action: only in watch mode
        if self.watcher is None:
            return
        self.watcher.paused = not self.watcher.paused
        resume = getattr(self.app, "resume_watch", None)
        if not self.watcher.paused and resume is not None:
            resume()
        self.update_watch_bar()

    def reload(self, ruleset: Ruleset, insights: Insights, *, entries: EntryCounts | None = None,
               same: bool = False, since_shown: bool = True) -> None:  # fmt: skip
        """A watch read: this screen, in place, on the new rules. Nothing the user set up is lost: the open
        chains, the filter, the scroll, the cursor, the focus, the fields, the pane shown, the trace's path and
        hop (the same packet is traced again on the new rules); keys pressed meanwhile are not lost either.
        ``since_shown``: the watcher's diff is from the rules shown (no read was skipped), so the tree need
        relabel only the nodes that moved; ``same``: and those rules are the new ones, only counters moved."""
        moves = (rule_deltas(self.watcher.diff), chain_deltas(self.watcher.diff)) if self.watcher else None
        old = self.chains.moves
        moved = None
        if since_shown and old is not None and moves is not None:
            moved = {*old[0], *moves[0], *old[1], *moves[1]}
        self.ruleset, self.insights = ruleset, insights
        self.entries = entries or EntryCounts(ruleset)
        self._chains = None
        self.chains.reload(ruleset, insights, moves, self.entries, moved=moved, same=same and moved is not None)
        self.detail.reload(ruleset, insights, self.entries)
        self.builder.reload(pod_cidr=insights.pod_cidr, family=ruleset.family)
        cursor = self.chains.cursor_loc
        self.builder.set_service(self.service_info(cursor) if cursor is not None else None)  # the new insights'
        if not self.entries.ready and not self.entries.at_once:
            self._count_entries(self.entries)
        asked = self._asked if self.trace is not None or self._shown_request != self._trace_request else None
        if asked is not None and self.kernel is None:  # the same packet again, on the new rules
            request = self.new_trace_request()
            if self.trace is not None:  # shown: back on its path and hop, quietly (a running one shows as asked)
                hops = self.trace_view.hops
                self.pending_step = (hops.path_index, hops.rows[hops.cursor] if hops.rows else 0, hops.all_hops)
                self._quiet_since, self._refresh_request = time.monotonic(), request
            # once the refreshed screen is painted: a trace thread started now would compete with the paint
            self.call_after_refresh(self._trace_in_thread, *asked, request)
        self.update_watch_bar()

    pending_step: tuple[int, int, bool] | None = None
