"""Set statements: ``add @set { KEY }``, ``update @set { KEY [timeout T] }``, ``delete @set { KEY }``.

kube-proxy's session affinity is ``update @affinity-… { ip saddr }`` in the endpoint chain and ``ip saddr
@affinity-… goto endpoint-…`` in the service chain. Evaluation adds the packet's key to
:attr:`PacketState.dyn` as ``(SET, ELEMENT)`` (SET qualified: ``ip kube-proxy affinity-…``), so a later lookup
on the same path finds it; ``delete`` takes it out.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..flow import CONTINUE, Action, Effect, Env, Undecidable
from ..trace_model import PacketState
from .evalcore import is_marker
from .exprs import ElemOpts, SetStmt, Value
from .symbols import parse_time
from .unitbase import EvalCtx, JsonCtx, Op, PrintCtx, StmtUnit, TextCtx
from .values import value_text

__all__ = ["SET_STMT", "dyn_element"]


def _parse(ctx: TextCtx, word: str) -> SetStmt:
    cur = ctx.cur
    ref = cur.word("@set")
    if not ref.startswith("@") or len(ref) < 2:
        raise cur.error(f"expected @set after '{word}', found {ref!r}", cur.tokens[cur.pos - 1])
    cur.expect("{")
    key = ctx.expr()
    timeout = None
    comment = None
    while cur.peek() in ("timeout", "comment"):
        if cur.word() == "timeout":
            t = cur.word("a timeout")
            timeout = parse_time(t)
            if timeout is None:
                raise cur.error(f"'{t}' is not a time", cur.tokens[cur.pos - 1])
        else:
            comment = cur.string()
    cur.expect("}")
    elem: Value = ElemOpts(key, timeout, None, comment) if timeout is not None or comment is not None else key
    return SetStmt(word, ref[1:], elem)


def _from_json(ctx: JsonCtx, key: str, obj: Any) -> SetStmt:
    if not isinstance(obj, dict) or "elem" not in obj or "set" not in obj:
        raise ctx.error("a set statement needs op, elem and set")
    name = str(obj["set"])
    return SetStmt(str(obj.get("op", "add")), name.removeprefix("@"), ctx.expr(obj["elem"]))


def _text(ctx: PrintCtx, s: SetStmt) -> str:
    e = s.elem
    if isinstance(e, ElemOpts):
        inner = ctx.expr(e.val) + (f" timeout {value_text(ctx, e.timeout, 'time')}" if e.timeout is not None else "")
        inner += f' comment "{e.comment}"' if e.comment is not None else ""
    else:
        inner = ctx.expr(e)
    return f"{s.op} @{s.set} {{ {inner} }}"


def dyn_element(v: Any) -> str:
    """The text of a dynamic set element as :attr:`PacketState.dyn` holds it (``10.0.0.5``,
    ``10.0.0.5 . 80``)."""
    if isinstance(v, tuple):
        return " . ".join(dyn_element(x) for x in v)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(v)
    return str(v)


def _compile(ctx: EvalCtx, s: SetStmt) -> tuple[Op, ...]:
    key = s.elem.val if isinstance(s.elem, ElemOpts) else s.elem
    value = ctx.value_fn(key)
    qualified = ctx.set_key(s.set)
    text = ctx.text(s)

    def fn(st: PacketState, e: Env) -> Effect | Undecidable:
        v = value(st, e)
        if isinstance(v, Undecidable):
            return v
        if is_marker(v):
            return Effect("CONTINUE", CONTINUE, st, f"the key of '{text}' is not known: not recorded")
        item = (qualified, dyn_element(v))
        dyn = st.dyn - {item} if s.op == "delete" else st.dyn | {item}
        return Effect("CONTINUE", CONTINUE, st.with_(dyn=dyn))

    return (Action(fn, text),)


SET_STMT = StmtUnit(
    name="set",
    nodes=(SetStmt,),
    keywords=("add", "update", "delete"),
    json_keys=("set",),
    parse=_parse,
    from_json=_from_json,
    text=_text,
    compile=_compile,
)
