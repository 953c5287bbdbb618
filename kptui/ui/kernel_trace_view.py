"""A real kernel trace log in the explorer (``kptui FILE --kernel-trace LOG``).

:func:`parse_kernel_log` reads the log's bytes (which the CLI reads; errors name the file and line). On the main screen a
:class:`KernelTraceController` replays one traversal against the dump (:func:`kptui.engine.kernel_replay.replay`,
in a thread) and shows it in the trace view like a simulated trace: path 1 is the kernel's walk (each hop on the
dump's rule it matched), path 2 the engine's simulation of the same packet (``[``/``]`` switch), the hops where
the two differ are highlighted, and a summary line says where they diverge. ``{``/``}`` and the palette
(``trace: kernel traversal N``) pick another traversal of the log. Log text is untrusted: printable, never markup.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import OptionList, Static

from kptui.engine.kernel_replay import KernelReplay, packet_from_kernel, replay
from kptui.engine.kernel_replay_walks import KernelWalks, kernel_walks, walk_label
from kptui.engine.kernel_trace import KernelTrace
from kptui.engine.nft.display import xtables_of
from kptui.engine.trace_report import path_summary
from kptui.fmt import printable

from .commands import Candidate, _ScreenProvider
from .messages import StepChanged

if TYPE_CHECKING:
    from .main_screen import MainScreen

__all__ = ["KernelTraceCommands", "KernelTraceController", "KernelWalks", "parse_kernel_log"]

def parse_kernel_log(data: bytes, name: str) -> KernelWalks:
    """The traversals of a ``--kernel-trace`` log's bytes (read by the CLI); ValueError naming ``name`` and the
    line unless it holds a traversal whose packet the engine can simulate."""
    walks = kernel_walks(data.decode("utf-8", errors="replace"), printable(name))
    packet_from_kernel(walks.walks[walks.default])
    return walks


class KernelTraceCommands(_ScreenProvider):
    """``trace: kernel traversal N  line L: SRC → DST …``: open another traversal of the kernel trace log."""

    def candidates(self) -> list[Candidate]:
        kernel = getattr(self.main, "kernel", None)
        return kernel.candidates() if isinstance(kernel, KernelTraceController) else []


class KernelTraceController:
    """Replays the log's traversals on one main screen and dresses the trace view for them."""

    def __init__(self, screen: MainScreen, walks: KernelWalks) -> None:
        self.screen = screen
        self.walks = walks
        self.index = walks.default
        self.replay: KernelReplay | None = None

    # -- what the screen calls --------------------------------------------------------------------------
    def start(self) -> None:
        for warning in self.walks.warnings[:1]:
            more = len(self.walks.warnings) - 1
            self.screen.notify(printable(warning) + (f" (and {more} more lines skipped)" if more else ""),
                               title="kernel trace log", severity="warning", markup=False)  # fmt: skip
        self.select(self.walks.default)

    def select(self, index: int) -> None:
        """Replay traversal ``index`` (0-based) in a thread; it shows when ready."""
        walk = self.walks.walks[index % len(self.walks.walks)]
        self.screen.trace_view.query_one("#trace-title", Static).update(
            Text(f"replaying kernel traversal {index % len(self.walks.walks) + 1} …"))
        request = self.screen.new_trace_request()  # a later trace or replay wins over this one
        self.screen.run_worker(partial(self._replay, index % len(self.walks.walks), walk, request), thread=True,
                               exclusive=True, group="kernel-trace", description="replay the kernel trace")

    def step(self, delta: int) -> None:
        self.select(self.index + delta)

    def candidates(self) -> list[Candidate]:
        return [Candidate(f"trace: kernel traversal {i + 1}  " + walk_label(self.walks, i)[len(f"{i + 1}. "):],
                          "replay it and compare with the simulation ({ } step through them)",
                          partial(self.select, i)) for i in range(len(self.walks.walks))]  # fmt: skip

    def on_step(self, message: StepChanged) -> None:
        """Any step: the summary line shows only while the kernel replay is the trace on screen."""
        self._summary().display = self.replay is not None and message.trace is self.replay.trace

    # -- the replay -----------------------------------------------------------------------------------------
    def _replay(self, index: int, walk: KernelTrace, request: int) -> None:
        try:
            # the replay knows iptables rules: the view's nft tables (kptui.engine.nft.display) are left out
            rules = xtables_of(self.screen.ruleset)
            if rules is None:
                raise ValueError("the kernel trace is replayed against iptables rules, and these rules hold none")
            result = replay(rules, walk, self.screen.initial[1])
        except ValueError as exc:
            self.screen.app.call_from_thread(self._failed, index, str(exc))
            return
        self.screen.app.call_from_thread(self._show, index, result, request)

    def _failed(self, index: int, message: str) -> None:
        self.screen.notify(f"kernel traversal {index + 1}: {printable(message)}", title="kernel trace log",
                           severity="error", markup=False)  # fmt: skip

    def _summary(self) -> Static:
        view = self.screen.trace_view
        found = view.query("#kernel-summary")
        if found:
            return found.first(Static)
        summary = Static(id="kernel-summary", markup=False)
        view.mount(summary, after="#trace-title")
        return summary

    def _show(self, index: int, rp: KernelReplay, request: int) -> None:
        screen = self.screen
        if not screen.is_latest_request(request):
            return  # another trace or traversal was asked for meanwhile
        self.index, self.replay = index, rp
        view = screen.trace_view
        view.hops.marks, view.hops.marks_for = set(rp.marks()), rp.trace
        screen.show_trace(rp.trace)
        n = len(self.walks.walks)
        title = Text(f"kernel traversal {index + 1}/{n} · {printable(self.walks.name)} line {rp.kernel.line} · "
                     f"{printable(rp.packet.describe())} from {rp.packet.origin}", no_wrap=True,
                     overflow="ellipsis")  # fmt: skip
        title.append("   n/p step · [ ] kernel/engine · { } traversal", "dim")
        view.query_one("#trace-title", Static).update(title)
        cmp = rp.comparison
        paths = view.query_one("#trace-paths", OptionList)
        k = rp.trace.paths[0]
        kernel_line = f"1. kernel: {k.verdict}" + (f" ({k.delivery})" if k.delivery else "")
        if rp.kernel.endpoint:
            kernel_line += f" · DNAT {rp.kernel.endpoint}"
        if rp.missing:
            kernel_line += f" · {rp.missing} rule(s) not in the dump"
        paths.replace_option_prompt_at_index(0, Text(printable(kernel_line), no_wrap=True, overflow="ellipsis"))
        if len(rp.trace.paths) > 1:
            engine = f"2. engine (path {(cmp.path_index or 0) + 1} of {len(rp.engine.paths)}): " + path_summary(
                rp.trace, rp.trace.paths[1])  # fmt: skip
            paths.replace_option_prompt_at_index(1, Text(printable(engine), no_wrap=True, overflow="ellipsis"))
        summary = self._summary()
        summary.update(Text(printable(cmp.summary), no_wrap=True, overflow="ellipsis"))
        summary.set_class(not cmp.agree, "-differs")
        summary.set_class(cmp.agree, "-agrees")
        summary.display = True
