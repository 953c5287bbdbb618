"""Constants in their canonical form: read from a listing word or from JSON, printed back as nft prints them.

The datatype of the key expression decides: ``6`` after ``meta l4proto`` is ``"tcp"`` (what the default listing
and JSON say), ``0x8`` after ``ct state`` is ``"new"``, ``0x00004000`` after ``meta mark`` is 16384 and prints
back as ``0x00004000``, ``1m40s`` is 100 seconds, ``missing`` after ``fib … oif`` is False.
"""

from __future__ import annotations

import re
from typing import Any

from .exprs import Concat, ElemOpts, Flags, MapItem, Node, Prefix, Range, SetLit, SetRef, Value, Verdict
from .symbols import BITMASK_TYPES, SERVICES, SYMBOLS, format_time, name_of, parse_time
from .unitbase import DType, PrintCtx

__all__ = ["VERDICTS", "component", "json_scalar", "value_text", "verdict_text", "word_value"]

VERDICTS = ("accept", "drop", "continue", "return", "jump", "goto", "queue")
_ADDR = frozenset({"ipv4_addr", "ipv6_addr"})
_QUOTED = frozenset({"ifname", "string", "iface_index", "fib_oif", "devgroup_name"})
_HEX = {"mark": 8, "ether_type": 4, "dscp": 2}
_NUM = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|\d+)$")


def component(dtype: DType, i: int) -> str:
    """The type of component ``i`` of a (possibly concatenated) type."""
    if isinstance(dtype, tuple):
        return dtype[i] if i < len(dtype) else "integer"
    return dtype


def _int(word: str) -> int | None:
    if not _NUM.match(word):
        return None
    try:
        return int(word, 0)
    except ValueError:
        return int(word, 10)


def _symbol(word: str, dtype: str) -> Value:
    """One word of a symbolic type: the name as nft prints it (a number -nn printed becomes the name)."""
    table = SYMBOLS[dtype]
    if word in table:
        return word
    n = _int(word)
    if n is None:
        return word
    return name_of(dtype, n) or n


def word_value(word: str, quoted: bool, dtype: str) -> Value:
    """The canonical value of one listing word for ``dtype``."""
    if quoted:
        return word
    if dtype in _ADDR:
        if "/" in word:
            addr, _, plen = word.partition("/")
            n = _int(plen)
            if n is not None:
                full = 32 if dtype == "ipv4_addr" else 128
                return addr if n == full else Prefix(addr, n)
        if "-" in word:
            lo, _, hi = word.partition("-")
            return Range(lo, hi)
        return word
    if dtype in BITMASK_TYPES:
        if "," in word:
            return Flags(tuple(_symbol(w, dtype) for w in word.split(",")))
        return _symbol(word, dtype)
    if dtype in SYMBOLS:
        v = _symbol(word, dtype)
        if isinstance(v, str) and v not in SYMBOLS[dtype] and "-" in word:
            lo, _, hi = word.partition("-")
            if _int(lo) is not None and _int(hi) is not None:
                return Range(_symbol(lo, dtype), _symbol(hi, dtype))
        return v
    if dtype == "time":
        t = parse_time(word)
        return t if t is not None else word
    if dtype in ("fib_oif", "boolean"):
        if word in ("missing", "false", "0"):
            return False
        if word in ("exists", "true", "1"):
            return True
        return word
    n = _int(word)
    if n is not None:
        return n
    if dtype == "inet_service" and word in SERVICES:
        return SERVICES[word]
    if "-" in word and dtype not in _QUOTED:
        lo, _, hi = word.partition("-")
        a, b = _int(lo), _int(hi)
        if a is not None and b is not None:
            return Range(a, b)
        if dtype == "inet_service" and lo in SERVICES and hi in SERVICES:
            return Range(SERVICES[lo], SERVICES[hi])
    return word


def json_scalar(obj: Any, dtype: str) -> Value:
    """A JSON string, number or boolean as a canonical value for ``dtype``."""
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        if dtype in SYMBOLS:
            return name_of(dtype, obj) or obj
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, str):
        if obj.startswith("@"):
            return SetRef(obj[1:])
        if dtype == "time":
            t = parse_time(obj)
            return t if t is not None else obj
        return obj
    return str(obj)


def verdict_text(v: Verdict) -> str:
    return f"{v.kind} {v.target}" if v.target is not None else v.kind


def value_text(ctx: PrintCtx, v: Value, dtype: DType) -> str:
    """``v`` as ``nft list ruleset`` prints a value of ``dtype``."""
    scalar = dtype if isinstance(dtype, str) else "integer"
    if isinstance(v, bool):
        return "exists" if v else "missing"
    if isinstance(v, int):
        if scalar == "time":
            return format_time(v)
        if scalar in _HEX:
            return f"0x{v:0{_HEX[scalar]}x}"
        if scalar in BITMASK_TYPES or scalar == "raw":
            return f"0x{v:x}"
        return str(v)
    if isinstance(v, float):
        return format_time(v) if scalar == "time" else f"{v:g}"
    if isinstance(v, str):
        return f'"{v}"' if scalar in _QUOTED else v
    if isinstance(v, Prefix):
        return f"{v.addr}/{v.length}"
    if isinstance(v, Range):
        return f"{value_text(ctx, v.lo, dtype)}-{value_text(ctx, v.hi, dtype)}"
    if isinstance(v, Flags):
        return ",".join(value_text(ctx, i, dtype) for i in v.items)
    if isinstance(v, Concat):
        return " . ".join(value_text(ctx, item, component(dtype, i)) for i, item in enumerate(v.items))
    if isinstance(v, SetRef):
        return f"@{v.name}"
    if isinstance(v, Verdict):
        return verdict_text(v)
    if isinstance(v, SetLit):
        return "{ " + ", ".join(value_text(ctx, i, dtype) for i in v.items) + " }"
    if isinstance(v, MapItem):
        return f"{value_text(ctx, v.key, dtype)} : {value_text(ctx, v.value, 'integer')}"
    if isinstance(v, ElemOpts):
        return value_text(ctx, v.val, dtype) + elem_opts_text(v)
    if isinstance(v, Node):
        return ctx.expr(v)
    return str(v)


def elem_opts_text(e: ElemOpts) -> str:
    out = ""
    if e.timeout is not None:
        out += f" timeout {format_time(e.timeout)}"
    if e.expires is not None:
        out += f" expires {format_time(e.expires)}"
    if e.counter is not None:
        out += f" counter packets {e.counter[0]} bytes {e.counter[1]}"
    if e.comment is not None:
        out += f' comment "{e.comment}"'
    return out
