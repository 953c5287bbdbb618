"""Statements printed back as ``nft list ruleset`` prints them: the text of a rule read from JSON.

The explorer shows this text, and trace comparison matches it against ``nft monitor trace`` (which prints rules
as ``nft list ruleset`` does), so it follows nft 1.0's printing exactly for everything kptui models; the
kernel tests compare it with real listings rule by rule.
"""

from __future__ import annotations

from .exprs import Binop, Concat, ElemOpts, MapLookup, Node, Stmt, Value
from .model import NftElement, NftSet
from .registry import EXPR_BY_NODE, STMT_BY_NODE, dtype_of
from .unitbase import DType
from .values import value_text

__all__ = ["Printer", "element_text", "rule_text"]


class Printer:
    """Implements :class:`unitbase.PrintCtx` for a table of ``family``."""

    def __init__(self, family: str) -> None:
        self.family = family

    def dtype(self, e: Value) -> DType:
        return dtype_of(e, self.family)

    def expr(self, e: Value) -> str:
        if isinstance(e, Binop):
            d = "integer" if e.op in ("<<", ">>") else self.dtype(e.left)
            return f"{self.expr(e.left)} {e.op} {self.value(e.right, d)}"
        if isinstance(e, Concat):
            return " . ".join(self.expr(i) for i in e.items)
        if isinstance(e, MapLookup):
            return f"{self.expr(e.key)} map {self.value(e.data, self.dtype(e.key))}"
        if isinstance(e, ElemOpts):
            return value_text(self, e, self.dtype(e.val))
        if isinstance(e, Node):
            unit = EXPR_BY_NODE.get(type(e))
            if unit is not None:
                return unit.text(self, e)
            return value_text(self, e, "integer")
        return value_text(self, e, "integer")

    def value(self, v: Value, dtype: DType) -> str:
        return value_text(self, v, dtype)

    def stmt(self, s: Stmt) -> str:
        unit = STMT_BY_NODE.get(type(s))
        if unit is None:
            return self.expr(s)
        return unit.text(self, s)


def rule_text(family: str, stmts: tuple[Stmt, ...], comment: str | None) -> str:
    """A rule's text as ``nft list ruleset`` prints it."""
    p = Printer(family)
    text = " ".join(p.stmt(s) for s in stmts)
    if comment is not None:
        text += f' comment "{comment}"'
    return text


def element_text(st: NftSet, el: NftElement) -> str:
    """A set's or map's element as ``nft list set`` prints it: ``10.96.0.1 . tcp . 443 : goto service-…``
    (``comment "…"`` after the key; ``expires`` left out: it counts down)."""
    p = Printer(st.family)
    key = el.key[0] if len(el.key) == 1 else Concat(tuple(el.key))
    dtype = st.key_type if len(st.key_type) > 1 else st.key_type[0] if st.key_type else "integer"
    text = value_text(p, key, dtype)
    if el.comment is not None:
        text += f' comment "{el.comment}"'
    if el.value is not None:
        data = st.data_type if st.data_type and len(st.data_type) > 1 else (st.data_type or ("integer",))[0]
        text += f" : {value_text(p, el.value, data)}"
    return text
