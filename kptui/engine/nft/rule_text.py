"""A rule's text (as ``nft list ruleset`` prints it) parsed into statements.

The statement and expression units do the work (:mod:`.registry`); this module holds the shared grammar: a
key expression (``ip daddr . meta l4proto . th dport``, ``meta mark & 0x4000``), a value for a datatype (a
constant, ``{ anonymous set }``, ``{ k : v }`` map, ``@set``, ``a . b`` concatenation) and the loop over a
rule's statements with its trailing ``comment "…"``.

Text from a listing is untrusted and often damaged: a statement kptui does not know, or one it cannot read,
keeps the rest of the rule verbatim as an :class:`OtherStmt` (evaluated as undecidable) and adds a located
warning; nothing raises out of :func:`parse_rule` but a :class:`ParseError` for an unterminated string.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import Diagnostic, ParseError
from .expr_payload import RAW, RAW_PAYLOAD
from .exprs import (
    Binop,
    Concat,
    Counter,
    ElemOpts,
    Flags,
    MapItem,
    OtherStmt,
    SetLit,
    SetRef,
    Stmt,
    Value,  # fmt: skip
    Verdict,
)
from .lexer import Cursor, Token, plain_words, tokenize
from .registry import EXPR_KEYWORDS, STMT_AFTER, STMT_KEYWORDS, dtype_of
from .stmt_misc import CT_COUNT
from .symbols import parse_time
from .unitbase import DType
from .values import VERDICTS, component, word_value

__all__ = ["BINOPS", "RuleParser", "parse_rule"]

BINOPS = {"&": "&", "|": "|", "^": "^", "<<": "<<", ">>": ">>", "and": "&", "or": "|", "xor": "^",
          "lshift": "<<", "rshift": ">>"}  # fmt: skip
_ELEM_OPTS = ("timeout", "expires", "comment", "counter")
_NOT_VALUES = frozenset(["{", "}", "(", ")", ",", ";", ":"])
Warn = Callable[[Diagnostic], None]


class RuleParser:
    """Parses one rule (or an ``elements = { … }`` block) at a cursor; implements :class:`unitbase.TextCtx`."""

    def __init__(self, cur: Cursor, family: str, warn: Warn) -> None:
        self.cur = cur
        self.family = family
        self._warn = warn

    # -- TextCtx --------------------------------------------------------------------------------------
    def warn(self, message: str, col: int, length: int) -> None:
        self._warn(Diagnostic(message, self.cur.lineno, col, length, self.cur.line, severity="warning"))

    def dtype(self, e: Value) -> DType:
        return dtype_of(e, self.family)

    def starts_expr(self, ahead: int = 0) -> bool:
        w = self.cur.peek(ahead)
        if w is None:
            return False
        return w in EXPR_KEYWORDS or w == "(" or (w[:1] == "@" and bool(RAW.match(w)))

    def primary(self) -> Value:
        cur = self.cur
        w = cur.peek()
        if w is None:
            raise cur.error("expected an expression, found " + ("a string" if cur.quoted() else "the end of the rule"))
        cur.pos += 1
        unit = EXPR_KEYWORDS.get(w)
        if unit is not None:
            return unit.parse(self, w)
        if w == "(":
            e = self.expr()
            cur.expect(")")
            return e
        if RAW.match(w):
            return RAW_PAYLOAD.parse(self, w)
        cur.pos -= 1
        raise cur.error(f"unknown expression '{w}'")

    def _binop_chain(self, left: Value) -> Value:
        cur = self.cur
        while cur.peek() in BINOPS:
            op = BINOPS[cur.word()]
            d = "integer" if op in ("<<", ">>") else self.dtype(left)
            right = self._operand_value(d)
            left = Binop(op, left, right)
        return left

    def expr(self) -> Value:
        items = [self._binop_chain(self.primary())]
        while self.cur.accept("."):
            items.append(self._binop_chain(self.primary()))
        return Concat(tuple(items)) if len(items) > 1 else items[0]

    def operand(self, dtype: DType) -> Value:
        if self.starts_expr():
            e = self.expr()
            return e
        v = self.value(dtype)
        return self._binop_chain(v)

    def _operand_value(self, dtype: DType) -> Value:
        if self.starts_expr():
            return self._binop_chain(self.primary())
        if self.cur.peek() == "(":  # (syn|ack): flags written as an expression
            self.cur.pos += 1
            items = [self._one(dtype, 0)]
            while self.cur.accept("|"):
                items.append(self._one(dtype, 0))
            self.cur.expect(")")
            return Flags(tuple(items)) if len(items) > 1 else items[0]
        return self._one(dtype, 0)

    def value(self, dtype: DType) -> Value:
        first = self._one(dtype, 0)
        if self.cur.peek() != ".":
            return first
        items = [first]
        while self.cur.accept("."):
            items.append(self._one(dtype, len(items)))
        return Concat(tuple(items))

    # -- values ---------------------------------------------------------------------------------------
    def _one(self, dtype: DType, i: int) -> Value:
        cur = self.cur
        p = cur.pos
        if p >= cur.n:
            raise cur.error("expected a value, found the end of the rule")
        w = cur.words[p]
        if w is None:  # a string
            cur.pos = p + 1
            return cur.texts[p]
        c = w[:1]
        if c == "{" and len(w) == 1:
            return self.set_lit(dtype)
        if c == "@" and len(w) > 1 and not RAW.match(w):
            cur.pos = p + 1
            return SetRef(w[1:])
        if w in _NOT_VALUES:
            raise cur.error(f"expected a value, found {w!r}")
        cur.pos = p + 1
        return word_value(w, False, dtype if isinstance(dtype, str) else component(dtype, i))

    def set_lit(self, dtype: DType, data_dtype: DType = "integer") -> SetLit:
        cur = self.cur
        cur.expect("{")
        items: list[Value] = []
        while not cur.accept("}"):
            items.append(self.element(dtype, data_dtype))
            if not cur.accept(","):
                cur.expect("}")
                break
        return SetLit(tuple(items))

    def element(self, dtype: DType, data_dtype: DType = "integer") -> Value:
        """``KEY [timeout T] [expires T] [counter packets P bytes B] [comment "c"] [: DATA]``."""
        cur = self.cur
        key = self.value(dtype)
        opts = self.elem_opts()
        if opts is not None:
            key = ElemOpts(key, *opts)
        if cur.accept(":"):
            return MapItem(key, self.data(data_dtype))
        return key

    def elem_opts(self) -> tuple[float | None, float | None, str | None, tuple[int, int] | None] | None:
        cur = self.cur
        if cur.peek() not in _ELEM_OPTS:
            return None
        timeout = expires = None
        comment = None
        counter = None
        while cur.peek() in _ELEM_OPTS:
            word = cur.word()
            if word == "comment":
                comment = cur.string("a comment")
            elif word == "counter":
                cur.expect("packets")
                p = cur.int_()
                cur.expect("bytes")
                counter = (p, cur.int_())
            else:
                text = cur.word("a time")
                t = parse_time(text)
                if t is None:
                    raise cur.error(f"'{text}' is not a time", cur.tokens[cur.pos - 1])
                if word == "timeout":
                    timeout = t
                else:
                    expires = t
        return timeout, expires, comment, counter

    def data(self, dtype: DType) -> Value:
        """A map element's data: a verdict, or a value."""
        cur = self.cur
        w = cur.peek()
        if w in VERDICTS and dtype in ("integer", "verdict", ("verdict",)):
            cur.pos += 1
            if w in ("jump", "goto"):
                return Verdict(w, cur.word("a chain name"))
            return Verdict(w)
        return self.value(dtype)

    # -- statements ----------------------------------------------------------------------------------
    def statement(self) -> Stmt:
        cur = self.cur
        word = cur.peek()
        if word is None:
            raise cur.error("unexpected string")
        unit = STMT_KEYWORDS.get(word)
        if word == "ct" and cur.peek(1) == "count":
            unit = CT_COUNT
        if unit is not None and unit.parse is not None:
            cur.pos += 1
            return unit.parse(self, word)
        if self.starts_expr():
            lhs = self.expr()
            after = STMT_AFTER.get(cur.peek() or "") or STMT_AFTER[""]
            assert after.parse_after is not None
            return after.parse_after(self, lhs)
        raise _Unknown(cur.tokens[cur.pos])


class _Unknown(Exception):
    def __init__(self, token: Token) -> None:
        self.token = token


def parse_rule(line: str, start: int, end: int, lineno: int | None, family: str,
               warn: Warn) -> tuple[tuple[Stmt, ...], str | None]:  # fmt: skip
    """The statements and the comment of the rule in ``line[start:end]``."""
    comment = None
    words = plain_words(line, start, end)
    if words is not None:
        cur = Cursor.plain(words, line, lineno, start)
    else:
        tokens = tokenize(line, start, end, lineno=lineno)
        if len(tokens) >= 2 and tokens[-1].quoted and tokens[-2].text == "comment" and not tokens[-2].quoted:
            comment = tokens[-1].text
            tokens = tokens[:-2]
        cur = Cursor(tokens, line, lineno)
    p = RuleParser(cur, family, warn)
    stmts: list[Stmt] = []
    while not cur.at_end:
        if cur.accept(";"):
            continue
        begin = cur.pos
        try:
            stmts.append(p.statement())
        except _Unknown as exc:
            tok = exc.token
            warn(Diagnostic(f"unknown statement '{tok.text}': kept verbatim, evaluated as undecidable", lineno,
                            tok.col, len(tok.text), line, severity="warning"))  # fmt: skip
            stmts.append(OtherStmt(tok.text, cur.span_text(begin, cur.n)))
            break
        except ParseError as exc:
            d = exc.diagnostic
            warn(Diagnostic(f"{d.message}: the rest of the rule is kept verbatim, evaluated as undecidable",
                            lineno, d.column, d.length, line, severity="warning"))  # fmt: skip
            first = cur.texts[begin] if begin < cur.n else "?"
            stmts.append(OtherStmt(first, cur.span_text(begin, cur.n)))
            break
    return tuple(stmts), comment


def rule_counter(stmts: tuple[Stmt, ...]) -> tuple[int, int] | None:
    for s in stmts:
        if isinstance(s, Counter) and s.packets is not None:
            return (s.packets, s.bytes or 0)
    return None
