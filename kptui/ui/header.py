"""The line at the top of the main screen: where the rules come from, always (issue 10: a file, a capture
bundle and ``--netns X`` looked the same). In watch mode it is the watch bar, which starts with the same."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from kptui.engine import Ruleset
from kptui.fmt import printable

from .watch import Watcher, watch_status

__all__ = ["HeaderBar", "source_line"]


def source_line(ruleset: Ruleset, origin: str | None) -> str:
    """``dump samples/x.rules · nf_tables · IPv4`` or ``live node, network namespace n1 (read-only) · …``."""
    where = origin or f"dump {ruleset.source or '<dump>'}"
    facts = [f for f in (ruleset.backend, {"ipv4": "IPv4", "ipv6": "IPv6"}.get(ruleset.family or "")) if f]
    return " · ".join([printable(where), *facts])


class HeaderBar(Static):
    """``#source-bar`` (a dump, a bundle, a live node read once) or ``#watch-bar`` (watch mode)."""

    def show_source(self, ruleset: Ruleset, origin: str | None) -> None:
        self.update(Text(source_line(ruleset, origin), no_wrap=True, overflow="ellipsis"))

    def show_watch(self, watcher: Watcher, source: str) -> None:
        self.update(Text(watch_status(watcher, source), no_wrap=True, overflow="ellipsis"))
        self.set_class(bool(watcher.diff is not None and watcher.diff.drops), "-rising")
        self.set_class(bool(watcher.state.error), "-failed")
