"""Command palette providers (ctrl+p): ``chain: …`` jumps to any chain; ``trace: …``, ``copy: …``,
``export: …`` and ``view: …`` run what the keys run. ``:`` opens the palette with chains only.

Providers ask the screen (``self.screen``, the :class:`~kptui.ui.main_screen.MainScreen` that opened the
palette) for candidates once per opening and call its public methods; they keep only that list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from textual.command import DiscoveryHit, Hit, Hits, Matcher, Provider
from textual.content import Content
from textual.style import Style

from kptui.fmt import printable

from .locs import Loc
from .presets import presets_for

if TYPE_CHECKING:
    from .main_screen import MainScreen

__all__ = ["Candidate", "ChainCommands", "KptuiCommands", "best_hits", "highlight"]

MAX_HITS = 60


class Candidate(NamedTuple):
    text: str  # what the fuzzy matcher sees (already printable)
    help: str
    run: Callable[[], object]


def _letters(query: str) -> str:
    """What the filter and the highlight look for: the query's letters, lower case, without spaces."""
    return query.lower().replace(" ", "")


def _positions(letters: str, text: str) -> list[int]:
    """Where ``letters`` first occur in ``text`` in order, up to the first one missing (all of them: a hit)."""
    out: list[int] = []
    pos = 0
    for ch in letters:
        pos = text.find(ch, pos)
        if pos < 0:
            break
        out.append(pos)
        pos += 1
    return out


def highlight(text: str, query: str, style: Style | None) -> Content:
    """``text`` as literal content (never markup: chain names come from the dump) with the query's letters
    marked where they first occur in order. (``Matcher.highlight`` parses its candidate as markup.)"""
    content = Content(text)
    if style is None:
        return content
    for pos in _positions(_letters(query), text.lower()):
        content = content.stylize(style, pos, pos + 1)
    return content


def best_hits(matcher: Matcher, query: str, candidates: Iterable[Candidate], limit: int = MAX_HITS) -> list[Hit]:
    """Score only the candidates that hold the query's letters in order (cheap), keep the best ``limit``."""
    q = _letters(query)
    scored: list[tuple[float, Candidate]] = []
    for c in candidates:
        if len(_positions(q, c.text.lower())) == len(q):
            score = matcher.match(c.text)
            if score > 0:
                scored.append((score, c))
    scored.sort(key=lambda sc: -sc[0])
    style = matcher.match_style
    return [Hit(score, highlight(c.text, query, style), c.run, text=c.text, help=c.help)
            for score, c in scored[:limit]]  # fmt: skip


class _ScreenProvider(Provider):
    """Candidates built once per opening of the palette (Textual makes new providers each time), in
    :meth:`startup`, then filtered for each keystroke off the event loop."""

    heavy = False  # True: build the candidates in a thread too (thousands of chains)
    _candidates: Sequence[Candidate] = ()  # this opening's, from startup()

    @property
    def main(self) -> MainScreen:
        return self.screen  # type: ignore[return-value]

    def candidates(self) -> list[Candidate]:
        raise NotImplementedError

    async def startup(self) -> None:
        self._candidates = await asyncio.to_thread(self.candidates) if self.heavy else self.candidates()

    async def search(self, query: str) -> Hits:
        for hit in await asyncio.to_thread(best_hits, self.matcher(query), query, self._candidates):
            yield hit

    async def discover(self) -> Hits:
        for c in self._candidates[:MAX_HITS]:
            yield DiscoveryHit(Content(c.text), c.run, text=c.text, help=c.help)


class ChainCommands(_ScreenProvider):
    """``chain: nat/KUBE-SVC-…  ns/name:port``: every chain of the dump."""

    # ≈ 0.8 s for 110,000 chains (10,000 services) the first time (the screen keeps the list). The thread calls
    # insights.service_of, as the search-index and filter workers do: it must be safe off the event loop.
    heavy = True

    def candidates(self) -> list[Candidate]:
        return self.main.chain_candidates()


class KptuiCommands(_ScreenProvider):
    """``trace: …``, ``copy: …``, ``export: …``, ``view: …``: a few per service, built on the event loop (the
    screen's list may read its widgets); once per opening, ≈ 90 ms for 10,000 services."""

    def candidates(self) -> list[Candidate]:
        return self.main.command_candidates()


def chain_candidate(table: str | None, chain: str, service: str | None, run: Callable[[], object]) -> Candidate:
    text = f"chain: {printable(table or '?')}/{printable(chain)}" + (f"  {printable(service)}" if service else "")
    return Candidate(text, "jump to this chain in the tree", run)


def chain_commands(screen: MainScreen) -> list[Candidate]:
    """``chain: …`` for every chain of the screen's dump (with the service of a KUBE-* chain)."""
    out = []
    for tname, table in screen.ruleset.tables.items():
        for name in table.chains:
            service = screen.insights.service_of(tname, name) if name.startswith("KUBE-") else None
            out.append(chain_candidate(tname, name, service, partial(screen.goto, Loc(tname, name))))
    return out


def screen_commands(screen: MainScreen) -> list[Candidate]:
    """What the keys do, by name, and a ``trace: …`` per preset of every service."""
    out = [
        Candidate("trace: run the packet builder's packet", "t", screen.action_trace),
        Candidate("trace: show all hops / matched only", "a in the trace",
                  lambda: screen.trace_view.action_toggle_all_hops()),
        Candidate("copy: rule as an iptables-save line", "y on a rule", partial(screen.action_copy, "rule")),
        Candidate("copy: iptables -L command for this chain", "Y", partial(screen.action_copy, "list")),
        Candidate("copy: trace as text", "y in the trace", partial(screen.action_copy, "trace")),
        Candidate("export: trace as Markdown…", "ctrl+s", partial(screen.action_export, "markdown")),
        Candidate("export: trace as JSON (kptui.trace/1)…", "ctrl+s, name ending .json",
                  partial(screen.action_export, "json")),
    ]  # fmt: skip
    for pane, key in (("tree", "1"), ("detail", "2"), ("builder", "3"), ("trace", "4")):
        out.append(Candidate(f"view: focus the {pane}", key, partial(screen.action_focus_pane, pane)))
    for service in screen.insights.services.values():
        for i, preset in enumerate(presets_for(service)):
            out.append(Candidate(f"trace: {printable(preset.label)}", "fill the packet builder and trace",
                                 partial(screen.run_preset, service, i)))  # fmt: skip
    return out
