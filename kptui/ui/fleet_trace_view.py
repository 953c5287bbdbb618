"""The fleet screen's trace pane: one packet (from, protocol, source, destination, destination port; ``node`` for
an address: each node's own address of the packet's family) traced on every node at once
(:func:`kptui.engine.trace_fleet.trace_fleet`), and the outcomes side by side: per node where the packet goes
(its endpoints, whether it is masqueraded, where it is dropped), the outcome most nodes share, and the nodes
whose outcome differs from it, highlighted. ``enter`` on a node's outcome opens its explorer on that packet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from kptui.engine.packet import ORIGINS, PORT_PROTOCOLS, Packet
from kptui.engine.trace_fleet import FleetTrace, TraceTarget, own_address
from kptui.fmt import printable

from .fleet_matrix_view import FleetTable
from .focus import focus_now
from .messages import FleetTraceRequested, NodeOpenRequested

__all__ = ["FIELDS", "FleetTracePane", "packet_maker"]

FIELDS = ("origin", "proto", "src", "dst", "dport")
PROTOS = ("tcp", "udp", "sctp", "icmp", "icmpv6")
NODE = "node"  # as an address: each node's own
_SAMPLE = {False: "192.0.2.1", True: "2001:db8::1"}  # stands in for "node" while the fields are checked


def packet_maker(fields: dict[str, str],
                 addresses: Mapping[str, Sequence[str]]) -> tuple[str, Callable[[TraceTarget], Packet]]:  # fmt: skip
    """The packet the fields describe, in words (``10.0.0.1 → node:30080/tcp``; checked with a documentation
    address standing in for ``node``: ValueError, with a message for the user, when a field is wrong), and per
    node the packet with ``node`` made that node's own address."""
    src, dst = fields["src"].strip(), fields["dst"].strip()
    if src == NODE and dst == NODE:
        raise ValueError("source and destination cannot both be the node")
    ipv6 = ":" in (dst if src == NODE else src)
    port = fields["dport"].strip()
    if port and not port.isdigit():
        raise ValueError(f"dport '{port}' is not a port number")
    dport = int(port) if port else None
    proto = fields["proto"]
    if proto in PORT_PROTOCOLS and dport is None:
        raise ValueError(f"a {proto} packet needs a destination port")
    if proto not in PORT_PROTOCOLS:
        dport = None

    def make(s: str, d: str) -> Packet:
        return Packet(s, d, proto, None, dport, fields["origin"])

    template = make(_SAMPLE[ipv6] if src == NODE else src, _SAMPLE[ipv6] if dst == NODE else dst)
    shown_dst = NODE if dst == NODE else f"[{template.dst}]" if ipv6 and dport is not None else template.dst
    shown = f"{NODE if src == NODE else template.src} → {shown_dst}" + (f":{dport}" if dport is not None else "")

    def packet_for(target: TraceTarget) -> Packet:
        mine = addresses.get(target.name, ())
        return make(own_address(mine, ipv6) if src == NODE else src, own_address(mine, ipv6) if dst == NODE else dst)

    return f"{shown}/{proto} from {fields['origin']}", packet_for


class FleetTracePane(Vertical):
    """The packet's fields, a Trace button, the majority's outcome and one row per node (``#fleet-outcomes``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", id="fleet-trace.leave-field"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.result: FleetTrace | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="ft-row"):
            yield Label("from", classes="ft-label")
            yield Select([(o, o) for o in ORIGINS], allow_blank=False, value="external", id="ft-origin",
                         compact=True, classes="ft-select")  # fmt: skip
            yield Label("proto", classes="ft-label")
            yield Select([(p, p) for p in PROTOS], allow_blank=False, value="tcp", id="ft-proto", compact=True,
                         classes="ft-select")  # fmt: skip
        with Horizontal(classes="ft-row"):
            yield Label("source", classes="ft-label")
            yield Input(placeholder="e.g. 203.0.113.7, or node", id="ft-src", compact=True, classes="ft-input",
                        select_on_focus=False)  # fmt: skip
            yield Label("dest", classes="ft-label")
            yield Input(placeholder="e.g. 10.96.0.10, or node (each node's own)", id="ft-dst", compact=True,
                        classes="ft-input", select_on_focus=False)  # fmt: skip
            yield Label("dport", classes="ft-label")
            yield Input(placeholder="e.g. 30080", id="ft-dport", compact=True, classes="ft-port",
                        select_on_focus=False)  # fmt: skip
            yield Button("Trace all ▶ t", id="ft-trace", compact=True, variant="primary")
        yield Static(id="ft-error", markup=False)
        yield Static(id="ft-majority", markup=False)
        yield FleetTable(id="fleet-outcomes", cursor_type="row", zebra_stripes=False)
        yield Static(id="ft-outcome", markup=False)

    @property
    def outcomes(self) -> FleetTable:
        return self.query_one("#fleet-outcomes", FleetTable)

    def on_mount(self) -> None:
        self.query_one("#ft-error").display = False
        table = self.outcomes
        for name in ("node", "against the majority", "masquerade", "through", "outcome"):
            table.add_column(table.text(name, "heading"), key=name)
        self.query_one("#ft-majority", Static).update(Text("t traces the packet on every node; p (in the "
                                                           "services table) fills it in for the service port"))

    # -- fields ------------------------------------------------------------------------------------------
    def fields(self) -> dict[str, str]:
        out = {}
        for name in FIELDS:
            widget = self.query_one(f"#ft-{name}")
            out[name] = str(widget.value) if isinstance(widget, Select) else widget.value  # type: ignore[attr-defined]
        return out

    def fill(self, **values: str) -> None:
        for name, value in values.items():
            widget = self.query_one(f"#ft-{name}")
            if isinstance(widget, Select | Input):
                widget.value = value

    def request(self) -> bool:
        """Post the fields as a trace request (False when a field is empty: the first such gets the focus)."""
        fields = self.fields()
        empty = next((n for n in ("src", "dst") if not fields[n].strip()), None)
        if empty is not None:
            self.error(f"{'source' if empty == 'src' else 'destination'} address needed (or: node)")
            self.focus_field(empty)
            return False
        self.post_message(FleetTraceRequested(fields))
        return True

    def error(self, message: str | None) -> None:
        box = self.query_one("#ft-error", Static)
        box.update(Text(f"✗ {printable(message)}" if message else ""))
        box.display = bool(message)

    def focus_field(self, name: str = "src") -> None:
        focus_now(self.query_one(f"#ft-{name}"))

    def action_leave_field(self) -> None:
        focus_now(self.outcomes)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return isinstance(self.screen.focused, Input | Select)
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.request()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.request()

    # -- outcomes ----------------------------------------------------------------------------------------
    def busy(self, packet: str) -> None:
        self.error(None)
        self.query_one("#ft-majority", Static).update(Text(f"tracing {printable(packet)} on every node …"))
        self.outcomes.clear()

    def show(self, result: FleetTrace) -> None:
        self.result = result
        table = self.outcomes
        table.clear()
        differing = dict(result.differing)
        majority = Text("majority: ", table.style_of("heading"))
        majority.append(printable(result.majority))
        if result.differing:
            majority.append(f" · {len(result.differing)} differ", table.style_of("differs"))
        self.query_one("#ft-majority", Static).update(majority)
        for o in result.outcomes:
            style = "failed" if o.error is not None else "differs" if o.node in differing else None
            through = "–" if o.error is not None else f"{float(o.through):.3g}"
            table.add_row(table.text(o.node, style or "heading"),
                          table.text(differing.get(o.node, "") or "= majority", style or "same"),
                          table.text(o.masquerade if o.error is None else "–", style), table.text(through, style),
                          table.text(o.outcome, style), key=o.node)  # fmt: skip

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The whole story of the node under the cursor, in one line (the columns may not all fit)."""
        event.stop()
        outcome = self.result.outcome(str(event.row_key.value)) if self.result is not None else None
        line = Text()
        if outcome is not None:
            differs = dict(self.result.differing).get(outcome.node) if self.result is not None else None
            line.append(printable(f"{outcome.node}: {outcome.packet or '(not traced)'} → {outcome.outcome}"))
            if differs:
                line.append(printable(f" · differs: {differs}"), self.outcomes.style_of("differs"))
        self.query_one("#ft-outcome", Static).update(line)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.result is None or event.row_key.value is None:
            return
        outcome = self.result.outcome(str(event.row_key.value))
        if outcome is not None:
            packet = outcome.trace.packet if outcome.trace is not None else None
            self.post_message(NodeOpenRequested(outcome.node, packet))
