"""The hot-rules dialog of watch mode (``h``): the rules whose counters moved, hottest first, like
``kptui top`` but navigable. Rising DROP/REJECT counters are highlighted; ``ctrl+s`` switches between "since
the last read" and "since watching started"; the filter box above the list (tab to it) narrows the list by
service, chain or rule text as you type; enter jumps to the rule in the tree.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from kptui.engine.counters import RuleDelta, RuleKey
from kptui.fmt import human, plural, printable

from .locs import Loc
from .services import Insights
from .watch import Watcher

__all__ = ["HotRow", "HotRulesScreen", "hot_rows"]

MAX_ROWS = 500


class HotRow(NamedTuple):
    loc: Loc
    packets: int
    bytes: int
    rate: float  # packets per second over the last interval
    total: int  # packets since watching started
    text: str
    service: str | None
    drops: bool
    status: str


def hot_rows(w: Watcher, insights: Insights | None, *, since_start: bool = False, needle: str = "") -> list[HotRow]:
    """The moved rules of the last interval (or since the start), hottest first, filtered by ``needle``."""
    d = w.diff
    if d is None:
        return []
    needle = needle.lower().strip()
    rows: list[HotRow] = []
    deltas: list[RuleDelta] = [*d.rules, *d.appeared]
    if since_start:  # every rule still present that moved at some point, by its total
        deltas += _still_present(w, {x.key for x in deltas})
    for x in deltas:
        total = w.state.since_start.get(x.key, (x.packets, x.bytes))[0]
        service = None
        if insights is not None:
            service = insights.service_of(x.key.table, x.key.chain) or (
                insights.service_of(x.key.table, x.target) if x.target else None)  # fmt: skip
        if needle and not any(needle in t.lower() for t in (x.key.chain, x.key.text, service or "")):
            continue
        rows.append(HotRow(Loc(x.key.table, x.key.chain, x.index), x.packets, x.bytes, d.rate(x.packets), total,
                           x.key.text, service, x.drops, x.status))  # fmt: skip
    rows.sort(key=(lambda r: (-r.total, -r.packets)) if since_start else (lambda r: (-r.packets, -r.bytes, -r.total)))
    return rows


def _still_present(w: Watcher, seen: set[RuleKey]) -> list[RuleDelta]:
    """Rules that moved earlier but not in the last interval, as zero deltas at their place in the last read
    (found by their identity: table, chain, text and occurrence; rules gone since are left out)."""
    last = w.state.last
    if last is None:
        return []
    out: list[RuleDelta] = []
    for key in w.state.since_start:
        if key in seen:
            continue
        table = last.snapshot.tables.get(key.table)
        chain = table.chains.get(key.chain) if table is not None else None
        if chain is None:
            continue
        occurrence = -1
        for i, row in enumerate(chain.rows, 1):
            if row[1] == key.text:
                occurrence += 1
                if occurrence == key.occurrence:
                    out.append(RuleDelta(key, "moved", i, row[0], row[4], 0, 0, int(row[2] or 0), int(row[3] or 0)))
                    break
    return out


def row_text(r: HotRow, *, since_start: bool) -> Text:
    main = f"+{human(r.total if since_start else r.packets):>6} pkts"
    rate = f"{r.rate:>8.1f}/s" if not since_start else f"{'':>10}"
    where = f"{r.loc.table}/{r.loc.chain}:{r.loc.index}"
    svc = f"  [{r.service}]" if r.service else ""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    text.append(main, "bold red" if r.drops else "bold")
    text.append(f" {rate}  ")
    text.append(printable(where), "red" if r.drops else "")
    text.append(printable(svc), "italic")
    if r.status != "moved":
        text.append(f"  ({r.status})", "dim")
    text.append("  " + printable(r.text), "dim")
    return text


class HotRulesScreen(ModalScreen[Loc | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="hot.close"),
        Binding("ctrl+s", "toggle_since", "Last read / since start", id="hot.since"),
    ]

    def __init__(self, watcher: Watcher, insights: Insights | None) -> None:
        super().__init__()
        self.watcher = watcher
        self.insights = insights
        self.since_start = False
        self.rows: list[HotRow] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="hot-box"):
            yield Static(id="hot-title", markup=False)
            yield Input(placeholder="filter: service, chain or rule text", id="hot-filter", compact=True)
            yield OptionList(id="hot-list", markup=False, compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.refill()
        self.query_one("#hot-list").focus()

    def refill(self) -> None:
        needle = self.query_one("#hot-filter", Input).value
        self.rows = hot_rows(self.watcher, self.insights, since_start=self.since_start, needle=needle)
        d = self.watcher.diff
        span = "since watching started" if self.since_start else (
            f"in the last {d.seconds:.3g} s" if d is not None else "")  # fmt: skip
        if d is None:
            title = "Hot rules: the first read gives totals only; deltas come with the next read"
        else:
            title = f"Hot rules {span}: {plural(len(self.rows), 'rule')} moved · enter jumps · ctrl+s switches"
        self.query_one("#hot-title", Static).update(Text(title))
        box = self.query_one("#hot-list", OptionList)
        box.clear_options()
        box.add_options([Option(row_text(r, since_start=self.since_start)) for r in self.rows[:MAX_ROWS]])
        if self.rows:
            box.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#hot-list").focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self.rows):
            self.dismiss(self.rows[event.option_index].loc)

    def action_toggle_since(self) -> None:
        self.since_start = not self.since_start
        self.refill()

    def action_cancel(self) -> None:
        self.dismiss(None)
