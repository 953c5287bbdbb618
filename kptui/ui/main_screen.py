"""The main screen: it composes the four panes and coordinates them.

Panes post messages up (rule highlighted, navigate, trace requested, step changed); the screen answers by
calling the panes' public methods (attributes down). It also owns the screen-wide keys: pane focus (1-4),
trace (t), copy (y/Y), save (ctrl+s), jump to chain (:).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import ClassVar, NamedTuple

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette, Provider
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static

from kptui.engine import Ruleset
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace_model import Hop, Trace
from kptui.engine.trace_report import trace_text
from kptui.fmt import printable

from .chain_tree import ChainTreePane
from .clipboard import Clipboard
from .commands import Candidate, ChainCommands, KptuiCommands, chain_commands, screen_commands
from .export import Exists, Writer, format_for, saved_message, trace_json, trace_markdown
from .kernel_trace_view import KernelTraceCommands, KernelTraceController, KernelWalks
from .locs import Loc, rows_of, rule_at
from .messages import ChainHighlighted, NavigateRequested, RuleHighlighted, StepChanged, TraceRequested
from .modals import SaveScreen
from .packet_builder import PacketBuilder
from .rule_detail import RuleDetail
from .services import Insights, ServiceInfo, comment_of, service_in_comment
from .trace_view import TraceView
from .watch import Watcher, chain_deltas, rule_deltas, watch_status

__all__ = ["Carry", "MainScreen"]


class Carry(NamedTuple):
    """A main screen's state that survives a watch refresh (the screen is rebuilt on the new rules)."""

    cursor: Loc | None
    fields: dict[str, str]  # the packet builder's fields
    node: NodeContext | None  # node options the fields do not show
    step: tuple[int, int, bool] | None  # the trace's path, hop (index into path.hops) and all-hops choice
    focus: str  # "tree", "detail", "builder", "trace"


class MainScreen(Screen[None]):
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ChainCommands, KptuiCommands,
                                                                              KernelTraceCommands}
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012 - Screen declares it a plain attribute
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "focus_pane('tree')", "Tree", id="main.focus-tree"),
        Binding("2", "focus_pane('detail')", "Detail", id="main.focus-detail"),
        Binding("3", "focus_pane('builder')", "Packet", id="main.focus-builder"),
        Binding("4", "focus_pane('trace')", "Trace", id="main.focus-trace"),
        Binding("t", "trace", "Run trace", id="main.trace",
                tooltip="trace the packet builder's packet; the trace view opens on its first hop"),
        Binding("y", "copy('auto')", "Copy", id="main.copy",
                tooltip="the rule as an iptables-save line (the iptables -L command on a chain); the trace as "
                "text in the trace view. OSC 52 and/or the local clipboard: KPTUI_CLIPBOARD=auto|osc52|native"),
        Binding("Y", "copy('list')", "Copy iptables -L", show=False, id="main.copy-list",
                tooltip="iptables -t TABLE -L CHAIN -nv for the chain under the cursor"),
        Binding("ctrl+s", "export", "Save trace", id="main.export",
                tooltip="a file name ending .json saves kptui.trace/1 JSON, anything else Markdown"),
        Binding("colon", "jump", "Jump to chain", id="main.jump", tooltip="fuzzy search over every chain name"),
        Binding("h", "hot_rules", "Hot rules", id="main.hot-rules",
                tooltip="watch mode: the rules whose counters moved, hottest first; enter jumps to one"),
        Binding("w", "pause_watch", "Pause/resume watch", id="main.pause-watch",
                tooltip="watch mode: stop re-reading the rules (the screen stays as it is) or start again"),
        Binding("right_curly_bracket", "kernel_traversal(1)", "Next traversal", id="main.kernel-next",
                tooltip="--kernel-trace: replay the log's next traversal (packet) and compare it"),
        Binding("left_curly_bracket", "kernel_traversal(-1)", "Prev traversal", id="main.kernel-previous"),
    ]

    def __init__(self, ruleset: Ruleset, insights: Insights, *, clipboard: Clipboard, writer: Writer,
                 packet: Packet | None = None, node: NodeContext | None = None, all_hops: bool = False,
                 callers_indexed: bool = True, watcher: Watcher | None = None, carry: Carry | None = None,
                 kernel: KernelWalks | None = None) -> None:
        super().__init__()
        self.kernel = KernelTraceController(self, kernel) if kernel is not None else None
        self.watcher = watcher
        self.carry = carry  # a watch refresh: the previous screen's state, put back on mount
        self.callers_indexed = callers_indexed
        self.ruleset = ruleset
        self.insights = insights
        self.clipboard = clipboard
        self.writer = writer
        self.initial = (packet, node)
        self.all_hops = all_hops
        self.trace: Trace | None = None
        self.step: tuple[Loc, Hop] | None = None
        self._chains: list[Candidate] | None = None

    def compose(self) -> ComposeResult:
        moves = None
        if self.watcher is not None:
            yield Static(id="watch-bar", markup=False)
            moves = (rule_deltas(self.watcher.diff), chain_deltas(self.watcher.diff))
        with Horizontal(id="top"):
            yield ChainTreePane(self.ruleset, self.insights, id="tree-pane", moves=moves)
            yield RuleDetail(self.ruleset, self.insights, id="detail", callers_indexed=self.callers_indexed)
        with ContentSwitcher(initial="builder", id="bottom"):
            yield PacketBuilder(id="builder", pod_cidr=self.insights.pod_cidr, family=self.ruleset.family)
            yield TraceView(id="trace")
        yield Footer()

    # -- panes ------------------------------------------------------------------------------------------
    @property
    def chains(self) -> ChainTreePane:
        return self.query_one(ChainTreePane)

    @property
    def detail(self) -> RuleDetail:
        return self.query_one(RuleDetail)

    @property
    def builder(self) -> PacketBuilder:
        return self.query_one(PacketBuilder)

    @property
    def trace_view(self) -> TraceView:
        return self.query_one(TraceView)

    def on_mount(self) -> None:
        for pane_id, title in (("tree-pane", "1 chains"), ("detail", "2 detail"), ("builder", "3 packet"),
                               ("trace", "4 trace")):  # fmt: skip
            self.query_one(f"#{pane_id}").border_title = title
        start = Loc("nat", "KUBE-SERVICES") if self.ruleset.chain("nat", "KUBE-SERVICES") else None
        if (start is None or not self.chains.reveal(start)) and self.ruleset.tables:
            self.chains.reveal(Loc(next(iter(self.ruleset.tables))))
        self.chains.chain_tree.focus()
        if self.watcher is not None:
            self.update_watch_bar()
            self.set_interval(1.0, self.update_watch_bar)
        # The packet builder's Selects finish composing their parts after this handler: fill them after the
        # first refresh (setting a Select's value earlier fails now and then).
        self.call_after_refresh(self._fill_builder)

    ready = False  # composed, mounted and refreshed once: a watch refresh may read its state

    def _fill_builder(self) -> None:
        self.ready = True
        if self.carry is not None:
            self.restore(self.carry)
            return
        packet, node = self.initial
        if packet is not None or node is not None:
            self.builder.fill(packet, node)
        if packet is not None:
            self.call_after_refresh(self.builder.request_trace)
        if self.kernel is not None:  # --kernel-trace: the log's traversal against the engine's simulation
            self.call_after_refresh(self.kernel.start)

    def callers_ready(self) -> None:
        """The app finished indexing who jumps where (big dumps do it after the first paint)."""
        self.callers_indexed = True
        self.detail.callers_ready()
        if self.watcher is None:  # a dump: index it for the filter now, so the first `/` answers at once (watch
            self.chains.prepare_search()  # mode rebuilds the screen on every read: there, the first `/` does)

    # -- coordination ------------------------------------------------------------------------------------
    def _show(self, loc: Loc) -> None:
        hop = self.step[1] if self.step is not None and self.step[0] == loc else None
        if self.detail.loc != loc or self.detail.hop is not hop:
            self.detail.show(loc, hop)
        self.builder.set_service(self.service_info(loc))

    def on_rule_highlighted(self, message: RuleHighlighted) -> None:
        if message.loc == self.chains.cursor_loc:  # else stale: the cursor has moved on (a reveal passes
            self._show(message.loc)  # through other nodes as it expands chains; each posts a highlight)

    def on_chain_highlighted(self, message: ChainHighlighted) -> None:
        if message.loc == self.chains.cursor_loc:
            self._show(message.loc)

    def on_navigate_requested(self, message: NavigateRequested) -> None:
        self.chains.reveal(message.loc, history=message.history)
        self.chains.chain_tree.focus()

    def on_trace_requested(self, message: TraceRequested) -> None:
        from kptui.engine.traceable import trace_refusal

        self.query_one(ContentSwitcher).current = "trace"
        refused = trace_refusal(self.ruleset, message.packet.family)
        if refused is not None:  # a dump whose tables cannot be told: never a verdict without hops
            self.new_trace_request()  # a trace still running for an earlier request is not shown
            self.trace = self.step = None
            self.trace_view.refuse(message.packet, refused)
            return
        self.trace_view.busy(message.packet)
        self._trace_in_thread(message.packet, message.node, self.new_trace_request())

    _trace_request = 0

    def new_trace_request(self) -> int:
        """A number for a trace about to be computed in a thread: only the latest request's result is shown
        (a thread cannot be stopped, so an older, slower trace may finish after a newer one)."""
        self._trace_request += 1
        return self._trace_request

    def is_latest_request(self, request: int) -> bool:
        return request == self._trace_request

    @work(thread=True, exclusive=True, group="trace", description="trace")
    def _trace_in_thread(self, packet: Packet, node: NodeContext, request: int) -> None:
        from kptui.engine.trace import trace

        result = trace(self.ruleset, packet, node)
        settle = getattr(self.app, "settle", None)
        if settle is not None:
            settle()  # the compiled prefilters the first trace built live as long as the ruleset
        self.app.call_from_thread(self._traced, result, request)

    def _traced(self, result: Trace, request: int) -> None:
        if self.is_latest_request(request):
            self._shown_request = request
            self.show_trace(result)

    _shown_request = 0

    def show_trace(self, result: Trace) -> None:
        first = self.trace is None  # later traces keep the all-hops/matched-only choice the user made
        self.trace = result
        self.query_one(ContentSwitcher).current = "trace"
        step, self.pending_step = self.pending_step, None
        self.step = None  # until the new trace's first step (a path may have none)
        if step is not None:  # a watch refresh: back to the same path and hop
            self.trace_view.show_trace(result, all_hops=step[2], path_index=step[0], keep_hop=step[1])
        else:
            self.trace_view.show_trace(result, all_hops=self.all_hops if first else None)
        self.trace_view.focus_hops()

    def on_step_changed(self, message: StepChanged) -> None:
        hops = self.trace_view.hops
        if message.trace is not hops.trace or message.path_index != hops.path_index:
            return  # a step of a trace or path replaced since: the new one's own step follows
        loc = message.loc
        self.step = (loc, message.hop)
        self.trace_view.show_step(message)
        if self.kernel is not None:
            self.kernel.on_step(message)
        self.chains.reveal(loc)
        self._show(loc)

    def service_info(self, loc: Loc) -> ServiceInfo | None:
        if loc.chain is None:
            return None
        name = None
        if loc.index is not None:
            chain = self.ruleset.chain(loc.table, loc.chain)
            if chain is not None and 1 <= loc.index <= len(chain.rules):
                row = rows_of(chain)[loc.index - 1]
                if row[4] is not None:
                    name = self.insights.service_of(loc.table, row[4])
                name = name or service_in_comment(comment_of(row[1]))
        name = name or self.insights.service_of(loc.table, loc.chain)
        return self.insights.services.get(name) if name else None

    # -- actions -------------------------------------------------------------------------------------------
    def action_focus_pane(self, pane: str) -> None:
        if pane == "tree":
            self.chains.chain_tree.focus()
        elif pane == "detail":
            self.detail.focus_links()
        elif pane == "builder":
            self.query_one(ContentSwitcher).current = "builder"
            self.builder.focus_first()
        else:
            self.query_one(ContentSwitcher).current = "trace"
            self.trace_view.focus_hops()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("hot_rules", "pause_watch"):
            return self.watcher is not None  # the keys only exist in watch mode
        if action == "kernel_traversal":
            return self.kernel is not None
        return True

    def action_trace(self) -> None:
        if not self.builder.request_trace():
            self.query_one(ContentSwitcher).current = "builder"
            self.builder.focus_first(self.builder.first_error())

    def action_kernel_traversal(self, delta: int) -> None:
        if self.kernel is not None:
            self.kernel.step(delta)

    def action_jump(self) -> None:
        self.app.push_screen(CommandPalette(providers=[ChainCommands], placeholder="Jump to chain…"))

    def goto(self, loc: Loc) -> None:
        self.chains.reveal(loc, history=True)
        self.chains.chain_tree.focus()

    def _copy(self, text: str, what: str) -> None:
        ok, message = self.clipboard.copy(text, what)
        self.notify(printable(message), severity="information" if ok else "warning", markup=False)

    def action_copy(self, what: str = "auto") -> None:
        loc = self.detail.loc
        if what == "auto":
            in_trace = self.trace_view in self.focused.ancestors_with_self if self.focused else False
            what = "trace" if in_trace and self.trace else "rule" if loc and loc.kind == "rule" else "list"
        if what == "trace":
            if self.trace is None:
                self.notify("No trace to copy yet (t runs one)", severity="warning")
                return
            text = "\n".join(printable(line) for line in trace_text(
                self.trace, all_hops=self.trace_view.hops.all_hops).split("\n"))  # fmt: skip
            self._copy(text, "the trace as text")
        elif what == "rule" and loc is not None and (rule := rule_at(self.ruleset, loc)) is not None:
            self._copy(printable(rule.raw), f"rule {printable(str(loc))} as an iptables-save line")
        elif loc is not None and loc.chain is not None:
            tool = "ip6tables" if self.ruleset.family == "ipv6" else "iptables"
            table = f"-t {shlex.quote(printable(loc.table))} " if loc.table else ""
            cmd = f"{tool} {table}-L {shlex.quote(printable(loc.chain))} -nv"
            self._copy(cmd, f"'{cmd}'")
        else:
            self.notify("Nothing to copy here: put the cursor on a chain or rule", severity="warning")

    def action_export(self, fmt: str = "markdown") -> None:
        if self.trace is None:
            self.notify("No trace to save yet (t runs one)", severity="warning")
            return
        default = "kptui-trace.json" if fmt == "json" else "kptui-trace.md"
        self.app.push_screen(SaveScreen(default, self.save_trace))

    def save_trace(self, path: str, *, replace: bool = False) -> str | Exists | None:
        """Write the current trace to ``path`` (format by extension): None when written, Exists when a file is
        there and ``replace`` is not set (the dialog asks first), else an error message."""
        if self.trace is None:
            return "no trace to save"
        fmt = format_for(path)
        text = trace_json(self.trace) if fmt == "json" else trace_markdown(self.trace, source=self.ruleset.source)
        try:
            replaced = self.writer(path, text, replace=replace)
        except FileExistsError:
            return Exists(path)
        except OSError as exc:
            return f"cannot write {path}: {exc.strerror or exc}"
        self.notify(saved_message(path, fmt, replaced=replaced), markup=False)
        return None

    # -- watch mode ---------------------------------------------------------------------------------------------
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

    # -- palette candidates --------------------------------------------------------------------------------
    def chain_candidates(self) -> list[Candidate]:
        if self._chains is None:
            self._chains = chain_commands(self)
        return self._chains

    def command_candidates(self) -> list[Candidate]:
        return screen_commands(self)

    def run_preset(self, service: ServiceInfo, index: int) -> None:
        self.builder.set_service(service)
        if self.builder.apply_preset(index, service):  # this service's preset, whatever the pane shows
            self.action_trace()
