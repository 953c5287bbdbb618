"""The packet builder pane: the packet and node fields, presets for the service in focus, inline errors.

Values are checked by the engine itself (:class:`~kptui.engine.packet.Packet` and
:class:`~kptui.engine.packet.NodeContext` raise ``ValueError`` with messages meant for the user); each message
is shown under the field it is about. A valid packet is posted as
:class:`~kptui.ui.messages.TraceRequested`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from kptui.engine.packet import CTSTATES, ORIGINS, PORT_PROTOCOLS, PROTOCOLS, NodeContext, Packet, parse_mark
from kptui.fmt import printable

from .focus import focus_now
from .messages import TraceRequested
from .presets import NODE_NEEDED, Preset, presets_for
from .services import ServiceInfo

__all__ = ["FIELDS", "NO_NODE_HINT", "PacketBuilder"]

PROTOS = tuple(PROTOCOLS)  # the engine's own list: a packet from the command line keeps its protocol
IFNAME = re.compile(r"[^\s/:]{1,15}")  # a Linux interface name (IFNAMSIZ 16, no blank, slash or colon)
# field id → (label, placeholder); Select fields have choices instead.
INPUTS = {
    "src": ("source", "e.g. 10.244.1.5"),
    "sport": ("sport", "40000"),
    "dst": ("dest", "e.g. 10.96.0.10"),
    "dport": ("dport", "e.g. 80"),
    "in_iface": ("in-iface", "from the origin"),
    "mark": ("mark", "0x0"),
    "node_ips": ("node IPs", "e.g. 10.0.0.2"),  # "e.g.": an example, not a value used when left empty
    "pod_cidr": ("pod CIDR", "e.g. 10.244.0.0/16"),  # the dump's detected CIDR replaces it (that one is used)
    # session affinity: empty, a new client; "any", a returning one bound to an endpoint not known which (the
    # trace forks, one path per endpoint); an endpoint (IP:PORT or IP), the one it is bound to
    "affinity": ("affinity", "new client · any · e.g. 10.244.1.5:8080 (returning)"),
}
SELECTS = {"origin": ("from", ORIGINS), "proto": ("proto", PROTOS), "ctstate": ("state", CTSTATES)}
ROWS = (("origin", "proto", "ctstate"), ("src", "sport"), ("dst", "dport"), ("in_iface", "mark"), ("affinity",),
        ("node_ips", "pod_cidr"))  # fmt: skip
FIELDS = tuple(f for row in ROWS for f in row)
# Shown while the node IPs field is empty: what matters most on a file dump (a live node or a bundle fills it)
NO_NODE_HINT = ("ⓘ no node address: traces rest on assumptions (addrtype LOCAL, NodePorts, MASQUERADE). "
                "Type the node's IPs, or open a capture bundle or the live node.")  # fmt: skip


def field_of(message: str) -> str | None:
    """Which field an engine ValueError is about."""
    m = message.lower()
    for prefix, name in (("source and destination", "dst"), ("source", "src"), ("destination", "dst"),
                         ("protocol", "proto"), ("origin", "origin"), ("conntrack", "ctstate"),
                         ("sport", "sport"), ("dport", "dport"), ("mark", "mark"),
                         ("node address", "node_ips"), ("pod cidr", "pod_cidr"),
                         ("affinity", "affinity")):  # fmt: skip
        if m.startswith(prefix):
            return name
    return "dport" if "destination port" in m else None


def _split(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.replace(" ", ",").split(",") if v.strip())


def _version(text: str) -> int | None:
    try:
        return ipaddress.ip_network(text, strict=False).version
    except ValueError:
        return None


def _ip_version(text: str) -> int | None:
    """4 or 6 for an IP address (what the engine's Packet and NodeContext take), else None."""
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def _affinity(text: str) -> tuple[str | None, str | None]:
    """The affinity field: (``NodeContext.affinity``, None) or (None, the error). Empty: a new client;
    ``any`` (or ``returning``): bound to an endpoint not known which; else the endpoint, ``IP``, ``IP:PORT``
    or ``[IPv6]:PORT``, written as the engine compares it."""
    if not text:
        return None, None
    if text.lower() in ("any", "returning"):
        return "any", None
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if _ip_version(text) is not None:
        return str(ipaddress.ip_address(text)), None
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    version = _ip_version(host) if sep else None
    if version is None or (version == 6 and not text.startswith("[")):
        return None, (f"affinity '{text}' is not an endpoint (IP, IP:PORT, [IPv6]:PORT) nor 'any'; leave it "
                      "empty for a new client")  # fmt: skip
    number, error = _port("affinity port", port)
    if error or number is None:
        return None, error or f"affinity '{text}' has no port after ':'"
    ip = str(ipaddress.ip_address(host))
    return (f"[{ip}]:{number}" if version == 6 else f"{ip}:{number}"), None


def _endpoint_ip(endpoint: str) -> str:
    """The address of an endpoint as :func:`_affinity` writes it (``IP``, ``IP:PORT``, ``[IPv6]:PORT``)."""
    return endpoint if _ip_version(endpoint) else endpoint.rsplit(":", 1)[0].strip("[]")


def _port(name: str, text: str) -> tuple[int | None, str | None]:
    """A port field: (value, None) or (None, the error). ASCII digits only: ``str.isdigit`` takes ``²``."""
    if not text:
        return None, None
    if re.fullmatch(r"[0-9]{1,5}", text) and int(text) <= 65535:
        return int(text), None
    if re.fullmatch(r"[0-9]+", text):
        return None, f"{name} {text} is not a port number (0-65535)"
    return None, f"{name} '{text}' is not a number"


class PacketBuilder(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        # tab and shift+tab are handled as they arrive too, so a burst (over SSH, a paste) fills field after field
        Binding("tab", "move_field(1)", "Next field", show=False, priority=True, id="builder.next-field"),
        Binding("shift+tab", "move_field(-1)", "Previous field", show=False, priority=True,
                id="builder.previous-field"),
        Binding("escape", "leave_field", "Leave field", priority=True, id="builder.leave-field",
                tooltip="out of the field (to the Trace button): 1-4, t and the other keys work again; alt+1-4 "
                "switch panes from inside a field"),
    ]

    def __init__(self, *, pod_cidr: str | None = None, family: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        # the dump's local-traffic detector (``! -s CIDR``): text from the dump, kept only if it is a network
        self.detected_pod_cidr = pod_cidr if pod_cidr and _version(pod_cidr) else None
        self.family = {"ipv4": 4, "ipv6": 6}.get(family or "")  # the dump's IP family, when it says
        self.service: ServiceInfo | None = None
        self.presets: list[Preset] = []
        self.errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        # Focus order is screen order: preset, the fields row by row, then the Trace button at the end of the
        # last row (it sat between the preset and the fields, so tab went from → Trace → preset).
        with Horizontal(classes="pb-row"):
            yield Label("preset", classes="pb-label")
            yield Select([], prompt="presets: put the tree's cursor on a service", id="pb-preset", compact=True)
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
                            placeholder = self.detected_pod_cidr  # used when the field is left empty
                        yield Label(label, classes="pb-label")
                        # select_on_focus off: a key typed into a field the cursor landed on (after a preset,
                        # or `t` with an error) adds to its value instead of replacing it
                        yield Input(placeholder=placeholder, id=f"pb-{name}", compact=True, classes="pb-input",
                                    select_on_focus=False)  # fmt: skip
                if n == len(ROWS) - 1:
                    yield Button("Trace ▶ t", id="pb-trace", compact=True, variant="primary")
            yield self._hidden(Static(id=f"pb-err-{n}", classes="pb-error", markup=False))
            if "node_ips" in row:
                yield Static(NO_NODE_HINT, id="pb-node-hint", markup=False)
        yield self._hidden(Static(id="pb-err-general", classes="pb-error", markup=False))

    def reload(self, *, pod_cidr: str | None, family: str | None) -> None:
        """A watch read: the fields stay as typed; what the new rules say (the local-traffic detector's pod
        CIDR, the IP family) may have changed."""
        detected = pod_cidr if pod_cidr and _version(pod_cidr) else None
        if detected != self.detected_pod_cidr:
            self.detected_pod_cidr = detected
            self.query_one("#pb-pod_cidr", Input).placeholder = detected or INPUTS["pod_cidr"][1]
        self.family = {"ipv4": 4, "ipv6": 6}.get(family or "")

    @staticmethod
    def _hidden(widget: Static) -> Static:
        """Error lines start hidden (set here, not in on_mount: a mount handler may run before the children
        of its children exist, and a watch refresh can replace the screen at any moment)."""
        widget.display = False
        return widget

    # -- values --------------------------------------------------------------------------------------------
    def value(self, name: str) -> str:
        if name in SELECTS:
            return str(self.query_one(f"#pb-{name}", Select).value)  # never blank: allow_blank=False
        return self.query_one(f"#pb-{name}", Input).value.strip()

    def set_value(self, name: str, value: str) -> None:
        if name in SELECTS:
            choices = SELECTS[name][1]
            if value in choices:
                self.query_one(f"#pb-{name}", Select).value = value
        else:
            self.query_one(f"#pb-{name}", Input).value = value
            if name == "node_ips":
                self._node_hint()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "pb-node_ips":
            self._node_hint()

    def _node_hint(self) -> None:
        """The hint shows while no node address is typed (and no error says more about the field)."""
        hint = self.query_one("#pb-node-hint", Static)
        hint.display = not self.value("node_ips") and "node_ips" not in self.errors

    def fill(self, packet: Packet | None = None, node: NodeContext | None = None) -> None:
        """Fill the fields from a packet and node (``kptui FILE --src … --dst …``)."""
        if packet is not None:
            for name, v in (("src", packet.src), ("dst", packet.dst), ("origin", packet.origin),
                            ("proto", packet.proto), ("ctstate", packet.ctstate),
                            ("sport", "" if packet.sport is None else str(packet.sport)),
                            ("dport", "" if packet.dport is None else str(packet.dport)),
                            ("in_iface", packet.in_iface or ""), ("mark", f"{packet.mark:#x}")):  # fmt: skip
                self.set_value(name, v)
            self.extra_packet = packet
            self._node_preset = None  # the packet given replaces the preset's
        if node is not None:
            self.set_value("node_ips", ", ".join(node.addresses))
            self.set_value("pod_cidr", ", ".join(node.pod_cidrs))
            self.set_value("affinity", node.affinity or "")
            self.extra_node = node

    extra_node: NodeContext | None = None  # options the fields do not show (interfaces, recent lists, …)
    extra_packet: Packet | None = None  # the same for the packet (ICMP type, length, MAC)

    def build(self) -> tuple[Packet, NodeContext] | None:
        """The packet and node, or None with ``self.errors`` set (field → message): every field in error at
        once (each checked here as the engine checks it; the engine's own check comes last)."""
        errors: dict[str, str] = {}
        v = self.value
        waiting = self._fill_from_node()
        ports: dict[str, int | None] = {}
        for name in ("sport", "dport"):
            ports[name], error = _port(name, v(name))
            if error:
                errors[name] = error
            elif v(name) and v("proto") not in PORT_PROTOCOLS:
                errors[name] = f"{v('proto')} has no ports: leave {name} empty"
            elif name == "dport" and not v(name) and v("proto") in PORT_PROTOCOLS:
                errors[name] = f"a {v('proto')} packet needs a destination port"
        mark = 0
        if v("mark"):
            try:
                mark = parse_mark(v("mark"))
            except ValueError as exc:
                errors["mark"] = str(exc)
        for name, what in (("src", "source"), ("dst", "destination")):
            if name not in waiting and _ip_version(v(name)) is None:
                errors[name] = f"{what} '{v(name)}' is not an IP address" if v(name) else f"{what} address needed"
        versions = {_ip_version(v("src")), _ip_version(v("dst"))} - {None}
        if len(versions) > 1:
            errors["dst"] = "source and destination must both be IPv4 or both IPv6"
        family = _ip_version(v("src")) or _ip_version(v("dst"))
        if family and self.family and family != self.family and "src" not in errors:
            errors["src"] = f"the dump holds IPv{self.family} rules: an IPv{family} packet never meets them"
        iface = v("in_iface")
        if iface and v("origin") == "local":
            errors["in_iface"] = "a packet the node sends has no input interface: leave in-iface empty"
        elif iface and (not IFNAME.fullmatch(iface) or iface in (".", "..")):
            errors["in_iface"] = f"in-iface '{iface}' is not an interface name (up to 15 characters, no / or :)"
        node_ips = _split(v("node_ips"))
        bad = next((ip for ip in node_ips if _ip_version(ip) is None), None)
        if bad is not None:
            errors["node_ips"] = f"node address '{bad}' is not an IP address"
        elif family and node_ips and all(_version(ip) != family for ip in node_ips):
            errors["node_ips"] = f"node address: none is IPv{family} like the packet"
        elif waiting:
            errors["node_ips"] = NODE_NEEDED
        pod_cidrs = self._pod_cidrs()
        bad = next((c for c in _split(v("pod_cidr")) if _version(c) is None), None)
        if bad is not None:
            errors["pod_cidr"] = f"pod CIDR '{bad}' is not an address or CIDR"
        affinity, error = _affinity(v("affinity"))
        if error:
            errors["affinity"] = error
        elif affinity not in (None, "any") and family and _ip_version(_endpoint_ip(affinity)) != family:
            errors["affinity"] = f"affinity: endpoint {affinity} is not IPv{family} like the packet"
        node = None
        try:
            node = replace(self.extra_node or NodeContext(), addresses=node_ips, pod_cidrs=pod_cidrs,
                           affinity=affinity)
        except ValueError as exc:
            errors.setdefault(field_of(str(exc)) or "general", str(exc))
        packet = None
        if not errors:
            extra = self.extra_packet  # what the fields do not show, from the command line's packet
            try:
                packet = Packet(v("src"), v("dst"), v("proto"), ports["sport"], ports["dport"], v("origin"),
                                iface or None, mark, v("ctstate"), icmp_type=extra.icmp_type if extra else None,
                                length=extra.length if extra else None, mac=extra.mac if extra else None)  # fmt: skip
            except ValueError as exc:
                errors[field_of(str(exc)) or "general"] = str(exc)
        self.errors = errors
        self._show_errors()
        if errors or packet is None or node is None:
            return None
        return packet, node

    def _pod_cidrs(self) -> tuple[str, ...]:
        """The pod CIDRs as typed; none typed: the dump's own local-traffic detector, if it has one."""
        return _split(self.value("pod_cidr")) or ((self.detected_pod_cidr,) if self.detected_pod_cidr else ())

    def first_error(self) -> str | None:
        """The first field (in screen order) with an error."""
        return next((f for f in FIELDS if f in self.errors), None)

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
        self._node_hint()

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
        self.presets = presets_for(service) if service is not None else []
        select = self.query_one("#pb-preset", Select)
        select.set_options([(Text(printable(p.label)), i) for i, p in enumerate(self.presets)])
        # (Select renders its prompt as markup: no dump text in it; the options are Text objects)
        select.prompt = (f"{len(self.presets)} presets for the service under the tree's cursor"
                         if service is not None and self.presets
                         else "presets: put the tree's cursor on a service")  # fmt: skip

    def apply_preset(self, index: int, service: ServiceInfo | None = None) -> bool:
        """Fill the fields from preset ``index`` of ``service`` (default: the service the presets are offered
        for), with the node addresses and pod CIDRs as typed (or detected). False if there is no such preset.
        A preset that needs the node's address while none is typed fills what it can and waits for it."""
        service = service or self.service
        fresh = self._presets(service) if service else []
        if not 0 <= index < len(fresh):
            return False
        preset = fresh[index]
        for name, value in preset.fields.items():
            self.set_value(name, value)
        waits = service is not None and any(not preset.fields.get(f) for f in preset.node_fields)
        self._node_preset = (service, index, preset) if waits and service is not None else None
        self.build()
        return True

    _node_preset: tuple[ServiceInfo, int, Preset] | None = None  # applied before the node's address was known

    def _presets(self, service: ServiceInfo) -> list[Preset]:
        return presets_for(service, node_ips=_split(self.value("node_ips")), pod_cidrs=self._pod_cidrs(),
                           family=self.family)  # fmt: skip

    def _fill_from_node(self) -> tuple[str, ...]:
        """The fields a preset left for the node's address and still empty, if no node address is typed yet.
        Once one is typed (and all are addresses), the preset fills them from it, with every field it set
        that still holds what it set (an outside client of the node address's family, say)."""
        if self._node_preset is None:
            return ()
        service, index, applied = self._node_preset
        waiting = tuple(f for f in applied.node_fields if not self.value(f))
        node_ips = _split(self.value("node_ips"))
        if waiting and (not node_ips or any(_ip_version(ip) is None for ip in node_ips)):
            return waiting
        self._node_preset = None
        fresh = self._presets(service)
        if waiting and index < len(fresh) and fresh[index].label == applied.label:
            for name, value in fresh[index].fields.items():
                if self.value(name) == applied.fields.get(name):
                    self.set_value(name, value)
        return ()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "pb-preset":
            event.stop()
            if event.value is not Select.NULL:
                self.apply_preset(int(event.value))  # type: ignore[call-overload]
                if self._node_preset is not None:
                    self.focus_first("node_ips")  # where the missing node address goes
                event.select.clear()  # back to the prompt: picking the same preset again applies it again

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":  # from a text field (handled as it arrives: the keys behind it follow it);
            return isinstance(self.screen.focused, Input)  # a Select's escape closes its list
        if action == "move_field":  # not from inside an open Select list (its own keys)
            return isinstance(self.screen.focused, (Input, Select, Button))
        return True

    def action_move_field(self, step: int) -> None:
        if step > 0:
            self.screen.focus_next()
        else:
            self.screen.focus_previous()

    def action_leave_field(self) -> None:
        focus_now(self.query_one("#pb-trace", Button))  # out of the field: 1-4, t and the other keys work

    def focus_first(self, name: str | None = None) -> None:
        """Focus field ``name`` (the first field with an error, say), else the source."""
        focus_now(self.query_one(f"#pb-{name or 'src'}"))
