"""Targets: what a matched rule does to the packet and to the walk.

:func:`apply_target` returns an :class:`Effect`: the verdict word a hop shows (ACCEPT, DROP, DNAT, CONTINUE,
…), how the walk goes on (``flow``: continue with the next rule, stop this table, end the packet, return,
jump or goto), and the new packet state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container

from .flow import CONTINUE, END, GOTO, JUMP, RETURN, STOP_TABLE, Effect
from .graph import KNOWN_TARGETS
from .model import Target
from .packet import NodeContext
from .trace_model import MASQ_ADDRESS_UNKNOWN, PacketState

__all__ = ["Effect", "apply_target", "mark_op"]


_CONTINUING = frozenset(
    {
        "LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "TCPMSS", "DSCP", "TOS", "TTL", "HL", "CLASSIFY", "CHECKSUM",
        "SECMARK", "CONNSECMARK", "IDLETIMER", "LED", "RATEEST", "TEE", "SET", "TCPOPTSTRIP", "ECN",
    }
)  # fmt: skip


def mark_op(current: int, target: Target) -> int:
    """The MARK/CONNMARK value operations: ``--set-xmark V/M`` ⇒ (x & ~M) ^ V, ``--set-mark V/M`` ⇒
    (x & ~M) | V, ``--and-mark``, ``--or-mark``, ``--xor-mark``."""
    for opt in target.options:
        if not opt.args:
            continue
        value, _, mask = opt.args[0].partition("/")
        v = int(value, 0)
        m = int(mask, 0) if mask else 0xFFFFFFFF
        if opt.name == "--set-xmark":
            return ((current & ~m) ^ v) & 0xFFFFFFFF
        if opt.name == "--set-mark":
            return ((current & ~m) | v) & 0xFFFFFFFF
        if opt.name == "--and-mark":
            return current & v
        if opt.name == "--or-mark":
            return (current | v) & 0xFFFFFFFF
        if opt.name == "--xor-mark":
            return (current ^ v) & 0xFFFFFFFF
    return current


def _connmark(state: PacketState, target: Target) -> PacketState:
    names = {o.name for o in target.options}
    def masks(default: int = 0xFFFFFFFF) -> tuple[int, int]:
        nf = ct = default
        for o in target.options:
            if o.name == "--mask" and o.args:
                nf = ct = int(o.args[0], 0)
            elif o.name == "--nfmask" and o.args:
                nf = int(o.args[0], 0)
            elif o.name == "--ctmask" and o.args:
                ct = int(o.args[0], 0)
        return nf, ct

    if "--save-mark" in names:
        nf, ct = masks()
        return state.with_(ctmark=((state.ctmark & ~ct) ^ (state.mark & nf)) & 0xFFFFFFFF)
    if "--restore-mark" in names:
        nf, ct = masks()
        return state.with_(mark=((state.mark & ~nf) ^ (state.ctmark & ct)) & 0xFFFFFFFF)
    return state.with_(ctmark=mark_op(state.ctmark, target))


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
    first_port = int(port.split("-")[0]) if port else None
    return first_host, first_port


def _iface_address(node: NodeContext, iface: str | None, family: int) -> str | None:
    for cidr in node.interfaces.get(iface or "", ()):
        ip = ipaddress.ip_interface(cidr).ip
        if ip.version == family:
            return str(ip)
    return None


def _node_address(node: NodeContext, family: int) -> str | None:
    for a in node.addresses:
        if ipaddress.ip_address(a).version == family:
            return a
    return None


def apply_target(target: Target, state: PacketState, node: NodeContext, table: str,
                 chains: Container[str]) -> Effect:  # fmt: skip
    """Apply ``target`` (a matched rule's) to ``state``. ``chains`` are the names of the table's chains."""
    name = target.name
    if name in chains:
        return Effect("GOTO" if target.goto else "JUMP", GOTO if target.goto else JUMP, state)
    if name == "ACCEPT":
        return Effect("ACCEPT", STOP_TABLE, state)
    if name == "DROP":
        return Effect("DROP", END, state)
    if name == "REJECT":
        return Effect("REJECT", END, state)
    if name == "RETURN":
        return Effect("RETURN", RETURN, state)
    if name in ("QUEUE", "NFQUEUE"):
        return Effect("QUEUE", END, state, "handed to a userspace queue: its verdict is not in the rules")
    if name == "MARK":
        return Effect("CONTINUE", CONTINUE, state.with_(mark=mark_op(state.mark, target)))
    if name == "CONNMARK":
        return Effect("CONTINUE", CONTINUE, _connmark(state, target))
    if name == "NOTRACK" or (name == "CT" and target.option("--notrack") is not None):
        return Effect("CONTINUE", CONTINUE, state.with_(ctstate="UNTRACKED"), "untracked: nat will not see it")
    if name == "CT" or name in _CONTINUING:
        return Effect("CONTINUE", CONTINUE, state)
    family = 6 if ":" in state.dst else 4
    if name in ("DNAT", "SNAT"):
        opt = target.option("--to-destination" if name == "DNAT" else "--to-source")
        host, port = _split_hostport(opt.args[0]) if opt and opt.args else (None, None)
        if name == "DNAT":
            new = state.with_(dst=host or state.dst, dport=port if port is not None else state.dport, dnat=True)
        else:
            new = state.with_(src=host or state.src, sport=port if port is not None else state.sport, snat=True)
        return Effect(name, STOP_TABLE, new)
    addr: str | None
    if name == "MASQUERADE":
        addr = _iface_address(node, state.out_iface, family)
        note = None
        if state.out_iface == "lo":
            addr = state.src  # to a local address: the source is already a local address and stays
        elif addr is None:  # the kernel takes the outgoing interface's address: not the node's other ones
            note = MASQ_ADDRESS_UNKNOWN
        ports = target.option("--to-ports")
        sport = int(ports.args[0].split("-")[0]) if ports and ports.args else state.sport
        new = state.with_(src=addr or state.src, sport=sport, snat=True, masquerade=True)
        return Effect("MASQUERADE", STOP_TABLE, new, note)
    if name == "REDIRECT":
        if state.hook == "OUTPUT":
            addr = "::1" if family == 6 else "127.0.0.1"
        else:
            addr = _iface_address(node, state.in_iface, family) or _node_address(node, family)
        ports = target.option("--to-ports")
        dport = int(ports.args[0].split("-")[0]) if ports and ports.args else state.dport
        return Effect("REDIRECT", STOP_TABLE, state.with_(dst=addr or state.dst, dport=dport, dnat=True))
    if name in KNOWN_TARGETS:
        return Effect("UNKNOWN", CONTINUE, state, f"target {name} is not modelled; assumed to let the packet on")
    return Effect("UNKNOWN", CONTINUE, state,
                  f"'{name}' is neither a chain of table {table} nor a known target (the kernel would have "
                  f"refused this rule); assumed to continue")  # fmt: skip
