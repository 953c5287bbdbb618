"""The fleet screen's node list: one row per node (mode, backend, era, how far its rules are from the majority's,
other components' rules in front of kube-proxy's, leftovers of another mode, stale conntrack entries, whether
its capture worked). ``enter`` opens the node's explorer. A failed capture is a row of its own, saying why."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from kptui.engine.kube.fleet_model import FleetReport, NodeRow

from .fleet_matrix_view import FleetTable
from .messages import FleetCellHighlighted, NodeOpenRequested

__all__ = ["FleetNodes", "node_style"]

CAPTURE_WIDTH = 28
COLUMNS = ("node", "mode", "backend", "era", "service ports", "in front", "leftovers", "stale ct", "capture")


def node_style(row: NodeRow) -> str | None:
    n = row.node
    if n.error is not None:
        return "failed"
    if row.differs or n.foreign or n.leftovers or n.stale_conntrack:
        return "differs"
    return None


def _cells(table: FleetTable, row: NodeRow, mode_majority: str | None) -> list[Text]:
    n = row.node
    style = node_style(row)
    if n.error is not None:
        capture = f"failed: {n.error}"
        capture = capture if len(capture) <= CAPTURE_WIDTH else capture[:CAPTURE_WIDTH - 1] + "…"  # (3 says all)
    elif n.failed_parts:
        capture = f"{len(n.failed_parts)} parts not read"
    else:
        capture = "ok"
    services = ("not compared" if not n.compared else f"{row.differs} ≠ majority" if row.differs else "= majority")
    values = [(n.name, style or "heading"), (n.mode or "?", "differs" if n.mode and n.mode != mode_majority else None),
              (n.backend or "?", None), (n.era or "?", None), (services, "differs" if row.differs else None),
              (str(len(n.foreign)) if n.foreign else "–", "differs" if n.foreign else None),
              (str(len(n.leftovers)) if n.leftovers else "–", "differs" if n.leftovers else None),
              ("?" if n.stale_conntrack is None else str(n.stale_conntrack) if n.stale_conntrack else "–",
               "differs" if n.stale_conntrack else None),
              (capture, "failed" if n.error is not None else "differs" if n.failed_parts else None)]  # fmt: skip
    return [table.text(v, s) for v, s in values]


class FleetNodes(FleetTable):
    """The node list (``#fleet-nodes``)."""

    def __init__(self, report: FleetReport, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.report = report

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(self.text(name, "heading"), key=name)
        modes = [r.node.mode for r in self.report.nodes if r.node.mode]
        majority = max(set(modes), key=modes.count) if modes else None
        for row in self.report.nodes:
            self.add_row(*_cells(self, row, majority), key=row.name)

    @property
    def node(self) -> str | None:
        if not self.report.nodes:
            return None
        return self.report.nodes[min(self.cursor_row, len(self.report.nodes) - 1)].name

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if self.has_focus:
            self.post_message(FleetCellHighlighted(None, self.node))

    def on_focus(self) -> None:
        self.post_message(FleetCellHighlighted(None, self.node))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.node is not None:
            self.post_message(NodeOpenRequested(self.node))
