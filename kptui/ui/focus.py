"""Moving the focus in answer to a key, at once.

``Widget.focus()`` only schedules the change (``call_later``): keys already queued behind the one that asked
for it (``/web`` typed fast, a paste, a tmux ``send-keys``) still go to the widget that had the focus, so
``w`` paused watch mode and ``enter`` folded a chain instead of typing ``web`` into the filter. ``Screen.
set_focus`` changes it before the next key is dispatched.
"""

from __future__ import annotations

from textual.widget import Widget

__all__ = ["focus_now"]


def focus_now(widget: Widget) -> None:
    """Give ``widget`` the focus before the next queued key is handled (it must be displayed)."""
    widget.screen.set_focus(widget)
