"""A scrollable, wrapped ``Text`` on Textual's line API.

Unlike a ``Static`` (whose new content may change its height, so every update re-lays the whole screen out),
this widget's size comes from its container; an update re-wraps the text and repaints it, and only asks for
a layout when the number of lines changes. The rule detail pane updates on every trace step, so this keeps a
step cheap.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["TextView"]


class TextView(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "scroll_down", "Scroll down", show=False, id="text.down"),
        Binding("up,k", "scroll_up", "Scroll up", show=False, id="text.up"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text = Text()
        self._strips: list[Strip] = []
        self._width = 0

    @property
    def text(self) -> Text:
        return self._text

    @property
    def plain(self) -> str:
        return self._text.plain

    def update(self, text: Text) -> None:
        self._text = text
        self._wrap(reset_scroll=True)

    def _wrap(self, *, reset_scroll: bool = False) -> None:
        width = self.scrollable_content_region.width
        self._width = width
        if width <= 0:
            self._strips = []
            return
        console = self.app.console
        lines = self._text.wrap(console, width, overflow="fold")
        base = self.rich_style
        self._strips = [Strip(list(line.render(console, "")), line.cell_len).apply_style(base) for line in lines]
        size = Size(width, len(self._strips))
        if size != self.virtual_size:
            self.virtual_size = size
        if reset_scroll and self.scroll_offset.y:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._width:
            self._wrap()

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if index >= len(self._strips):
            return Strip.blank(width, self.rich_style)
        return self._strips[index].crop_extend(0, width, self.rich_style)
