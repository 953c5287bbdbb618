"""The fleet screen's services × nodes pane: a filter box, the table (one row per service port, one column per
node, each cell how that node's entry stands against the majority: :mod:`kptui.engine.kube.fleet_matrix`) and
a status line. ``/`` filters as the chain tree does (a port, an address or CIDR, text), ``d`` keeps only the rows
where some node differs or a NodePort drops. :class:`FleetTable` (the styled DataTable) serves the node list and
the fleet trace too.

Every piece of bundle text (service names, node names, what differs) reaches the screen as ``Text`` built from
:func:`kptui.fmt.printable`: a DataTable reads a plain ``str`` cell as markup, so none is ever given one.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from kptui.engine.kube.fleet_matrix import Cell, FleetMatrix, MatrixRow
from kptui.fmt import plural, printable

from .focus import focus_now
from .messages import FleetCellHighlighted, NodeOpenRequested

__all__ = ["STATE_STYLE", "FleetMatrixPane", "FleetTable", "cell_text"]

TABLE_STYLES = ("same", "missing", "extra", "differs", "split", "not-compared", "drops", "failed", "heading")
# a cell's state → its style name
STATE_STYLE = {"same": "same", "missing": "missing", "extra": "extra", "endpoints": "differs", "shares": "differs",
               "setting": "differs", "no-majority": "split", "not-compared": "not-compared"}  # fmt: skip
SERVICE_COLUMN = "service"
TYPING_PAUSE = 0.15  # seconds after the last key before the filter applies (enter applies at once)


class FleetTable(DataTable[Text]):
    """A DataTable whose cells are styled by the fleet's states (theme colours in ``app.tcss``)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {f"fleet-table--{n}" for n in TABLE_STYLES}

    def style_of(self, name: str) -> Style:
        return self.get_component_rich_style(f"fleet-table--{name}", partial=True)

    def text(self, value: str, style: str | None = None) -> Text:
        """Untrusted text as a cell: printable, never markup."""
        return Text(printable(value), style=self.style_of(style) if style else "", no_wrap=True, end="")


def cell_text(table: FleetTable, cell: Cell, failed: bool) -> Text:
    """A cell as the table shows it: its word(s) in its state's style, a NodePort that drops there marked."""
    if failed:
        return table.text("✗ failed", "failed")
    text = table.text(cell.text, STATE_STYLE.get(cell.state, "differs"))
    if cell.blackhole:
        text.stylize(table.style_of("drops"), max(0, len(cell.text) - len(cell.text.split(" · ")[-1])))
    return text


class FleetMatrixPane(Vertical):
    """Filter box, the services × nodes table, status line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="fleet.filter",
                tooltip="a port, an address (or a CIDR the frontends or endpoints fall in), or text"),
        Binding("d", "differing", "Rows that differ", id="fleet.differing",
                tooltip="only the service ports where some node differs from the majority or a NodePort drops"),
        Binding("escape", "clear_filter", "Clear filter", id="fleet.clear-filter"),
    ]

    def __init__(self, matrix: FleetMatrix, failed: frozenset[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.matrix = matrix
        self.failed = failed  # nodes whose capture failed: their column says so
        self.query_text = ""
        self.differing_only = False
        self.shown: FleetMatrix = matrix
        self._typing: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: port, address or CIDR, text (enter applies, esc clears)",
                    id="fleet-filter", compact=True)  # fmt: skip
        yield FleetTable(id="fleet-matrix", cursor_type="cell", fixed_columns=1, zebra_stripes=False)
        yield Static(id="fleet-status", markup=False)

    @property
    def table(self) -> FleetTable:
        return self.query_one("#fleet-matrix", FleetTable)

    def on_mount(self) -> None:
        self.query_one("#fleet-filter").display = False
        table = self.table
        table.add_column(table.text("service port", "heading"), key=SERVICE_COLUMN)
        for node in self.matrix.nodes:
            label = f"{node} ✗" if node in self.failed else node
            table.add_column(table.text(label, "failed" if node in self.failed else "heading"), key=node)
        self.show()

    # -- what the table shows ---------------------------------------------------------------------------
    def show(self) -> None:
        """The rows the filter keeps, the cursor on the same row and node when it is still shown."""
        table = self.table
        here = self.cursor
        self.shown = self.matrix.filtered(self.query_text, differing_only=self.differing_only)
        table.clear()
        for row in self.shown.rows:
            table.add_row(self._service_cell(row), *(cell_text(table, c, n in self.failed)
                                                     for n, c in zip(self.shown.nodes, row.cells, strict=True)),
                          key=row.key)  # fmt: skip
        if here[0] is not None and any(r.key == here[0] for r in self.shown.rows):
            column = 0 if here[1] is None else self.shown.nodes.index(here[1]) + 1
            table.move_cursor(row=table.get_row_index(here[0]), column=column, animate=False)
        self._status()
        self._highlighted()

    def _service_cell(self, row: MatrixRow) -> Text:
        style = "differs" if row.differs else "drops" if row.blackholes else None
        return self.table.text(row.service, style)

    def _status(self) -> None:
        rows = self.shown.rows
        total = len(self.matrix.rows)
        differ = sum(r.differs for r in self.matrix.rows)
        drops = sum(r.blackholes for r in self.matrix.rows)
        parts = [f"{len(rows)} of {plural(total, 'service port')}" if len(rows) != total else plural(total,
                                                                                                   "service port"),
                 f"{differ} differ", f"{drops} with a NodePort that drops somewhere"]  # fmt: skip
        if self.query_text:
            parts.append(f"/{self.query_text}")
        parts.append("only rows that differ (d: all)" if self.differing_only else "d: only rows that differ")
        if not rows:
            parts.insert(0, "nothing matches")
        self.query_one("#fleet-status", Static).update(Text(printable(" · ".join(parts)), no_wrap=True,
                                                            overflow="ellipsis"))  # fmt: skip

    @property
    def cursor(self) -> tuple[str | None, str | None]:
        """(service port key, node) under the cursor; node None on the service column."""
        table = self.table
        if not self.shown.rows or table.row_count == 0:
            return None, None
        row, column = table.cursor_coordinate
        row = min(row, len(self.shown.rows) - 1)
        node = self.shown.nodes[column - 1] if 1 <= column <= len(self.shown.nodes) else None
        return self.shown.rows[row].key, node

    def row(self, key: str | None) -> MatrixRow | None:
        return next((r for r in self.matrix.rows if r.key == key), None)

    def _highlighted(self) -> None:
        self.post_message(FleetCellHighlighted(*self.cursor))

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        event.stop()
        self._highlighted()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget is self.table:  # back from the node list: the detail follows this cursor again
            self._highlighted()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        _key, node = self.cursor
        if node is not None:
            self.post_message(NodeOpenRequested(node))

    # -- the filter --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("filter", "differing"):
            return not isinstance(self.screen.focused, Input)  # in the filter box, `/` and `d` are typed
        if action == "clear_filter":
            return bool(self.query_text) or bool(self.query_one("#fleet-filter").display)
        return True

    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.display = True
        focus_now(box)
        self.refresh_bindings()

    def action_differing(self) -> None:
        self.differing_only = not self.differing_only
        self.show()

    def action_clear_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.value = ""
        box.display = False
        self.apply("")
        focus_now(self.table)
        self.refresh_bindings()

    def apply(self, query: str) -> None:
        if self._typing is not None:
            self._typing.stop()
            self._typing = None
        if query.strip() != self.query_text:
            self.query_text = query.strip()
            self.show()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "fleet-filter":
            event.stop()
            if self._typing is not None:
                self._typing.stop()
            value = event.value
            self._typing = self.set_timer(TYPING_PAUSE, lambda: self.apply(value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "fleet-filter":
            event.stop()
            self.apply(event.value)
            focus_now(self.table)
            self.refresh_bindings()
