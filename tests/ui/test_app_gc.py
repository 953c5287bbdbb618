"""When the explorer runs the cyclic collector on its own (kptui.ui.app_gc)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kptui.ui import app_gc
from kptui.ui.app_gc import GC_FULL_AFTER, GcPacing


class Paced(GcPacing):
    big = True
    last_input = 0.0  # long ago: the user has paused
    _refreeze = False


@pytest.fixture
def collections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(app_gc.gc, "collect", lambda *a: calls.append(1) or 0)
    monkeypatch.setattr(app_gc.gc, "get_count", lambda: (0, 0, GC_FULL_AFTER))
    return calls


@contextmanager
def collector(enabled: bool) -> Iterator[None]:
    """The cyclic collector on or off for the block, as it was afterwards."""
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


def test_a_full_collection_runs_when_the_user_pauses(collections: list[int]) -> None:
    with collector(enabled=True):
        Paced().collect_when_idle()
    assert collections == [1]


def test_no_collection_while_a_worker_builds_with_the_collector_off(collections: list[int]) -> None:
    with collector(enabled=False):
        Paced().collect_when_idle()
    assert collections == []
