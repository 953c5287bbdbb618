"""libnftables-json expressions and statements (``"expr": [...]`` of a rule) read into the rule AST.

The shapes are libnftables-json(5)'s: a statement is an object with one key (``match``, ``counter``, ``jump``,
``dnat``, ``vmap``, ``mangle``, ``set``, ``xt``, …), an expression likewise (``payload``, ``meta``, ``ct``,
``fib``, ``numgen``, ``concat``, ``&``, ``map``, …); values are strings, numbers, booleans, lists (a bitmask
list), ``{"set": [...]}``, ``{"prefix": …}``, ``{"range": [a, b]}``, ``{"elem": {"val": …, "timeout": …}}``,
and verdict objects. Statements kptui does not know are kept as :class:`OtherStmt` (with the JSON as text).
"""

from __future__ import annotations

from typing import Any

from .exprs import (
    Binop,
    Concat,
    ElemOpts,
    Flags,
    MapItem,
    MapLookup,
    OtherExpr,
    OtherStmt,
    Prefix,
    Range,  # fmt: skip
    SetLit,
    Stmt,
    Value,
    Verdict,
)
from .registry import EXPR_BY_JSON, STMT_BY_JSON, dtype_of
from .stmt_misc import OTHER
from .unitbase import DType
from .values import VERDICTS, component, json_scalar

__all__ = ["JsonError", "JsonReader"]

_BINOPS = ("&", "|", "^", "<<", ">>")


class JsonError(ValueError):
    """A JSON object that does not have the shape libnftables-json gives it."""


class JsonReader:
    """Implements :class:`unitbase.JsonCtx` for the rules of a table of ``family``."""

    def __init__(self, family: str) -> None:
        self.family = family

    def error(self, message: str) -> Exception:
        return JsonError(message)

    def dtype(self, e: Value) -> DType:
        return dtype_of(e, self.family)

    def _single(self, obj: dict[str, Any]) -> tuple[str, Any]:
        if len(obj) != 1:
            raise JsonError(f"expected an object with one key, found {sorted(obj)}")
        return next(iter(obj.items()))

    def expr(self, obj: Any) -> Value:
        if not isinstance(obj, dict):
            return self.value(obj, "integer")
        key, body = self._single(obj)
        unit = EXPR_BY_JSON.get(key)
        if unit is not None:
            return unit.from_json(self, key, body)
        if key in _BINOPS:
            if not isinstance(body, list) or len(body) != 2:
                raise JsonError(f"'{key}' takes two operands")
            left = self.expr(body[0])
            d = "integer" if key in ("<<", ">>") else self.dtype(left)
            return Binop(key, left, self.value(body[1], d))
        if key == "concat":
            if not isinstance(body, list):
                raise JsonError("concat takes a list")
            return Concat(tuple(self.expr(i) for i in body))
        if key == "map":
            if not isinstance(body, dict) or "key" not in body or "data" not in body:
                raise JsonError("map takes key and data")
            k = self.expr(body["key"])
            return MapLookup(k, self.value(body["data"], self.dtype(k)))
        if key == "elem":
            return self._elem(body, None)
        if key in ("set", "prefix", "range") or key in VERDICTS:
            return self.value(obj, "integer")
        return OtherExpr(key, key)

    def _elem(self, body: Any, dtype: DType | None) -> ElemOpts:
        if not isinstance(body, dict) or "val" not in body:
            raise JsonError("elem takes an object with val")
        val = self.expr(body["val"]) if dtype is None else self.value(body["val"], dtype)
        counter = body.get("counter")
        cnt = (int(counter.get("packets", 0)), int(counter.get("bytes", 0))) if isinstance(counter, dict) else None
        t, x = body.get("timeout"), body.get("expires")
        comment = body.get("comment")
        return ElemOpts(val, float(t) if t is not None else None, float(x) if x is not None else None,
                        str(comment) if comment is not None else None, cnt)  # fmt: skip

    def value(self, obj: Any, dtype: DType) -> Value:
        scalar = dtype if isinstance(dtype, str) else "integer"
        if isinstance(obj, list):
            return Flags(tuple(json_scalar(i, scalar) for i in obj))
        if not isinstance(obj, dict):
            return json_scalar(obj, scalar)
        key, body = self._single(obj)
        if key == "set":
            items = body if isinstance(body, list) else [body]
            return SetLit(tuple(self.item(i, dtype) for i in items))
        if key == "prefix":
            if not isinstance(body, dict):
                raise JsonError("prefix takes addr and len")
            return Prefix(str(body.get("addr", "")), int(body.get("len", 0)))
        if key == "range":
            if not isinstance(body, list) or len(body) != 2:
                raise JsonError("range takes two values")
            return Range(self.value(body[0], dtype), self.value(body[1], dtype))
        if key == "concat":
            if not isinstance(body, list):
                raise JsonError("concat takes a list")
            return Concat(tuple(self.value(v, component(dtype, i)) for i, v in enumerate(body)))
        if key == "elem":
            return self._elem(body, dtype)
        if key in VERDICTS:
            return self.verdict(key, body)
        return self.expr(obj)

    def verdict(self, key: str, body: Any) -> Verdict:
        if key in ("jump", "goto"):
            if not isinstance(body, dict) or "target" not in body:
                raise JsonError(f"{key} needs a target")
            return Verdict(key, str(body["target"]))
        return Verdict(key)

    def item(self, obj: Any, dtype: DType, data_dtype: DType = "integer") -> Value:
        """One element of a set (a value) or map (``[key, data]``)."""
        if isinstance(obj, list) and len(obj) == 2:
            return MapItem(self.value(obj[0], dtype), self.data(obj[1], data_dtype))
        return self.value(obj, dtype)

    def data(self, obj: Any, dtype: DType) -> Value:
        if isinstance(obj, dict) and len(obj) == 1:
            key, body = next(iter(obj.items()))
            if key in VERDICTS:
                return self.verdict(key, body)
        return self.value(obj, dtype)

    def stmt(self, obj: Any) -> Stmt:
        if not isinstance(obj, dict) or len(obj) != 1:
            raise JsonError("a statement is an object with one key")
        key, body = next(iter(obj.items()))
        unit = STMT_BY_JSON.get(key)
        if unit is None:
            return OTHER.from_json(self, key, body)
        return unit.from_json(self, key, body)

    def stmts(self, exprs: Any) -> tuple[Stmt, ...]:
        if not isinstance(exprs, list):
            raise JsonError("a rule's expr is a list")
        out: list[Stmt] = []
        for o in exprs:
            try:
                out.append(self.stmt(o))
            except (JsonError, ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
                key = next(iter(o), "?") if isinstance(o, dict) and o else "?"
                out.append(OtherStmt(str(key), f"{key} (unreadable: {exc})"))
        return tuple(out)

