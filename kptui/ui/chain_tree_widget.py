"""The chain tree widget: tables → chains → rules as Textual ``Tree`` nodes, created only when their parent
is expanded (a ``loaded`` flag guards each), with labels built from the parser's compact rows so a
220k-rule dump opens at once and KUBE-SERVICES with 5000 rules expands in a fraction of a second.

:class:`~kptui.ui.chain_tree.ChainTreePane` (the pane: filter, history, status line) wraps it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from kptui.engine import Ruleset
from kptui.engine.ipvs.display import IPSET_TABLE, is_ipvs_table
from kptui.engine.model import TABLE_ORDER
from kptui.engine.nft.display import is_nft_table
from kptui.engine.rulelist import Row
from kptui.fmt import plural, printable

from .chain_tree_refresh import TreeRefresh, TreeState
from .entry_counts import EntryCounts
from .labels import STYLE_NAMES, chain_label, rule_label
from .locs import Loc, rows_of
from .messages import ChainHighlighted, RuleHighlighted
from .modals import ChooseScreen
from .services import Insights
from .tree_layout import Entry, Group, arrange, matches_in_order, paths

__all__ = ["ChainTree", "NodeInfo", "TreeState"]

_TARGET = itemgetter(4)
_RAW = itemgetter(1)
ELEMENT_PAGE = 1000  # a big nft set's or ipset's elements per page


@dataclass(eq=False, slots=True)
class NodeInfo:
    kind: str  # "table", "group", "chain", "page" (a big chain's rules, a big set's elements), "rule"
    loc: Loc
    items: list[Entry | Group] | None = None  # table/group: what to show below
    shown: tuple[int, ...] | None = None  # chain: the rule indices to show (None: all)
    loaded: bool = False


def _ordered(ruleset: Ruleset) -> list[str | None]:
    if any(is_nft_table(t) for t in ruleset.tables):
        return list(ruleset.tables)  # iptables and nft tables side by side, already in the order they hook in
    order = {t: i for i, t in enumerate(TABLE_ORDER)}
    return sorted(ruleset.tables, key=lambda t: order.get(t or "", len(order)))


class ChainTree(TreeRefresh, Tree[NodeInfo]):
    """The tree widget itself; its pane owns the filter and the history."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"chain-tree--{n}" for n in STYLE_NAMES}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "follow", "Follow/expand", id="tree.follow",
                tooltip="on a rule that jumps: go to its target (backspace comes back); else expand/collapse"),
        Binding("right", "expand_or_down", "Expand", show=False, id="tree.expand",
                tooltip="open the chain (or table, group) under the cursor; on an open one, go to its first rule; "
                "on a rule, scroll right"),
        Binding("left", "collapse_or_up", "Collapse", show=False, id="tree.collapse",
                tooltip="close the chain under the cursor; on a rule or a closed chain, go to its parent "
                "(scrolled right: scroll back first)"),
        Binding("j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("k", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("g", "scroll_home", "Top", show=False, id="tree.top"),
        Binding("G", "scroll_end", "Bottom", show=False, id="tree.bottom"),
    ]

    class Follow(Message):
        """Enter on a rule that jumps: the pane follows it (and records history)."""

        def __init__(self, source: Loc, target: Loc) -> None:
            self.source, self.target = source, target
            super().__init__()

    def __init__(self, ruleset: Ruleset, insights: Insights, *, entries: EntryCounts | None = None,
                 **kwargs: object) -> None:  # fmt: skip
        super().__init__(Text(printable(ruleset.source or "dump")), **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.ruleset = ruleset
        self.insights = insights
        self.entries = entries or EntryCounts(ruleset)  # what entered each user chain (its callers' counters)
        self.highlight: re.Pattern[str] | None = None
        self._index: dict[Loc, TreeNode[NodeInfo]] = {}
        self._groups: dict[int, TreeNode[NodeInfo]] = {}
        self._pages: dict[Loc, list[tuple[int, int, TreeNode[NodeInfo]]]] = {}  # a big chain's pages of rules
        self._containers: dict[tuple[str | None, str], tuple[Group, ...]] = {}
        self._styles: dict[str, object] | None = None
        # watch mode: what moved since the previous read (None: not watching, no delta column)
        self.rule_moves: Mapping[Loc, tuple[int, bool]] | None = None
        self.chain_moves: Mapping[Loc, tuple[int, bool, bool]] = {}

    def refs(self, table: str | None, chain: str) -> int:
        """How many rules jump or go to ``chain`` (``iptables -L``'s "references"), counted from the rows'
        targets in one pass per table (:class:`EntryCounts`): cheaper than the full caller index, which the
        first paint need not wait for. In an nft table: the rules and map elements that name it (inline verdict
        maps included)."""
        nft = getattr(self.insights, "callers_of", None)
        callers = nft(table, chain) if nft is not None else None
        return len(callers) if callers is not None else self.entries.refs(table, chain)

    # -- cheap labels (Tree's defaults re-parse and re-render every label) ------------------------------
    def process_label(self, label: str | Text) -> Text:
        return label if isinstance(label, Text) else Text(label)

    def get_label_width(self, node: TreeNode[NodeInfo]) -> int:
        return node.label.cell_len + (2 if node.allow_expand else 0)  # type: ignore[union-attr]

    def styles_map(self) -> dict[str, object]:
        """The component classes' styles, looked up once (until the theme changes: :meth:`_theme_changed`)."""
        if self._styles is None:
            self._styles = {n: self.get_component_rich_style(f"chain-tree--{n}", partial=True) for n in STYLE_NAMES}
        return self._styles

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        """Labels carry their styles: look the styles up again and rebuild the labels of the nodes made so far."""
        self._styles = None
        self.relabel()
        dim = self.styles_map()["dim"]
        for node in self._groups.values():
            node.set_label(Text(node.label.plain, dim, end=""))  # type: ignore[union-attr, arg-type]

    def relabel(self, locs: Iterable[Loc] | None = None, *, kinds: tuple[str, ...] = ("table", "chain", "rule")) -> None:
        """Build the labels of the nodes made so far again (only those of ``locs``, if given, and of ``kinds``):
        after a theme change, new counters, or the entry counts of a big dump."""
        rows: dict[Loc, Sequence[Row]] = {}
        index = self._index
        nodes = index.items() if locs is None else ((loc, index[loc]) for loc in locs if loc in index)
        for loc, node in nodes:
            info = node.data
            if info is None or info.kind not in kinds:
                continue
            if info.kind == "table":
                node.set_label(self._table_label(loc.table))
            elif info.kind == "chain" and loc.chain is not None:
                node.set_label(self._chain_label(loc.table, loc.chain, info.shown))
            elif info.kind == "rule" and loc.chain is not None:
                if loc.chain_loc not in rows:
                    rows[loc.chain_loc] = rows_of(self.ruleset.tables[loc.table].chains[loc.chain])
                node.set_label(self._rule_label(loc, rows[loc.chain_loc]))

    # -- labels ----------------------------------------------------------------------------------------
    def _table_label(self, tname: str | None) -> Text:
        table = self.ruleset.tables[tname]
        styles = self.styles_map()
        label = Text(printable(tname or "(no table: iptables -S form)"), styles["table"], end="")  # type: ignore[arg-type]
        if is_nft_table(tname):  # an nft table (kptui.engine.nft.display): its sets are chains named @NAME
            sets = [c for name, c in table.chains.items() if name.startswith("@")]
            rules = table.rule_count - sum(len(c.rules) for c in sets)
            label.append(f"  nft · {plural(len(table.chains) - len(sets), 'chain')} · {plural(rules, 'rule')} · "
                         f"{plural(len(sets), 'set/map', 'sets/maps')}", styles["dim"])  # type: ignore[arg-type]
            return label
        if is_ipvs_table(tname):  # an IPVS node's side (kptui.engine.ipvs.display): sets, or virtual services
            what = (f"  `ipset save` · {plural(len(table.chains), 'set')} · {plural(table.rule_count, 'member')}"
                    if tname == IPSET_TABLE else f"  IPVS table · {plural(len(table.chains), 'virtual service')} · "
                    f"{plural(table.rule_count, 'real server')}")  # fmt: skip
            label.append(what, styles["dim"])  # type: ignore[arg-type]
            return label
        label.append(f"  {plural(len(table.chains), 'chain')} · {plural(table.rule_count, 'rule')}",
                     styles["dim"])  # type: ignore[arg-type]
        return label

    def _chain_label(self, table: str | None, name: str, shown: tuple[int, ...] | None) -> Text:
        nft = is_nft_table(table)
        ipvs = is_ipvs_table(table)
        note = getattr(self.insights, "chain_note", None)
        unit = "element" if nft and name.startswith("@") else "rule"
        if ipvs:
            unit = "member" if table == IPSET_TABLE else "real server"
        return chain_label(self.ruleset.tables[table].chains[name], self.styles_map(),  # type: ignore[arg-type]
                           service=self.insights.service_of(table, name), refs=self.refs(table, name),
                           n_shown=None if shown is None else len(shown), highlight=self.highlight,
                           delta=self.chain_moves.get(Loc(table, name)),
                           entered=self.entries.get(table, name),
                           note=note(table, name) if (nft or ipvs) and note else None, unit=unit)  # fmt: skip

    def _rule_label(self, rloc: Loc, rows: Sequence[Row]) -> Text:
        """The label of rule ``rloc``; ``rows``: its chain's rows."""
        assert rloc.chain is not None and rloc.index is not None
        chains = self.ruleset.tables[rloc.table].chains
        row = rows[rloc.index - 1]
        moves = self.rule_moves
        return rule_label(rloc.index, len(str(len(rows))), row, rloc.chain,
                          self.styles_map(), is_chain_target=row[4] in chains,  # type: ignore[arg-type]
                          highlight=self.highlight, delta=False if moves is None else moves.get(rloc),
                          nft=is_nft_table(rloc.table) or is_ipvs_table(rloc.table))  # fmt: skip

    # -- building ------------------------------------------------------------------------------------
    def show_view(self, view: dict[str | None, list[Entry]], *, highlight: re.Pattern[str] | None = None,
                  expand_chains: bool = False) -> list[Loc]:  # fmt: skip
        """Replace the tree's content; returns the filter matches in display order. The cursor is on no line
        until the caller reveals one."""
        self.clear()
        # Tree.clear() keeps the cursor's line number and node: a reveal landing on the same line of the new
        # content would then change nothing, post no highlight, and leave the old view's node as the cursor
        # node (the detail pane and `y` stayed on a rule of the previous filter)
        self.cursor_line = -1
        self._index.clear()
        self._groups.clear()
        self._containers.clear()
        self._pages.clear()
        self.highlight = highlight
        matches: list[Loc] = []
        for tname in [t for t in _ordered(self.ruleset) if t in view]:
            items = arrange(view[tname])
            for chain, groups in paths(items):
                if groups:
                    self._containers[(tname, chain)] = groups
            node = self.root.add(self._table_label(tname), NodeInfo("table", Loc(tname), items=items))
            self._index[Loc(tname)] = node
            self._open(node)
            if highlight is not None:
                matches.extend(matches_in_order(tname, items))
        if expand_chains:
            for loc in list(self._index):
                if loc.kind == "chain":
                    self._open(self._index[loc])
        return matches

    def _add_items(self, parent: TreeNode[NodeInfo], table: str | None, items: list[Entry | Group]) -> None:
        chains = self.ruleset.tables[table].chains
        dim = self.styles_map()["dim"]
        for item in items:
            if isinstance(item, Group):
                label = Text(printable(item.label), dim, end="")  # type: ignore[arg-type]  # holds chain names
                self._groups[id(item)] = parent.add(label, NodeInfo("group", Loc(table), items=item.items))
                continue
            name, shown = item
            loc = Loc(table, name)
            self._index[loc] = parent.add(self._chain_label(table, name, shown), NodeInfo("chain", loc, shown=shown),
                                          allow_expand=len(chains[name].rules) > 0)  # fmt: skip

    def _add_rules(self, parent: TreeNode[NodeInfo], loc: Loc, shown: tuple[int, ...] | None) -> None:
        assert loc.chain is not None
        rows = rows_of(self.ruleset.tables[loc.table].chains[loc.chain])
        indices: Sequence[int] = shown if shown is not None else range(1, len(rows) + 1)
        if len(indices) > ELEMENT_PAGE and parent.data is not None and parent.data.kind == "chain":
            self._add_pages(parent, loc, indices)  # a big chain, set or map: its rules in pages, filled lazily
            return
        for i in indices:
            rloc = Loc(loc.table, loc.chain, i)
            self._index[rloc] = parent.add_leaf(self._rule_label(rloc, rows), NodeInfo("rule", rloc))

    def _add_pages(self, parent: TreeNode[NodeInfo], loc: Loc, indices: Sequence[int]) -> None:
        """Pages of ELEMENT_PAGE rules (a 30,000-rule KUBE-SERVICES: 30 pages; revealing one rule makes its page's
        nodes only), labelled by the first and last rule they hold."""
        assert loc.chain is not None
        dim = self.styles_map()["dim"]
        unit = "elements" if (loc.chain.startswith("@") and is_nft_table(loc.table)) or loc.table == IPSET_TABLE \
            else "rules"  # fmt: skip
        subset = len(indices) != len(self.ruleset.tables[loc.table].chains[loc.chain].rules)
        pages = []
        for at in range(0, len(indices), ELEMENT_PAGE):
            part = tuple(indices[at : at + ELEMENT_PAGE])
            start, end = part[0], part[-1]
            what = f"{unit} {start}–{end}" + (f" ({len(part)} shown)" if subset else "")
            node = parent.add(Text(what, dim, end=""), NodeInfo("page", loc, shown=part))  # type: ignore[arg-type]
            pages.append((start, end, node))
        self._pages[loc] = pages

    def _fill(self, node: TreeNode[NodeInfo]) -> None:
        info = node.data
        if info is None or info.loaded:
            return
        info.loaded = True
        if info.kind in ("table", "group") and info.items is not None:
            self._add_items(node, info.loc.table, info.items)
        elif info.kind in ("chain", "page"):
            self._add_rules(node, info.loc, info.shown)

    def _open(self, node: TreeNode[NodeInfo]) -> None:
        self._fill(node)
        if node.allow_expand and not node.is_expanded:
            node.expand()

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeInfo]) -> None:
        self._fill(event.node)

    # -- navigation ----------------------------------------------------------------------------------
    def node_for(self, loc: Loc) -> TreeNode[NodeInfo] | None:
        """The node showing ``loc`` (creating and expanding what leads to it), or None if not in view."""
        table = self._index.get(Loc(loc.table))
        if table is None:
            return None
        self._open(table)
        if loc.chain is None:
            return table
        if loc.chain_loc not in self._index:
            for group in self._containers.get((loc.table, loc.chain), ()):
                gnode = self._groups.get(id(group))
                if gnode is None:
                    return None
                self._open(gnode)
        chain = self._index.get(loc.chain_loc)
        if chain is None or loc.index is None:
            return chain
        self._open(chain)
        for start, end, page in self._pages.get(loc.chain_loc, ()):  # a big chain: the page that holds it
            if start <= loc.index <= end:
                self._open(page)
        node = self._index.get(loc)
        if node is None and chain.data is not None and chain.data.shown is None:
            return chain  # every rule is shown and this one is not there (a stale place after a reload)
        return node  # None: a filter hides the rule (the pane then clears the filter)

    def reveal(self, loc: Loc) -> TreeNode[NodeInfo] | None:
        node = self.node_for(loc)
        if node is not None:
            _ = self.last_line  # lays the lines out again, so the new node knows its line
            top, height = self.scroll_offset.y, self.scrollable_content_region.height
            if height and not top <= node.line < top + height:
                # Out of view: bring it a quarter down from the top rather than to the edge, so stepping
                # through a trace scrolls (and repaints the whole tree) once a page, not on every step.
                self.scroll_to(y=max(0, node.line - height // 4), animate=False, immediate=True)
            self.move_cursor(node, animate=False)
        return node

    @property
    def cursor_loc(self) -> Loc | None:
        node = self.cursor_node
        return node.data.loc if node is not None and node.data is not None else None

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[NodeInfo]) -> None:
        info = event.node.data
        if info is None:
            return
        self.post_message(RuleHighlighted(info.loc) if info.kind == "rule" else ChainHighlighted(info.loc))

    def action_expand_or_down(self) -> None:
        """Right arrow, as in most tree UIs (it scrolled the tree sideways)."""
        node = self.cursor_node
        if node is None or not node.allow_expand:
            self.action_scroll_right()  # a rule: its line may be longer than the pane
        elif not node.is_expanded:
            self._open(node)
        elif node.children:
            self.move_cursor(node.children[0], animate=False)

    def action_collapse_or_up(self) -> None:
        node = self.cursor_node
        if self.scroll_offset.x > 0:
            self.action_scroll_left()
        elif node is None:
            return
        elif node.allow_expand and node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent, animate=False)

    def _targets(self, loc: Loc) -> tuple[str, ...]:
        """Where enter on rule ``loc`` leads: its target chain, else the chains and maps its verdict maps name."""
        assert loc.chain is not None and loc.index is not None
        table = self.ruleset.tables[loc.table]
        target = rows_of(table.chains[loc.chain])[loc.index - 1][4]
        if target is not None and target in table.chains:
            return (target,)
        targets_of = getattr(self.insights, "follow_targets", None)
        return targets_of(loc) if targets_of is not None else ()

    def action_follow(self) -> None:
        node = self.cursor_node
        info = node.data if node is not None else None
        if info is None:
            return
        if info.kind == "rule" and info.loc.chain is not None and info.loc.index is not None:
            loc, targets = info.loc, self._targets(info.loc)

            def follow(name: str | None) -> None:
                if name is not None:
                    self.post_message(self.Follow(loc, Loc(loc.table, name)))

            if len(targets) == 1:
                follow(targets[0])
            elif targets:  # ask which
                title = f"{loc.chain} rule {loc.index} leads to {len(targets)} chains: follow"
                self.app.push_screen(ChooseScreen(title, targets), follow)
            return
        self.action_select_cursor()  # tables, groups and chains: expand or collapse
