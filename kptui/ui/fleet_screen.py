"""The fleet screen (``kptui DIR`` on a ``kptui fleet capture`` directory, or ``kptui A.kptui B.kptui …``): the
node list (1), the services × nodes table with its filter (2), the detail of what the cursor is on (3) and one
packet traced on every node at once (4). ``enter`` on a node, a cell or a node's trace outcome opens that node's
explorer (:class:`kptui.ui.node_screen.NodeScreen`; escape comes back here).

The panes post messages up (:mod:`kptui.ui.messages`); this screen answers by calling their methods. The
comparison was made before the screen opened (:mod:`kptui.ui.fleet_source`); the fleet trace runs in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static

from kptui.engine.kube.fleet_model import NodeParts
from kptui.engine.packet import Packet
from kptui.engine.trace_fleet import FleetTrace, TraceTarget, trace_fleet
from kptui.fmt import plural, printable

from .fleet_detail import FleetDetail
from .fleet_matrix_view import FleetMatrixPane
from .fleet_nodes import FleetNodes
from .fleet_source import FleetSource
from .fleet_trace_view import NODE, FleetTracePane, packet_maker
from .focus import focus_now
from .messages import FleetCellHighlighted, FleetTraceRequested, NodeOpenRequested

__all__ = ["EXTERNAL_CLIENT", "FleetScreen", "NodeOpener", "fleet_line"]

# Where the `p` key's NodePort packet comes from: a documentation address (RFC 5737), shown in the field
EXTERNAL_CLIENT = "203.0.113.10"

NodeOpener = Callable[[NodeParts, Packet | None], str | None]  # opens a node's explorer; else says why not


def fleet_line(fleet: FleetSource) -> str:
    """``fleet captures/ · 5 nodes, 1 capture failed · 6 service ports, 2 differ · 5 findings``"""
    report = fleet.report
    failed = sum(1 for n in report.nodes if n.node.error is not None)
    nodes = plural(len(report.nodes), "node") + (f", {failed} capture{'s' if failed > 1 else ''} failed"
                                                 if failed else "")  # fmt: skip
    differ = sum(1 for s in report.services if s.differs)
    services = plural(len(report.services), "service port") + f", {differ} differ"
    found = plural(len(report.findings), "finding")
    return " · ".join([f"fleet {printable(fleet.source)}", nodes, f"{len(report.compared)} compared", services, found])


class FleetScreen(Screen[None]):
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012 - Screen declares it a plain attribute
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "focus_pane('nodes')", "Nodes", id="fleet.focus-nodes"),
        Binding("2", "focus_pane('services')", "Services", id="fleet.focus-services"),
        Binding("3", "focus_pane('detail')", "Detail", id="fleet.focus-detail"),
        Binding("4", "focus_pane('trace')", "Trace", id="fleet.focus-trace"),
        Binding("slash", "filter", "Filter", show=False, id="fleet.filter-anywhere",
                tooltip="the services table's filter, from any pane"),
        Binding("t", "trace", "Trace on every node", id="fleet.trace",
                tooltip="the trace pane's packet, traced on every node; the outcomes side by side"),
        Binding("p", "packet_for_row", "Packet for this service", id="fleet.packet",
                tooltip="the trace pane filled in for the service port under the cursor (its NodePort from "
                f"{EXTERNAL_CLIENT} to each node, else its cluster IP from the node), and traced"),
    ]

    def __init__(self, fleet: FleetSource, open_node: NodeOpener) -> None:
        super().__init__()
        self.fleet = fleet
        self.open_node = open_node
        self.trace_result: FleetTrace | None = None
        self._request = 0

    def compose(self) -> ComposeResult:
        yield Static(Text(fleet_line(self.fleet), no_wrap=True, overflow="ellipsis"), id="fleet-bar", markup=False)
        yield FleetNodes(self.fleet.report, id="fleet-nodes")
        failed = frozenset(p.name for p in self.fleet.parts if p.error is not None)
        yield FleetMatrixPane(self.fleet.matrix, failed, id="fleet-services")
        with ContentSwitcher(initial="fleet-detail", id="fleet-bottom"):
            yield FleetDetail(self.fleet.report, id="fleet-detail")
            yield FleetTracePane(id="fleet-trace")
        yield Footer()

    @property
    def matrix(self) -> FleetMatrixPane:
        return self.query_one(FleetMatrixPane)

    @property
    def nodes(self) -> FleetNodes:
        return self.query_one(FleetNodes)

    @property
    def detail(self) -> FleetDetail:
        return self.query_one(FleetDetail)

    @property
    def trace_pane(self) -> FleetTracePane:
        return self.query_one(FleetTracePane)

    def on_mount(self) -> None:
        for pane_id, title in (("fleet-nodes", "1 nodes"), ("fleet-services", "2 service ports × nodes"),
                               ("fleet-detail", "3 detail"), ("fleet-trace", "4 one packet on every node")):
            self.query_one(f"#{pane_id}").border_title = title
        focus_now(self.matrix.table)
        self.call_after_refresh(self._show_cursor)

    def _show_cursor(self) -> None:
        key, node = self.matrix.cursor
        self.detail.show(self.matrix.row(key), node)

    # -- coordination ------------------------------------------------------------------------------------
    def on_fleet_cell_highlighted(self, message: FleetCellHighlighted) -> None:
        self.detail.show(self.matrix.row(message.key), message.node)

    def on_node_open_requested(self, message: NodeOpenRequested) -> None:
        parts = self.fleet.part(message.node)
        if parts is None:
            return
        why = self.open_node(parts, message.packet)
        title = f"node {printable(parts.name)}"
        if why is not None:
            self.notify(printable(why), title=title, severity="warning", markup=False)
            return
        row = self.fleet.report.node(parts.name)
        mode = row.node.mode if row is not None else None
        if mode not in (None, "iptables"):  # the explorer walks iptables rules: say what it does not show
            self.notify(f"kube-proxy runs in {printable(mode or '?')} mode here: the explorer shows the node's "
                        "iptables rules only (the fleet trace walked all of its rules; kptui trace on its bundle "
                        "does too)", title=title, severity="warning", markup=False)  # fmt: skip

    def on_fleet_trace_requested(self, message: FleetTraceRequested) -> None:
        addresses = {p.name: p.addresses for p in self.fleet.parts}
        try:
            shown, packet_for = packet_maker(message.fields, addresses)
        except ValueError as exc:
            self.trace_pane.error(str(exc))
            return
        self._request += 1
        self.trace_pane.busy(shown)
        targets = [TraceTarget(p.name, p.netfilter, p.context, p.error) for p in self.fleet.parts]
        self._trace_all(targets, packet_for, self._request)

    @work(thread=True, exclusive=True, group="fleet-trace", description="trace on every node")
    def _trace_all(self, targets: list[TraceTarget], packet_for: Callable[[TraceTarget], Packet],
                   request: int) -> None:  # fmt: skip
        result = trace_fleet(targets, packet_for)
        self.app.call_from_thread(self._traced, result, request)

    def _traced(self, result: FleetTrace, request: int) -> None:
        if not self.is_attached or request != self._request:  # the app is ending, or a newer trace was asked
            return
        self.trace_result = result
        self.trace_pane.show(result)
        focus_now(self.trace_pane.outcomes)

    # -- actions -------------------------------------------------------------------------------------------
    def _bottom(self, pane: str) -> None:
        """Show the detail or the trace pane (``-tracing``: on a short terminal the node list makes room)."""
        self.query_one(ContentSwitcher).current = pane
        self.set_class(pane == "fleet-trace", "-tracing")

    def action_focus_pane(self, pane: str) -> None:
        if pane == "nodes":
            if self.has_class("-short") and self.has_class("-tracing"):  # (hidden meanwhile: shown again)
                self._bottom("fleet-detail")
            focus_now(self.nodes)
        elif pane == "services":
            focus_now(self.matrix.table)
        elif pane == "detail":
            self._bottom("fleet-detail")
            focus_now(self.detail)
        else:
            self._bottom("fleet-trace")
            if self.trace_result is None:
                self.trace_pane.focus_field()
            else:
                focus_now(self.trace_pane.outcomes)

    def action_filter(self) -> None:
        self.matrix.action_filter()

    def action_trace(self) -> None:
        self._bottom("fleet-trace")
        self.trace_pane.request()

    def action_packet_for_row(self) -> None:
        key, _node = self.matrix.cursor
        service = self.fleet.report.service(key) if key is not None else None
        if service is None:
            self.notify("put the services table's cursor on a service port first", markup=False)
            return
        proto = service.protocol or "tcp"
        if service.node_port is not None:
            self.trace_pane.fill(origin="external", proto=proto, src=EXTERNAL_CLIENT, dst=NODE,
                                 dport=str(service.node_port))  # fmt: skip
        elif service.cluster_ip and service.port is not None:
            self.trace_pane.fill(origin="local", proto=proto, src=NODE, dst=service.cluster_ip,
                                 dport=str(service.port))  # fmt: skip
        else:
            self.notify("this service port has neither a NodePort nor a cluster IP to send to", markup=False)
            return
        self.action_trace()
