"""Insights that come after the first screen: a big dump's kube service index takes seconds (30,000 services:
3-4 s), and the first screen, the tables and their chains, need not wait for it.

:class:`PendingInsights` stands in for the real :class:`~kptui.ui.services.Insights` until the loading thread
hands them over (:meth:`PendingInsights.resolve`); from then on it answers with theirs. Until then it answers
nothing rather than something wrong: no service names (labels and the detail pane say the index is coming), no
explanations, no findings. What would be a wrong answer without the index waits for it (:meth:`wait`): the filter,
which matches service names, builds its index only once the service index is there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from kptui.engine import Rule

from .locs import Loc
from .service_info import Finding, ServiceInfo

if TYPE_CHECKING:
    from .services import Insights

__all__ = ["PENDING_NOTE", "PendingInsights", "is_pending", "wait_for"]

PENDING_NOTE = "indexing kube-proxy's services … (names, explanations and findings come in a moment)"
_NOTHING: Mapping[str, ServiceInfo] = {}


class PendingInsights:
    """The real insights once :meth:`resolve` gave them; before, none (see the module doc)."""

    def __init__(self) -> None:
        self._real: Insights | None = None
        self._done = threading.Event()

    # -- the hand-over (the loading thread resolves, the UI's threads wait) -------------------------------
    def resolve(self, real: Insights) -> None:
        self._real = real
        self._done.set()

    @property
    def pending(self) -> bool:
        return self._real is None

    @property
    def real(self) -> Insights | None:
        return self._real

    def wait(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Block until the real insights are there (never on the screen's thread: from a worker); False when
        ``cancelled()`` said so first (the app is ending: what waits must end too)."""
        while not self._done.wait(0.05):
            if cancelled():
                return False
        return True

    # -- the Insights protocol ---------------------------------------------------------------------------
    @property
    def services(self) -> Mapping[str, ServiceInfo]:
        return self._real.services if self._real is not None else _NOTHING

    @property
    def pod_cidr(self) -> str | None:
        return self._real.pod_cidr if self._real is not None else None

    def service_of(self, table: str | None, chain: str) -> str | None:
        return self._real.service_of(table, chain) if self._real is not None else None

    def explain(self, rule: Rule) -> str | None:
        return self._real.explain(rule) if self._real is not None else None

    def explain_chain(self, table: str | None, chain: str) -> str | None:
        return self._real.explain_chain(table, chain) if self._real is not None else None

    def findings(self, loc: Loc) -> Sequence[Finding]:
        return self._real.findings(loc) if self._real is not None else ()

    def __getattr__(self, name: str) -> object:
        """What some insights have and others not (``chain_note``, ``prepare_findings``, …): the real one's,
        once there; before, none (``getattr(insights, name, None)`` gives None)."""
        if name.startswith("_"):
            raise AttributeError(name)
        real = self.__dict__.get("_real")
        if real is None:
            raise AttributeError(name)
        return getattr(real, name)


def is_pending(insights: object) -> bool:
    """``insights`` stands in for ones still being computed."""
    return isinstance(insights, PendingInsights) and insights.pending


def wait_for(insights: object, cancelled: Callable[[], bool] = lambda: False) -> bool:
    """Block (in a worker thread) until ``insights`` are complete, at once for any but pending ones; False when
    ``cancelled()`` said so first."""
    return insights.wait(cancelled) if isinstance(insights, PendingInsights) else True
