"""FIB expressions: ``fib daddr type``, ``fib saddr . iif oif``, ``fib daddr oifname``: a routing lookup.

Evaluation asks the node context the way the iptables side asks it. ``type``: an address of the node is
``local`` (:func:`flow.local_question`, so ``fib daddr type local`` and ``-m addrtype --dst-type LOCAL`` share
their question); a multicast address is ``multicast``, 255.255.255.255 ``broadcast``, any other ``unicast``; when
the context gives no node addresses the value is local-or-unicast, undecidable under the key ``local ADDR``.
``oif``/``oifname``: the interface the node routes the address to (:func:`flow.route_iface`); with ``iif`` among
the flags (reverse-path filtering) the lookup counts only if it leads back out of the input interface, else
the result is ``missing``; a route the context does not give is undecidable (``route ADDR``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..flow import Env, Undecidable, local_question, route_iface
from ..packet import NodeContext
from ..trace_model import PacketState
from .evalcore import BROKEN, YesNo
from .exprs import Fib
from .unitbase import DType, EvalCtx, ExprUnit, JsonCtx, PrintCtx, TextCtx, ValueFn

__all__ = ["FIB"]

_FLAGS = ("saddr", "daddr", "mark", "iif", "oif")
_RESULTS = ("oif", "oifname", "type")
LOCAL, UNICAST, BROADCAST, MULTICAST = 2, 1, 3, 5


def _parse(ctx: TextCtx, word: str) -> Fib:
    cur = ctx.cur
    flags = [cur.word("saddr or daddr")]
    while cur.accept("."):
        flags.append(cur.word("a fib flag"))
    result = cur.word("oif, oifname or type")
    bad = [f for f in flags if f not in _FLAGS]
    if bad or result not in _RESULTS:
        raise cur.error(f"fib: unknown {'flag ' + bad[0] if bad else 'result ' + result}", cur.tokens[cur.pos - 1])
    return Fib(result, tuple(flags))


def _from_json(ctx: JsonCtx, key: str, obj: Any) -> Fib:
    if not isinstance(obj, dict):
        raise ctx.error("a fib expression is an object")
    flags = obj.get("flags", [])
    if isinstance(flags, str):
        flags = [flags]
    return Fib(str(obj.get("result", "")), tuple(str(f) for f in flags))


def _text(ctx: PrintCtx, node: Fib) -> str:
    return f"fib {' . '.join(node.flags)} {node.result}"


def _dtype(node: Fib, family: str) -> DType:
    return {"type": "fib_addrtype", "oif": "fib_oif", "oifname": "fib_oif"}.get(node.result, "integer")


def _value(ctx: EvalCtx, node: Fib) -> ValueFn:
    use_src = "saddr" in node.flags
    via_iif = "iif" in node.flags
    if node.result == "type":
        def addrtype(s: PacketState, e: Env) -> Any:
            addr = s.src if use_src else s.dst
            ip = ipaddress.ip_address(addr)
            if ip.is_multicast:
                return MULTICAST
            if addr == "255.255.255.255":
                return BROADCAST
            q = local_question(addr, e.node)
            if q is True:
                return LOCAL
            if q is False:
                return UNICAST
            return YesNo(q, LOCAL, UNICAST)

        return addrtype

    def oif(s: PacketState, e: Env) -> Any:
        addr = s.src if use_src else s.dst
        out = route_iface(e.node, addr)
        if out is None:
            return Undecidable(f"route {addr}", f"the route to {addr} is not known (give the node's interfaces)")
        if via_iif:
            if s.in_iface == "":
                return BROKEN
            if s.in_iface is None:
                return Undecidable(f"route {addr} via iif", f"whether the route to {addr} leaves by the input "
                                   "interface (not known)")  # fmt: skip
            if out == s.in_iface:
                return out
            if not _specific(e.node, addr):
                return Undecidable(f"route {addr} via iif", f"whether the route to {addr} leaves by {s.in_iface} "
                                   "(only the default route is known)")  # fmt: skip
            return False
        return out

    return oif


def _specific(node: NodeContext, addr: str) -> bool:
    """Whether the context routes ``addr`` by more than its default route (a local address, an interface's
    network, the node's pod network)."""
    if node.is_local(addr):
        return True
    ip = ipaddress.ip_address(addr)
    nets = [c for cs in node.interfaces.values() for c in cs]
    if any(ip.version == n.version and ip in n for n in (ipaddress.ip_interface(c).network for c in nets)):
        return True
    return bool(node.pod_cidrs and node.pod_iface and ip in ipaddress.ip_network(node.pod_cidrs[0])
                and ip.version == ipaddress.ip_network(node.pod_cidrs[0]).version)  # fmt: skip


FIB = ExprUnit(
    name="fib",
    nodes=(Fib,),
    keywords=("fib",),
    json_keys=("fib",),
    parse=_parse,
    from_json=_from_json,
    text=_text,
    dtype=_dtype,
    value=_value,
)
