"""What an expression or statement *unit* is: one small piece that knows one nft expression or statement family
in every form kptui meets it, next to each other.

A unit has a name, the words that start it in a listing and the keys that name it in libnftables JSON, and
five functions: read it from listing tokens, read it from JSON, print it as ``nft list ruleset`` does (the text
of a JSON rule is rebuilt with it), give its datatype (expressions) and evaluate it (an expression's value for a
packet, a statement's ops for the trace walker). Units never import the parser, printer or compiler: those
hand them a context object (the protocols below), so adding a unit is adding one entry to its family's module
and one line to :mod:`.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..flow import Action, Check, Env
from ..trace_model import PacketState
from .exprs import Node, Value
from .lexer import Cursor

__all__ = ["DType", "EvalCtx", "ExprUnit", "JsonCtx", "Op", "PrintCtx", "StmtUnit", "TextCtx", "ValueFn"]

DType = str | tuple[str, ...]  # an nft type name, or one per component of a concatenation
Op = Check | Action
ValueFn = Callable[[PacketState, Env], Any]  # a value in the evaluation domain, or one of evalcore's markers


class TextCtx(Protocol):
    cur: Cursor
    family: str

    def expr(self) -> Value:
        """A key expression at the cursor, concatenations and binary operations included."""
        ...

    def primary(self) -> Value:
        """One key expression at the cursor (no ``.``, no binary operator)."""
        ...

    def value(self, dtype: DType) -> Value:
        """A value for ``dtype`` at the cursor (a constant, ``{ set }``, ``@set``, a concatenation, or an
        expression such as ``meta mark | 0x4000``)."""
        ...

    def operand(self, dtype: DType) -> Value:
        """A statement's operand: an expression with binary operations (``meta mark | 0x4000``) or a value."""
        ...

    def dtype(self, e: Value) -> DType: ...

    def warn(self, message: str, col: int, length: int) -> None: ...


class JsonCtx(Protocol):
    family: str

    def expr(self, obj: Any) -> Value: ...

    def value(self, obj: Any, dtype: DType) -> Value: ...

    def dtype(self, e: Value) -> DType: ...

    def error(self, message: str) -> Exception: ...


class PrintCtx(Protocol):
    family: str

    def expr(self, e: Value) -> str: ...

    def value(self, v: Value, dtype: DType) -> str: ...

    def dtype(self, e: Value) -> DType: ...


class EvalCtx(Protocol):
    family: str  # the table's family

    def value_fn(self, e: Value) -> ValueFn:
        """How to read expression ``e`` from a packet."""
        ...

    def text(self, node: Node) -> str:
        """``node`` as the listing prints it (the text of a check or an action)."""
        ...

    def dtype(self, e: Value) -> DType: ...

    def check(self, match: Node) -> Check:
        """A relational match compiled to a check."""
        ...

    def lookup(self, key: Value, data: Value) -> Callable[[PacketState, Env], Any]:
        """``key`` looked up in map ``data`` (``@name`` or an anonymous map): a function giving the data for the
        packet, :data:`evalcore.MISS`, a :class:`evalcore.Dist` whose values are ``(key value, data or MISS)``
        pairs (a numgen key), or an Undecidable."""
        ...

    def chain_exists(self, name: str) -> bool: ...

    def set_key(self, name: str) -> str:
        """The qualified name of set ``name`` for :attr:`PacketState.dyn` (``ip kube-proxy affinity-…``)."""
        ...


@dataclass(frozen=True)
class ExprUnit:
    """A key expression family (payload, meta, ct, fib, numgen, hash, …)."""

    name: str
    nodes: tuple[type[Node], ...]
    keywords: tuple[str, ...]  # listing words that start it (called with the cursor after the word)
    json_keys: tuple[str, ...]
    parse: Callable[[TextCtx, str], Node]
    from_json: Callable[[JsonCtx, str, Any], Node]
    text: Callable[[PrintCtx, Any], str]
    dtype: Callable[[Any, str], DType]  # (node, table family) → datatype
    value: Callable[[EvalCtx, Any], ValueFn]


@dataclass(frozen=True)
class StmtUnit:
    """A statement family. ``keywords`` start it; an expression-led statement (a match, ``vmap``, ``set``)
    instead names the word that follows its key expression in ``after`` (``""``: a match, the default)."""

    name: str
    nodes: tuple[type[Node], ...]
    keywords: tuple[str, ...]
    json_keys: tuple[str, ...]
    parse: Callable[[TextCtx, str], Node] | None
    from_json: Callable[[JsonCtx, str, Any], Node]
    text: Callable[[PrintCtx, Any], str]
    compile: Callable[[EvalCtx, Any], tuple[Op, ...]]
    after: tuple[str, ...] = ()
    parse_after: Callable[[TextCtx, Value], Node] | None = None
