"""A huge group of hashed chains: pages of PAGE chains, folders of FOLDER pages (kptui.ui.tree_layout)."""

from __future__ import annotations

import pytest

from kptui.ui import tree_layout
from kptui.ui.tree_layout import Group, arrange, flatten, paths


def _entries(n: int) -> list[tuple[str, None]]:
    named = [("PREROUTING", None), ("KUBE-SERVICES", None), ("KUBE-POSTROUTING", None)]
    return named + [(f"KUBE-SEP-{i:016X}", None) for i in range(n)]


def test_every_level_stays_small_and_the_order_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_layout, "PAGE", 10)
    monkeypatch.setattr(tree_layout, "FOLDER", 4)
    entries = _entries(395)  # 40 pages of 10 (the last of 5): 10 folders of 4 pages
    items = arrange(entries)
    assert list(flatten(items)) == entries  # nothing lost, nothing moved
    group = next(i for i in items if isinstance(i, Group))
    assert group.label == "KUBE-SEP-* (395 chains)"
    folders = group.items
    assert len(folders) == 10 and all(isinstance(f, Group) and len(f.items) <= 4 for f in folders)
    assert all(isinstance(p, Group) and len(p.items) <= 10 for f in folders for p in f.items)  # type: ignore[union-attr]
    assert folders[0].label == f"1–40  KUBE-SEP-{0:016X} … KUBE-SEP-{39:016X}"  # type: ignore[union-attr]
    assert folders[-1].label == f"361–395  KUBE-SEP-{360:016X} … KUBE-SEP-{394:016X}"  # type: ignore[union-attr]
    depth = dict(paths(items))
    assert len(depth[f"KUBE-SEP-{123:016X}"]) == 3 and depth["KUBE-SERVICES"] == ()  # group, folder, page


def test_a_group_of_few_pages_has_no_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_layout, "PAGE", 100)
    monkeypatch.setattr(tree_layout, "FOLDER", 100)
    items = arrange(_entries(350))
    group = next(i for i in items if isinstance(i, Group))
    assert [len(p.items) for p in group.items] == [100, 100, 100, 50]  # type: ignore[union-attr]
    assert all(not isinstance(c, Group) for p in group.items for c in p.items)  # type: ignore[union-attr]
