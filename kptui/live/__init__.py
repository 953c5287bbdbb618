"""Live mode: reading the running node, read-only.

Together with :mod:`kptui.cli`, this package is kptui's I/O layer: the architecture's rule "cli.py is the only
place that reads files, runs commands or starts the app" is kept by treating ``kptui/cli.py`` + ``kptui/live/``
as that one layer. Inside it, every command runs through :func:`kptui.live.runner.run_readonly` (a fixed
allow-list of read-only argument lists, no shell, a timeout), and the only HTTP request (kube-proxy's
``/proxyMode``) through :func:`kptui.live.runner.fetch_proxy_mode`. kptui never writes netfilter state.

For the UI: :func:`load_live` returns a :class:`kptui.bundle.NodeSnapshot` (``.ruleset``, ``.node``,
``.metadata``, ``.warnings``), the same type :func:`kptui.bundle.load_bundle` returns for a capture bundle.

The names below are imported on first use: building the command line parser imports this package, and
``kptui summary BIG.rules`` should not pay for urllib and tarfile.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kptui.bundle import NodeSnapshot

    from .collect import LiveError, load_live

__all__ = ["LiveError", "NodeSnapshot", "load_live"]
_HOME = {"LiveError": "kptui.live.collect", "load_live": "kptui.live.collect", "NodeSnapshot": "kptui.bundle"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
