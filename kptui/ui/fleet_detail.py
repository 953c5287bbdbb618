"""The fleet screen's detail pane: the whole story of what the cursor is on. A cell: the service port, its
frontends and the majority's endpoints, how this node's entry differs (or why it was not compared), what its
NodePort does here. A node: mode and where that came from, backend, era, sync, leftovers, other components'
rules in front of kube-proxy's, stale conntrack entries, what its capture could not read or why it failed, and
the findings that name it. All of it bundle text, shown as ``Text`` (never markup)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from kptui.engine.kube.fleet_matrix import MatrixRow
from kptui.engine.kube.fleet_model import FleetFinding, FleetReport
from kptui.fmt import printable

__all__ = ["FleetDetail"]

DETAIL_STYLES = ("heading", "label", "differs", "failed")


class FleetDetail(VerticalScroll):
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"fleet-detail--{n}" for n in DETAIL_STYLES}

    def __init__(self, report: FleetReport, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.report = report
        self.showing: tuple[str | None, str | None] = (None, None)

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-detail-body", markup=False)

    def _add(self, text: Text, value: str, style: str | None = None) -> None:
        """``value`` (untrusted: printable; a final newline kept as one) in ``style``."""
        line, end = (value[:-1], "\n") if value.endswith("\n") else (value, "")
        text.append(printable(line), self.get_component_rich_style(f"fleet-detail--{style}", partial=True)
                    if style else "")  # fmt: skip
        text.append(end)

    def _line(self, text: Text, label: str, value: str, style: str | None = None) -> None:
        self._add(text, f"{label:<11}", "label")
        self._add(text, value + "\n", style)

    def _findings(self, text: Text, found: list[FleetFinding]) -> None:
        for f in found:
            self._add(text, f"{'✗' if f.severity == 'error' else '⚠' if f.severity == 'warning' else 'ⓘ'} ",
                      "failed" if f.severity == "error" else "differs")  # fmt: skip
            self._add(text, f"{f.title}: {f.detail}\n")

    def show(self, row: MatrixRow | None, node: str | None) -> None:
        self.showing = (row.key if row is not None else None, node)
        text = Text(end="")
        if row is not None:
            self._service(text, row, node)
        if node is not None:
            if row is not None:
                text.append("\n")
            self._node(text, node, brief=row is not None)
        if row is None and node is None:
            self._add(text, "no service port matches the filter" if self.report.services else
                      "no service port on any compared node")  # fmt: skip
        self.query_one("#fleet-detail-body", Static).update(text)

    def _service(self, text: Text, row: MatrixRow, node: str | None) -> None:
        self._add(text, row.service + "\n", "heading")
        self._line(text, "frontends", ", ".join(row.frontends) or "none")
        self._line(text, "majority", row.majority)
        service = self.report.service(row.key)
        if service is not None and service.endpoints:
            self._line(text, "endpoints", ", ".join(service.endpoints))
        if service is not None and service.local_endpoints:
            self._line(text, "local eps", ", ".join(f"{n} {k}" for n, k in service.local_endpoints.items()))
        if node is not None:
            cell = row.cells[self._index(node)]
            self._line(text, f"on {node}", cell.detail, "differs" if cell.differs or cell.blackhole else None)
        else:
            for name, cell in zip(self._node_names(), row.cells, strict=True):
                if cell.differs or cell.blackhole:
                    self._line(text, name, cell.detail, "differs")
        self._findings(text, [f for f in self.report.findings if f.service in (row.service, row.key)])

    def _node_names(self) -> list[str]:
        return [n.name for n in self.report.nodes]

    def _index(self, node: str) -> int:
        return self._node_names().index(node)

    def _node(self, text: Text, name: str, *, brief: bool) -> None:
        row = self.report.node(name)
        if row is None:
            return
        n = row.node
        self._add(text, f"node {name}", "heading")
        self._add(text, "  (enter: its explorer)\n" if n.error is None else "\n", "label")
        if n.error is not None:
            self._line(text, "capture", f"failed: {n.error}", "failed")
            return
        mode = f"{n.mode or '?'}" + (f" ({n.mode_source})" if n.mode_source else "") + (
            f" — {n.mode_note}" if n.mode_note else "")  # fmt: skip
        self._line(text, "mode", mode)
        self._line(text, "backend", f"{n.backend or '?'} · era {n.era or '?'}")
        self._line(text, "sync", row.sync, "differs" if row.differs else None)
        if n.services_note:
            self._line(text, "services", n.services_note, "differs")
        if brief:
            return
        if n.addresses:
            self._line(text, "addresses", ", ".join(n.addresses))
        for left in n.leftovers:
            self._line(text, "leftover", left, "differs")
        for f in n.foreign:
            where = f"{f.where}" + (f" rule {f.index}" if f.index is not None else "")
            self._line(text, "in front", f"{where}: {f.rule} ({f.effect}, ahead of {f.ahead_of})", "differs")
        if n.stale_conntrack:
            self._line(text, "stale ct", f"{n.stale_conntrack} entries DNATed to endpoints that are gone"
                       + (f" ({', '.join(n.stale_examples)})" if n.stale_examples else ""), "differs")  # fmt: skip
        for part in n.failed_parts:
            self._line(text, "not read", part, "differs")
        self._findings(text, [f for f in self.report.findings if name in f.nodes and f.service is None])
