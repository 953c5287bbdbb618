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
from typing import ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType

from kptui.engine import ParseError, Ruleset, parse_ruleset_bytes
from kptui.engine.packet import NodeContext, Packet
from kptui.fmt import plural, printable

from .chain_tree import ChainTree, ChainTreePane
from .clipboard import Clipboard
from .export import Writer, write_text
from .hop_list import HopList
from .main_screen import MainScreen
from .modals import HelpScreen, LoadingScreen, SaveScreen
from .packet_builder import PacketBuilder
from .rule_detail import RuleDetail
from .services import Insights, load_insights
from .trace_view import TraceView

__all__ = ["HELP_SECTIONS", "KptuiApp", "make_app"]

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
                 writer: Writer = write_text, env: Mapping[str, str] | None = None,
                 native_clipboard: Callable[[str], None] | None = None) -> None:  # fmt: skip
        super().__init__()
        if ruleset is None and data is None:
            raise ValueError("make_app needs a ruleset or the bytes of a dump")
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

    @work(thread=True, exclusive=True, group="index", description="index the jumps")
    def _index_callers(self, ruleset: Ruleset) -> None:
        """The reverse jump index ("jumped to from") takes a moment on a big dump: build it once the screen
        is up, rather than on the first keypress that needs it."""
        _ = ruleset.graph.callers
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
        if time.monotonic() - self.last_input >= IDLE_SECONDS and gc.get_count()[2] >= GC_FULL_AFTER:
            gc.collect()

    def fail(self, message: str) -> None:
        self.error_message = message
        self.exit(2, return_code=2)

    def show_ruleset(self, ruleset: Ruleset, insights: Insights) -> None:
        self.ruleset, self.insights = ruleset, insights
        screen = MainScreen(ruleset, insights, clipboard=self.kptui_clipboard, writer=self.writer,
                            packet=self.packet, node=self.node, all_hops=self.all_hops,
                            callers_indexed=not self.big)  # fmt: skip
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
             writer: Writer = write_text, env: Mapping[str, str] | None = None,
             native_clipboard: Callable[[str], None] | None = None) -> KptuiApp:  # fmt: skip
    """The kptui app for a parsed ``ruleset`` or the ``data`` of a dump (parsed in a thread, with a loading
    screen). ``packet``/``node`` fill the packet builder and trace at once. ``writer`` saves files (tests
    pass their own); ``env`` and ``native_clipboard`` steer the clipboard policy (default: os.environ,
    pyperclip)."""
    return KptuiApp(ruleset=ruleset, data=data, source=source, packet=packet, node=node, all_hops=all_hops,
                    writer=writer, env=env, native_clipboard=native_clipboard)
