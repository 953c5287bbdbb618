"""The set and map blocks of an ``nft list ruleset`` listing: declarations (``type``/``typeof``, ``flags``,
``timeout``, ``size``, ``policy``, ``comment``, per-element ``counter``) and the ``elements = { … }`` list, which
may span many lines (one element per line in big maps). :class:`SetBlocks` is the part of the listing reader
that reads them; a damaged element list keeps the elements read before the damage, with a located warning.
"""

from __future__ import annotations

from typing import Any

from ..errors import Diagnostic, ParseError
from .build import element
from .lexer import Cursor, Token, tokenize
from .model import NftElement
from .rule_text import RuleParser
from .symbols import parse_time

__all__ = ["SetBlock", "SetBlocks"]


class _MultiCursor(Cursor):
    """A cursor over tokens from several lines (an ``elements = { … }`` block): errors point at the token's line."""

    def __init__(self, tokens: list[Token], where: list[tuple[int, str]]) -> None:
        super().__init__(tokens, where[0][1] if where else "", where[0][0] if where else None)
        self.where = where

    def error(self, message: str, at: Token | None = None) -> ParseError:
        i = self.pos if at is None else self.tokens.index(at)
        i = min(i, len(self.where) - 1)
        if i >= 0:
            self.lineno, self.line = self.where[i]
        return super().error(message, at)


class SetBlock:
    """A set or map block being read."""

    def __init__(self, kind: str, name: str, handle: int | None, line: int) -> None:
        self.kind, self.name, self.handle, self.line = kind, name, handle, line
        self.key_type: tuple[str, ...] = ()
        self.data_type: tuple[str, ...] | None = None
        self.typeof: str | None = None
        self.opts: dict[str, Any] = {}
        self.flags: tuple[str, ...] = ()
        self.stmts: list[str] = []
        self.elements: list[NftElement] = []


class SetBlocks:
    """Reads set blocks for the listing reader (which provides the table being read and the warnings)."""

    table: Any
    lines: list[str]
    warnings: list[Diagnostic]

    def warn(self, message: str, lineno: int | None, line: str = "", col: int = 0, length: int = 1) -> None:
        raise NotImplementedError

    def add_warning(self, d: Diagnostic) -> None:
        raise NotImplementedError


    def set_line(self, st: SetBlock, line: str, lineno: int, s: str, i: int) -> int:
        """One declaration of a set block; returns the index of the next line (an element list may span
        several)."""
        t = self.table
        assert t is not None
        word, _, rest = s.partition(" ")
        if word == "type":
            key, _, data = rest.partition(" : ")
            st.key_type = tuple(p.strip() for p in key.split(" . "))
            if data:
                st.data_type = tuple(p.strip() for p in data.split(" . "))
        elif word == "typeof":
            self.typeof(st, line, lineno, rest)
        elif word == "flags":
            st.flags = tuple(f.strip() for f in rest.split(","))
        elif word in ("timeout", "gc-interval"):
            v = parse_time(rest.strip())
            if v is None:
                self.warn(f"'{rest.strip()}' is not a time", lineno, line, line.find(rest), len(rest))
            st.opts[word] = v
        elif word == "size" and rest.strip().isdigit():
            st.opts["size"] = int(rest)
        elif word == "policy":
            st.opts["policy"] = rest.strip()
        elif word == "auto-merge":
            st.opts["auto-merge"] = True
        elif word == "comment" and s.endswith('"'):
            st.opts["comment"] = rest.strip()[1:-1]
        elif word == "counter" and not rest:
            st.stmts.append("counter")
        elif s.startswith("elements = {"):
            return self.elements(st, line, lineno, i)
        else:
            self.warn(f"unknown {st.kind} declaration '{word}': skipped", lineno, line,
                      len(line) - len(line.lstrip()), len(word))  # fmt: skip
        return i

    def typeof(self, st: SetBlock, line: str, lineno: int, rest: str) -> None:
        t = self.table
        assert t is not None
        st.typeof = rest.strip()
        start = line.find(rest)
        cur = Cursor(tokenize(line, start, len(line), lineno=lineno), line, lineno)
        p = RuleParser(cur, t.family, self.add_warning)
        try:
            key = p.expr()
            d = p.dtype(key)
            st.key_type = d if isinstance(d, tuple) else (d,)
            if cur.accept(":"):
                if cur.peek() == "verdict":
                    st.data_type = ("verdict",)
                else:
                    dd = p.dtype(p.expr())
                    st.data_type = dd if isinstance(dd, tuple) else (dd,)
        except ParseError as exc:
            d0 = exc.diagnostic
            self.warnings.append(Diagnostic(f"{d0.message}: the {st.kind}'s type is not known", lineno, d0.column,
                                            d0.length, line, severity="warning"))  # fmt: skip

    def elements(self, st: SetBlock, line: str, lineno: int, i: int) -> int:
        """Read ``elements = { … }`` from this line on; returns the index of the line after the block."""
        tokens: list[Token] = []
        where: list[tuple[int, str]] = []
        depth = 0
        cur_line, cur_no, idx = line, lineno, i
        start = line.index("{")
        while True:
            toks = tokenize(cur_line, start, len(cur_line), lineno=cur_no) if cur_line.count('"') % 2 == 0 else []
            for tk in toks:
                if not tk.quoted:
                    depth += tk.text == "{"
                    depth -= tk.text == "}"
            tokens.extend(toks)
            where.extend([(cur_no, cur_line)] * len(toks))
            if depth <= 0 or idx >= len(self.lines):
                break
            cur_line = self.lines[idx]
            cur_no = idx + 1
            idx += 1
            start = 0
            if cur_line.strip() == "}" and depth == 1 and tokens and tokens[-1].text != ",":
                # the list's own brace is missing: this one closes the set
                self.warn(f"the element list of {st.kind} '{st.name}' is not closed", cur_no, cur_line)
                tokens.append(Token("}", 0))
                where.append(where[-1])
                self.parse_elements(st, tokens, where)
                return idx - 1
        if depth > 0:
            self.warn(f"the element list of {st.kind} '{st.name}' is cut off; the elements read are kept",
                      where[-1][0] if where else lineno, where[-1][1] if where else line)  # fmt: skip
            tokens.append(Token("}", len(where[-1][1]) if where else 0))
            where.append(where[-1] if where else (lineno, line))
        self.parse_elements(st, tokens, where)
        return idx

    def parse_elements(self, st: SetBlock, tokens: list[Token], where: list[tuple[int, str]]) -> None:
        t = self.table
        assert t is not None
        cur = _MultiCursor(tokens, where)
        p = RuleParser(cur, t.family, self.add_warning)
        key: Any = st.key_type if len(st.key_type) > 1 else (st.key_type[0] if st.key_type else "integer")
        data: Any = "verdict" if st.data_type == ("verdict",) else (
            st.data_type if st.data_type and len(st.data_type) > 1 else (st.data_type or ("integer",))[0])
        try:
            cur.expect("{")
            while not cur.accept("}"):
                item = p.element(key, data)
                st.elements.append(element(item))
                if not cur.accept(","):
                    cur.expect("}")
                    break
        except ParseError as exc:
            d = exc.diagnostic
            self.warnings.append(Diagnostic(f"{d.message}: the elements after this point are skipped", d.line,
                                            d.column, d.length, d.text, severity="warning"))  # fmt: skip
