"""The kptui app and :func:`make_app`, the one factory the CLI, Pilot tests, snapshots and benchmarks use.

Given dump bytes, the app parses them in a thread behind a loading screen (what it reads: name, size, lines;
then the lines parsed of the total and what the load is doing), then shows the main screen. Given a parsed ruleset, it
shows the main screen at once. A dump that does not parse ends the app with exit code 2 and the parser's
message in :attr:`KptuiApp.error_message` for the caller to print. Given a live reader, it reads behind the
loading screen, and with ``watch`` again and again.

This module loads the rules and shows the main screen on them; watch mode's refresh is
:class:`kptui.ui.app_watch.WatchRefresh`, the garbage collector's pacing :class:`kptui.ui.app_gc.GcPacing`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import ClassVar, Protocol

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from kptui.engine import ParseError, Ruleset, parse_ruleset_bytes
from kptui.engine.graph import graph_of
from kptui.engine.kernel_replay_walks import KernelWalks
from kptui.engine.packet import NodeContext, Packet
from kptui.fmt import out_of_memory, parse_progress, plural, printable
from kptui.forked import can_fork, spawn
from kptui.top import ReadFailed, Reading

from .app_gc import IDLE_SECONDS, GcPacing
from .app_watch import WatchRefresh
from .chain_tree import ChainTree, ChainTreePane
from .clipboard import Clipboard
from .entry_counts import EntryCounts
from .export import Writer, no_writer
from .hop_list import HopList
from .main_screen import MainScreen
from .modals import HelpScreen, LoadingScreen, SaveScreen
from .packet_builder import PacketBuilder
from .rule_detail import RuleDetail
from .search_index import LazySearchIndex
from .services import Insights, load_insights
from .trace_view import TraceView
from .watch import Watcher

__all__ = ["HELP_SECTIONS", "KptuiApp", "LiveSource", "make_app"]


class LiveSource(Protocol):
    """Reads the live rules (:class:`kptui.node.live.LiveReader`); raises ReadFailed with a message."""

    def __call__(self) -> Reading: ...


FREEZE_GC_LINES = 50_000  # bigger dumps move their objects out of the cyclic GC's sight after parsing


class KptuiApp(WatchRefresh, GcPacing, App[int]):
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
                 kernel: KernelWalks | None = None) -> None:  # fmt: skip
        super().__init__()
        self.kernel = kernel  # --kernel-trace: a kernel trace log replayed against the rules
        if ruleset is None and data is None and reader is None:
            raise ValueError("make_app needs a ruleset, the bytes of a dump or a reader of live rules")
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
        self.source = source or (ruleset.source if ruleset is not None else None) or "<dump>"
        self.packet, self.node, self.all_hops = packet, node, all_hops
        self.writer = writer
        self.kptui_clipboard = Clipboard(self, env=env, native=native_clipboard)
        self.error_message: str | None = None
        self.insights: Insights | None = None
        self.timings: dict[str, float] = {"start": time.perf_counter()}  # for benchmarks: load milestones
        self.big = False  # a dump of FREEZE_GC_LINES lines or more
        self.last_input = time.monotonic()

    @property
    def main_screen(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def on_mount(self) -> None:
        if self.origin:
            self.sub_title = printable(self.origin)
        if self.reader is not None:
            self.push_screen(LoadingScreen("Reading this node's rules, read-only (iptables-save -c, ip -j addr, "
                                           "ip -j route) …"))  # fmt: skip
            self._read_live(first=True)
            return
        if self.ruleset is not None:
            self.big = self.ruleset.line_count >= FREEZE_GC_LINES
            self.show_ruleset(self.ruleset, load_insights(self.ruleset))
            return
        assert self.data is not None
        size = len(self.data)
        lines = self.data.count(b"\n")
        mb = f"{size / 1e6:.1f} MB" if size >= 100_000 else plural(size, "byte")
        self.push_screen(LoadingScreen(f"Reading {printable(self.source)}: {mb}, {plural(lines, 'line')} …"))
        self._load(self.data, lines)

    def _progress(self, done: int, total: int, doing: str) -> None:
        """From the loading thread: what the load has done, on the loading screen."""
        screen = self.screen
        if isinstance(screen, LoadingScreen):
            screen.show_progress(done, total, doing)

    @work(thread=True, exclusive=True, group="load", description="parse the dump")
    def _load(self, data: bytes, lines: int) -> None:
        def parsed(done: int, total: int) -> None:
            self.call_from_thread(self._progress, done, total, parse_progress(done, total))

        try:
            # The explorer has two busy threads already (the screen's and this one): the shape checks' child
            # only helps with a third core (on two shared cores it slowed the parse: docs/benchmarks.md).
            ruleset = parse_ruleset_bytes(data, source=self.source, progress=parsed,
                                          parallel=spawn if can_fork(cores=3) else None)  # fmt: skip
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
        self.call_from_thread(self._progress, lines, lines, f"parsed all {lines:,} lines; indexing the services …")
        insights = load_insights(ruleset)
        self.call_from_thread(self._progress, lines, lines, "drawing the first screen …")
        self.settle()
        self.call_from_thread(self.show_ruleset, ruleset, insights)

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
        insights = load_insights(reading.ruleset)
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
    def _index_callers(self, ruleset: Ruleset, search: LazySearchIndex | None = None) -> None:
        """The filter's text index (under a second at 500k rules), then the reverse jump index ("jumped to
        from") and the pitfall findings (seconds on a big dump): built once the screen is up, rather than on the
        first keypress that needs them, the text index first: a first filter, typed right after the first
        paint, would otherwise wait for all of them."""
        if search is not None:
            search.prepare()
        _ = graph_of(ruleset).callers
        prepare = getattr(self.insights, "prepare_findings", None)
        if prepare is not None:  # the kube engine's pitfall findings (they use the jump graph just built)
            prepare()
        self.settle()
        self.call_from_thread(self._callers_ready)

    def _callers_ready(self) -> None:
        if self.main_screen is not None:
            self.main_screen.callers_ready()

    def fail(self, message: str) -> None:
        self.error_message = message
        self.exit(2, return_code=2)

    def _main_screen(self, ruleset: Ruleset, insights: Insights) -> MainScreen:
        return MainScreen(ruleset, insights, clipboard=self.kptui_clipboard, writer=self.writer,
                          packet=self.packet, node=self.node, all_hops=self.all_hops,
                          callers_indexed=not self.big, watcher=self.watcher, kernel=self.kernel)  # fmt: skip

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

    def _painted(self, ruleset: Ruleset) -> None:
        self.timings.setdefault("painted", time.perf_counter())
        if self.big:
            screen = self.main_screen  # a dump: its filter's text index now (live: only when asked, each read
            search = screen.chains.search if screen is not None and self.reader is None else None  # replaces it)
            self._index_callers(ruleset, search)

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
    ("Help", HelpScreen),
)


def make_app(*, ruleset: Ruleset | None = None, data: bytes | None = None, source: str | None = None,
             packet: Packet | None = None, node: NodeContext | None = None, all_hops: bool = False,
             writer: Writer = no_writer, env: Mapping[str, str] | None = None,
             native_clipboard: Callable[[str], None] | None = None, reader: LiveSource | None = None,
             watch: float | None = None, origin: str | None = None, kernel: KernelWalks | None = None
             ) -> KptuiApp:  # fmt: skip
    """The kptui app for a parsed ``ruleset``, the ``data`` of a dump (parsed in a thread, with a loading
    screen) or the live rules ``reader`` returns (:class:`kptui.node.live.LiveReader`: the app runs no
    command itself); ``watch`` seconds re-read them (the interval adapts to a 10 % budget). ``packet``/
    ``node`` fill the packet builder and trace at once (a live reader brings the node's own context).
    ``origin`` says where the rules come from, in the header. ``writer`` saves files (tests pass their own);
    ``env`` and ``native_clipboard`` steer the clipboard policy (default: os.environ, pyperclip). ``kernel``
    (:func:`kptui.cli.explorer.load_kernel_log`) opens on a kernel trace log's traversal, compared with
    the engine's simulation of the same packet."""
    return KptuiApp(ruleset=ruleset, data=data, source=source, packet=packet, node=node, all_hops=all_hops,
                    writer=writer, env=env, native_clipboard=native_clipboard, reader=reader, watch=watch,
                    origin=origin, kernel=kernel)
