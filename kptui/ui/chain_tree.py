"""The chain tree pane: tables → chains → rules (:class:`~kptui.ui.chain_tree_widget.ChainTree`, filled
lazily), with the filter (``/``, ``n``/``N``, esc), jump following and history (enter, backspace), and a
status line. The pane posts :class:`~kptui.ui.messages.RuleHighlighted` /
:class:`~kptui.ui.messages.ChainHighlighted`; the screen calls :meth:`ChainTreePane.reveal` to move it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from kptui.engine import Ruleset
from kptui.fmt import plural, printable

from .chain_tree_widget import ChainTree, NodeInfo, TreeState
from .entry_counts import EntryCounts
from .focus import focus_now
from .locs import Loc
from .pending_insights import is_pending, wait_for
from .search import FilterResult, compile_query, run_filter
from .search_index import LazySearchIndex, filter_indexed
from .services import Insights

Moves = tuple[Mapping[Loc, tuple[int, bool]], Mapping[Loc, tuple[int, bool, bool]]]  # watch: rules', chains' moves

__all__ = ["ChainTree", "ChainTreePane", "NodeInfo"]

LIVE_FILTER_MAX_RULES = 20_000  # both filter as you type: smaller dumps in the UI thread, bigger ones from
# the search index (kptui.ui.search_index, built when the filter first opens) in a cancellable worker thread
TYPING_PAUSE = 0.15  # seconds without a keystroke before the filter follows the typing
EXPAND_FILTERED_CHAINS = 30  # a filter hitting at most this many chains shows their rules at once
HISTORY = 200


class ChainTreePane(Vertical):
    """Filter bar, tree and a status line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", priority=True, id="tree.filter",  # (then typing goes to the box)
                tooltip="an address (exact, or inside a rule's network), a CIDR, a port, a service, a chain, text"),
        Binding("n", "next_match", "Next match", id="tree.next-match"),
        Binding("N", "previous_match", "Prev match", id="tree.prev-match"),
        Binding("backspace", "back", "Back", id="tree.back"),
        Binding("escape", "clear_filter", "Clear filter", id="tree.clear-filter"),
    ]

    def __init__(self, ruleset: Ruleset, insights: Insights, *, moves: Moves | None = None,
                 entries: EntryCounts | None = None, **kwargs: object) -> None:  # fmt: skip
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.ruleset = ruleset
        self.insights = insights
        self.entries = entries
        self.moves = moves  # watch mode: (rule moves, chain moves) since the previous read
        self.history: list[Loc] = []
        self.result: FilterResult | None = None
        self.matches: list[Loc] = []
        self.match_pos = -1
        self._typing: Timer | None = None
        self.search = LazySearchIndex(ruleset, insights.service_of)

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: text, IP, CIDR, port, service, chain (enter applies, esc clears)",
                    id="tree-filter", compact=True)  # fmt: skip
        tree = ChainTree(self.ruleset, self.insights, entries=self.entries, id="chain-tree")
        if self.moves is not None:
            tree.rule_moves, tree.chain_moves = self.moves
        yield tree
        yield Static(id="tree-status", markup=False)

    @property
    def chain_tree(self) -> ChainTree:
        return self.query_one(ChainTree)

    def on_mount(self) -> None:
        self.query_one("#tree-filter").display = False
        self.show_everything()

    def show_everything(self, at: Loc | None = None, *, keep: TreeState | None = None) -> None:
        """The whole ruleset, unfiltered, the cursor on ``at`` (else on no line: the caller reveals one), or as
        ``keep`` says (a watch refresh)."""
        rs = self.ruleset
        self.chain_tree.show_view({t: [(c, None) for c in rs.tables[t].chains] for t in rs.tables})
        self.result, self.matches, self.match_pos = None, [], -1
        if keep is not None:
            self.chain_tree.restore(keep)
        elif at is not None:
            self.chain_tree.reveal(at)
        self._status()

    def _status(self, extra: str = "") -> None:
        rs = self.ruleset
        if self.result is None:
            text = f"{plural(rs.rule_count, 'rule')} in {plural(sum(len(t.chains) for t in rs.tables.values()), 'chain')}"
        else:
            r = self.result
            pos = f"{self.match_pos + 1}/{len(self.matches)}" if self.matches else "0"
            text = (f"/{r.query.text}: {plural(r.rules, 'rule')} in {plural(r.chains, 'chain')} · match {pos}"
                    " · n/N · esc clears")  # fmt: skip
        self.query_one("#tree-status", Static).update(Text(printable(extra or text), no_wrap=True, overflow="ellipsis"))

    # -- what the screen calls -------------------------------------------------------------------------
    @property
    def cursor_loc(self) -> Loc | None:
        return self.chain_tree.cursor_loc

    def reveal(self, loc: Loc, *, history: bool = False, expand: bool = False) -> bool:
        """Move the cursor to ``loc`` (clearing the filter if it hides it); ``expand`` opens a chain's rules;
        ``history`` lets backspace come back here."""
        here = self.cursor_loc
        node = self.chain_tree.reveal(loc)
        if node is None and self.result is not None:
            self.action_clear_filter(restore=False)
            node = self.chain_tree.reveal(loc)
        if node is not None and expand and loc.kind == "chain":
            self.chain_tree.node_for(Loc(loc.table, loc.chain, 1))  # fills and expands the chain
        if node is not None and history and here is not None and here != loc:
            self.history.append(here)
            del self.history[:-HISTORY]
        return node is not None

    def reload(self, ruleset: Ruleset, insights: Insights, moves: Moves | None, entries: EntryCounts, *,
               moved: Iterable[Loc] | None = None, same: bool = False) -> None:  # fmt: skip
        """A watch read: the same pane on the new rules, nothing the user opened, typed or scrolled lost.

        ``moved``: the nodes whose counters or deltas changed since the shown rules (None: not known, a read
        was skipped). ``same``: the rules are the shown ones, in the same order: only the moved nodes are
        relabelled. Otherwise, when every table still has the same chains and no filter is on, only the chains
        whose rules changed are filled again; else the view is rebuilt (the filter run again on the new rules)
        with the same chains open, the cursor on the same rule and the same scroll."""
        tree = self.chain_tree
        refill = None if same or moved is None or self.result is not None else tree.changed_chains(ruleset)
        state = tree.keep() if not same else None
        self.ruleset, self.insights, self.moves, self.entries = ruleset, insights, moves, entries
        self.search = LazySearchIndex(ruleset, insights.service_of)  # (a build under way is the old rules')
        self._indexing = False
        tree.swap(ruleset, insights, entries, moves)
        if same or refill is not None:
            if refill is not None and state is not None:
                tree.refill(refill, state)
            tree.relabel(moved)
            self._status()
            return
        query = self.result.query if self.result is not None else None
        self.show_everything(keep=state)
        if query is not None:  # the filter, again on the new rules (the view keeps what was open meanwhile)
            if ruleset.rule_count > LIVE_FILTER_MAX_RULES:
                self._status(f"filtering {plural(ruleset.rule_count, 'rule')} for '{query.text}' …")
                self._filter_in_thread(query, keep=True)
            else:
                self.show_filter(run_filter(ruleset, query, insights.service_of), keep=True)

    # -- actions -----------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter":
            return not isinstance(self.screen.focused, Input)  # in the filter box, `/` is typed (10.0.0.0/8)
        if action in ("next_match", "previous_match"):
            return bool(self.matches)
        if action == "clear_filter":
            return self.result is not None or bool(self.query_one("#tree-filter").display)
        if action == "back":
            return bool(self.history)
        return True

    def action_filter(self) -> None:
        box = self.query_one("#tree-filter", Input)
        box.display = True
        focus_now(box)  # the keys typed right after `/` go into the box, not to the tree
        self.search.hurry()
        self.prepare_search()  # if not built yet: while the user types the first characters

    def prepare_search(self) -> None:
        """Start building a big dump's search index in the background (about 1.5 s and 25 MB for 160k rules),
        unless it is built or being built. Not at start: the first paint and expansions need not compete."""
        if self.ruleset.rule_count > LIVE_FILTER_MAX_RULES and not self.search.ready and not self._indexing:
            self._indexing = True
            self._build_index()

    _indexing = False

    @work(thread=True, exclusive=True, group="search-index", description="index the rules for the filter")
    def _build_index(self) -> None:
        worker = get_current_worker()  # a big dump's service index first: the filter matches service names
        if not wait_for(self.insights, lambda: worker.is_cancelled):
            return
        self.search.get(background=True)  # gives way to the UI until a filter waits for it
        self.search.get(background=True).nets.get()  # then the address part, giving way until an address query waits
        settle = getattr(self.app, "settle", None)
        if settle is not None:
            settle()  # long-lived: out of the cyclic collector's sight, like the ruleset

    def action_clear_filter(self, restore: bool = True) -> None:
        box = self.query_one("#tree-filter", Input)
        box.value = ""
        box.display = False
        here = self.cursor_loc
        if self.result is not None:
            self.workers.cancel_group(self, "tree-filter")
            self.show_everything(at=here if restore else None)
        focus_now(self.chain_tree)
        self.refresh_bindings()

    def action_back(self) -> None:
        if self.history:
            self.reveal(self.history.pop())
        self.refresh_bindings()

    def action_next_match(self) -> None:
        self._step_match(+1)

    def action_previous_match(self) -> None:
        self._step_match(-1)

    def _step_match(self, delta: int) -> None:
        if not self.matches:
            return
        self.match_pos = (self.match_pos + delta) % len(self.matches)
        self.chain_tree.reveal(self.matches[self.match_pos])
        self._status()

    def on_chain_tree_follow(self, event: ChainTree.Follow) -> None:
        event.stop()
        self.reveal(event.target, history=True, expand=True)
        self.refresh_bindings()

    # -- the filter --------------------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._typing is not None:
            self._typing.stop()
        background = self.ruleset.rule_count > LIVE_FILTER_MAX_RULES  # as you type, once typing pauses
        self._typing = self.set_timer(TYPING_PAUSE, lambda: self.apply_filter(event.value, background=background))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._typing is not None:
            self._typing.stop()
        self.apply_filter(event.value, background=self.ruleset.rule_count > LIVE_FILTER_MAX_RULES)
        focus_now(self.chain_tree)

    def apply_filter(self, text: str, *, background: bool = False) -> None:
        query = compile_query(text)
        if query is None:
            if self.result is not None:
                self.show_everything(at=self.cursor_loc)
            return
        if background:
            doing = "filtering" if self.search.ready else "indexing"
            if is_pending(self.insights):
                doing = "waiting for the service index, then indexing"
            self._status(f"{doing} {plural(self.ruleset.rule_count, 'rule')} for '{query.text}' …")
            self._filter_in_thread(query)
        else:
            self.show_filter(run_filter(self.ruleset, query, self.insights.service_of))

    @work(thread=True, exclusive=True, group="tree-filter", description="filter")
    def _filter_in_thread(self, query: object, keep: bool = False) -> None:
        worker = get_current_worker()
        if not wait_for(self.insights, lambda: worker.is_cancelled):  # a big dump's service index first: the
            return  # filter matches service names
        search = self.search
        result = filter_indexed(search.get(), query, cancelled=lambda: worker.is_cancelled,  # type: ignore[arg-type]
                                wanted=lambda index: search.want_nets())  # fmt: skip
        if not worker.is_cancelled:
            self.app.call_from_thread(self._filtered, result, search, keep)

    def _filtered(self, result: FilterResult, search: LazySearchIndex, keep: bool) -> None:
        if search is self.search and self.is_attached:  # not the answer on rules replaced since
            self.show_filter(result, keep=keep)

    def show_filter(self, result: FilterResult, *, keep: bool = False) -> None:
        """Show a filter's result, the cursor on its first match; ``keep`` (a watch refresh): on the rule it was
        on, the same chains open and the same scroll, where the new view holds them."""
        if result.empty:
            self._status(f"/{result.query.text}: no match")
            return
        state = self.chain_tree.keep() if keep else None
        self.result = result
        self.matches = self.chain_tree.show_view(result.tables, highlight=result.query.pattern,
                                           expand_chains=result.chains <= EXPAND_FILTERED_CHAINS)  # fmt: skip
        self.match_pos = 0 if self.matches else -1
        if state is not None:
            self.chain_tree.restore(state)
            here = self.cursor_loc
            self.match_pos = self.matches.index(here) if here in self.matches else self.match_pos
        if state is None or self.cursor_loc is None:
            self.chain_tree.reveal(self.matches[0] if self.matches else Loc(next(iter(result.tables))))
        self._status()
        self.refresh_bindings()
