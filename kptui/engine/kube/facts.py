"""What kube-proxy's rules say, read cheaply: the handful of options the service index needs, per rule.

Decoding a rule fully (``Rule.spec``) costs about 20 µs; a 220k-rule dump has 50k endpoint chains. So
rules are read from the parser's compact rows (``line, raw, packets, bytes, target, goto``) with one
tokenising regex and a walk over the tokens, which is sound for what iptables-save and kube-proxy print:
double-quoted strings with backslash escapes, whitespace-separated tokens, ``!`` before the option it
negates (or after it, the old placement). Anything else (single quotes, backslashes, long option spellings)
is read through the full decoder instead, so an unusual rule costs time, never correctness.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from ..model import Chain, Rule

__all__ = ["Facts", "Row", "facts_of", "rows_of"]

Row = tuple[int, str, "str | None", "str | None", "str | None", bool]

_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]+')
_UNESCAPE = re.compile(r"\\(.)")
# Spellings the token walk does not handle: leave those rules to the decoder.
_UNUSUAL = re.compile(
    r"'|(?<!\S)(?:--(?:source|src|destination|dst|protocol|in-interface|jump|goto|match|set-counters"
    r"|destination-port|source-port)|-c)(?!\S)"
)
_QUOTED = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_ALIASES = {"--destination-port": "--dport"}
# Options whose value is free text (one token, possibly looking like an option).
_STRING = frozenset({"--comment", "--log-prefix", "--nflog-prefix", "--string", "--hex-string"})
# Options the index reads, each with one value (flags are listed in _FLAGS).
_VALUED = frozenset({
    "-s", "-d", "-p", "-i", "--dport", "--probability", "--seconds", "--dst-type", "--src-type",
    "--to-destination", "--nfacct-name", "--mode", "--name", "--reject-with",
})  # fmt: skip
_FLAGS = frozenset({"--rcheck", "--update", "--set"})
# Options that make a rule conditional beyond what the fields below record (anything but these).
_KNOWN = _VALUED | _FLAGS | _STRING | {"--reap", "--mask", "--rsource", "--rdest", "--random",
                                       "--random-fully", "--persistent", "--set-xmark", "--or-mark"}


class Facts(NamedTuple):
    """The options of one rule that matter to the service index (values as written; None when absent)."""

    src: str | None = None
    src_neg: bool = False
    dst: str | None = None
    dst_neg: bool = False
    proto: str | None = None
    in_iface: str | None = None
    in_neg: bool = False
    dport: str | None = None
    comment: str | None = None
    probability: str | None = None  # statistic --mode random --probability
    probability_neg: bool = False
    rcheck: bool = False  # recent --rcheck/--update: a session-affinity lookup
    seconds: str | None = None
    recent_set: bool = False
    dst_type: str | None = None
    src_type: str | None = None
    to_destination: str | None = None
    nfacct: str | None = None
    other: bool = False  # some other match (or negated option) the fields above do not describe


def rows_of(chain: Chain | None) -> Sequence[Row]:
    """The parser's compact rows of a chain (or rows made from its Rule objects, for hand-built rulesets)."""
    if chain is None:
        return ()
    rows = getattr(chain.rules, "rows", None)
    if rows is not None:
        return rows  # type: ignore[no-any-return]
    return [(r.line, r.raw, None, None, r.target_name, r.goto) for r in chain.rules]


def facts_of(chain: Chain, index: int, raw: str) -> Facts:
    """The facts of rule ``index`` (0-based) of ``chain`` whose raw text is ``raw``."""
    if "\\" in raw or _UNUSUAL.search(_QUOTED.sub('""', raw) if '"' in raw else raw):
        return _from_rule(chain.rules[index])
    return _walk(_TOKEN.findall(raw))


def _unquote(tok: str) -> str:
    if tok.startswith('"') and tok.endswith('"') and len(tok) >= 2:
        return _UNESCAPE.sub(r"\1", tok[1:-1])
    return tok


def _walk(tokens: list[str]) -> Facts:
    """Read the options after ``-A CHAIN`` (tokens[0:2]), skipping ``-m MODULE`` and ``-j TARGET`` names."""
    found: dict[str, tuple[str | None, bool]] = {}
    other = False
    negate = False
    i, n = 2, len(tokens)
    while i < n:
        tok = tokens[i]
        i += 1
        if tok == "!":
            negate = True
            continue
        if tok in ("-m", "-j", "-g"):
            i += 1  # the module or target name
            continue
        if tok in _STRING:
            if i < n:
                found.setdefault(tok, (_unquote(tokens[i]), negate))
            i += 1
            negate = False
            continue
        if tok in _FLAGS:
            found.setdefault(tok, (None, negate))
            negate = False
            continue
        if tok.startswith("-") and len(tok) > 1 and not tok[1].isdigit():
            value = None
            if i < n and (not tokens[i].startswith("-") or tokens[i][1:2].isdigit()):
                value = _unquote(tokens[i])
                i += 1
                if value == "!" and i < n:  # old placement: -s ! 10.0.0.0/8
                    negate, value = True, _unquote(tokens[i])
                    i += 1
            if tok in _VALUED:
                found.setdefault(tok, (value, negate))
            elif tok not in _KNOWN:
                other = True
            negate = False
            continue
        negate = False  # a further argument of the previous option (multi-token values)
    return _facts(found, other)


def _facts(found: dict[str, tuple[str | None, bool]], other: bool) -> Facts:
    def val(name: str) -> str | None:
        v = found.get(name)
        return v[0] if v else None

    def neg(name: str) -> bool:
        v = found.get(name)
        return bool(v and v[1])

    if neg("-p") or neg("--dport") or neg("--dst-type") or neg("--src-type") or neg("--rcheck"):
        other = True  # kube-proxy never negates these: a rule that does is not one of its own
    return Facts(
        src=val("-s"), src_neg=neg("-s"), dst=val("-d"), dst_neg=neg("-d"), proto=_lower(val("-p")),
        in_iface=val("-i"), in_neg=neg("-i"), dport=val("--dport"), comment=val("--comment"),
        probability=val("--probability") if val("--mode") in (None, "random") else None,
        probability_neg=neg("--probability"),
        rcheck="--rcheck" in found or "--update" in found, seconds=val("--seconds"),
        recent_set="--set" in found, dst_type=val("--dst-type"), src_type=val("--src-type"),
        to_destination=val("--to-destination"), nfacct=val("--nfacct-name"),
        other=other or (val("--mode") not in (None, "random")),
    )


def _lower(text: str | None) -> str | None:
    return text.lower() if text is not None else None


def _from_rule(rule: Rule) -> Facts:
    """Facts from the fully decoded rule (the slow, always-right path)."""
    found: dict[str, tuple[str | None, bool]] = {}
    other = False
    for match in rule.matches:
        for opt in match.options:
            name = _ALIASES.get(opt.name, opt.name)
            if name in _VALUED or opt.name in _STRING:
                found.setdefault(name, (opt.args[0] if opt.args else None, opt.negated))
            elif name in _FLAGS:
                found.setdefault(name, (None, opt.negated))
            elif name not in _KNOWN:
                other = True
    target = rule.target
    if target is not None:
        for opt in target.options:
            if opt.name in _VALUED:
                found.setdefault(opt.name, (opt.args[0] if opt.args else None, opt.negated))
    return _facts(found, other)
