"""The packet builder pane: the packet and node fields, presets for the service in focus, inline errors.

Values are checked by the engine itself (:class:`~kptui.engine.packet.Packet` and
:class:`~kptui.engine.packet.NodeContext` raise ``ValueError`` with messages meant for the user); each message
is shown under the field it is about. A valid packet is posted as
:class:`~kptui.ui.messages.TraceRequested`.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from kptui.engine.packet import CTSTATES, ORIGINS, NodeContext, Packet, parse_mark
from kptui.fmt import printable

from .messages import TraceRequested
from .presets import Preset, presets_for
from .services import ServiceInfo

__all__ = ["FIELDS", "PacketBuilder"]

PROTOS = ("tcp", "udp", "sctp", "icmp")
# field id → (label, placeholder); Select fields have choices instead.
INPUTS = {
    "src": ("source", "e.g. 10.244.1.5"),
    "sport": ("sport", "40000"),
    "dst": ("dest", "e.g. 10.96.0.10"),
    "dport": ("dport", "e.g. 80"),
    "in_iface": ("in-iface", "from the origin"),
    "mark": ("mark", "0x0"),
    "node_ips": ("node IPs", "10.0.0.2, …"),
    "pod_cidr": ("pod CIDR", "10.244.0.0/16"),
}
SELECTS = {"origin": ("from", ORIGINS), "proto": ("proto", PROTOS), "ctstate": ("state", CTSTATES)}
ROWS = (("origin", "proto", "ctstate"), ("src", "sport"), ("dst", "dport"), ("in_iface", "mark"),
        ("node_ips", "pod_cidr"))  # fmt: skip
FIELDS = tuple(f for row in ROWS for f in row)


def field_of(message: str) -> str | None:
    """Which field an engine ValueError is about."""
    m = message.lower()
    for prefix, name in (("source and destination", "dst"), ("source", "src"), ("destination", "dst"),
                         ("protocol", "proto"), ("origin", "origin"), ("conntrack", "ctstate"),
                         ("sport", "sport"), ("dport", "dport"), ("mark", "mark"),
                         ("node address", "node_ips"), ("pod cidr", "pod_cidr")):  # fmt: skip
        if m.startswith(prefix):
            return name
    return "dport" if "destination port" in m else None


def _split(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.replace(" ", ",").split(",") if v.strip())


class PacketBuilder(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", show=False, id="builder.leave-field"),
    ]

    def __init__(self, *, pod_cidr: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.detected_pod_cidr = pod_cidr
        self.service: ServiceInfo | None = None
        self.presets: list[Preset] = []
        self.errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pb-row"):
            yield Label("preset", classes="pb-label")
            yield Select([], prompt="presets: put the tree's cursor on a service", id="pb-preset", compact=True)
            yield Button("Trace ▶ t", id="pb-trace", compact=True, variant="primary")
        for n, row in enumerate(ROWS):
            with Horizontal(classes="pb-row"):
                for name in row:
                    if name in SELECTS:
                        label, choices = SELECTS[name]
                        yield Label(label, classes="pb-label")
                        yield Select([(c, c) for c in choices], allow_blank=False, value=choices[0],
                                     id=f"pb-{name}", compact=True, classes="pb-select")  # fmt: skip
                    else:
                        label, placeholder = INPUTS[name]
                        if name == "pod_cidr" and self.detected_pod_cidr:
                            placeholder = self.detected_pod_cidr
                        yield Label(label, classes="pb-label")
                        yield Input(placeholder=placeholder, id=f"pb-{name}", compact=True, classes="pb-input")
            yield self._hidden(Static(id=f"pb-err-{n}", classes="pb-error", markup=False))
        yield self._hidden(Static(id="pb-err-general", classes="pb-error", markup=False))

    @staticmethod
    def _hidden(widget: Static) -> Static:
        """Error lines start hidden (set here, not in on_mount: a mount handler may run before the children
        of its children exist, and a watch refresh can replace the screen at any moment)."""
        widget.display = False
        return widget

    # -- values --------------------------------------------------------------------------------------------
    def value(self, name: str) -> str:
        if name in SELECTS:
            v = self.query_one(f"#pb-{name}", Select).value
            return str(v) if v is not Select.NULL else ""
        return self.query_one(f"#pb-{name}", Input).value.strip()

    def set_value(self, name: str, value: str) -> None:
        if name in SELECTS:
            choices = SELECTS[name][1]
            if value in choices:
                self.query_one(f"#pb-{name}", Select).value = value
        else:
            self.query_one(f"#pb-{name}", Input).value = value

    def fill(self, packet: Packet | None = None, node: NodeContext | None = None) -> None:
        """Fill the fields from a packet and node (``kptui FILE --src … --dst …``)."""
        if packet is not None:
            for name, v in (("src", packet.src), ("dst", packet.dst), ("origin", packet.origin),
                            ("proto", packet.proto), ("ctstate", packet.ctstate),
                            ("sport", "" if packet.sport is None else str(packet.sport)),
                            ("dport", "" if packet.dport is None else str(packet.dport)),
                            ("in_iface", packet.in_iface or ""), ("mark", f"{packet.mark:#x}")):  # fmt: skip
                self.set_value(name, v)
        if node is not None:
            self.set_value("node_ips", ", ".join(node.addresses))
            self.set_value("pod_cidr", ", ".join(node.pod_cidrs))
            self.extra_node = node

    extra_node: NodeContext | None = None  # options the fields do not show (interfaces, recent lists, …)

    def field_values(self) -> dict[str, str]:
        """Every field as typed (a watch refresh rebuilds the screen and puts them back)."""
        return {name: self.value(name) for name in FIELDS}

    def restore_fields(self, values: dict[str, str], node: NodeContext | None) -> None:
        for name, value in values.items():
            if name in FIELDS:
                self.set_value(name, value)
        self.extra_node = node

    def build(self) -> tuple[Packet, NodeContext] | None:
        """The packet and node, or None with ``self.errors`` set (field → message)."""
        errors: dict[str, str] = {}
        v = self.value
        ports: dict[str, int | None] = {}
        for name in ("sport", "dport"):
            text = v(name)
            if text and not text.isdigit():
                errors[name] = f"{name} '{text}' is not a number"
            ports[name] = int(text) if text.isdigit() else None
        mark = 0
        if v("mark"):
            try:
                mark = parse_mark(v("mark"))
            except ValueError as exc:
                errors["mark"] = str(exc) if "32-bit" in str(exc) else f"mark '{v('mark')}' is not a number (e.g. 0x4000)"
        for name, what in (("src", "source"), ("dst", "destination")):
            if not v(name):
                errors[name] = f"{what} address needed"
        node = None
        try:
            base = self.extra_node or NodeContext()
            node = NodeContext(addresses=_split(v("node_ips")), pod_cidrs=_split(v("pod_cidr")),
                               interfaces=base.interfaces, uplink=base.uplink, pod_iface=base.pod_iface,
                               recent=base.recent, recent_all=base.recent_all, ipsets=base.ipsets)  # fmt: skip
        except ValueError as exc:
            errors[field_of(str(exc)) or "general"] = str(exc)
        packet = None
        if not errors:
            try:
                packet = Packet(v("src"), v("dst"), v("proto"), ports["sport"], ports["dport"], v("origin"),
                                v("in_iface") or None, mark, v("ctstate"))  # fmt: skip
            except ValueError as exc:
                errors[field_of(str(exc)) or "general"] = str(exc)
        self.errors = errors
        self._show_errors()
        if errors or packet is None or node is None:
            return None
        return packet, node

    def _show_errors(self) -> None:
        for n, row in enumerate(ROWS):
            msgs = [self.errors[f] for f in row if f in self.errors]
            box = self.query_one(f"#pb-err-{n}", Static)
            box.update(Text("\n".join(f"✗ {printable(m)}" for m in msgs)))
            box.display = bool(msgs)
            for f in row:
                self.query_one(f"#pb-{f}").set_class(f in self.errors, "-error")
        general = self.query_one("#pb-err-general", Static)
        general.update(Text(f"✗ {printable(self.errors['general'])}" if "general" in self.errors else ""))
        general.display = "general" in self.errors

    # -- presets ---------------------------------------------------------------------------------------------
    def set_service(self, service: ServiceInfo | None) -> None:
        """Offer presets for the service the tree's cursor is on (applied when the pane is next shown: the
        cursor moves on every trace step, and a hidden Select need not follow it)."""
        self._pending = service
        if self.display:
            self._apply_service()

    _pending: ServiceInfo | None = None

    def on_show(self) -> None:
        self._apply_service()

    def _apply_service(self) -> None:
        service = self._pending
        if service is self.service:
            return
        self.service = service
        self.presets = presets_for(service, node_ip="", pod_cidr=None) if service is not None else []
        select = self.query_one("#pb-preset", Select)
        select.set_options([(Text(printable(p.label)), i) for i, p in enumerate(self.presets)])
        # (Select renders its prompt as markup: no dump text in it; the options are Text objects)
        select.prompt = (f"{len(self.presets)} presets for the service under the tree's cursor"
                         if service is not None and self.presets
                         else "presets: put the tree's cursor on a service")  # fmt: skip

    def apply_preset(self, index: int) -> None:
        if self.service is None or not 0 <= index < len(self.presets):
            return
        node_ips = _split(self.value("node_ips"))
        pod_cidr = (_split(self.value("pod_cidr")) or (self.detected_pod_cidr,))[0]
        fresh = presets_for(self.service, node_ip=node_ips[0] if node_ips else "", pod_cidr=pod_cidr)
        for name, value in fresh[index].fields.items():
            self.set_value(name, value)
        self.build()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "pb-preset":
            event.stop()
            if event.value is not Select.NULL:
                self.apply_preset(int(event.value))  # type: ignore[call-overload]

    # -- actions ---------------------------------------------------------------------------------------------
    def request_trace(self) -> bool:
        built = self.build()
        if built is None:
            return False
        self.post_message(TraceRequested(*built))
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.request_trace()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.request_trace()

    def action_leave_field(self) -> None:
        self.query_one("#pb-trace", Button).focus()

    def focus_first(self) -> None:
        self.query_one("#pb-src", Input).focus()
