"""The kptui app and :func:`make_app`, the one factory the CLI, Pilot tests, snapshots and benchmarks use.

Given dump bytes, the app parses them in a thread behind a loading screen (what it reads: name, size, lines;
then the lines parsed of the total and what the load is doing), then shows the main screen. Given a parsed ruleset, it
shows the main screen at once. A dump that does not parse ends the app with exit code 2 and the parser's
message in :attr:`KptuiApp.error_message` for the caller to print. Given a live reader, it reads behind the
loading screen, and with ``watch`` again and again.

This module loads the rules and shows the main screen on them; watch mode's refresh is
:class:`kptui.ui.app_watch.WatchRefresh`, the garbage collector's pacing :class:`kptui.ui.app_gc.GcPacing`, where
a key's bindings are looked up :class:`kptui.ui.app_keys.KeysWhereFocused`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.worker import get_current_worker

from kptui.engine import ParseError, Ruleset
from kptui.engine.graph import graph_of
from kptui.engine.ipvs.display import with_ipvs
from kptui.engine.kernel_replay_walks import KernelWalks
from kptui.engine.kube.fleet_model import NodeParts
from kptui.engine.nft.display import display_ruleset
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.parser import decode_dump, parse_decoded
from kptui.fmt import out_of_memory, parse_progress, plural, printable
from kptui.forked import can_fork, spawn
from kptui.top import ReadFailed, Reading

from .app_gc import IDLE_SECONDS, GcPacing
from .app_keys import KeysWhereFocused
from .app_watch import WatchRefresh
from .chain_tree import ChainTree, ChainTreePane
from .clipboard import Clipboard
from .entry_counts import EntryCounts
from .export import Writer, no_writer
from .fleet_matrix_view import FleetMatrixPane
from .fleet_screen import FleetScreen
from .fleet_source import FleetSource
from .fleet_trace_view import FleetTracePane
from .hop_list import HopList
from .ipvs_insights import with_ipvs_insights
from .main_screen import MainScreen
from .modals import ChooseScreen, HelpScreen, LoadingScreen, SaveScreen
from .nft_insights import view_insights
from .node_screen import NodeScreen
from .packet_builder import PacketBuilder
from .pending_insights import PendingInsights, is_pending
from .rule_detail import RuleDetail
from .search_index import LazySearchIndex
from .services import Insights
from .trace_view import TraceView
from .watch import Watcher

if TYPE_CHECKING:
    from kptui.engine.ipvs.node import IpvsNode
    from kptui.engine.nft import NftRuleset
    from kptui.engine.parser import Progress
    from kptui.engine.schedule import Netfilter

__all__ = ["HELP_SECTIONS", "KptuiApp", "LiveSource", "SnapshotRules", "make_app"]


class LiveSource(Protocol):
    """Reads the live rules (:class:`kptui.node.live.LiveReader`); raises ReadFailed with a message."""

    def __call__(self) -> Reading: ...


class SnapshotRules(Protocol):
    """A source's rules as read, not yet parsed (:class:`kptui.node.snapshot.NodeSnapshot`): the iptables dump in
    use (``rules``: None without one), the nft listing, and what a trace of a packet of a family walks, the same
    :class:`~kptui.engine.schedule.Netfilter` ``kptui trace`` walks (the nft ruleset, an IPVS-mode node's side).
    The app parses them behind the loading screen; it reads no file."""

    @property
    def source(self) -> str: ...

    @property
    def rules(self) -> object | None: ...

    @property
    def nft(self) -> object | None: ...

    @property
    def ruleset(self) -> Ruleset: ...

    def parse_rules(self, progress: Progress | None = None, *, fork: bool = True) -> Ruleset: ...

    @property
    def nft_ruleset(self) -> NftRuleset | None: ...

    @property
    def ipvs_node(self) -> IpvsNode | None: ...

    def netfilter(self, family: int | None = None) -> Netfilter: ...


FREEZE_GC_LINES = 50_000  # bigger dumps move their objects out of the cyclic GC's sight after parsing


class KptuiApp(WatchRefresh, GcPacing, KeysWhereFocused, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "kptui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit-now"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, priority=True, id="app.palette"),
    ]

    def __init__(self, *, ruleset: Ruleset | None = None, data: bytes | None = None, source: str | None = None,
                 packet: Packet | None = None, node: NodeContext | None = None, all_hops: bool = False,
                 writer: Writer = no_writer, env: Mapping[str, str] | None = None,
                 native_clipboard: Callable[[str], None] | None = None, reader: LiveSource | None = None,
                 watch: float | None = None, origin: str | None = None,
                 kernel: KernelWalks | None = None, nft: NftRuleset | None = None,
                 snapshot: SnapshotRules | None = None, fleet: FleetSource | None = None) -> None:  # fmt: skip
        super().__init__()
        self.kernel = kernel  # --kernel-trace: a kernel trace log replayed against the rules
        self.fleet = fleet  # a fleet's nodes compared: the app opens on the fleet screen
        if ruleset is None and data is None and reader is None and nft is None and snapshot is None and fleet is None:
            raise ValueError("make_app needs a ruleset, an nft ruleset, the bytes of a dump, a snapshot's rules, a "
                             "reader of live rules or a fleet")  # fmt: skip
        if watch is not None and reader is None:
            raise ValueError("watch mode needs a reader of live rules")
        self.reader = reader
        self.watcher = Watcher(watch) if reader is not None and watch is not None else None
        self.origin = origin  # where the rules come from, for the header: "live node …", "capture bundle …"
        self._refreeze = False
        self._unshown: tuple[Reading, Insights, EntryCounts] | None = None  # a watch read not shown yet
        self._skipped = False  # a read came and went unshown: the next one is compared with the screen's rules
        self.ruleset = ruleset
        self.data = data
        self.nft = nft  # an nft listing: its tables beside the dump's (or alone)
        self.snapshot = snapshot  # a source's rules, parsed behind the loading screen; traces walk its netfilter
        self.source = source or (ruleset.source if ruleset is not None else None) or \
            (nft.source if nft is not None else None) or (snapshot.source if snapshot is not None else None) or \
            "<dump>"  # fmt: skip
        self.packet, self.node, self.all_hops = packet, node, all_hops
        self.writer = writer
        self.kptui_clipboard = Clipboard(self, env=env, native=native_clipboard)
        self.error_message: str | None = None
        self.insights: Insights | None = None
        self._drawn = threading.Event()  # the first screen is drawn (a big dump's service index waits for it)
        self.timings: dict[str, float] = {"start": time.perf_counter()}  # for benchmarks: load milestones
        self.big = False  # a dump of FREEZE_GC_LINES lines or more
        self.last_input = time.monotonic()
        self._key_targets = {}  # KeysWhereFocused: the keys on their way to a widget
        self._node_insights: dict[str, Insights] = {}  # a fleet's nodes, once opened

    @property
    def main_screen(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def on_mount(self) -> None:
        if self.origin:
            self.sub_title = printable(self.origin)
        if self.fleet is not None:
            self.push_screen(FleetScreen(self.fleet, self.open_node))
            return
        if self.reader is not None:
            self.push_screen(LoadingScreen("Reading this node's rules, read-only (iptables-save -c, ip -j addr, "
                                           "ip -j route) …"))  # fmt: skip
            self._read_live(first=True)
            return
        if self.data is None and self.snapshot is None:
            view = display_ruleset(self.ruleset, self.nft)
            self.big = view.line_count >= FREEZE_GC_LINES
            self.show_ruleset(view, view_insights(view, self.nft))
            return
        parts = [self.data] if self.data is not None else \
            [getattr(p, "data", b"") for p in (self.snapshot.rules, self.snapshot.nft) if p is not None]  # type: ignore[union-attr]  # fmt: skip
        size = sum(len(p) for p in parts)
        lines = sum(p.count(b"\n") for p in parts)
        mb = f"{size / 1e6:.1f} MB" if size >= 100_000 else plural(size, "byte")
        self.push_screen(LoadingScreen(f"Reading {printable(self.source)}: {mb}, {plural(lines, 'line')} …", lines))
        self._load(lines)

    def _progress(self, done: int, total: int, doing: str) -> None:
        """From the loading thread: what the load has done, on the loading screen."""
        screen = self.screen
        if isinstance(screen, LoadingScreen):
            screen.show_progress(done, total, doing)

    @work(thread=True, exclusive=True, group="load", description="parse the dump")
    def _load(self, lines: int) -> None:
        def parsed(done: int, total: int) -> None:
            self.call_from_thread(self._progress, done, total, parse_progress(done, total))

        snap = self.snapshot
        # The explorer has two busy threads already (the screen's and this one): the shape checks' child only
        # helps with a third core (on two shared cores it slowed the parse: docs/benchmarks.md).
        fork = can_fork(cores=3)
        try:
            if self.data is not None:
                # the text, then the bytes let go (the app held the only reference): a big dump's 80 MB less at
                # the parse's peak
                decoded, self.data = decode_dump(self.data, source=self.source), None
                ruleset: Ruleset | None = parse_decoded(decoded, progress=parsed, parallel=spawn if fork else None)
                del decoded
            else:
                assert snap is not None
                ruleset = snap.parse_rules(parsed, fork=fork) if snap.rules is not None else None
                self.nft = snap.nft_ruleset
            ipvs = snap.ipvs_node if snap is not None else None  # ParseError (located) when a part is bad
            self.timings["parsed"] = time.perf_counter()
        except ParseError as exc:
            self.call_from_thread(self.fail, exc.diagnostic.format())
            return
        except MemoryError:
            self.data = None
            self.call_from_thread(self.fail, out_of_memory("the explorer, reading " + printable(self.source)))
            return
        self.data = None
        self.big = lines >= FREEZE_GC_LINES
        self.settle()  # now, not after the service index: its allocations would make the collector walk the rules
        view = with_ipvs(display_ruleset(ruleset, self.nft), ipvs)  # an IPVS node's sets and virtual services too
        if self.big and self.nft is None and ipvs is None:
            # A big dump's service index takes seconds: the first screen (tables, chains) first, then the index,
            # in this thread, once the screen is drawn (computed meanwhile, it would only slow the drawing down)
            pending = PendingInsights()
            self.call_from_thread(self._progress, lines, lines, "drawing the first screen …")
            self.call_from_thread(self.show_ruleset, view, pending)
            worker = get_current_worker()
            while not self._drawn.wait(0.05):
                if worker.is_cancelled:  # the app is ending before its first screen was drawn
                    return
            real = view_insights(view, None)
            self.settle()
            self.call_from_thread(self._insights_ready, pending, real)
            return
        self.call_from_thread(self._progress, lines, lines, f"parsed all {lines:,} lines; indexing the services …")
        insights = with_ipvs_insights(view_insights(view, self.nft), view, ipvs)
        self.call_from_thread(self._progress, lines, lines, "drawing the first screen …")
        self.settle()
        self.call_from_thread(self.show_ruleset, view, insights)

    # -- live rules and watch mode ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="read", description="read the live rules")
    def _read_live(self, first: bool) -> None:
        assert self.reader is not None
        try:
            reading = self.reader()
        except ReadFailed as exc:
            self.call_from_thread(self.fail if first else self.read_failed, str(exc))
            return
        except MemoryError:  # a watch re-read too big for memory: the last good rules stay on screen
            self.call_from_thread(self.fail if first else self.read_failed, out_of_memory("reading the live rules"))
            return
        self.big = reading.ruleset.line_count >= FREEZE_GC_LINES
        insights = view_insights(reading.ruleset, reading.nft)
        entries = EntryCounts(reading.ruleset)
        prepare = getattr(insights, "prepare_findings", None)
        if not first:  # here, in the reading thread: a refresh must not stall the screen computing them
            if self.big:
                _ = graph_of(reading.ruleset).callers  # the detail's "jumped to from"; the findings use it too
                entries.compute(refs=True)  # what entered each chain, how many rules lead to it: the tree's labels
            if prepare is not None:
                prepare()
        if first:
            self.settle()
        self.call_from_thread(self.live_read, reading, insights, first, entries)

    @work(thread=True, exclusive=True, group="index", description="index the jumps")
    def _index_callers(self, ruleset: Ruleset, insights: Insights | None = None, screen: MainScreen | None = None,
                       search: LazySearchIndex | None = None) -> None:  # fmt: skip
        """The filter's text index (under a second at 500k rules), then the reverse jump index ("jumped to
        from") and the pitfall findings (seconds on a big dump): built once the screen is up, rather than on the
        first keypress that needs them, the text index first: a first filter, typed right after the first
        paint, would otherwise wait for all of them (``insights``, ``screen``: a fleet's node's)."""
        if search is not None:
            search.prepare()
        _ = graph_of(ruleset).callers
        prepare = getattr(insights or self.insights, "prepare_findings", None)
        if prepare is not None:  # the kube engine's pitfall findings (they use the jump graph just built)
            prepare()
        self.settle()
        self.call_from_thread(self._callers_ready, screen)

    def _callers_ready(self, screen: MainScreen | None = None) -> None:
        target = screen or self.main_screen
        if target is not None and target.is_attached:
            target.callers_ready()

    def fail(self, message: str) -> None:
        self.error_message = message
        self.exit(2, return_code=2)

    def _main_screen(self, ruleset: Ruleset, insights: Insights) -> MainScreen:
        return MainScreen(ruleset, insights, clipboard=self.kptui_clipboard, writer=self.writer,
                          packet=self.packet, node=self.node, all_hops=self.all_hops,
                          callers_indexed=not self.big, watcher=self.watcher, kernel=self.kernel,
                          nft=getattr(insights, "nft", None), netfilter=self.netfilter)  # fmt: skip

    def netfilter(self, family: int) -> Ruleset | Netfilter | None:
        """What a trace of a packet of ``family`` walks when the app has a snapshot's rules (its netfilter, as
        ``kptui trace`` walks it); None: the screen's own rules (the dump, its nft listing, the live read)."""
        return self.snapshot.netfilter(family) if self.snapshot is not None else None

    def show_ruleset(self, ruleset: Ruleset, insights: Insights) -> None:
        self.ruleset, self.insights = ruleset, insights
        if self.big and hasattr(insights, "defer_findings"):
            insights.defer_findings = True  # computed after the first paint: see _index_callers
        screen = self._main_screen(ruleset, insights)
        self.timings["ready"] = time.perf_counter()
        if isinstance(self.screen, LoadingScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)
        screen.call_after_refresh(self._painted, ruleset)
        if self.big:
            self.set_interval(IDLE_SECONDS, self.collect_when_idle)
        problem = getattr(insights, "problem", None)
        if problem:
            self.notify(printable(problem), title="service index", severity="warning", markup=False)
        if ruleset.warnings:
            first = ruleset.warnings[0].format(quote=False)
            more = f" (and {len(ruleset.warnings) - 1} more)" if len(ruleset.warnings) > 1 else ""
            self.notify(f"{printable(first)}{more}", title="dump warnings", severity="warning", markup=False)

    def _insights_ready(self, pending: PendingInsights, real: Insights) -> None:
        """A big dump's service index is there (see :meth:`_load`): the panes answer with it from now on."""
        pending.resolve(real)
        if hasattr(real, "defer_findings"):
            real.defer_findings = True  # computed after this, in the background: see _index_callers
        self.timings["insights"] = time.perf_counter()
        problem = getattr(real, "problem", None)
        if problem:
            self.notify(printable(problem), title="service index", severity="warning", markup=False)
        screen = self.main_screen
        if screen is None or screen.insights is not pending:
            return
        try:
            screen.insights_ready()
            self._index_after_paint(screen.ruleset)
        except NoMatches:  # the app is ending (ctrl+q as the index came): the screen's panes are gone already
            pass

    def _painted(self, ruleset: Ruleset) -> None:
        self.timings.setdefault("painted", time.perf_counter())
        self._drawn.set()
        if not is_pending(self.insights):  # else once the service index is there (the filter's index uses it)
            self._index_after_paint(ruleset)

    def _index_after_paint(self, ruleset: Ruleset) -> None:
        if self.big:
            screen = self.main_screen  # a dump: its filter's text index now (live: only when asked, each read
            try:  # replaces it)
                search = screen.chains.search if screen is not None and self.reader is None else None
            except NoMatches:  # the app is ending: its screen's panes are gone already
                return
            self._index_callers(ruleset, search=search)

    # -- a fleet: one node's explorer over the fleet screen ------------------------------------------------
    def open_node(self, parts: NodeParts, packet: Packet | None = None) -> str | None:
        """Push the main screen on one node of the fleet (its rules, its node context; ``packet`` traced at
        once); None when it opened, else why it cannot."""
        if parts.error is not None:
            return f"its capture failed: {parts.error}"
        if parts.ruleset is None and parts.nft is None:
            return "its capture holds no rules to explore"
        ipvs = parts.ipvs_node  # parsed with the node (None when its parts did not parse: the fleet said so)
        view = with_ipvs(display_ruleset(parts.ruleset, parts.nft), ipvs)  # all its rules, as a bundle opens
        big = view.line_count >= FREEZE_GC_LINES  # as a big dump: indexed after the first paint
        insights = self._node_insights.get(parts.name)
        if insights is None:
            insights = with_ipvs_insights(view_insights(view, parts.nft), view, ipvs)
            self._node_insights[parts.name] = insights
            if big and hasattr(insights, "defer_findings"):
                insights.defer_findings = True
        origin = f"node {parts.name} of fleet {self.source}: capture bundle {parts.source}"
        in_use = 6 if view.family == "ipv6" else 4
        netfilter = parts.netfilter  # what the fleet trace walked on this node (nft and IPVS included)

        def walks(family: int) -> Ruleset | Netfilter | None:
            return netfilter if family == in_use else None  # the other family: the view's own rules

        screen = NodeScreen(view, insights, clipboard=self.kptui_clipboard, writer=self.writer,
                            packet=packet, node=parts.context, all_hops=self.all_hops, origin=origin,
                            callers_indexed=not big, node_name=parts.name, nft=parts.nft,
                            netfilter=walks)  # fmt: skip
        self.push_screen(screen)
        if big:
            screen.call_after_refresh(self._index_callers, view, insights, screen)
        return None

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(HELP_SECTIONS))


HELP_SECTIONS = (
    ("Everywhere", KptuiApp),
    ("Main screen", MainScreen),
    ("Chain tree (1)", ChainTreePane),
    ("Chain tree cursor", ChainTree),
    ("Rule detail (2)", RuleDetail),
    ("Packet builder (3)", PacketBuilder),
    ("Trace (4)", TraceView),
    ("Trace hops", HopList),
    ("Save dialog", SaveScreen),
    ("Follow which chain (enter on an nft verdict map)", ChooseScreen),
    ("Help", HelpScreen),
    ("Fleet screen (kptui DIR)", FleetScreen),
    ("Fleet services table (2)", FleetMatrixPane),
    ("Fleet trace (4)", FleetTracePane),
    ("A fleet's node", NodeScreen),
)


def make_app(*, ruleset: Ruleset | None = None, data: bytes | None = None, source: str | None = None,
             packet: Packet | None = None, node: NodeContext | None = None, all_hops: bool = False,
             writer: Writer = no_writer, env: Mapping[str, str] | None = None,
             native_clipboard: Callable[[str], None] | None = None, reader: LiveSource | None = None,
             watch: float | None = None, origin: str | None = None, kernel: KernelWalks | None = None,
             nft: NftRuleset | None = None, snapshot: SnapshotRules | None = None,
             fleet: FleetSource | None = None) -> KptuiApp:  # fmt: skip
    """The kptui app for a parsed ``ruleset``, the ``data`` of a dump (parsed in a thread, with a loading
    screen) or the live rules ``reader`` returns (:class:`kptui.node.live.LiveReader`: the app runs no
    command itself); ``watch`` seconds re-read them (the interval adapts to a 10 % budget). ``packet``/
    ``node`` fill the packet builder and trace at once (a live reader brings the node's own context).
    ``origin`` says where the rules come from, in the header. ``writer`` saves files (tests pass their own);
    ``env`` and ``native_clipboard`` steer the clipboard policy (default: os.environ, pyperclip). ``kernel``
    (:func:`kptui.cli.explorer.load_kernel_log`) opens on a kernel trace log's traversal, compared with
    the engine's simulation of the same packet. ``nft`` is an nft listing whose tables show beside the dump's,
    ordered by the priority they hook in at (or alone, without a dump), and which traces walk with it.
    ``snapshot`` (:class:`SnapshotRules`): a source's rules (a dump, an nft listing, both, a bundle's), parsed
    behind the loading screen; traces walk its netfilter (nft and IPVS included) as ``kptui trace`` does.
    ``fleet`` (:func:`kptui.ui.fleet_source.fleet_source`) opens on the fleet screen: its nodes compared, each
    node's explorer one key away."""
    return KptuiApp(ruleset=ruleset, data=data, source=source, packet=packet, node=node, all_hops=all_hops,
                    writer=writer, env=env, native_clipboard=native_clipboard, reader=reader, watch=watch,
                    origin=origin, kernel=kernel, nft=nft, snapshot=snapshot, fleet=fleet)
