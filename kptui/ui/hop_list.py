"""A virtual list of a trace path's hops (Textual's line API).

A path through KUBE-SERVICES can have thousands of hops (one per rule that missed). The list renders only
the visible lines, keeps rendered strips in an LRU cache, and repaints two lines when the cursor moves, so a
step costs the same with 10 hops or 100,000. The screen paints a step (:meth:`HopList.paint_cursor`) together
with the other panes it moves, so a step is one frame.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from kptui.engine.trace_model import Hop, Trace, TracePath
from kptui.engine.trace_report import hop_line, hop_place
from kptui.fmt import printable

from .messages import StepChanged

__all__ = ["HopList", "hop_text", "visible_hops"]

PAINT_FALLBACK = 0.25  # seconds: a step nobody painted (see watch_cursor) is painted by the list itself

HOOKS = {"PREROUTING": "PRE", "INPUT": "IN", "FORWARD": "FWD", "OUTPUT": "OUT", "POSTROUTING": "POST"}


def hop_text(hop: Hop) -> str:
    """:func:`~kptui.engine.trace_report.hop_line` with the hook and table shortened for narrow terminals:
    ``PRE  nat    KUBE-MARK-MASQ:1  → CONTINUE  [mark 0x0 → 0x4000 (masq)]``."""
    place = hop_place(hop)
    tail = hop_line(hop)[len(f"{hop.hook:<11} {hop.table:<8} {place}"):]  # hop_line starts with exactly that
    return f"{HOOKS.get(hop.hook, hop.hook):<4} {hop.table:<6} {place}{tail}"


def visible_hops(path: TracePath, all_hops: bool) -> list[int]:
    """Indices into ``path.hops`` shown in the list: every hop, or the matched rules and policies."""
    if all_hops:
        return list(range(len(path.hops)))
    return [i for i, h in enumerate(path.hops) if h.matched or h.kind == "policy"]


class HopList(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"hop-list--cursor", "hop-list--miss", "hop-list--policy",
                                             "hop-list--change", "hop-list--number", "hop-list--differs"}  # fmt: skip
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "step(1)", "Next hop", id="trace.next"),
        Binding("p", "step(-1)", "Prev hop", id="trace.previous"),
        Binding("down,j", "step(1)", "Next hop", show=False, id="trace.down"),
        Binding("up,k", "step(-1)", "Prev hop", show=False, id="trace.up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="trace.page-down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="trace.page-up"),
        Binding("home,g", "first", "First hop", show=False, id="trace.first"),
        Binding("end,G", "last", "Last hop", show=False, id="trace.last"),
    ]

    cursor = var(0, init=False)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.trace: Trace | None = None
        self.path_index = 0
        self.all_hops = False
        self.rows: list[int] = []
        self._cache: LRUCache[tuple[int, int, int], Strip] = LRUCache(256)  # lines off the cursor
        self._generation = 0
        # hops to highlight as differing, (path index, index into path.hops), for the trace ``marks_for`` only
        # (a kernel trace log set against the engine: kptui.ui.kernel_trace_view)
        self.marks: set[tuple[int, int]] = set()
        self.marks_for: Trace | None = None
        self._unpainted: set[int] = set()  # lines the cursor left or reached, not repainted yet
        self._fallback: Timer | None = None

    # -- content ---------------------------------------------------------------------------------------
    @property
    def path(self) -> TracePath | None:
        if self.trace is None or not self.trace.paths:
            return None
        return self.trace.paths[self.path_index]

    @property
    def hop(self) -> Hop | None:
        path = self.path
        if path is None or not self.rows:
            return None
        return path.hops[self.rows[self.cursor]]

    def show(self, trace: Trace | None, path_index: int = 0, *, all_hops: bool | None = None,
             keep_hop: int | None = None) -> None:  # fmt: skip
        """Show a path; the cursor goes to hop ``keep_hop`` (an index into ``path.hops``) or the nearest
        visible hop before it, else to the first hop."""
        self.trace, self.path_index = trace, path_index
        if all_hops is not None:
            self.all_hops = all_hops
        path = self.path
        self.rows = visible_hops(path, self.all_hops) if path is not None else []
        self._generation += 1
        self._cache.clear()
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows))
        pos = 0
        if keep_hop is not None and self.rows:
            pos = max((p for p, i in enumerate(self.rows) if i <= keep_hop), default=0)
        self.set_reactive(HopList.cursor, -1)
        self.cursor = pos
        self.refresh()

    def toggle_all_hops(self) -> None:
        path = self.path
        keep = self.rows[self.cursor] if path is not None and self.rows else None
        self.show(self.trace, self.path_index, all_hops=not self.all_hops, keep_hop=keep)

    # -- rendering ---------------------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"hop-list--{name}", partial=True)

    def render_line(self, y: int) -> Strip:
        scroll_y = self.scroll_offset.y
        pos = scroll_y + y
        width = self.scrollable_content_region.width
        if pos >= len(self.rows) or self.path is None:
            return Strip.blank(width, self.rich_style)
        if pos == self.cursor:
            return self._render_hop(pos, width)
        key = (self._generation, pos, width)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_hop(pos, width)
            self._cache[key] = strip
        return strip

    def _render_hop(self, pos: int, width: int) -> Strip:
        assert self.path is not None
        hop = self.path.hops[self.rows[pos]]
        text = Text(no_wrap=True, overflow="ellipsis", end="", style=self.rich_style)
        differs = self.marks_for is self.trace and (self.path_index, self.rows[pos]) in self.marks
        text.append(f"{pos + 1:>4}" + ("!" if differs else " "), self._style("differs" if differs else "number"))
        line = printable(hop_text(hop))
        if hop.kind == "policy":
            text.append(line, self._style("policy"))
        elif not hop.matched:
            text.append(line, self._style("miss"))
        else:
            text.append(line)
            at = line.find("  [")
            if at >= 0:
                text.stylize(self._style("change"), len(text) - len(line) + at + 2, len(text))
        if differs:
            text.stylize(self._style("differs"), 5)
        text.truncate(width, overflow="ellipsis", pad=True)
        if pos == self.cursor:
            text.stylize(self._style("cursor"))
        return Strip(text.render(self.app.console, ""), width)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        """Rendered lines carry the old theme's colours: render them again."""
        self._cache.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows))
        self._cache.clear()

    # -- the cursor ----------------------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        """A step: the hop list is painted by the screen's handler of the step, with the tree, the detail and
        the packet state, so the whole step is one frame. (Painted here, the hop list would be one frame and
        the rest another a timer tick later: the screen refreshes as soon as it idles, before the step message
        has travelled up to it. That doubled the compositing work of a step and its latency.)"""
        self._unpainted.update((old, new))
        hop = self.hop
        if hop is None or self.trace is None:
            self.paint_cursor()
            return
        self.post_message(StepChanged(self.trace, self.path_index, new, hop))
        if self._fallback is None:  # in case no handler paints it (the screen is going away, say)
            self._fallback = self.set_timer(PAINT_FALLBACK, self.paint_cursor)

    def paint_cursor(self) -> None:
        """Scroll the cursor into view and repaint the lines it left and reached (once per step; again is a
        no-op)."""
        if self._fallback is not None:
            self._fallback.stop()
            self._fallback = None
        if not self._unpainted:
            return
        lines, self._unpainted = self._unpainted, set()
        new = self.cursor
        height = self.scrollable_content_region.height or 1
        top = self.scroll_offset.y
        if new < top:
            self.scroll_to(y=max(0, new - height * 3 // 4), animate=False, immediate=True)
        elif new >= top + height:  # a page at a time: one full repaint per page, not per step
            self.scroll_to(y=new - height // 4, animate=False, immediate=True)
        for pos in lines:
            if 0 <= pos < len(self.rows):
                self.refresh_line(pos)

    def move_to(self, pos: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, pos))

    def action_step(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        self.move_to(self.cursor + delta * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.rows) - 1)

    def on_click(self, event: events.Click) -> None:
        self.move_to(self.scroll_offset.y + event.y)
