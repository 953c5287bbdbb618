"""Split one rule line into tokens exactly the way ``iptables-restore`` does (``add_param_to_argv``).

- Spaces, tabs and newlines separate tokens; no other character does (not even ``\\r`` or a form feed).
- A double quote opens a quoted part, anywhere in a token; inside it a backslash escapes the next character
  and the closing quote *ends the token* (``a"b c"d`` is two tokens, ``ab c`` and ``d``; ``""`` is an empty
  token). Outside quotes a backslash and a single quote are ordinary characters.
- A quote that is never closed takes the rest of the line (iptables-restore loads ``--comment "open`` with
  the comment ``open``); ``strict=True`` refuses it instead (a line cut off in the middle of a quote).

iptables-save quotes an argument with double quotes when it holds anything but ``[A-Za-z0-9_-]`` and escapes
``"`` and ``\\`` inside. Each token remembers its column (for error carets) and whether any part of it was
quoted.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import Diagnostic, ParseError

__all__ = ["Token", "open_quote", "quote", "tokenize"]


class Token(NamedTuple):
    text: str
    column: int
    quoted: bool


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_OTHER_SPACE = re.compile(r"[^\S \t\n]")  # whitespace str.split() would split at but iptables-restore does not
_WORD = re.compile(r"[^ \t\n]+")


def tokenize(line: str, *, lineno: int | None = None, strict: bool = False) -> list[Token]:
    """Tokenize ``line``; with ``strict``, raise :class:`ParseError` for a quote that is never closed."""
    if '"' not in line:
        if _OTHER_SPACE.search(line) is None:
            return _split_plain(line)
        return [Token(m.group(), m.start(), False) for m in _WORD.finditer(line)]
    tokens, open_at = _split_quoted(line)
    if open_at is not None and strict:
        raise ParseError(Diagnostic("unterminated quote (truncated line?)", lineno, open_at, len(line) - open_at,
                                    line))  # fmt: skip
    return tokens


def open_quote(line: str) -> int | None:
    """The column of a quote ``line`` never closes (None when every quote is closed)."""
    return _split_quoted(line)[1] if '"' in line else None


def _split_plain(line: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    find = line.find
    for word in line.split():
        col = find(word, pos)
        tokens.append(Token(word, col, False))
        pos = col + len(word)
    return tokens


def _split_quoted(line: str) -> tuple[list[Token], int | None]:
    tokens: list[Token] = []
    buf: list[str] = []
    start = -1  # column where the current token began (-1: none yet)
    quoted = in_quote = escaped = False
    open_at: int | None = None
    for i, ch in enumerate(line):
        if in_quote:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':  # the closing quote ends the token
                in_quote = False
                tokens.append(Token("".join(buf), start, True))
                buf, start, quoted = [], -1, False
            else:
                buf.append(ch)
            continue
        if ch == '"':
            in_quote = quoted = True
            open_at = i
            if start < 0:
                start = i
        elif ch in " \t\n":
            if buf or (start >= 0 and quoted):
                tokens.append(Token("".join(buf), start, quoted))
            buf, start, quoted = [], -1, False
        else:
            if start < 0:
                start = i
            buf.append(ch)
    if in_quote:
        tokens.append(Token("".join(buf), start, True))
        return tokens, open_at
    if buf:
        tokens.append(Token("".join(buf), start, quoted))
    return tokens, None


def quote(arg: str, *, string: bool = False) -> str:
    """Quote an argument for a rule line.

    ``string=True`` is iptables-save's rule for free-text arguments (comments, log prefixes): bare only when
    it is ``[A-Za-z0-9_-]+``. Other arguments (addresses, ports, names) are quoted only when they must be.
    """
    if string:
        if arg and all(c in _SAFE for c in arg):
            return arg
    elif arg and not any(c.isspace() or c in "\"'\\" for c in arg):
        return arg
    # xtables_save_string() escapes ", ' and \ with a backslash
    return '"' + "".join("\\" + c if c in "\"'\\" else c for c in arg) + '"'
