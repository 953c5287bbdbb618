"""Split one rule line into tokens the way ``iptables-restore`` does.

iptables-save quotes an argument with double quotes when it holds anything but ``[A-Za-z0-9_-]`` and escapes
``"`` and ``\\`` inside with a backslash. iptables-restore also accepts single quotes. Whitespace separates
tokens; quoted parts may touch unquoted ones (``a"b c"`` is one token ``ab c``).

Each token remembers its column (for error carets) and whether any part of it was quoted (a quoted token is
always a value, never an option, even when it reads ``-j``).
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import Diagnostic, ParseError

__all__ = ["Token", "quote", "tokenize"]


class Token(NamedTuple):
    text: str
    column: int
    quoted: bool


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def tokenize(line: str, *, lineno: int | None = None) -> list[Token]:
    """Tokenize ``line``; raise :class:`ParseError` for an unterminated quote."""
    if '"' not in line and "'" not in line and "\\" not in line:
        return _split_plain(line)
    return _split_quoted(line, lineno)


def _split_plain(line: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    find = line.find
    for word in line.split():
        col = find(word, pos)
        tokens.append(Token(word, col, False))
        pos = col + len(word)
    return tokens


def _split_quoted(line: str, lineno: int | None) -> list[Token]:
    tokens: list[Token] = []
    n = len(line)
    i = 0
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        parts: list[str] = []
        quoted = False
        while i < n and not line[i].isspace():
            ch = line[i]
            if ch == '"' or ch == "'":
                quoted = True
                close = _closing_quote(line, i, ch)
                if close < 0:
                    raise ParseError(
                        Diagnostic(
                            "unterminated quote (truncated line?)",
                            lineno,
                            i,
                            n - i,
                            line,
                        )
                    )
                body = line[i + 1 : close]
                if "\\" in body:
                    body = _unescape(body)
                parts.append(body)
                i = close + 1
            elif ch == "\\" and i + 1 < n:
                parts.append(line[i + 1])
                i += 2
            else:
                j = i
                while j < n and not line[j].isspace() and line[j] not in "\"'\\":
                    j += 1
                if j == i:  # a lone trailing backslash
                    j = i + 1
                parts.append(line[i:j])
                i = j
        tokens.append(Token("".join(parts), start, quoted))
    return tokens


def _closing_quote(line: str, start: int, q: str) -> int:
    i = start + 1
    n = len(line)
    while i < n:
        pos = line.find(q, i)
        if pos < 0:
            return -1
        # count the backslashes right before the quote: an odd number escapes it
        k = pos - 1
        while k > start and line[k] == "\\":
            k -= 1
        if (pos - 1 - k) % 2 == 0:
            return pos
        i = pos + 1
    return -1


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == "\\" and i + 1 < n:
            out.append(body[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


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
