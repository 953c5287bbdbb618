"""Where a key's bindings are looked up, for :class:`kptui.ui.app.KptuiApp`: on the widget that had the focus
when the key arrived.

Textual handles a key in two steps. The app checks the priority bindings (kptui's 1-4, alt+1-4, ``/``, and tab,
shift+tab and escape in the packet builder: they move the focus) as the key arrives, then sends the key to the
focused widget; the key comes back up to the app, which runs the first non-priority binding of the widgets that
have the focus *then* (backspace in a field, down in the tree). Keys that reach the app in one burst (a tmux
``send-keys``, a paste, a slow SSH link, a busy machine) are all checked for priority bindings before the first
comes back: in ``backspace tab`` the tab moved the focus first, and the backspace deleted a character in the
next field; in ``backspace escape`` it was lost (the field traced with the digit the user had deleted), and in
``down down 2`` the downs scrolled the detail pane instead of moving the tree's cursor. :class:`KeysWhereFocused`
notes which widget each key was sent to and, when the focus has moved on by the time the key comes back, runs
that widget's bindings (and its ancestors', as Textual does) instead of the new focus's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.dom import DOMNode

if TYPE_CHECKING:
    from textual.app import App

    _AppBase = App[int]
else:
    _AppBase = object

__all__ = ["KeysWhereFocused"]

IN_FLIGHT_MAX = 256  # keys remembered on their way (a key a widget takes, typed text, never comes back)


class KeysWhereFocused(_AppBase):
    """Mixed into :class:`kptui.ui.app.KptuiApp` (which sets ``_key_targets`` to an empty dict)."""

    _key_targets: dict[int, tuple[events.Key, DOMNode]]  # id of a key on its way → (the key, where it went)

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
            return
        focused = self.focused
        await super().on_event(event)  # a priority binding runs now; otherwise the key goes to the focus
        if event.is_forwarded and focused is not None:
            targets = self._key_targets
            if len(targets) >= IN_FLIGHT_MAX:
                del targets[next(iter(targets))]  # the oldest
            targets[id(event)] = (event, focused)  # (the event kept: its id is not reused meanwhile)

    async def on_key(self, event: events.Key) -> None:
        """The key back at the app, no widget having taken it: runs before Textual's own binding lookup, and
        stands in for it when the focus moved while the key was on its way."""
        sent = self._key_targets.pop(id(event), None)
        if sent is None or sent[0] is not event:
            return
        target = sent[1]
        if target is self.focused or not target.is_attached:
            return  # Textual's lookup is the right one (a replaced screen: the new focus takes the key)
        event.prevent_default()  # Textual's lookup would start at the new focus
        for node in target.ancestors_with_self:  # as Textual's modal binding chain: up to the first modal node
            for binding in node._bindings.key_to_bindings.get(event.key, ()):
                if not binding.priority and await self.run_action(binding.action, node):
                    return
            if node.is_modal:
                return
