"""The trace view pane: the paths (probability, verdict, endpoint), the hops of the chosen path, and the
packet state at the current hop.

Stepping posts :class:`~kptui.ui.messages.StepChanged` (from the hop list); the screen moves the chain tree
and the detail pane to the hop's rule and has this pane paint the step (:meth:`TraceView.show_step`), all in
one handler, so a step is one frame.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from kptui.engine.packet import Packet
from kptui.engine.trace_model import Trace
from kptui.engine.trace_report import path_brief, scenario_names
from kptui.fmt import plural, printable

from .focus import focus_now
from .hop_list import HopList
from .messages import StepChanged
from .packet_state import STATE_STYLES, state_text

__all__ = ["TraceView"]

EMPTY = "No trace yet. Fill the packet builder (3) and press t, or pick a preset."


def _tag(groups: dict[int, list[str]], i: int) -> str:
    """``[A] `` before a path of scenario A (``[A,B] `` for one in several); nothing with one scenario."""
    names = groups.get(i)
    return f"[{','.join(names[:3])}{',…' if len(names) > 3 else ''}] " if names else ""


class TraceView(Vertical):
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"trace-state--{n}" for n in STATE_STYLES}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "toggle_all_hops", "All/matched hops", id="trace.all-hops",
                tooltip="also list every rule that did not match (a miss in KUBE-SERVICES is one line each)"),
        Binding("right_square_bracket", "path(1)", "Next path", id="trace.next-path"),
        Binding("left_square_bracket", "path(-1)", "Prev path", id="trace.prev-path"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.trace: Trace | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(EMPTY), id="trace-title", markup=False)
        yield OptionList(id="trace-paths", markup=False, compact=True)
        with Horizontal(id="trace-body"):
            yield HopList(id="trace-hops")
            yield Static(id="trace-state", markup=False)

    @property
    def hops(self) -> HopList:
        return self.query_one(HopList)

    @property
    def path_index(self) -> int:
        return self.hops.path_index

    # -- what the screen calls ---------------------------------------------------------------------------
    def busy(self, packet: Packet) -> None:
        """A trace is running (the first one on a big dump builds the chain prefilters: about a second)."""
        self.query_one("#trace-title", Static).update(Text(f"tracing {printable(packet.describe())} …"))

    def refuse(self, packet: Packet, reason: str) -> None:
        """The dump cannot be traced (kptui.engine.traceable): say why instead of showing paths."""
        self.trace = None
        self.query_one("#trace-title", Static).update(Text(f"cannot trace {printable(packet.describe())}",
                                                           no_wrap=True, overflow="ellipsis"))  # fmt: skip
        paths = self.query_one("#trace-paths", OptionList)
        paths.clear_options()
        paths.display = False
        self.hops.show(None)
        self.query_one("#trace-state", Static).update(Text(printable(reason)))

    def show_trace(self, trace: Trace, *, all_hops: bool | None = None, path_index: int = 0,
                   keep_hop: int | None = None) -> None:  # fmt: skip
        """Show ``trace`` on path ``path_index`` (kept in range), the cursor on hop ``keep_hop`` (an index into
        the path's hops: a watch refresh puts the step back) or the first."""
        self.trace = trace
        path_index = path_index if 0 <= path_index < len(trace.paths) else 0
        groups = scenario_names(trace)
        count = plural(len(trace.paths), "path") + (f" in {len(trace.scenarios)} scenarios, each summing to 1"
                                                    if groups else "")  # fmt: skip
        title = Text(printable(trace.packet.describe()) + f" · from {trace.packet.origin} · {count}",
                     no_wrap=True, overflow="ellipsis")  # fmt: skip
        if any(n.startswith("rules are missing") for n in trace.notes):  # an elided or filtered paste
            title.append("  RULES MISSING from this dump: the answer may miss them", "bold reverse")
        title.append("   n/p step · a all hops · [ ] path", "dim")
        self.query_one("#trace-title", Static).update(title)
        paths = self.query_one("#trace-paths", OptionList)
        paths.clear_options()
        paths.add_options([Option(Text(f"{i}. " + _tag(groups, i - 1) + printable(path_brief(p)), no_wrap=True,
                                       overflow="ellipsis")) for i, p in enumerate(trace.paths, 1)])  # fmt: skip
        paths.display = bool(trace.paths)
        if trace.paths:
            with paths.prevent(OptionList.OptionHighlighted):  # queued, it would select that path later
                paths.highlighted = path_index
        self.hops.show(trace, path_index, all_hops=all_hops, keep_hop=keep_hop)
        self._no_hop()

    def select_path(self, index: int) -> None:
        if self.trace is None or not 0 <= index < len(self.trace.paths) or index == self.hops.path_index:
            return
        self.hops.show(self.trace, index)
        paths = self.query_one("#trace-paths", OptionList)
        if paths.highlighted != index:
            with paths.prevent(OptionList.OptionHighlighted):
                paths.highlighted = index
        self._no_hop()

    def _no_hop(self) -> None:
        """A path with no hop to show (a dump without the tables this packet meets): no step message comes,
        so the state panel says so instead of keeping the previous trace's step."""
        if self.hops.hop is None:
            self.query_one("#trace-state", Static).update(
                Text("this path evaluated no rule: the dump has no table on the hooks this packet meets"))

    def focus_hops(self) -> None:
        focus_now(self.hops)

    def show_step(self, event: StepChanged) -> None:
        """Paint a step: the hop list's cursor and the packet state at the hop. The screen calls this from its
        handler of the step, with the tree and the detail, so the whole step is one frame."""
        self.hops.paint_cursor()
        path = event.trace.paths[event.path_index]
        styles = {n: self.get_component_rich_style(f"trace-state--{n}", partial=True) for n in STATE_STYLES}
        text = state_text(event.trace, path, event.position, len(self.hops.rows), event.hop, styles)
        self.query_one("#trace-state", Static).update(text, layout=False)  # its size comes from the CSS

    # -- events ------------------------------------------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.select_path(event.option_index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.select_path(event.option_index)
        self.focus_hops()

    # -- actions ---------------------------------------------------------------------------------------------
    def action_toggle_all_hops(self) -> None:
        self.hops.toggle_all_hops()

    def action_path(self, delta: int) -> None:
        if self.trace is not None and self.trace.paths:
            self.select_path((self.hops.path_index + delta) % len(self.trace.paths))
