"""Statements that do not steer the packet, and those kptui keeps but cannot evaluate.

- ``counter`` and ``log`` compile to nothing that changes the walk (log leaves a note), ``notrack`` makes the
  connection untracked (ct state untracked: nat will not see it).
- ``limit rate N/unit``: a connection's first packet finds the bucket full, so the rule goes on (a note says
  so); ``limit rate over …`` therefore does not match. ``quota N unit [used M]``: true while the listed usage
  plus this packet stays under the quota (``over`` inverts it).
- ``ct count``: undecidable (the number of connections is not in the listing). ``xt match NAME`` / ``xt target
  NAME`` (iptables-nft compat expressions): undecidable under the key ``xt match NAME``. A statement kptui does
  not know: undecidable under ``nft TEXT``, never silently true.
"""

from __future__ import annotations

import json
from typing import Any

from ..flow import CONTINUE, Action, Check, Effect, Env, Undecidable
from ..trace_model import PacketState
from .exprs import Counter, CtCount, Limit, Log, Notrack, OtherStmt, Quota, Xt
from .unitbase import EvalCtx, JsonCtx, Op, PrintCtx, StmtUnit, TextCtx

__all__ = ["COUNTER", "CT_COUNT", "LIMIT", "LOG", "NOTRACK", "OTHER", "QUOTA", "XT"]

_NOTHING: tuple[Op, ...] = ()

# -- counter --------------------------------------------------------------------------------------------


def _counter_parse(ctx: TextCtx, word: str) -> Counter:
    cur = ctx.cur
    if cur.accept("name"):
        return Counter(name=cur.string("a counter name"))
    if cur.peek() == "packets":
        cur.pos += 1
        packets = cur.int_("a packet count")
        cur.expect("bytes")
        return Counter(packets, cur.int_("a byte count"))
    return Counter()


def _counter_json(ctx: JsonCtx, key: str, obj: Any) -> Counter:
    if isinstance(obj, str):
        return Counter(name=obj)
    if isinstance(obj, dict) and "packets" in obj:
        return Counter(int(obj["packets"]), int(obj.get("bytes", 0)))
    return Counter()


def _counter_text(ctx: PrintCtx, c: Counter) -> str:
    if c.name is not None:
        return f'counter name "{c.name}"'
    if c.packets is not None:
        return f"counter packets {c.packets} bytes {c.bytes or 0}"
    return "counter"


COUNTER = StmtUnit("counter", (Counter,), ("counter",), ("counter",), _counter_parse, _counter_json, _counter_text,
                   lambda ctx, c: _NOTHING)  # fmt: skip

# -- log ------------------------------------------------------------------------------------------------
_LOG_ORDER = ("prefix", "group", "snaplen", "queue-threshold", "level", "flags")
_LOG_FLAG_WORDS = frozenset({"all", "tcp", "ip", "sequence", "options", "sequence,options", "skuid", "ether"})


def _log_sorted(opts: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, opts[k]) for k in _LOG_ORDER if k in opts)


def _log_parse(ctx: TextCtx, word: str) -> Log:
    cur = ctx.cur
    opts: dict[str, Any] = {}
    while cur.peek() in _LOG_ORDER:
        key = cur.word()
        if key == "prefix":
            opts[key] = cur.string("a log prefix")
        elif key == "level":
            opts[key] = cur.word("a log level")
        elif key == "flags":
            words = []
            while cur.peek() in _LOG_FLAG_WORDS:
                words.append(cur.word())
            opts[key] = " ".join(words)
        else:
            opts[key] = cur.int_()
    return Log(_log_sorted(opts))


def _log_json(ctx: JsonCtx, key: str, obj: Any) -> Log:
    if not isinstance(obj, dict):
        return Log()
    opts = dict(obj)
    flags = opts.get("flags")
    if isinstance(flags, list):
        opts["flags"] = _json_log_flags(flags)
    return Log(_log_sorted(opts))


def _json_log_flags(flags: list[Any]) -> str:
    names = [str(f) for f in flags]
    if "all" in names:
        return "all"
    tcp = [n.split()[1] for n in names if n.startswith("tcp ")]
    rest = [n for n in names if not n.startswith("tcp ")]
    return " ".join(([f"tcp {','.join(tcp)}"] if tcp else []) + rest)


def _log_text(ctx: PrintCtx, lg: Log) -> str:
    parts = ["log"]
    for k, v in lg.opts:
        parts.append(f'prefix "{v}"' if k == "prefix" else f"{k} {v}")
    return " ".join(parts)


def _log_compile(ctx: EvalCtx, lg: Log) -> tuple[Op, ...]:
    text = ctx.text(lg)
    note = f"logged ({text})"
    return (Action(lambda s, e: Effect("CONTINUE", CONTINUE, s, note), text),)


LOG = StmtUnit("log", (Log,), ("log",), ("log",), _log_parse, _log_json, _log_text, _log_compile)

# -- limit ----------------------------------------------------------------------------------------------


def _limit_parse(ctx: TextCtx, word: str) -> Limit:
    cur = ctx.cur
    cur.expect("rate")
    inv = cur.accept("over")
    first = cur.word("a rate")
    unit: str | None = None
    if "/" in first:
        rate_s, _, per = first.partition("/")
    else:  # ``1 mbytes/second``
        rate_s = first
        unit, _, per = cur.word("a rate unit").partition("/")
    try:
        rate = int(rate_s)
    except ValueError:
        raise cur.error(f"limit rate '{rate_s}' is not a number", cur.tokens[cur.pos - 1]) from None
    burst = 5 if unit is None else 0
    burst_unit = None if unit is None else "bytes"
    if cur.accept("burst"):
        burst = cur.int_("a burst")
        bu = cur.word("packets or a byte unit")
        burst_unit = None if bu == "packets" else bu
    return Limit(rate, per, burst, unit, burst_unit, inv)


def _limit_json(ctx: JsonCtx, key: str, obj: Any) -> Limit:
    if not isinstance(obj, dict):
        raise ctx.error("limit takes an object")
    unit = obj.get("rate_unit")
    unit = None if unit in (None, "packets") else str(unit)
    bu = obj.get("burst_unit")
    bu = None if bu in (None, "packets") else str(bu)
    if unit is not None and bu is None:
        bu = "bytes"
    burst = obj.get("burst", 5 if unit is None else 0)
    return Limit(int(obj.get("rate", 0)), str(obj.get("per", "second")), int(burst), unit, bu,
                 bool(obj.get("inv", False)))  # fmt: skip


def _limit_text(ctx: PrintCtx, lm: Limit) -> str:
    rate = f"{lm.rate}/{lm.per}" if lm.unit is None else f"{lm.rate} {lm.unit}/{lm.per}"
    out = "limit rate " + ("over " if lm.inv else "") + rate
    default = 5 if lm.unit is None else 0
    if lm.burst is not None and lm.burst != default:
        out += f" burst {lm.burst} {lm.burst_unit or 'packets'}"
    return out


def _limit_compile(ctx: EvalCtx, lm: Limit) -> tuple[Op, ...]:
    text = ctx.text(lm)
    if lm.inv:
        return (Check(lambda s, e: False, text),)  # a first packet is never over the limit
    note = f"{text}: a first packet is within the limit"
    return (Action(lambda s, e: Effect("CONTINUE", CONTINUE, s, note), text),)


LIMIT = StmtUnit("limit", (Limit,), ("limit",), ("limit",), _limit_parse, _limit_json, _limit_text, _limit_compile)

# -- quota ----------------------------------------------------------------------------------------------
_BYTES = {"bytes": 1, "kbytes": 1024, "mbytes": 1024**2, "gbytes": 1024**3}


def _quota_parse(ctx: TextCtx, word: str) -> Quota:
    cur = ctx.cur
    if cur.accept("name"):
        return Quota(0, "", name=cur.string("a quota name"))
    inv = cur.accept("over")
    val = cur.int_("a quota")
    unit = cur.word("a byte unit")
    used = used_unit = None
    if cur.accept("used"):
        used = cur.int_("a byte count")
        used_unit = cur.word("a byte unit")
        if used == 0:
            used = used_unit = None
    return Quota(val, unit, used, used_unit, inv)


def _quota_json(ctx: JsonCtx, key: str, obj: Any) -> Quota:
    if isinstance(obj, str):
        return Quota(0, "", name=obj)
    if not isinstance(obj, dict):
        raise ctx.error("quota takes an object")
    used = obj.get("used") or None
    return Quota(int(obj.get("val", 0)), str(obj.get("val_unit", "bytes")), int(used) if used else None,
                 str(obj.get("used_unit", "bytes")) if used else None, bool(obj.get("inv", False)))  # fmt: skip


def _quota_text(ctx: PrintCtx, q: Quota) -> str:
    if q.name is not None:
        return f'quota name "{q.name}"'
    out = "quota " + ("over " if q.inv else "") + f"{q.val} {q.unit}"
    if q.used:
        out += f" used {q.used} {q.used_unit or 'bytes'}"
    return out


def _quota_compile(ctx: EvalCtx, q: Quota) -> tuple[Op, ...]:
    if q.name is not None:
        text = ctx.text(q)
        unknown = Undecidable(f"nft {text}", f"how much of quota {q.name} is used is not in the rules")
        return (Check(lambda s, e: unknown, text),)
    limit = q.val * _BYTES.get(q.unit, 1)
    used = (q.used or 0) * _BYTES.get(q.used_unit or "bytes", 1)

    def fn(s: PacketState, e: Env) -> bool | Undecidable:
        if e.length is None:
            return Undecidable("packet length", "the packet length is not known")
        over = used + e.length > limit
        return over if q.inv else not over

    return (Check(fn, ctx.text(q)),)


QUOTA = StmtUnit("quota", (Quota,), ("quota",), ("quota",), _quota_parse, _quota_json, _quota_text, _quota_compile)

# -- notrack, ct count ----------------------------------------------------------------------------------


def _notrack_compile(ctx: EvalCtx, n: Notrack) -> tuple[Op, ...]:
    def fn(s: PacketState, e: Env) -> Effect:
        return Effect("CONTINUE", CONTINUE, s.with_(ctstate="UNTRACKED"), "untracked: nat will not see it")

    return (Action(fn, "notrack"),)


NOTRACK = StmtUnit("notrack", (Notrack,), ("notrack",), ("notrack",), lambda ctx, w: Notrack(),
                   lambda ctx, k, o: Notrack(), lambda ctx, n: "notrack", _notrack_compile)  # fmt: skip


def _ct_count_parse(ctx: TextCtx, word: str) -> CtCount:
    ctx.cur.expect("count")
    inv = ctx.cur.accept("over")
    return CtCount(ctx.cur.int_("a connection count"), inv)


def _ct_count_json(ctx: JsonCtx, key: str, obj: Any) -> CtCount:
    if not isinstance(obj, dict):
        raise ctx.error("ct count takes an object")
    return CtCount(int(obj.get("val", 0)), bool(obj.get("inv", False)))


def _ct_count_compile(ctx: EvalCtx, c: CtCount) -> tuple[Op, ...]:
    text = ctx.text(c)
    q = Undecidable(f"nft {text}", "the number of connections is not in the listing")
    return (Check(lambda s, e: q, text),)


CT_COUNT = StmtUnit("ct count", (CtCount,), (), ("ct count",), _ct_count_parse, _ct_count_json,
                    lambda ctx, c: "ct count " + ("over " if c.inv else "") + str(c.val),
                    _ct_count_compile)  # fmt: skip

# -- xt compat expressions ------------------------------------------------------------------------------


def _xt_parse(ctx: TextCtx, word: str) -> Xt:
    kind = ctx.cur.word("match or target")
    return Xt(kind, ctx.cur.string("a module name"))


def _xt_json(ctx: JsonCtx, key: str, obj: Any) -> Xt:
    if not isinstance(obj, dict):
        return Xt("match", str(obj))
    return Xt(str(obj.get("type", "match")), str(obj.get("name", "")))


def _xt_compile(ctx: EvalCtx, x: Xt) -> tuple[Op, ...]:
    if x.kind == "match" and x.name == "comment":
        return _NOTHING  # iptables' -m comment always matches
    text = f"xt {x.kind} {x.name}"
    q = Undecidable(text, f"iptables-nft compat expression {x.kind} {x.name} cannot be listed in full: read this "
                    "table from iptables-nft-save")  # fmt: skip
    if x.kind == "target":
        return (Action(lambda s, e: q, text),)
    return (Check(lambda s, e: q, text),)


XT = StmtUnit("xt", (Xt,), ("xt",), ("xt",), _xt_parse, _xt_json, lambda ctx, x: f"xt {x.kind} {x.name}",
              _xt_compile)  # fmt: skip

# -- anything else --------------------------------------------------------------------------------------
# statements kptui keeps verbatim and knows to let the first packet on unchanged
HARMLESS = frozenset({"flow", "dup"})


def _other_json(ctx: JsonCtx, key: str, obj: Any) -> OtherStmt:
    return OtherStmt(key, f"{key} {json.dumps(obj, separators=(',', ':'))}" if obj is not None else key)


def _other_compile(ctx: EvalCtx, o: OtherStmt) -> tuple[Op, ...]:
    if o.kind in HARMLESS:
        note = f"'{o.text}' is not modelled; it does not change the packet's path"
        return (Action(lambda s, e: Effect("CONTINUE", CONTINUE, s, note), o.text),)
    q = Undecidable(f"nft {o.text}", f"'{o.text}' is not modelled by kptui")
    return (Check(lambda s, e: q, o.text),)


OTHER = StmtUnit("other", (OtherStmt,), (), (), None, _other_json, lambda ctx, o: o.text, _other_compile)
