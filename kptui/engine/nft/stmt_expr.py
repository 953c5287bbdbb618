"""Statements led by a key expression: matches (``ip daddr 10.0.0.1``, ``ct state new``, ``meta mark & 0x4000 ==
0``), verdict maps (``… vmap @service-ips``) and ``set`` statements (``meta mark set meta mark | 0x4000``,
``ct mark set …``, ``ct helper set "ftp"``).

Printing follows nft: an implicit operator is not printed, ``==`` is for a bitmask type (``ct state == new``) or
a masked key (``meta mark & 0x00004000 == 0x00000000``); a test of several bits prints as ``tcp flags syn /
syn,ack``; a flag test (JSON op ``in``) prints without operator.

Evaluation: a match is one check (see :mod:`.compile`). A verdict map is one action: the key's element gives the
verdict's effect; a miss is an empty :class:`flow.Spread` (nft stops the rule: no trace line, the next rule);
``numgen random mod N vmap { … }`` is a Spread of one branch per element, each with its exact share (a value
with no element: that share goes on to the next rule). ``meta mark set``/``ct mark set`` change the marks;
``ip saddr|daddr set``, ``tcp|udp|th sport|dport set`` rewrite the packet (stateless NAT); ``meta nftrace set``
compiles to nothing; other ``set`` statements continue with a note.
"""

from __future__ import annotations

import ipaddress
from fractions import Fraction
from typing import Any

from ..flow import CONTINUE, Action, Effect, Env, Spread, Undecidable
from ..trace_model import PacketState
from .evalcore import MISS, Dist, is_marker
from .exprs import Binop, Ct, Flags, Mangle, Match, Meta, Payload, SetLit, SetRef, Value, Verdict, VMap
from .stmt_verdict import verdict_effect
from .symbols import BITMASK_TYPES
from .unitbase import DType, EvalCtx, JsonCtx, Op, PrintCtx, StmtUnit, TextCtx

__all__ = ["MANGLE", "MATCH", "OPS", "VMAP"]

OPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "eq": "==", "ne": "!=", "lt": "<",
       "gt": ">", "le": "<=", "ge": ">=", "!": "!"}  # fmt: skip


def _scalar(d: DType) -> str:
    return d if isinstance(d, str) else ""


# -- match ------------------------------------------------------------------------------------------------
def _match_after(ctx: TextCtx, lhs: Value) -> Match:
    cur = ctx.cur
    dtype = ctx.dtype(lhs)
    op = OPS.get(cur.peek() or "")
    if op is not None:
        cur.pos += 1
    rhs = ctx.value(dtype)
    bitmask = _scalar(dtype) in BITMASK_TYPES
    if bitmask and cur.peek() == "/":  # ``tcp flags syn / syn,ack``: (flags & mask) == value
        cur.pos += 1
        lhs = Binop("&", lhs, ctx.value(dtype))
        op = op or "=="
    if op is None:
        op = "in" if bitmask and not isinstance(rhs, (SetLit, SetRef)) else "=="
    return Match(op, lhs, rhs)


def _match_json(ctx: JsonCtx, key: str, obj: Any) -> Match:
    if not isinstance(obj, dict) or "left" not in obj or "right" not in obj:
        raise ctx.error("a match needs left and right")
    left = ctx.expr(obj["left"])
    return Match(str(obj.get("op", "==")), left, ctx.value(obj["right"], ctx.dtype(left)))


def _match_text(ctx: PrintCtx, m: Match) -> str:
    left, op = m.left, m.op
    if (isinstance(left, Binop) and left.op == "&" and isinstance(left.right, Flags) and op in ("==", "!=")
            and _scalar(ctx.dtype(left.left)) in BITMASK_TYPES):  # fmt: skip
        d = ctx.dtype(left.left)
        neg = "" if op == "==" else "!= "
        return f"{ctx.expr(left.left)} {neg}{ctx.value(m.right, d)} / {ctx.value(left.right, d)}"
    d = ctx.dtype(left)
    ls, rs = ctx.expr(left), ctx.value(m.right, d)
    if op == "in":
        return f"{ls} {rs}"
    if op == "==":
        explicit = isinstance(left, Binop) or (_scalar(d) in BITMASK_TYPES and
                                               not isinstance(m.right, (SetLit, SetRef)))  # fmt: skip
        return f"{ls} == {rs}" if explicit else f"{ls} {rs}"
    return f"{ls} {op} {rs}"


MATCH = StmtUnit(
    name="match",
    nodes=(Match,),
    keywords=(),
    json_keys=("match",),
    parse=None,
    from_json=_match_json,
    text=_match_text,
    compile=lambda ctx, m: (ctx.check(m),),
    after=("",),
    parse_after=_match_after,
)


# -- verdict maps -----------------------------------------------------------------------------------------
def _vmap_after(ctx: TextCtx, lhs: Value) -> VMap:
    ctx.cur.expect("vmap")
    return VMap(lhs, ctx.value(ctx.dtype(lhs)))


def _vmap_json(ctx: JsonCtx, key: str, obj: Any) -> VMap:
    if not isinstance(obj, dict) or "key" not in obj or "data" not in obj:
        raise ctx.error("vmap needs key and data")
    k = ctx.expr(obj["key"])
    return VMap(k, ctx.value(obj["data"], ctx.dtype(k)))


def _vmap_text(ctx: PrintCtx, v: VMap) -> str:
    return f"{ctx.expr(v.key)} vmap {ctx.value(v.data, ctx.dtype(v.key))}"


def _vmap_compile(ctx: EvalCtx, v: VMap) -> tuple[Op, ...]:
    lookup = ctx.lookup(v.key, v.data)
    where = f"@{v.data.name}" if isinstance(v.data, SetRef) else "the map"
    key = f"nft {ctx.text(v)}"

    def fn(s: PacketState, e: Env) -> Effect | Spread | Undecidable:
        got = lookup(s, e)
        if isinstance(got, Undecidable):
            return got._replace(key=key) if got.key.startswith("nft ") else got
        if got is MISS:
            return Spread((), f"no element of {where} for the packet")
        if isinstance(got, Dist):
            shares: dict[Verdict, tuple[Fraction, Verdict, list[str]]] = {}
            for value, data in got.values:
                if isinstance(data, Verdict):
                    p, _, vals = shares.setdefault(data, (Fraction(0), data, []))
                    shares[data] = (p + Fraction(1, len(got.values)), data, vals + [str(value)])
            tail = f" ({got.caveat})" if got.caveat else ""
            branches = tuple((p, verdict_effect(ctx, data, s), f"{got.note} = {', '.join(vals)}{tail}")
                             for p, data, vals in shares.values())  # fmt: skip
            return Spread(branches, f"{got.note}: a value with no element of {where}, the rule goes on{tail}")
        if isinstance(got, Verdict):
            return verdict_effect(ctx, got, s)
        return Undecidable(f"nft {ctx.text(v)}", f"{where} holds no verdict for the packet's key")

    return (Action(fn, ctx.text(v)),)


VMAP = StmtUnit(
    name="vmap",
    nodes=(VMap,),
    keywords=(),
    json_keys=("vmap",),
    parse=None,
    from_json=_vmap_json,
    text=_vmap_text,
    compile=_vmap_compile,
    after=("vmap",),
    parse_after=_vmap_after,
)


# -- set statements: KEY set VALUE ------------------------------------------------------------------------
def _mangle_after(ctx: TextCtx, lhs: Value) -> Mangle:
    ctx.cur.expect("set")
    return Mangle(lhs, ctx.operand(ctx.dtype(lhs)))


_CT_OBJECTS = ("ct helper", "ct timeout", "ct expectation")


def _mangle_json(ctx: JsonCtx, key: str, obj: Any) -> Mangle:
    if key in _CT_OBJECTS:
        return Mangle(Ct(key.split()[1]), str(obj))
    if not isinstance(obj, dict) or "key" not in obj or "value" not in obj:
        raise ctx.error("mangle needs key and value")
    k = ctx.expr(obj["key"])
    return Mangle(k, ctx.value(obj["value"], ctx.dtype(k)))


def _mangle_text(ctx: PrintCtx, m: Mangle) -> str:
    return f"{ctx.expr(m.key)} set {ctx.value(m.value, ctx.dtype(m.key))}"


_PAYLOAD_SET = {("ip", "saddr"): "src", ("ip", "daddr"): "dst", ("ip6", "saddr"): "src", ("ip6", "daddr"): "dst"}


def _mangle_compile(ctx: EvalCtx, m: Mangle) -> tuple[Op, ...]:
    key, text = m.key, ctx.text(m)
    if isinstance(key, Meta) and key.key == "nftrace":
        return ()
    value = ctx.value_fn(m.value)
    if (isinstance(key, Meta) and key.key == "mark") or (isinstance(key, Ct) and key.key == "mark"):
        field = "mark" if isinstance(key, Meta) else "ctmark"

        def mark(s: PacketState, e: Env) -> Effect | Undecidable:
            v = value(s, e)
            if isinstance(v, Undecidable):
                return v
            if is_marker(v) or not isinstance(v, int):
                return Undecidable(f"nft {text}", f"the value of '{text}' is not known")
            if field == "ctmark" and s.ctstate == "UNTRACKED":
                return Effect("CONTINUE", CONTINUE, s, "untracked: no connection to mark")
            return Effect("CONTINUE", CONTINUE, s.with_(**{field: v & 0xFFFFFFFF}))

        return (Action(mark, text),)
    if isinstance(key, Payload) and ((key.proto, key.field) in _PAYLOAD_SET or key.field in ("sport", "dport")):
        attr = _PAYLOAD_SET.get((key.proto, key.field), key.field)

        def rewrite(s: PacketState, e: Env) -> Effect | Undecidable:
            v = value(s, e)
            if isinstance(v, Undecidable):
                return v
            if is_marker(v):
                return Undecidable(f"nft {text}", f"the value of '{text}' is not known")
            new = str(v) if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else v
            return Effect("CONTINUE", CONTINUE, s.with_(**{attr: new}), "the packet is rewritten (stateless)")

        return (Action(rewrite, text),)
    note = f"'{text}' is not modelled; it does not change the packet's path"
    return (Action(lambda s, e: Effect("CONTINUE", CONTINUE, s, note), text),)


MANGLE = StmtUnit(
    name="mangle",
    nodes=(Mangle,),
    keywords=(),
    json_keys=("mangle", *_CT_OBJECTS),
    parse=None,
    from_json=_mangle_json,
    text=_mangle_text,
    compile=_mangle_compile,
    after=("set",),
    parse_after=_mangle_after,
)
