"""The rule commands iptables-restore accepts besides ``-A``: ``-I CHAIN [N] rule`` (insert, at N or first),
``-D CHAIN N|rule`` (delete), ``-R CHAIN N rule`` (replace), ``-E OLD NEW`` (rename a chain and every jump to
it), ``-Z [CHAIN]`` (zero counters). Each rule is decoded and checked like an ``-A`` rule; a rule number
beyond the chain, or a rule to delete that is not there, is a warning (the nft backend accepts both)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ParseError
from .lexer import Token, tokenize
from .model import RuleSpec
from .rulelist import Row
from .xt.decode import decode_tokens

if TYPE_CHECKING:
    from .structure import Builder, _ChainB

__all__ = ["RESTORE_COMMANDS", "run_command"]

RESTORE_COMMANDS = frozenset({"-I", "-D", "-R", "-E", "-Z"})


def _family(b: Builder) -> int | None:
    return {"ipv4": 4, "ipv6": 6}.get(b.family or "")


def _decode(b: Builder, text: str, tokens: list[Token], start: int, lineno: int) -> RuleSpec:
    spec = decode_tokens(text, tokens, lineno=lineno, start=start, family=_family(b))
    b.rule_problems(spec, lineno, text, 0)
    return spec


def _number(b: Builder, tok: Token, lineno: int, text: str) -> int:
    if not tok.text.isdigit() or int(tok.text) < 1:
        raise b.error(f"invalid rule number '{tok.text}'", lineno, text, tok.column, len(tok.text))
    return int(tok.text)


def _row(lineno: int, chain: str, text: str, tokens: list[Token], start: int, spec: RuleSpec) -> Row:
    body = text[tokens[start].column:].rstrip() if start < len(tokens) else ""
    raw = f"-A {chain} {body}".rstrip()
    t = spec.target
    return (lineno, raw, None, None, t.name if t else None, bool(t and t.goto))


def run_command(b: Builder, chains: dict[str, _ChainB], lineno: int, text: str) -> None:
    tokens = tokenize(text, lineno=lineno)
    cmd = tokens[0].text
    if cmd == "-Z":
        names = [tokens[1].text] if len(tokens) > 1 else list(chains)
        for name in names:
            ch = chains.get(name)
            if ch is not None:
                ch.rows[:] = [(r[0], r[1], "0" if r[2] is not None else None, "0" if r[3] is not None else None,
                               r[4], r[5]) for r in ch.rows]  # fmt: skip
        return
    if len(tokens) < 2:
        raise b.error(f"{cmd} needs a chain name", lineno, text, tokens[0].column, len(cmd))
    name = tokens[1].text
    if cmd == "-E":
        _rename(b, chains, lineno, text, tokens)
        return
    has_number = len(tokens) > 2 and tokens[2].text.isdigit()
    if cmd == "-R" and not has_number:
        raise b.error("-R needs a rule number", lineno, text, tokens[1].column, len(name))
    number = _number(b, tokens[2], lineno, text) if has_number else None
    start = 3 if has_number else 2
    if cmd == "-D" and number is not None:
        if len(tokens) > 3:
            raise b.error("-D N takes no rule after the number", lineno, text, tokens[3].column, len(tokens[3].text))
        ch = chains.get(name)
        if ch is None or number > len(ch.rows):
            b.warn(f"-D: chain '{name}' has no rule {number}; nothing deleted", lineno, text)
        else:
            del ch.rows[number - 1]
        return
    spec = _decode(b, text, tokens, start, lineno)
    if cmd == "-D":
        _delete_matching(b, chains.get(name), spec, lineno, text)
        return
    ch = b.chain_for_rule(lineno, name, text)
    row = _row(lineno, name, text, tokens, start, spec)
    b.check_rule(lineno, name, row[1], row[4])
    at = (number or 1) - 1
    if cmd == "-R":
        if at >= len(ch.rows):
            b.warn(f"-R: chain '{name}' has no rule {number}; nothing replaced", lineno, text)
        else:
            ch.rows[at] = row
        return
    if at > len(ch.rows):
        b.warn(f"-I: chain '{name}' has {len(ch.rows)} rules, so rule {number} does not exist: appended (the nft "
               "backend does so; the legacy one refuses)", lineno, text)  # fmt: skip
        at = len(ch.rows)
    ch.rows.insert(at, row)


def _delete_matching(b: Builder, ch: _ChainB | None, spec: RuleSpec, lineno: int, text: str) -> None:
    from .rules import decode_rule

    for i, r in enumerate(ch.rows if ch is not None else ()):
        try:
            same = decode_rule(r[1], family=_family(b)) == spec
        except ParseError:
            same = False
        if same:
            del ch.rows[i]  # type: ignore[union-attr]
            return
    b.warn("-D: no rule like this one in the chain; nothing deleted", lineno, text)


def _rename(b: Builder, chains: dict[str, _ChainB], lineno: int, text: str, tokens: list[Token]) -> None:
    if len(tokens) != 3:
        raise b.error("-E needs the old and the new chain name", lineno, text)
    old, new = tokens[1].text, tokens[2].text
    b.check_chain_name(new, lineno, text)
    ch = chains.pop(old, None)
    if ch is None:
        b.warn(f"-E of chain '{old}', which does not exist", lineno, text)
        return
    ch.name = new
    chains[new] = ch
    for c in chains.values():
        for i, r in enumerate(c.rows):
            if r[4] == old:
                flag = "-g" if r[5] else "-j"
                raw = r[1].replace(f" {flag} {old}", f" {flag} {new}", 1)
                c.rows[i] = (r[0], raw, r[2], r[3], new, r[5])
        c.rows[:] = [(r[0], r[1].replace(f"-A {old} ", f"-A {new} ", 1) if c is ch else r[1], *r[2:])
                     for r in c.rows]  # fmt: skip

