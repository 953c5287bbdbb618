"""Meta expressions: ``meta mark``, ``meta l4proto``, ``meta nfproto``, ``meta protocol``, ``iifname``/``oifname``,
``iif``/``oif``, ``meta pkttype`` and the rest of ``meta KEY``.

Evaluation: the mark and the protocols come from the packet state. An interface the state does not know is the
variable :func:`flow.iface_question` asks about (the same key as iptables' ``-i``/``-o``); a packet that has no
such interface (a locally generated packet's input interface, any packet's output interface before routing)
breaks the rule, as in the kernel (``iifname != "eth0"`` does not match a local packet either). Keys the packet
model does not carry (skuid, cgroup, cpu, time) are undecidable under ``meta KEY``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..flow import Env, Undecidable
from ..packet import PROTOCOLS
from ..trace_model import PacketState
from .evalcore import BROKEN, Var
from .exprs import Meta
from .unitbase import DType, EvalCtx, ExprUnit, JsonCtx, PrintCtx, TextCtx, ValueFn

__all__ = ["META"]

TYPES = {
    "length": "integer", "protocol": "ether_type", "priority": "classid", "mark": "mark", "iif": "iface_index",
    "iifname": "ifname", "iiftype": "iface_type", "oif": "iface_index", "oifname": "ifname",
    "oiftype": "iface_type", "skuid": "uid", "skgid": "gid", "nftrace": "integer", "rtclassid": "realm",
    "ibrname": "ifname", "obrname": "ifname", "ibridgename": "ifname", "obridgename": "ifname",
    "pkttype": "pkt_type", "cpu": "integer", "iifgroup": "devgroup", "oifgroup": "devgroup", "cgroup": "integer",
    "random": "integer", "ipsec": "boolean", "iifkind": "string", "oifkind": "string", "ibrpvid": "integer",
    "ibrvproto": "ether_type", "time": "integer", "day": "integer", "hour": "integer", "secmark": "integer",
    "sdif": "iface_index", "sdifname": "ifname", "nfproto": "nf_proto", "l4proto": "inet_proto",
    "broute": "integer", "secpath": "boolean",
}  # fmt: skip
# written without ``meta`` in a listing (and accepted so on input, with a few more)
UNQUALIFIED_PRINT = frozenset({"iif", "oif", "iifname", "oifname", "iifgroup", "oifgroup"})
UNQUALIFIED = ("mark", "iif", "iifname", "iiftype", "oif", "oifname", "oiftype", "skuid", "skgid", "nftrace",
               "rtclassid", "ibrname", "obrname", "pkttype", "cpu", "iifgroup", "oifgroup", "cgroup")  # fmt: skip


_NODES = {k: Meta(k) for k in TYPES}  # one node per key: nodes are immutable, rules share them


def _parse(ctx: TextCtx, word: str) -> Meta:
    if word != "meta":
        return _NODES.get(word) or Meta(word)
    cur = ctx.cur
    key = cur.word("a meta key")
    node = _NODES.get(key)
    if node is None:
        ctx.warn(f"unknown meta key '{key}': kept, evaluated as undecidable", cur.tokens[cur.pos - 1].col, len(key))
        return Meta(key)
    return node


def _from_json(ctx: JsonCtx, key: str, obj: Any) -> Meta:
    if not isinstance(obj, dict) or "key" not in obj:
        raise ctx.error("a meta expression needs a key")
    return Meta(str(obj["key"]))


def _text(ctx: PrintCtx, node: Meta) -> str:
    return node.key if node.key in UNQUALIFIED_PRINT else f"meta {node.key}"


def _dtype(node: Meta, family: str) -> DType:
    return TYPES.get(node.key, "integer")


def _iface(attr: str, which: str) -> ValueFn:
    var = Var(which)

    def fn(s: PacketState, e: Env) -> Any:
        name = getattr(s, attr)
        if name is None:
            return var
        return name if name else BROKEN

    return fn


def _pkttype(s: PacketState, e: Env) -> Any:
    ip = ipaddress.ip_address(s.dst)
    if ip.is_multicast:
        return 2
    if s.dst == "255.255.255.255":
        return 1
    return 0  # host: unicast to this node's link address (forwarded packets too)


def _value(ctx: EvalCtx, node: Meta) -> ValueFn:
    key = node.key
    if key == "mark":
        return lambda s, e: s.mark
    if key == "l4proto":
        return lambda s, e: PROTOCOLS.get(s.proto, -1)
    if key == "nfproto":
        return lambda s, e: 10 if ":" in s.src else 2
    if key == "protocol":
        return lambda s, e: 0x86DD if ":" in s.src else 0x0800
    if key in ("iifname", "iif"):
        return _iface("in_iface", "in")
    if key in ("oifname", "oif"):
        return _iface("out_iface", "out")
    if key == "pkttype":
        return _pkttype
    if key == "length":
        return lambda s, e: e.length if e.length is not None else Undecidable(
            "packet length", "the packet length is not known")
    if key in ("iiftype", "oiftype"):
        attr = "in_iface" if key == "iiftype" else "out_iface"

        def iftype(s: PacketState, e: Env) -> Any:
            name = getattr(s, attr)
            if name == "":
                return BROKEN
            if name == "lo":
                return 772
            return Undecidable(f"meta {key} {name}", f"the type of interface {name or '(unknown)'} is not known")

        return iftype
    q = Undecidable(f"meta {key}", f"meta {key} is not part of the packet kptui models")
    return lambda s, e: q


META = ExprUnit(
    name="meta",
    nodes=(Meta,),
    keywords=("meta", *UNQUALIFIED),
    json_keys=("meta",),
    parse=_parse,
    from_json=_from_json,
    text=_text,
    dtype=_dtype,
    value=_value,
)
