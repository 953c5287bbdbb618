"""The main screen: it composes the four panes and coordinates them.

Panes post messages up (rule highlighted, navigate, trace requested, step changed); the screen answers by
calling the panes' public methods (attributes down). It also owns the screen-wide keys: pane focus (1-4),
trace (t), copy (y/Y), save (ctrl+s), jump to chain (:). Copy and save are :class:`kptui.ui.screen_copy.CopyExport`,
watch mode's bar, keys and refresh in place :class:`kptui.ui.screen_watch.WatchScreen`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette, Provider
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Input, Static

from kptui.engine import ParseError, Ruleset
from kptui.engine.nft import NftRuleset
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.schedule import Netfilter
from kptui.engine.trace_model import Hop, Trace
from kptui.fmt import printable

from .chain_tree import ChainTreePane
from .clipboard import Clipboard
from .commands import Candidate, ChainCommands, KptuiCommands, chain_commands, screen_commands
from .entry_counts import EntryCounts
from .export import Writer
from .focus import focus_now
from .header import HeaderBar
from .kernel_trace_view import KernelTraceCommands, KernelTraceController, KernelWalks
from .locs import Loc, rows_of
from .messages import ChainHighlighted, NavigateRequested, RuleHighlighted, StepChanged, TraceRequested
from .nft_insights import hop_loc, trace_rules
from .packet_builder import PacketBuilder
from .rule_detail import RuleDetail
from .screen_copy import CopyExport
from .screen_watch import WatchScreen
from .services import Insights, ServiceInfo, comment_of, service_in_comment
from .trace_view import TraceView
from .watch import Watcher, chain_deltas, rule_deltas

__all__ = ["MainScreen"]


class MainScreen(CopyExport, WatchScreen, Screen[None]):
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ChainCommands, KptuiCommands,
                                                                              KernelTraceCommands}
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012 - Screen declares it a plain attribute
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "focus_pane('tree')", "Tree", priority=True, id="main.focus-tree"),
        Binding("2", "focus_pane('detail')", "Detail", priority=True, id="main.focus-detail"),
        Binding("3", "focus_pane('builder')", "Packet", priority=True, id="main.focus-builder"),
        Binding("4", "focus_pane('trace')", "Trace", priority=True, id="main.focus-trace"),
        # 1-4 are handled as they arrive (priority), so keys typed right behind them reach the pane they open (a
        # key goes to the widget focused when it arrives); in a text field they type digits (check_action), and
        # alt+1-4 switch panes from anywhere
        Binding("alt+1", "pane_from_field('tree')", "Tree (from a field)", show=False, priority=True,
                id="main.alt-focus-tree"),
        Binding("alt+2", "pane_from_field('detail')", "Detail (from a field)", show=False, priority=True,
                id="main.alt-focus-detail"),
        Binding("alt+3", "pane_from_field('builder')", "Packet (from a field)", show=False, priority=True,
                id="main.alt-focus-builder"),
        Binding("alt+4", "pane_from_field('trace')", "Trace (from a field)", show=False, priority=True,
                id="main.alt-focus-trace"),
        Binding("t", "trace", "Run trace", id="main.trace",
                tooltip="trace the packet builder's packet; the trace view opens on its first hop"),
        Binding("y", "copy('auto')", "Copy", id="main.copy",
                tooltip="the rule as an iptables-save line, an nft rule or element as nft lists it (the iptables -L "
                "or nft list command on a chain); the trace as text in the trace view. OSC 52 and/or the local "
                "clipboard: KPTUI_CLIPBOARD=auto|osc52|native"),
        Binding("Y", "copy('list')", "Copy iptables -L", show=False, id="main.copy-list",
                tooltip="iptables -t TABLE -L CHAIN -nv for the chain under the cursor; in an nft table nft list "
                "chain|set|map FAMILY TABLE NAME"),
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
                 callers_indexed: bool = True, watcher: Watcher | None = None,
                 kernel: KernelWalks | None = None, nft: NftRuleset | None = None,
                 netfilter: Callable[[int], Ruleset | Netfilter | None] | None = None,
                 origin: str | None = None) -> None:
        super().__init__()
        self.nft = nft  # the nft listing behind the view's nft tables (kptui.engine.nft.display), or None
        # what a trace of a packet of a family walks, when not the view's own rules (a snapshot's netfilter)
        self.netfilter = netfilter
        self.origin = origin  # where the rules come from, for the header (None: the app's)
        self.kernel = KernelTraceController(self, kernel) if kernel is not None else None
        self.watcher = watcher
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
        self.entries = EntryCounts(ruleset)  # what entered each user chain (a big dump's: counted in a thread)

    def compose(self) -> ComposeResult:
        moves = None
        yield HeaderBar(id="watch-bar" if self.watcher is not None else "source-bar", markup=False)
        if self.watcher is not None:
            moves = (rule_deltas(self.watcher.diff), chain_deltas(self.watcher.diff))
        with Horizontal(id="top"):
            yield ChainTreePane(self.ruleset, self.insights, id="tree-pane", moves=moves, entries=self.entries)
            yield RuleDetail(self.ruleset, self.insights, id="detail", callers_indexed=self.callers_indexed,
                             entries=self.entries)  # fmt: skip
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
        try:
            panes = [self.query_one(f"#{pane_id}") for pane_id in ("tree-pane", "detail", "builder", "trace")]
        except NoMatches:  # the app is ending (ctrl+q as the screen came up): its panes are gone already
            return
        for pane, title in zip(panes, ("1 chains", "2 detail", "3 packet", "4 trace")):
            pane.border_title = title
        start = Loc("nat", "KUBE-SERVICES") if self.ruleset.chain("nat", "KUBE-SERVICES") else \
            next((Loc(t, "services") for t in ("ip kube-proxy", "ip6 kube-proxy") if self.ruleset.chain(t, "services")),
                 None)  # fmt: skip
        if (start is None or not self.chains.reveal(start)) and self.ruleset.tables:
            self.chains.reveal(Loc(next(iter(self.ruleset.tables))))
        focus_now(self.chains.chain_tree)
        if self.watcher is not None:
            self.update_watch_bar()
            self.set_interval(1.0, self.update_watch_bar)
        else:
            self.query_one(HeaderBar).show_source(self.ruleset, self.origin or getattr(self.app, "origin", None))
        # The packet builder's Selects finish composing their parts after this handler: fill them after the
        # first refresh (setting a Select's value earlier fails now and then).
        self.call_after_refresh(self._fill_builder)

    ready = False  # composed, mounted and refreshed once: a watch refresh may read its state

    def _fill_builder(self) -> None:
        self.ready = True
        packet, node = self.initial
        if packet is not None or node is not None:
            self.builder.fill(packet, node)
        if packet is not None:
            self.call_after_refresh(self.builder.request_trace)
        if self.kernel is not None:  # --kernel-trace: the log's traversal against the engine's simulation
            self.call_after_refresh(self.kernel.start)

    def insights_ready(self) -> None:
        """The insights this screen was made with (:class:`~kptui.ui.pending_insights.PendingInsights`) have what
        they stood in for: the service names in the tree's labels, the detail pane and the builder's presets."""
        if not self.is_attached:
            return
        self.chains.chain_tree.relabel(kinds=("chain",))
        self.detail.show(self.detail.loc, self.detail.hop)
        self.builder.reload(pod_cidr=self.insights.pod_cidr, family=self.ruleset.family)
        cursor = self.chains.cursor_loc
        self.builder.set_service(self.service_info(cursor) if cursor is not None else None)

    def callers_ready(self) -> None:
        """The app finished indexing who jumps where (big dumps do it after the first paint)."""
        self.callers_indexed = True
        self.detail.callers_ready()
        if not self.entries.at_once:
            self._count_entries(self.entries)
        if self.watcher is None:  # a dump: index it for the filter now, so the first `/` answers at once (watch
            self.chains.prepare_search()  # mode rebuilds the screen on every read: there, the first `/` does)

    @work(thread=True, exclusive=True, group="entries", description="count what entered each chain")
    def _count_entries(self, entries: EntryCounts) -> None:
        entries.compute()
        self.app.call_from_thread(self._entries_counted, entries)

    def _entries_counted(self, entries: EntryCounts) -> None:
        if entries is self.entries and self.is_attached:  # (not the counts of rules replaced since)
            self.chains.chain_tree.relabel(kinds=("chain",))
            self.detail.show(self.detail.loc, self.detail.hop)

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
        focus_now(self.chains.chain_tree)

    def on_trace_requested(self, message: TraceRequested) -> None:
        from kptui.engine.traceable import trace_refusal

        self.query_one(ContentSwitcher).current = "trace"
        # (the view's own rules: the dump, or its iptables tables beside the nft listing, whose base chains count)
        refused = trace_refusal(trace_rules(self.ruleset, self.nft), message.packet.family)
        if refused is not None:  # a dump whose tables cannot be told: never a verdict without hops
            self.new_trace_request()  # a trace still running for an earlier request is not shown
            self.trace = self.step = None
            self.trace_view.refuse(message.packet, refused)
            return
        self.trace_view.busy(message.packet)
        self._asked = (message.packet, message.node)
        self._trace_in_thread(message.packet, message.node, self.new_trace_request())

    _asked: tuple[Packet, NodeContext] | None = None  # the packet and node of the latest trace asked for

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

        try:  # a bundle's dump of the other family is parsed on its first trace
            rules = self.netfilter(packet.family) if self.netfilter is not None else None
        except ParseError as exc:
            self.app.call_from_thread(self._trace_failed, exc.diagnostic.format(), request)
            return
        result = trace(rules if rules is not None else trace_rules(self.ruleset, self.nft), packet, node)
        settle = getattr(self.app, "settle", None)
        if settle is not None:
            settle()  # the compiled prefilters the first trace built live as long as the ruleset
        self.app.call_from_thread(self._traced, result, request)

    def _trace_failed(self, message: str, request: int) -> None:
        if self.is_attached and self.is_latest_request(request):
            self.trace_view.query_one("#trace-title", Static).update(Text("no trace: the rules it needs do not parse"))
            self.notify(printable(message), title="trace", severity="error", markup=False)

    def _traced(self, result: Trace, request: int) -> None:
        if not self.is_attached:  # the app is ending: a trace still running then has no screen to show on
            return
        if self.is_latest_request(request):
            self._shown_request = request
            self.show_trace(result, quiet=request == self._refresh_request)

    _shown_request = 0
    _refresh_request = -1  # the trace a watch refresh ran again on the new rules
    _quiet_since = 0.0  # when that refresh came: the step of its trace moves nothing until the next key
    _quiet_trace: Trace | None = None

    def show_trace(self, result: Trace, *, quiet: bool = False) -> None:
        """Show a trace on its first hop, the trace pane focused; ``quiet`` (a watch refresh traced the same
        packet again on the new rules): on the same path and hop, and neither the focus, the pane shown nor
        the tree's cursor moves."""
        first = self.trace is None  # later traces keep the all-hops/matched-only choice the user made
        self.trace = result
        self._quiet_trace = result if quiet else None
        step, self.pending_step = self.pending_step, None
        self.step = None  # until the new trace's first step (a path may have none)
        if not quiet:
            self.query_one(ContentSwitcher).current = "trace"
        if step is not None:  # a watch refresh: back to the same path and hop
            self.trace_view.show_trace(result, all_hops=step[2], path_index=step[0], keep_hop=step[1])
        else:
            self.trace_view.show_trace(result, all_hops=self.all_hops if first else None)
        if not quiet:
            self.trace_view.focus_hops()

    def on_step_changed(self, message: StepChanged) -> None:
        hops = self.trace_view.hops
        if message.trace is not hops.trace or message.path_index != hops.path_index:
            return  # a step of a trace or path replaced since: the new one's own step follows
        loc = hop_loc(message.hop, self.ruleset.tables)  # an nft hop: its table under its family (ip kube-proxy)
        self.step = (loc, message.hop)
        self.trace_view.show_step(message)
        if self.kernel is not None:
            self.kernel.on_step(message)
        if message.trace is self._quiet_trace and getattr(self.app, "last_input", 0.0) < self._quiet_since:
            if self.chains.cursor_loc == loc:  # a watch refresh's step: the tree stays where the user left it
                self._show(loc)
            return
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
            focus_now(self.chains.chain_tree)
        elif pane == "detail":
            self.detail.focus_links()
        elif pane == "builder":
            self.query_one(ContentSwitcher).current = "builder"
            self.builder.focus_first()
        else:
            self.query_one(ContentSwitcher).current = "trace"
            self.trace_view.focus_hops()

    def action_pane_from_field(self, pane: str) -> None:
        self.action_focus_pane(pane)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_pane" and isinstance(self.focused, Input):
            return False  # the field takes the digit: the footer must not say it switches panes
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
        focus_now(self.chains.chain_tree)

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
