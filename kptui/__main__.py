"""``python -m kptui``: the same as the ``kptui`` command."""

from kptui.cli import entry

entry()
