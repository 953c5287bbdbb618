"""Match modules: each decoded :class:`Match` compiles to checks ``(state, env) -> outcome``.

An outcome is ``True`` / ``False``, a :class:`Chance` (true with a probability: ``statistic``), or an
:class:`Undecidable` (the context cannot tell: an ipset's contents, a MAC, an unknown module). The trace
branches on the last two and says so. Each module is a unit in :mod:`kptui.engine.xt` (its option set, its
checks); :func:`compile_match` dispatches to it by name (:mod:`kptui.engine.xt.registry`).
"""

from __future__ import annotations

from .flow import Chance, Check, Env, Undecidable
from .xt.compile import compile_match
from .xt.matches.recent import NO_RECENT, RecentLists
from .xt.matches.statistic import probability_of

__all__ = ["NO_RECENT", "Chance", "Check", "Env", "RecentLists", "Undecidable", "compile_match", "probability_of"]
