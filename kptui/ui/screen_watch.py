"""Watch mode on the main screen (:class:`kptui.ui.main_screen.MainScreen`): the status bar, the hot-rules
dialog (``h``), pause (``w``), and what survives the rebuild of the screen on each read (:class:`Carry`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

from kptui.engine.packet import NodeContext

from .locs import Loc
from .watch import watch_status

if TYPE_CHECKING:
    from kptui.engine import Ruleset
    from kptui.engine.trace_model import Trace

    from .chain_tree import ChainTreePane
    from .kernel_trace_view import KernelTraceController
    from .packet_builder import PacketBuilder
    from .rule_detail import RuleDetail
    from .services import Insights
    from .trace_view import TraceView
    from .watch import Watcher

    _ScreenBase = Screen[None]
else:
    _ScreenBase = object

__all__ = ["Carry", "WatchScreen"]


class Carry(NamedTuple):
    """A main screen's state that survives a watch refresh (the screen is rebuilt on the new rules)."""

    cursor: Loc | None
    fields: dict[str, str]  # the packet builder's fields
    node: NodeContext | None  # node options the fields do not show
    step: tuple[int, int, bool] | None  # the trace's path, hop (index into path.hops) and all-hops choice
    focus: str  # "tree", "detail", "builder", "trace"


class WatchScreen(_ScreenBase):
    """Mixed into :class:`kptui.ui.main_screen.MainScreen` (which provides what is declared here)."""

    watcher: Watcher | None
    ruleset: Ruleset
    insights: Insights
    trace: Trace | None
    kernel: KernelTraceController | None
    all_hops: bool
    _shown_request: int
    _trace_request: int

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

        def action_focus_pane(self, pane: str) -> None: ...

    def update_watch_bar(self) -> None:
        w = self.watcher
        if w is None:
            return
        bar = self.query_one("#watch-bar", Static)
        bar.update(Text(watch_status(w, getattr(self.app, "origin", None) or self.ruleset.source or "live"),
                        no_wrap=True, overflow="ellipsis"))  # fmt: skip
        bar.set_class(bool(w.diff is not None and w.diff.drops), "-rising")
        bar.set_class(bool(w.state.error), "-failed")

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

    def carry_over(self) -> Carry:
        """What a refresh (watch mode) keeps: the cursor, the packet builder's fields, the trace step, focus."""
        focus = "tree"
        if self.focused is not None:
            for pane, widget in (("detail", self.detail), ("builder", self.builder), ("trace", self.trace_view)):
                if widget in self.focused.ancestors_with_self:
                    focus = pane
        step = None
        if self.trace is not None:
            hops = self.trace_view.hops
            step = (hops.path_index, hops.rows[hops.cursor] if hops.rows else 0, hops.all_hops)
        elif self._shown_request != self._trace_request and self.kernel is None:
            step = (0, 0, self.all_hops)  # a trace still running: the new screen traces the builder's packet
        return Carry(self.chains.cursor_loc, self.builder.field_values(), self.builder.extra_node, step, focus)

    def restore(self, carry: Carry) -> None:
        if carry.cursor is not None:
            self.chains.reveal(carry.cursor)
        self.builder.restore_fields(carry.fields, carry.node)
        self.pending_step = carry.step
        if carry.step is not None and self.builder.request_trace():
            return  # show_trace puts the step back and focuses the trace
        self.action_focus_pane(carry.focus)

    pending_step: tuple[int, int, bool] | None = None
