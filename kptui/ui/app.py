"""The kptui app and :func:`make_app`, the one factory the CLI, Pilot tests, snapshots and benchmarks use.

Given dump bytes, the app parses them in a thread behind a loading screen (the parser cannot report progress,
so the screen says what it reads: name, size, lines), then shows the main screen. Given a parsed ruleset, it
shows the main screen at once. A dump that does not parse ends the app with exit code 2 and the parser's
message in :attr:`KptuiApp.error_message` for the caller to print.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from typing import ClassVar, Protocol

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType

from kptui.engine import ParseError, Ruleset, parse_ruleset_bytes
from kptui.engine.kernel_replay_walks import KernelWalks
from kptui.engine.packet import NodeContext, Packet
from kptui.fmt import plural, printable
from kptui.top import ReadFailed, Reading

from .chain_tree import ChainTree, ChainTreePane
from .clipboard import Clipboard
from .entry_counts import EntryCounts
from .export import Writer, no_writer
from .hop_list import HopList
from .main_screen import MainScreen
from .modals import HelpScreen, LoadingScreen, SaveScreen
from .packet_builder import PacketBuilder
from .rule_detail import RuleDetail
from .services import Insights, load_insights
from .trace_view import TraceView
from .watch import Watcher

__all__ = ["HELP_SECTIONS", "KptuiApp", "LiveSource", "make_app"]


class LiveSource(Protocol):
    """Reads the live rules (:class:`kptui.live.commands.LiveReader`); raises ReadFailed with a message."""

    def __call__(self) -> Reading: ...

FREEZE_GC_LINES = 50_000  # bigger dumps move their objects out of the cyclic GC's sight after parsing
GC_FULL_NEVER = 1_000_000  # generation-1 collections before an automatic full one: never, in practice
GC_FULL_AFTER = 10  # Python's default threshold2, applied by collect_when_idle instead
IDLE_SECONDS = 1.0


class KptuiApp(App[int]):
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

    @work(thread=True, exclusive=True, group="load", description="parse the dump")
    def _load(self, data: bytes, lines: int) -> None:
        try:
            ruleset = parse_ruleset_bytes(data, source=self.source)
            self.timings["parsed"] = time.perf_counter()
        except ParseError as exc:
            self.call_from_thread(self.fail, exc.diagnostic.format())
            return
        self.data = None
        self.big = lines >= FREEZE_GC_LINES
        insights = load_insights(ruleset)
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
        self.big = reading.ruleset.line_count >= FREEZE_GC_LINES
        insights = load_insights(reading.ruleset)
        entries = EntryCounts(reading.ruleset)
        prepare = getattr(insights, "prepare_findings", None)
        if not first:  # here, in the reading thread: a refresh must not stall the screen computing them
            if self.big:
                _ = reading.ruleset.graph.callers  # the detail's "jumped to from"; the findings use it too
                entries.compute()
            if prepare is not None:
                prepare()
        if first:
            self.settle()
        self.call_from_thread(self.live_read, reading, insights, first, entries)

    def live_read(self, reading: Reading, insights: Insights, first: bool,
                  entries: EntryCounts | None = None) -> None:  # fmt: skip
        """A read arrived: the first shows the main screen; later ones (watch mode) refresh it in place on the
        new rules (:meth:`MainScreen.reload`)."""
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
        same = diff is not None and diff.unchanged and not self._skipped  # the diff is from the shown rules
        self._unshown, self._skipped = None, False
        self.ruleset, self.insights = reading.ruleset, insights
        screen.reload(reading.ruleset, insights, entries=entries, same=same)
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

    @work(thread=True, exclusive=True, group="index", description="index the jumps")
    def _index_callers(self, ruleset: Ruleset) -> None:
        """The reverse jump index ("jumped to from") takes a moment on a big dump: build it once the screen
        is up, rather than on the first keypress that needs it."""
        _ = ruleset.graph.callers
        prepare = getattr(self.insights, "prepare_findings", None)
        if prepare is not None:  # the kube engine's pitfall findings (they use the jump graph just built)
            prepare()
        self.settle()
        self.call_from_thread(self._callers_ready)

    def _callers_ready(self) -> None:
        if self.main_screen is not None:
            self.main_screen.callers_ready()

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
        if self._refreeze:  # a watch refresh replaced the rules: free the old ones, then freeze the new
            self._refreeze = False
            gc.collect()
            gc.freeze()
        elif gc.get_count()[2] >= GC_FULL_AFTER:
            gc.collect()

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
            self._index_callers(ruleset)

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
    screen) or the live rules ``reader`` returns (:class:`kptui.live.commands.LiveReader`: the app runs no
    command itself); ``watch`` seconds re-read them (the interval adapts to a 10 % budget). ``packet``/
    ``node`` fill the packet builder and trace at once (a live reader brings the node's own context).
    ``origin`` says where the rules come from, in the header. ``writer`` saves files (tests pass their own);
    ``env`` and ``native_clipboard`` steer the clipboard policy (default: os.environ, pyperclip). ``kernel``
    (:func:`kptui.explorer_command.load_kernel_log`) opens on a kernel trace log's traversal, compared with
    the engine's simulation of the same packet."""
    return KptuiApp(ruleset=ruleset, data=data, source=source, packet=packet, node=node, all_hops=all_hops,
                    writer=writer, env=env, native_clipboard=native_clipboard, reader=reader, watch=watch,
                    origin=origin, kernel=kernel)
