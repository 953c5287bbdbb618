"""Print a decoded rule back as an iptables-save line (canonical order, iptables-save quoting)."""

from __future__ import annotations

from .lexer import quote
from .rules import STRING_OPTIONS
from .spec import HEADER, Counters, Option, RuleSpec

__all__ = ["render_rule", "render_spec"]


def _option(opt: Option) -> str:
    parts = ["!", opt.name] if opt.negated else [opt.name]
    string = opt.name in STRING_OPTIONS
    parts.extend(quote(a, string=string) for a in opt.args)
    return " ".join(parts)


def render_spec(spec: RuleSpec) -> str:
    """Matches and target as iptables-save prints them: ``-s … -m mod --opt … -j TARGET …``."""
    parts: list[str] = []
    for m in spec.matches:
        if m.module != HEADER:
            parts.append(f"-m {quote(m.module)}")
        parts.extend(_option(o) for o in m.options)
    t = spec.target
    if t is not None:
        parts.append(f"{'-g' if t.goto else '-j'} {quote(t.name)}")
        parts.extend(_option(o) for o in t.options)
    return " ".join(parts)


def render_rule(chain: str, spec: RuleSpec, counters: Counters | None = None) -> str:
    """A full ``[pkts:bytes] -A CHAIN …`` line (the counter prefix only when ``counters`` is given)."""
    body = render_spec(spec)
    line = f"-A {quote(chain)} {body}" if body else f"-A {quote(chain)}"
    return f"{counters} {line}" if counters is not None else line
