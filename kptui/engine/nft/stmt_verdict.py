"""Verdict statements: accept, drop, continue, return, jump CHAIN, goto CHAIN, reject [with …], queue.

Effects for the walker (see :mod:`kptui.engine.flow`):

==========================  ==========  ==========  =====================================================
statement                   verdict     flow        notes
==========================  ==========  ==========  =====================================================
accept                      ACCEPT      STOP_TABLE  this base chain is done; the hook's other chains run
drop                        DROP        END
reject [with T C]           REJECT      END         note: what is sent back
continue                    CONTINUE    CONTINUE    the next rule
return                      RETURN      RETURN      to the caller; in a base chain the policy applies
jump CHAIN / goto CHAIN     JUMP/GOTO   JUMP/GOTO   Effect.target is the chain
queue …                     QUEUE       END         note: a userspace program decides
==========================  ==========  ==========  =====================================================

A jump to a chain the table does not have (a damaged listing) continues with a note, verdict UNKNOWN.
"""

from __future__ import annotations

from typing import Any

from ..flow import CONTINUE, END, GOTO, JUMP, RETURN, STOP_TABLE, Action, Check, Effect, Env
from ..trace_model import PacketState
from .exprs import Queue, Reject, Verdict
from .symbols import ICMP_CODE, ICMPV6_CODE, ICMPX_CODE, name_of
from .unitbase import EvalCtx, JsonCtx, Op, PrintCtx, StmtUnit, TextCtx
from .values import verdict_text

__all__ = ["QUEUE", "REJECT", "VERDICT", "default_reject_type", "verdict_effect"]

_SIMPLE = {"accept": ("ACCEPT", STOP_TABLE), "drop": ("DROP", END), "continue": ("CONTINUE", CONTINUE),
           "return": ("RETURN", RETURN)}  # fmt: skip


def _parse(ctx: TextCtx, word: str) -> Verdict:
    if word in ("jump", "goto"):
        return Verdict(word, ctx.cur.word("a chain name"))
    return Verdict(word)


def _from_json(ctx: JsonCtx, key: str, obj: Any) -> Verdict:
    if key in ("jump", "goto"):
        if not isinstance(obj, dict) or "target" not in obj:
            raise ctx.error(f"{key} needs a target")
        return Verdict(key, str(obj["target"]))
    return Verdict(key)


def verdict_effect(ctx: EvalCtx, v: Verdict, state: PacketState) -> Effect:
    """The effect of verdict ``v`` (in a rule or as a verdict map's data)."""
    simple = _SIMPLE.get(v.kind)
    if simple is not None:
        return Effect(simple[0], simple[1], state)
    if v.kind in ("jump", "goto") and v.target is not None:
        if not ctx.chain_exists(v.target):
            return Effect("UNKNOWN", CONTINUE, state, f"chain '{v.target}' is not in this table (the kernel would "
                          "have refused the rule); assumed to continue", v.target)  # fmt: skip
        return Effect("JUMP" if v.kind == "jump" else "GOTO", JUMP if v.kind == "jump" else GOTO, state, None,
                      v.target)  # fmt: skip
    if v.kind == "queue":
        return Effect("QUEUE", END, state, "handed to a userspace queue: its verdict is not in the rules")
    return Effect("UNKNOWN", CONTINUE, state, f"verdict '{v.kind}' is not modelled; assumed to continue")


def _compile(ctx: EvalCtx, v: Verdict) -> tuple[Op, ...]:
    def fn(s: PacketState, e: Env) -> Effect:
        return verdict_effect(ctx, v, s)

    return (Action(fn, verdict_text(v)),)


VERDICT = StmtUnit(
    name="verdict",
    nodes=(Verdict,),
    keywords=("accept", "drop", "continue", "return", "jump", "goto"),
    json_keys=("accept", "drop", "continue", "return", "jump", "goto"),
    parse=_parse,
    from_json=_from_json,
    text=lambda ctx, v: verdict_text(v),
    compile=_compile,
)

# -- reject ---------------------------------------------------------------------------------------------
_CODES = {"icmp": ("icmp_code", ICMP_CODE), "icmpv6": ("icmpv6_code", ICMPV6_CODE),
          "icmpx": ("icmpx_code", ICMPX_CODE)}  # fmt: skip


def default_reject_type(family: str) -> str:
    return {"ip": "icmp", "ip6": "icmpv6"}.get(family, "icmpx")


def _reject_parse(ctx: TextCtx, word: str) -> Reject:
    cur = ctx.cur
    if not cur.accept("with"):
        return Reject(default_reject_type(ctx.family), "port-unreachable")
    kind = cur.word("icmp, icmpv6, icmpx or tcp")
    if kind == "tcp":
        cur.expect("reset")
        return Reject("tcp reset")
    if kind not in _CODES:
        raise cur.error(f"unknown reject type '{kind}'", cur.tokens[cur.pos - 1])
    cur.accept("type")
    code = cur.word("a reject code")
    dtype, table = _CODES[kind]
    if code not in table and code.isdigit():
        code = name_of(dtype, int(code)) or code
    return Reject(kind, code)


def _reject_json(ctx: JsonCtx, key: str, obj: Any) -> Reject:
    if not isinstance(obj, dict):
        return Reject(default_reject_type(ctx.family), "port-unreachable")
    kind = obj.get("type")
    code = obj.get("expr")
    if kind is None:
        return Reject(default_reject_type(ctx.family), str(code) if code else "port-unreachable")
    return Reject(str(kind), str(code) if code is not None else None)


def _reject_text(ctx: PrintCtx, r: Reject) -> str:
    if r.type == "tcp reset":
        return "reject with tcp reset"
    if r.type == default_reject_type(ctx.family) and r.code == "port-unreachable":
        return "reject"
    return f"reject with {r.type} {r.code}" if r.code else f"reject with {r.type}"


def _reject_compile(ctx: EvalCtx, r: Reject) -> tuple[Op, ...]:
    what = "a TCP reset" if r.type == "tcp reset" else f"{r.type} {r.code or 'port-unreachable'}"
    note = f"rejected: {what} is sent back"
    text = ctx.text(r)

    def fn(s: PacketState, e: Env) -> Effect:
        return Effect("REJECT", END, s, note)

    # nft adds a protocol match the listing does not show: a TCP reset only for TCP, an icmp reject only for
    # IPv4 (icmpv6: IPv6) where the table sees both
    if r.type == "tcp reset":
        return (Check(lambda s, e: s.proto == "tcp", f"meta l4proto tcp (implied by {text})"), Action(fn, text))
    want = {"icmp": 4, "icmpv6": 6}.get(r.type or "")
    if want is not None and ctx.family not in ("ip", "ip6"):
        nfproto = "ipv4" if want == 4 else "ipv6"
        return (Check(lambda s, e: (6 if ":" in s.src else 4) == want, f"meta nfproto {nfproto} (implied by {text})"),
                Action(fn, text))  # fmt: skip
    return (Action(fn, text),)


REJECT = StmtUnit(
    name="reject",
    nodes=(Reject,),
    keywords=("reject",),
    json_keys=("reject",),
    parse=_reject_parse,
    from_json=_reject_json,
    text=_reject_text,
    compile=_reject_compile,
)

# -- queue ----------------------------------------------------------------------------------------------


def _queue_parse(ctx: TextCtx, word: str) -> Queue:
    cur = ctx.cur
    num: Any = None
    flags: list[str] = []
    while cur.peek() in ("num", "to", "flags", "bypass", "fanout"):
        w = cur.word()
        if w in ("num", "to"):
            num = ctx.value("integer")
        elif w == "flags":
            flags.extend(cur.word("queue flags").split(","))
        else:
            flags.append(w)
    return Queue(num, tuple(flags))


def _queue_json(ctx: JsonCtx, key: str, obj: Any) -> Queue:
    if not isinstance(obj, dict):
        return Queue()
    flags = obj.get("flags", [])
    if isinstance(flags, str):
        flags = [flags]
    num = obj.get("num")
    return Queue(ctx.value(num, "integer") if num is not None else None, tuple(str(f) for f in flags))


def _queue_text(ctx: PrintCtx, q: Queue) -> str:
    out = "queue"
    if q.flags:
        out += " flags " + ",".join(q.flags)
    if q.num is not None:
        out += " to " + ctx.value(q.num, "integer")
    return out


def _queue_compile(ctx: EvalCtx, q: Queue) -> tuple[Op, ...]:
    def fn(s: PacketState, e: Env) -> Effect:
        return Effect("QUEUE", END, s, "handed to a userspace queue: its verdict is not in the rules")

    return (Action(fn, "queue"),)


QUEUE = StmtUnit(
    name="queue",
    nodes=(Queue,),
    keywords=("queue",),
    json_keys=("queue",),
    parse=_queue_parse,
    from_json=_queue_json,
    text=_queue_text,
    compile=_queue_compile,
)
