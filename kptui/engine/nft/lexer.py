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

__all__ = ["Cursor", "Token", "plain_words", "tokenize"]


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


_SPECIAL = re.compile(r'["{}();,]')


def plain_words(line: str, start: int = 0, end: int | None = None) -> list[str] | None:
    """The words of ``line[start:end]`` when it has no string, brace, parenthesis, comma or semicolon (the
    common rule); None otherwise (use :func:`tokenize`)."""
    stop = len(line) if end is None else end
    if _SPECIAL.search(line, start, stop) is not None:
        return None
    return line[start:stop].split()


def tokenize(line: str, start: int = 0, end: int | None = None, *, lineno: int | None = None) -> list[Token]:
    """Tokens of ``line[start:end]`` (columns are the line's); raise :class:`ParseError` for an unterminated
    string."""
    stop = len(line) if end is None else end
    words = plain_words(line, start, stop)
    if words is not None:
        return _located(line, start, words)
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


def _located(line: str, start: int, words: list[str]) -> list[Token]:
    out = []
    pos = start
    find = line.find
    for w in words:
        pos = find(w, pos)
        out.append(Token(w, pos))
        pos += len(w)
    return out


_PUNCT = frozenset("{}(),;")


class Cursor:
    """Reads a rule's tokens; errors point at the current token of ``line`` (the listing's line).

    Built from tokens, or (:meth:`plain`) from the words of a plain rule, whose columns are only worked out
    when an error or a span needs them."""

    __slots__ = ("_start", "_tokens", "line", "lineno", "n", "pos", "texts", "words")

    def __init__(self, tokens: list[Token], line: str, lineno: int | None) -> None:
        self._tokens: list[Token] | None = tokens
        self.texts = [t.text for t in tokens]
        self.words = [None if t.quoted else t.text for t in tokens]  # what peek() sees: None for a string
        self.n = len(tokens)
        self.pos = 0
        self.line = line
        self.lineno = lineno
        self._start = 0

    @classmethod
    def plain(cls, words: list[str], line: str, lineno: int | None, start: int = 0) -> Cursor:
        cur = cls.__new__(cls)
        cur._tokens = None
        cur.texts = words
        cur.words = words  # type: ignore[assignment]
        cur.n = len(words)
        cur.pos = 0
        cur.line = line
        cur.lineno = lineno
        cur._start = start
        return cur

    @property
    def tokens(self) -> list[Token]:
        if self._tokens is None:
            self._tokens = _located(self.line, self._start, self.texts)
        return self._tokens

    def peek(self, ahead: int = 0) -> str | None:
        i = self.pos + ahead
        return self.words[i] if i < self.n else None

    def peek_token(self, ahead: int = 0) -> Token | None:
        i = self.pos + ahead
        return self.tokens[i] if i < self.n else None

    def quoted(self, ahead: int = 0) -> bool:
        i = self.pos + ahead
        return i < self.n and self.words[i] is None

    @property
    def at_end(self) -> bool:
        return self.pos >= self.n

    def next(self, what: str = "a value") -> Token:
        if self.pos >= self.n:
            raise self.error(f"expected {what}, found the end of the rule")
        t = self.tokens[self.pos]
        self.pos += 1
        return t

    def word(self, what: str = "a value") -> str:
        i = self.pos
        w = self.words[i] if i < self.n else None
        if w is None or w in _PUNCT:
            raise self.error(f"expected {what}, found " + (repr(self.texts[i]) if i < self.n else
                                                          "the end of the rule"))  # fmt: skip
        self.pos = i + 1
        return w

    def accept(self, text: str) -> bool:
        i = self.pos
        if i < self.n and self.words[i] == text:
            self.pos = i + 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.texts[self.pos] if self.pos < self.n else None
            raise self.error(f"expected '{text}', found " + (repr(found) if found is not None else
                                                             "the end of the rule"))  # fmt: skip

    def string(self, what: str = "a quoted string") -> str:
        if self.pos >= self.n:
            raise self.error(f"expected {what}, found the end of the rule")
        self.pos += 1
        return self.texts[self.pos - 1]

    def int_(self, what: str = "a number") -> int:
        i = self.pos
        w = self.words[i] if i < self.n else None
        try:
            if w is None:
                raise ValueError
            value = int(w, 0)
        except ValueError:
            raise self.error(f"expected {what}, found " + (repr(self.texts[i]) if i < self.n else
                                                          "the end of the rule")) from None  # fmt: skip
        self.pos = i + 1
        return value

    def span_text(self, start: int, end: int) -> str:
        """The line's text of tokens ``start`` .. ``end - 1``."""
        if start >= end or start >= self.n:
            return ""
        toks = self.tokens
        last = toks[min(end, self.n) - 1]
        stop = last.col + len(last.text) + (2 if last.quoted else 0)
        return self.line[toks[start].col : stop].strip()

    def error(self, message: str, at: Token | None = None) -> ParseError:
        tok = at or self.peek_token()
        if tok is None:
            col, length = len(self.line.rstrip()), 1
        else:
            col, length = tok.col, max(1, len(tok.text) + (2 if tok.quoted else 0))
        return ParseError(Diagnostic(message, self.lineno, col, length, self.line))
