"""What a watch refresh does to the chain tree (:class:`~kptui.ui.chain_tree_widget.ChainTree` mixes this in):
take the new rules, find the chains shown whose rules changed, fill them again, and put back what was open,
the cursor and the scroll when the view is rebuilt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

from kptui.engine import Ruleset

from .entry_counts import EntryCounts
from .locs import Loc, rows_of, rule_at
from .services import Insights
from .tree_layout import flatten

if TYPE_CHECKING:
    from rich.text import Text
    from textual.widgets import Tree
    from textual.widgets.tree import TreeNode

    from .chain_tree_widget import NodeInfo
    from .tree_layout import Group

    _Base = Tree[NodeInfo]
else:
    _Base = object

__all__ = ["TreeRefresh", "TreeState"]

_RAW = itemgetter(1)


class TreeState(NamedTuple):
    """What a watch refresh that rebuilds the tree puts back: what was open, the cursor, the scroll."""

    collapsed: frozenset[str | None]  # tables the user closed (they open by default)
    groups: tuple[tuple[str | None, str, int], ...]  # open groups: (table, their first chain, nesting depth)
    chains: tuple[Loc, ...]  # open chains
    cursor: Loc | None
    cursor_rule: str | None  # the cursor rule's text (it may be renumbered by the new rules)
    scroll_y: float


class TreeRefresh(_Base):
    """Mixed into :class:`~kptui.ui.chain_tree_widget.ChainTree` (which provides what is declared here)."""

    ruleset: Ruleset
    insights: Insights
    entries: EntryCounts
    rule_moves: Mapping[Loc, tuple[int, bool]] | None
    chain_moves: Mapping[Loc, tuple[int, bool, bool]]
    _index: dict[Loc, TreeNode[NodeInfo]]
    _groups: dict[int, TreeNode[NodeInfo]]
    _pages: dict[Loc, list[tuple[int, int, TreeNode[NodeInfo]]]]
    _containers: dict[tuple[str | None, str], tuple[Group, ...]]

    if TYPE_CHECKING:
        @property
        def cursor_loc(self) -> Loc | None: ...
        def node_for(self, loc: Loc) -> TreeNode[NodeInfo] | None: ...
        def _open(self, node: TreeNode[NodeInfo]) -> None: ...
        def _chain_label(self, table: str | None, name: str, shown: tuple[int, ...] | None) -> Text: ...

    def swap(self, ruleset: Ruleset, insights: Insights, entries: EntryCounts,
             moves: tuple[Mapping[Loc, tuple[int, bool]], Mapping[Loc, tuple[int, bool, bool]]] | None) -> None:  # fmt: skip
        """Take the rules of a new read (the caller rebuilds the view, or relabels what changed)."""
        self.ruleset, self.insights, self.entries = ruleset, insights, entries
        if moves is not None:
            self.rule_moves, self.chain_moves = moves

    def changed_chains(self, new: Ruleset) -> list[Loc] | None:
        """The chains shown whose rules differ in ``new`` (their nodes need filling again), or None when a
        table's chains differ (the view itself must be rebuilt)."""
        old = self.ruleset
        if list(old.tables) != list(new.tables) or any(list(t.chains) != list(new.tables[n].chains)
                                                        for n, t in old.tables.items()):  # fmt: skip
            return None
        changed = []
        for loc in list(self._index):
            if loc.kind != "chain" or loc.chain is None:
                continue
            a, b = rows_of(old.tables[loc.table].chains[loc.chain]), rows_of(new.tables[loc.table].chains[loc.chain])
            if len(a) != len(b) or list(map(_RAW, a)) != list(map(_RAW, b)):
                changed.append(loc)
        return changed

    def refill(self, chains: Sequence[Loc], state: TreeState) -> None:
        """Fill ``chains`` again from the new rules (taken with :meth:`swap`), open as they were, the cursor on
        the same rule and the same scroll."""
        for loc in chains:
            node = self._index.get(loc)
            if node is None or node.data is None:
                continue
            expanded = node.is_expanded
            for child in node.children:  # its rules, or its pages of rules
                leaves = child.children if child.data is not None and child.data.kind == "page" else (child,)
                for leaf in leaves:
                    if leaf.data is not None and leaf.data.kind == "rule":
                        self._index.pop(leaf.data.loc, None)
            self._pages.pop(loc, None)
            node.remove_children()
            node.data.loaded = False
            node.allow_expand = len(self.ruleset.tables[loc.table].chains[loc.chain or ""].rules) > 0
            if expanded:
                self._open(node)
            node.set_label(self._chain_label(loc.table, loc.chain or "", node.data.shown))
        here = state.cursor
        if here is not None and here.kind == "rule" and here.chain_loc in chains:
            self.restore(state._replace(groups=(), chains=(), collapsed=frozenset()))

    def keep(self) -> TreeState:
        collapsed, chains = set(), []
        for loc, node in self._index.items():
            kind = node.data.kind if node.data is not None else None
            if kind == "table" and not node.is_expanded:
                collapsed.add(loc.table)
            elif kind == "chain" and node.is_expanded:
                chains.append(loc)
        groups = []
        for node in self._groups.values():
            info = node.data
            if info is None or not node.is_expanded or not info.items:
                continue
            depth, up = 0, node.parent
            while up is not None and up.data is not None and up.data.kind == "group":
                depth, up = depth + 1, up.parent
            groups.append((info.loc.table, next(flatten(info.items))[0], depth))
        cursor = self.cursor_loc
        rule = rule_at(self.ruleset, cursor) if cursor is not None and cursor.kind == "rule" else None
        return TreeState(frozenset(collapsed), tuple(groups), tuple(chains), cursor,
                         rule.raw if rule is not None else None, self.scroll_offset.y)  # fmt: skip

    def restore(self, state: TreeState) -> None:
        """Open again what was open (what still exists), the cursor on the same place and the same scroll."""
        for table, first, depth in state.groups:
            for group in self._containers.get((table, first), ())[:depth + 1]:
                node = self._groups.get(id(group))
                if node is not None:
                    self._open(node)
        for loc in state.chains:
            node = self.node_for(loc)
            if node is not None:
                self._open(node)
        for table in state.collapsed:
            node = self._index.get(Loc(table))
            if node is not None:
                node.collapse()
        cursor = state.cursor
        if cursor is not None and cursor.kind == "rule" and state.cursor_rule is not None:
            cursor = self._same_rule(cursor, state.cursor_rule)
        node = self.node_for(cursor) if cursor is not None else None
        if node is None:
            return
        _ = self.last_line  # lays the lines out again, so the nodes know their lines
        self.move_cursor(node, animate=False)
        height = self.scrollable_content_region.height
        y = round(state.scroll_y)
        if not height or y <= node.line < y + height:
            self.scroll_to(y=y, animate=False, immediate=True)

    def _same_rule(self, loc: Loc, raw: str) -> Loc:
        """``loc``, or the nearest rule of its chain with the text ``raw`` (rules before it may have come or
        gone)."""
        chain = self.ruleset.chain(loc.table, loc.chain or "")
        if chain is None or loc.index is None:
            return loc
        rows = rows_of(chain)
        if 1 <= loc.index <= len(rows) and rows[loc.index - 1][1] == raw:
            return loc
        same = [i for i, row in enumerate(rows, 1) if row[1] == raw]
        return Loc(loc.table, loc.chain, min(same, key=lambda i: abs(i - loc.index))) if same else loc  # type: ignore[operator]
