"""One node of a fleet in the explorer: the main screen on that node's snapshot (its rules, its node context,
and a packet traced at once when the fleet trace asked for it), over the fleet screen: ``escape`` (when no pane
wants it: a filter to clear, a field to leave) goes back to the fleet."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from .main_screen import MainScreen

__all__ = ["NodeScreen"]


class NodeScreen(MainScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back_to_fleet", "Back to the fleet", id="node.back",
                tooltip="the nodes × services table this node was opened from"),
    ]

    def __init__(self, *args: object, node_name: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.node_name = node_name

    def action_back_to_fleet(self) -> None:
        self.dismiss()
