"""NAT targets (nat table only): DNAT and REDIRECT rewrite the destination, SNAT and MASQUERADE the source;
each ends the nat table's walk for this hook. MASQUERADE takes the address of the interface the packet leaves
by (not any other address of the node); REDIRECT the input interface's (127.0.0.1 / ::1 from OUTPUT); both
by :mod:`kptui.engine.nataddr`, which the nft statements share."""

from __future__ import annotations

from ...flow import CONTINUE, STOP_TABLE, Effect
from ...nataddr import masquerade_source, redirect_destination
from ...packet import NodeContext
from ...spec import Target
from ...trace_model import PacketState
from ..unitbase import Opt, RuleFacts, TargetUnit, TargetValidate
from ..values import ANY, PLACEHOLDER, Bad, host_port, parse_port, ports_dash

__all__ = ["DNAT", "MASQUERADE", "NETMAP", "REDIRECT", "SNAT"]

_PORT_PROTOS = ("tcp", "udp", "sctp", "dccp", "6", "17", "132", "33")


def _split_hostport(text: str) -> tuple[str | None, int | None]:
    """``10.0.0.1:80``, ``[fd00::1]:80``, ``10.0.0.1-10.0.0.3:80-90``, ``:80`` → (first address, first port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1 or (":" in text and "." in text.split(":")[0]):
        host, _, port = text.partition(":")
    elif ":" in text:  # a bare IPv6 address
        host, port = text, ""
    else:
        host, port = text, ""
    first_host = host.split("-")[0] or None
    first_port = parse_port(port.split("-")[0]) if port else None
    return first_host, first_port


def _nat_apply(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    name = target.name
    opt = target.option("--to-destination" if name == "DNAT" else "--to-source")
    host, port = _split_hostport(opt.args[0]) if opt and opt.args else (None, None)
    if name == "DNAT":
        new = state.with_(dst=host or state.dst, dport=port if port is not None else state.dport, dnat=True)
    else:
        new = state.with_(src=host or state.src, sport=port if port is not None else state.sport, snat=True)
    return Effect(name, STOP_TABLE, new)


def _first_port(target: Target) -> int | None:
    ports = target.option("--to-ports")
    return parse_port(ports.args[0].split("-")[0]) if ports and ports.args else None


def _masquerade(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    addr, note = masquerade_source(state, node)
    port = _first_port(target)
    new = state.with_(src=addr or state.src, sport=port if port is not None else state.sport, snat=True,
                      masquerade=True)  # fmt: skip
    return Effect("MASQUERADE", STOP_TABLE, new, note)


def _redirect(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    addr = redirect_destination(state, node)
    port = _first_port(target)
    return Effect("REDIRECT", STOP_TABLE, state.with_(dst=addr or state.dst,
                                                      dport=port if port is not None else state.dport, dnat=True))


def _needs_proto(option: str, what: str) -> TargetValidate:
    """A port in ``option`` needs ``-p tcp|udp|sctp|dccp`` (not negated) before the target."""

    def validate(target: Target, facts: RuleFacts) -> Bad | None:
        opt = target.option(option)
        if opt is None or not opt.args:
            return Bad(f"{target.name}: {option} is required") if what == "mandatory" else None
        text = opt.args[0]
        has_port = text == PLACEHOLDER or text.startswith(":") or ("]:" in text) or (
            text.count(":") == 1 and not text.startswith("["))  # a blanked shape value: assume a port
        # iptables reads -p's number here, negated or not
        if (option == "--to-ports" or has_port) and facts.proto not in _PORT_PROTOS:
            return Bad(f"{target.name}: a port needs -p tcp, -p udp, -p sctp or -p dccp")
        return None

    return validate


_FLAGS = tuple(Opt((f,), (), invert=False) for f in ("--random", "--random-fully", "--persistent"))
DNAT = TargetUnit("DNAT", (Opt(("--to-destination",), (host_port("--to-destination"),), invert=False), *_FLAGS),
                  _nat_apply, tables=("nat",), validate=_needs_proto("--to-destination", "mandatory"),
                  doc="rewrite the destination")  # fmt: skip
SNAT = TargetUnit("SNAT", (Opt(("--to-source",), (host_port("--to-source"),), invert=False), *_FLAGS),
                  _nat_apply, tables=("nat",), validate=_needs_proto("--to-source", "mandatory"),
                  doc="rewrite the source")  # fmt: skip
MASQUERADE = TargetUnit("MASQUERADE", (Opt(("--to-ports",), (ports_dash("--to-ports"),), invert=False), *_FLAGS[:2]),
                        _masquerade, tables=("nat",), validate=_needs_proto("--to-ports", "optional"),
                        doc="rewrite the source to the outgoing interface's address")  # fmt: skip
REDIRECT = TargetUnit("REDIRECT", (Opt(("--to-ports",), (ports_dash("--to-ports"),), invert=False), _FLAGS[0]),
                      _redirect, tables=("nat",), validate=_needs_proto("--to-ports", "optional"),
                      doc="redirect to the node itself")  # fmt: skip


def _netmap(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    return Effect("UNKNOWN", CONTINUE, state, "target NETMAP is not modelled; assumed to let the packet on")


NETMAP = TargetUnit("NETMAP", (Opt(("--to",), (ANY,), invert=False),), _netmap, tables=("nat",),
                    doc="map a whole network (not modelled)")  # fmt: skip
