"""Conntrack expressions: ``ct state``, ``ct status``, ``ct mark``, ``ct direction``, ``ct original ip daddr``,
``ct reply proto-src`` and the rest of ``ct [DIR] KEY``.

Evaluation reads the packet state: ``ct state`` from :attr:`PacketState.ctstate` (a chain below priority −200
runs before conntrack; the walker sets the state), ``ct status`` snat/dnat from :attr:`PacketState.snat` and
:attr:`PacketState.dnat` (a new connection has no other status bit yet), ``ct mark`` from ``ctmark``, the
original tuple from ``orig_*``, the reply tuple from the current addresses (as iptables' ``--ctrepl*``). An
untracked packet has no conntrack entry: ``ct state`` is ``untracked`` and every other ct key breaks the rule.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..flow import Env, Undecidable
from ..packet import PROTOCOLS
from ..trace_model import PacketState
from .evalcore import BROKEN
from .exprs import Ct
from .symbols import CT_STATE
from .unitbase import DType, EvalCtx, ExprUnit, JsonCtx, PrintCtx, TextCtx, ValueFn

__all__ = ["CT"]

TYPES = {
    "state": "ct_state", "direction": "ct_dir", "status": "ct_status", "mark": "mark", "expiration": "time",
    "helper": "string", "l3proto": "nf_proto", "protocol": "inet_proto", "proto-src": "inet_service",
    "proto-dst": "inet_service", "label": "ct_label", "zone": "integer", "bytes": "integer",
    "packets": "integer", "avgpkt": "integer", "event": "ct_event", "secmark": "integer", "id": "integer",
    "ip saddr": "ipv4_addr", "ip daddr": "ipv4_addr", "ip6 saddr": "ipv6_addr", "ip6 daddr": "ipv6_addr",
    "timeout": "string", "expectation": "string", "count": "integer",
}  # fmt: skip
_DIRS = ("original", "reply")
_STATE_BITS = {"NEW": CT_STATE["new"], "ESTABLISHED": CT_STATE["established"], "RELATED": CT_STATE["related"],
               "INVALID": CT_STATE["invalid"], "UNTRACKED": CT_STATE["untracked"]}  # fmt: skip


def _parse(ctx: TextCtx, word: str) -> Ct:
    cur = ctx.cur
    direction = None
    if cur.peek() in _DIRS:
        direction = cur.word()
    key = cur.word("a ct key")
    if key in ("ip", "ip6") and cur.peek() in ("saddr", "daddr"):
        key = f"{key} {cur.word()}"
    elif key not in TYPES and key not in ("saddr", "daddr"):
        ctx.warn(f"unknown ct key '{key}': kept, evaluated as undecidable", cur.tokens[cur.pos - 1].col, len(key))
    return Ct(key, direction)


def _from_json(ctx: JsonCtx, key: str, obj: Any) -> Ct:
    if not isinstance(obj, dict) or "key" not in obj:
        raise ctx.error("a ct expression needs a key")
    k = str(obj["key"])
    fam = obj.get("family")
    if fam in ("ip", "ip6") and k in ("saddr", "daddr"):
        k = f"{fam} {k}"  # newer nft: {"key": "saddr", "family": "ip"}
    d = obj.get("dir")
    return Ct(k, str(d) if d is not None else None)


def _text(ctx: PrintCtx, node: Ct) -> str:
    return f"ct {node.dir} {node.key}" if node.dir else f"ct {node.key}"


def _dtype(node: Ct, family: str) -> DType:
    if node.key in ("saddr", "daddr"):
        return "ipv6_addr" if family == "ip6" else "ipv4_addr"
    return TYPES.get(node.key, "integer")


def _value(ctx: EvalCtx, node: Ct) -> ValueFn:
    key, direction = node.key, node.dir or "original"
    unknown = Undecidable(f"ct {key}", f"ct {key} is not known for the traced packet")

    def tracked(fn: ValueFn) -> ValueFn:
        return lambda s, e: BROKEN if s.ctstate == "UNTRACKED" else fn(s, e)

    if key == "state":
        return lambda s, e: _STATE_BITS.get(s.ct, 0)  # ``ct``: INVALID before conntrack (priority below -200)
    if key == "status":
        def status(s: PacketState, e: Env) -> Any:
            if s.ctstate == "UNTRACKED":
                return BROKEN
            if s.ctstate != "NEW":
                return Undecidable("ct status", f"the status bits of an {s.ctstate} connection are not known")
            return (16 if s.snat else 0) | (32 if s.dnat else 0)

        return status
    if key == "mark":
        return tracked(lambda s, e: s.ctmark)
    if key == "direction":
        return tracked(lambda s, e: 0)  # the traced packet travels in the connection's original direction
    if key == "l3proto":
        return tracked(lambda s, e: 10 if ":" in s.src else 2)
    if key == "protocol":
        return tracked(lambda s, e: PROTOCOLS.get(s.proto, -1))
    addr_key = key.split()[-1]
    if addr_key in ("saddr", "daddr"):
        want = 6 if key.startswith("ip6") else 4 if key.startswith("ip ") else 0
        if direction == "original":
            attr = "orig_src" if addr_key == "saddr" else "orig_dst"
        else:
            attr = "dst" if addr_key == "saddr" else "src"

        def addr(s: PacketState, e: Env) -> Any:
            if s.ctstate == "UNTRACKED":
                return BROKEN
            text = getattr(s, attr) or (s.src if attr in ("orig_src", "src") else s.dst)
            ip = ipaddress.ip_address(text)
            return BROKEN if want and ip.version != want else ip

        return addr
    if key in ("proto-src", "proto-dst"):
        if direction == "original":
            attr = "orig_sport" if key == "proto-src" else "orig_dport"
        else:
            attr = "dport" if key == "proto-src" else "sport"
        return tracked(lambda s, e: getattr(s, attr))
    return tracked(lambda s, e: unknown)


CT = ExprUnit(
    name="ct",
    nodes=(Ct,),
    keywords=("ct",),
    json_keys=("ct",),
    parse=_parse,
    from_json=_from_json,
    text=_text,
    dtype=_dtype,
    value=_value,
)
