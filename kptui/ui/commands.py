"""Command palette providers (ctrl+p): ``chain: …`` jumps to any chain; ``trace: …``, ``copy: …``,
``export: …`` and ``view: …`` run what the keys run. ``:`` opens the palette with chains only.

Providers ask the screen (``self.screen``, the :class:`~kptui.ui.main_screen.MainScreen` that opened the
palette) for candidates and call its public methods; they hold no state of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from textual.command import DiscoveryHit, Hit, Hits, Matcher, Provider
from textual.content import Content
from textual.style import Style

from kptui.fmt import printable

if TYPE_CHECKING:
    from .main_screen import MainScreen

__all__ = ["Candidate", "ChainCommands", "KptuiCommands", "best_hits", "highlight"]

MAX_HITS = 60


class Candidate(NamedTuple):
    text: str  # what the fuzzy matcher sees (already printable)
    help: str
    run: Callable[[], object]


def _subsequence(query: str, text: str) -> bool:
    pos = 0
    for ch in query:
        pos = text.find(ch, pos)
        if pos < 0:
            return False
        pos += 1
    return True


def highlight(text: str, query: str, style: Style | None) -> Content:
    """``text`` as literal content (never markup: chain names come from the dump) with the query's letters
    marked where they first occur in order. (``Matcher.highlight`` parses its candidate as markup.)"""
    content = Content(text)
    if style is None:
        return content
    lower, pos = text.lower(), 0
    for ch in query.lower().replace(" ", ""):
        pos = lower.find(ch, pos)
        if pos < 0:
            break
        content = content.stylize(style, pos, pos + 1)
        pos += 1
    return content


def best_hits(matcher: Matcher, query: str, candidates: Iterable[Candidate], limit: int = MAX_HITS) -> list[Hit]:
    """Score only the candidates that hold the query's letters in order (cheap), keep the best ``limit``."""
    q = query.lower().replace(" ", "")
    scored: list[tuple[float, Candidate]] = []
    for c in candidates:
        if _subsequence(q, c.text.lower()):
            score = matcher.match(c.text)
            if score > 0:
                scored.append((score, c))
    scored.sort(key=lambda sc: -sc[0])
    style = matcher.match_style
    return [Hit(score, highlight(c.text, query, style), c.run, text=c.text, help=c.help)
            for score, c in scored[:limit]]  # fmt: skip


class _ScreenProvider(Provider):
    @property
    def main(self) -> MainScreen:
        return self.screen  # type: ignore[return-value]

    heavy = False  # build the candidates in a thread (thousands of chains)

    def candidates(self) -> list[Candidate]:
        raise NotImplementedError

    async def _candidates(self) -> list[Candidate]:
        return await asyncio.to_thread(self.candidates) if self.heavy else self.candidates()

    async def search(self, query: str) -> Hits:
        cands = await self._candidates()
        for hit in await asyncio.to_thread(best_hits, self.matcher(query), query, cands):
            yield hit

    async def discover(self) -> Hits:
        for c in (await self._candidates())[:MAX_HITS]:
            yield DiscoveryHit(Content(c.text), c.run, text=c.text, help=c.help)


class ChainCommands(_ScreenProvider):
    """``chain: nat/KUBE-SVC-…  ns/name:port``: every chain of the dump."""

    heavy = True

    def candidates(self) -> list[Candidate]:
        return self.main.chain_candidates()


class KptuiCommands(_ScreenProvider):
    def candidates(self) -> list[Candidate]:
        return self.main.command_candidates()


def chain_candidate(table: str | None, chain: str, service: str | None, run: Callable[[], object]) -> Candidate:
    text = f"chain: {printable(table or '?')}/{printable(chain)}" + (f"  {printable(service)}" if service else "")
    return Candidate(text, "jump to this chain in the tree", run)
