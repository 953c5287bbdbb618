"""Tokens of one line of an nft listing, and a cursor the statement parsers read them with.

nft prints a rule with single spaces between words, sets as ``{ a, b }``, maps as ``{ k : v }``,
concatenations as ``a . b``, bitmask lists without spaces (``established,related``), strings in double
quotes (no escapes: nft refuses a ``"`` inside a string). A word therefore runs up to whitespace, a brace, a
parenthesis, a quote or a semicolon; a comma inside a word (``syn,ack``) stays in it, a comma followed by
whitespace (a set's separator) is a token of its own. Every token keeps its column for error carets.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import Diagnostic, ParseError

__all__ = ["Cursor", "Token", "tokenize"]


class Token(NamedTuple):
    text: str
    col: int
    quoted: bool = False


_TOKEN = re.compile(
    r'"([^"]*)"'  # a quoted string (group 1)
    r"|([{}();]|,)"  # punctuation (group 2)
    r'|([^\s{}()";,]+(?:,[^\s{}()";,]+)*)'  # a word, commas inside it included (group 3)
    r"|(\S)"  # anything else: one character (group 4)
)


def tokenize(line: str, start: int = 0, end: int | None = None, *, lineno: int | None = None) -> list[Token]:
    """Tokens of ``line[start:end]`` (columns are the line's); raise :class:`ParseError` for an unterminated
    string."""
    stop = len(line) if end is None else end
    if line.count('"', start, stop) % 2:
        col = line.rfind('"', start, stop)
        raise ParseError(Diagnostic("unterminated string", lineno, col, stop - col, line))
    out = []
    for m in _TOKEN.finditer(line, start, stop):
        s, p, w, o = m.groups()
        if s is not None:
            out.append(Token(s, m.start(), True))
        else:
            out.append(Token(p or w or o, m.start()))
    return out


class Cursor:
    """Reads a rule's tokens; errors point at the current token of ``line`` (the listing's line)."""

    __slots__ = ("line", "lineno", "pos", "tokens")

    def __init__(self, tokens: list[Token], line: str, lineno: int | None) -> None:
        self.tokens = tokens
        self.pos = 0
        self.line = line
        self.lineno = lineno

    def peek(self, ahead: int = 0) -> str | None:
        i = self.pos + ahead
        if i < len(self.tokens):
            t = self.tokens[i]
            return None if t.quoted else t.text
        return None

    def peek_token(self, ahead: int = 0) -> Token | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def next(self, what: str = "a value") -> Token:
        if self.pos >= len(self.tokens):
            raise self.error(f"expected {what}, found the end of the rule")
        t = self.tokens[self.pos]
        self.pos += 1
        return t

    def word(self, what: str = "a value") -> str:
        t = self.next(what)
        if t.quoted or t.text in "{}(),;":
            self.pos -= 1
            raise self.error(f"expected {what}, found {t.text!r}")
        return t.text

    def accept(self, text: str) -> bool:
        if self.peek() == text:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.peek_token()
            raise self.error(f"expected '{text}', found " + (repr(found.text) if found else "the end of the rule"))

    def string(self, what: str = "a quoted string") -> str:
        t = self.next(what)
        return t.text

    def int_(self, what: str = "a number") -> int:
        t = self.next(what)
        try:
            return int(t.text, 0)
        except ValueError:
            self.pos -= 1
            raise self.error(f"expected {what}, found {t.text!r}") from None

    def rest_text(self, start: int) -> str:
        """The line's text from token ``start`` to the end."""
        if start >= len(self.tokens):
            return ""
        return self.line[self.tokens[start].col :].strip()

    def span_text(self, start: int, end: int) -> str:
        """The line's text of tokens ``start`` .. ``end - 1``."""
        if start >= end or start >= len(self.tokens):
            return ""
        last = self.tokens[min(end, len(self.tokens)) - 1]
        stop = last.col + len(last.text) + (2 if last.quoted else 0)
        return self.line[self.tokens[start].col : stop].strip()

    def error(self, message: str, at: Token | None = None) -> ParseError:
        tok = at or self.peek_token()
        if tok is None:
            col, length = len(self.line.rstrip()), 1
        else:
            col, length = tok.col, max(1, len(tok.text) + (2 if tok.quoted else 0))
        return ParseError(Diagnostic(message, self.lineno, col, length, self.line))
