"""Decode one rule line (``-A CHAIN …``) into a :class:`RuleSpec`: a thin front for :mod:`kptui.engine.xt`.

Options may come in any order (kube-proxy's restore input does not use iptables-save's canonical order): an
option belongs to the most recent ``-m`` module (or the target) that knows it, else to the protocol match
``-p`` implies, exactly as iptables-restore reads it (:mod:`kptui.engine.xt.decode`); every argument is
checked by the value type its unit declares. Unknown modules and targets keep all their options (the rule is
then not understood: :attr:`RuleSpec.problems`).
"""

from __future__ import annotations

from .lexer import tokenize
from .spec import RuleSpec
from .xt.decode import decode_tokens
from .xt.matches.header import OPTION_ORDER as HEADER_ORDER
from .xt.matches.header import SPELLINGS as HEADER_OPTIONS
from .xt.registry import MATCHES

__all__ = ["HEADER_OPTIONS", "HEADER_ORDER", "MODULE_OPTIONS", "STRING_OPTIONS", "decode_rule", "decode_tokens"]

# Options of the modules kptui knows (every spelling), by module name.
MODULE_OPTIONS: dict[str, frozenset[str]] = {
    name: frozenset(n for o in unit.options for n in o.names) for name, unit in MATCHES.items()
}
# Free-text arguments, which iptables-save quotes unless they are [A-Za-z0-9_-]+.
STRING_OPTIONS = frozenset({"--comment", "--log-prefix", "--nflog-prefix", "--string", "--hex-string"})


def decode_rule(raw: str, *, lineno: int | None = None, family: int | None = None) -> RuleSpec:
    """Decode ``-A CHAIN …`` into matches and target. Raises :class:`ParseError` with the column."""
    tokens = tokenize(raw, lineno=lineno)
    return decode_tokens(raw, tokens, lineno=lineno, start=2, family=family)
