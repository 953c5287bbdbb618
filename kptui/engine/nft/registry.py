"""The registry of expression and statement units, by name, by listing keyword, by JSON key and by node type.

Adding an expression or statement is adding its unit (one entry in its family's module, see
:mod:`.unitbase`) and listing it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..flow import Undecidable
from .expr_ct import CT
from .expr_fib import FIB
from .expr_meta import META
from .expr_numgen import HASH, NUMGEN
from .expr_payload import PAYLOAD, RAW_PAYLOAD
from .exprs import Binop, Concat, Node, OtherExpr
from .stmt_expr import MANGLE, MATCH, VMAP
from .stmt_misc import COUNTER, CT_COUNT, LIMIT, LOG, NOTRACK, OTHER, QUOTA, XT
from .stmt_nat import NAT
from .stmt_set import SET_STMT
from .stmt_verdict import QUEUE, REJECT, VERDICT
from .unitbase import DType, EvalCtx, ExprUnit, JsonCtx, PrintCtx, StmtUnit, TextCtx, ValueFn

__all__ = ["EXPRESSIONS", "EXPR_BY_JSON", "EXPR_BY_NODE", "EXPR_KEYWORDS", "STATEMENTS", "STMT_AFTER",
           "STMT_BY_JSON", "STMT_BY_NODE", "STMT_KEYWORDS", "dtype_of", "expr_unit", "stmt_unit"]  # fmt: skip


def _other_parse(ctx: TextCtx, word: str) -> OtherExpr:
    raise ctx.cur.error(f"'{word}' expressions are not read from listings")  # never registered by keyword


def _other_json(ctx: JsonCtx, key: str, obj: Any) -> OtherExpr:
    return OtherExpr(key, _json_text(key, obj))


def _json_text(key: str, obj: Any) -> str:
    """nft's text for the JSON forms of expressions kptui keeps verbatim."""
    if isinstance(obj, dict):
        if key == "tcp option" and "name" in obj:
            return " ".join(["tcp option", str(obj["name"])] + ([str(obj["field"])] if "field" in obj else []))
        if key == "exthdr" and "name" in obj:
            return " ".join([str(obj["name"])] + ([str(obj["field"])] if "field" in obj else []))
        if key in ("socket", "osf", "rt", "ipsec") and "key" in obj:
            return f"{key} {obj['key']}"
    return key


def _other_value(ctx: EvalCtx, node: OtherExpr) -> ValueFn:
    q = Undecidable(f"nft {node.text}", f"'{node.text}' is not modelled by kptui")
    return lambda s, e: q


def _other_text(ctx: PrintCtx, node: OtherExpr) -> str:
    return node.text


OTHER_EXPR = ExprUnit(
    name="other",
    nodes=(OtherExpr,),
    keywords=(),
    json_keys=("tcp option", "exthdr", "socket", "osf", "rt", "ipsec", "sctp chunk", "ip option", "tunnel"),
    parse=_other_parse,
    from_json=_other_json,
    text=_other_text,
    dtype=lambda node, family: "integer",
    value=_other_value,
)

EXPRESSIONS: Mapping[str, ExprUnit] = MappingProxyType(
    {u.name: u for u in (PAYLOAD, RAW_PAYLOAD, META, CT, FIB, NUMGEN, HASH, OTHER_EXPR)}
)
_STATEMENTS = (MATCH, VMAP, MANGLE, VERDICT, REJECT, QUEUE, NAT, COUNTER, LOG, LIMIT, QUOTA, NOTRACK, CT_COUNT, XT,
               SET_STMT, OTHER)  # fmt: skip
STATEMENTS: Mapping[str, StmtUnit] = MappingProxyType({u.name: u for u in _STATEMENTS})


def _index(units: Any, attr: str) -> Mapping[Any, Any]:
    out: dict[Any, Any] = {}
    for u in units:
        for k in getattr(u, attr):
            out.setdefault(k, u)
    return MappingProxyType(out)


EXPR_KEYWORDS: Mapping[str, ExprUnit] = _index(EXPRESSIONS.values(), "keywords")
EXPR_BY_JSON: Mapping[str, ExprUnit] = _index(EXPRESSIONS.values(), "json_keys")
EXPR_BY_NODE: Mapping[type[Node], ExprUnit] = _index(EXPRESSIONS.values(), "nodes")
STMT_KEYWORDS: Mapping[str, StmtUnit] = _index(STATEMENTS.values(), "keywords")
STMT_BY_JSON: Mapping[str, StmtUnit] = _index(STATEMENTS.values(), "json_keys")
STMT_BY_NODE: Mapping[type[Node], StmtUnit] = _index(STATEMENTS.values(), "nodes")
STMT_AFTER: Mapping[str, StmtUnit] = _index(STATEMENTS.values(), "after")


def dtype_of(e: Any, family: str) -> DType:
    """The datatype of expression ``e`` in a table of ``family`` (a tuple for a concatenation; a binary
    operation has its left operand's; a constant is an integer)."""
    if isinstance(e, Concat):
        return tuple(d if isinstance(d, str) else "integer" for d in (dtype_of(i, family) for i in e.items))
    if isinstance(e, Binop):
        return dtype_of(e.left, family)
    unit = EXPR_BY_NODE.get(type(e))
    return unit.dtype(e, family) if unit is not None else "integer"


def expr_unit(node: Node) -> ExprUnit | None:
    return EXPR_BY_NODE.get(type(node))


def stmt_unit(node: Node) -> StmtUnit | None:
    return STMT_BY_NODE.get(type(node))
