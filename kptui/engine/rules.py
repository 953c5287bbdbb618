"""Decode one rule line (``-A CHAIN …``) into a :class:`RuleSpec`.

Options may come in any order (kube-proxy's restore input does not use iptables-save's canonical order): an
option belongs to the most recent ``-m`` module that knows it, else to the protocol match ``-p`` implies,
else to the target when it follows ``-j``. ``!`` negates the option after it (the old ``--opt ! value``
placement is accepted too). Unknown modules and targets keep all their options.
"""

from __future__ import annotations

from .errors import Diagnostic, ParseError
from .lexer import Token, tokenize
from .spec import HEADER, Match, Option, RuleSpec, Target

__all__ = ["HEADER_OPTIONS", "MODULE_OPTIONS", "STRING_OPTIONS", "decode_rule"]

# Header options: every spelling → canonical short form, and the canonical order iptables-save prints.
HEADER_OPTIONS: dict[str, str] = {
    "-s": "-s", "--source": "-s", "--src": "-s",
    "-d": "-d", "--destination": "-d", "--dst": "-d",
    "-i": "-i", "--in-interface": "-i",
    "-o": "-o", "--out-interface": "-o",
    "-p": "-p", "--protocol": "-p",
    "-f": "-f", "--fragment": "-f",
}
HEADER_ORDER = {"-s": 0, "-d": 1, "-i": 2, "-o": 3, "-p": 4, "-f": 5}

_PORT_OPTS = frozenset({"--sport", "--source-port", "--dport", "--destination-port"})
# Options of the modules kptui knows, used to decide which module an option belongs to when several are
# loaded (``-m comment -m tcp --dport 80``). A module missing here keeps whatever follows it.
MODULE_OPTIONS: dict[str, frozenset[str]] = {
    "tcp": _PORT_OPTS | {"--tcp-flags", "--syn", "--tcp-option"},
    "udp": _PORT_OPTS,
    "udplite": _PORT_OPTS,
    "sctp": _PORT_OPTS | {"--chunk-types"},
    "dccp": _PORT_OPTS | {"--dccp-types", "--dccp-option"},
    "icmp": frozenset({"--icmp-type"}),
    "icmp6": frozenset({"--icmpv6-type"}),
    "comment": frozenset({"--comment"}),
    "mark": frozenset({"--mark"}),
    "connmark": frozenset({"--mark"}),
    "multiport": frozenset({"--sports", "--dports", "--ports", "--source-ports", "--destination-ports"}),
    "addrtype": frozenset({"--src-type", "--dst-type", "--limit-iface-in", "--limit-iface-out"}),
    "conntrack": frozenset(
        {
            "--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst",
            "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport", "--ctstatus",
            "--ctexpire", "--ctdir",
        }
    ),
    "state": frozenset({"--state"}),
    "statistic": frozenset({"--mode", "--probability", "--every", "--packet"}),
    "recent": frozenset(
        {
            "--set", "--rcheck", "--update", "--remove", "--seconds", "--reap", "--hitcount", "--rttl",
            "--name", "--mask", "--rsource", "--rdest",
        }
    ),
    "iprange": frozenset({"--src-range", "--dst-range"}),
    "mac": frozenset({"--mac-source"}),
    "length": frozenset({"--length"}),
    "physdev": frozenset(
        {"--physdev-in", "--physdev-out", "--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged"}
    ),
    "set": frozenset(
        {
            "--match-set", "--return-nomatch", "--update-counters", "--update-subcounters",
            "--packets-eq", "--packets-lt", "--packets-gt", "--bytes-eq", "--bytes-lt", "--bytes-gt",
        }
    ),
    "nfacct": frozenset({"--nfacct-name"}),
    "limit": frozenset({"--limit", "--limit-burst"}),
    "pkttype": frozenset({"--pkt-type"}),
    "owner": frozenset({"--uid-owner", "--gid-owner", "--socket-exists", "--suppl-groups"}),
    "rpfilter": frozenset({"--loose", "--validmark", "--accept-local", "--invert"}),
}
# Free-text arguments: exactly one argument each, which may look like anything (even ``--foo``), and which
# iptables-save quotes unless it is [A-Za-z0-9_-]+.
STRING_OPTIONS = frozenset({"--comment", "--log-prefix", "--nflog-prefix", "--string", "--hex-string"})
# Options with a fixed number of arguments; all others take every following non-option token.
_ARITY = {"--tcp-flags": 2, "--match-set": 2, "--chunk-types": 2} | {o: 1 for o in STRING_OPTIONS}
_PROTO_MODULES = {"tcp": "tcp", "udp": "udp", "sctp": "sctp", "dccp": "dccp", "udplite": "udplite",
                  "icmp": "icmp", "icmpv6": "icmp6", "ipv6-icmp": "icmp6", "6": "tcp", "17": "udp",
                  "132": "sctp", "1": "icmp", "58": "icmp6"}  # fmt: skip


def _is_option(tok: Token) -> bool:
    t = tok.text
    if tok.quoted or len(t) < 2 or t[0] != "-":
        return False
    c = t[1]
    return c.isalpha() or (c == "-" and len(t) > 2 and t[2].isalpha())


class _Builder:
    __slots__ = ("implicit", "module", "options")

    def __init__(self, module: str, implicit: bool = False) -> None:
        self.module = module
        self.options: list[Option] = []
        self.implicit = implicit


def decode_rule(raw: str, *, lineno: int | None = None) -> RuleSpec:
    """Decode ``-A CHAIN …`` into matches and target. Raises :class:`ParseError` with the column."""
    tokens = tokenize(raw, lineno=lineno)
    return decode_tokens(raw, tokens, lineno=lineno, start=2)


def decode_tokens(raw: str, tokens: list[Token], *, lineno: int | None, start: int) -> RuleSpec:
    def fail(msg: str, tok: Token | None) -> ParseError:
        col = tok.column if tok else len(raw)
        length = len(tok.text) if tok else 1
        return ParseError(Diagnostic(msg, lineno, col, length, raw))

    header: list[Option] = []
    modules: list[_Builder] = []
    target: Target | None = None
    target_opts: list[Option] = []
    in_target = False  # options after -j belong to the target, until the next -m
    proto: str | None = None
    implicit: _Builder | None = None
    negate: Token | None = None
    n = len(tokens)
    i = start
    while i < n:
        tok = tokens[i]
        text = tok.text
        i += 1
        if text == "!" and not tok.quoted:
            if negate is not None:
                raise fail("'!' twice in a row", tok)
            negate = tok
            continue
        if not _is_option(tok):
            raise fail(f"unexpected argument '{text}' (no option before it)", tok)
        if text in ("-m", "--match"):
            if negate is not None:
                raise fail("'!' cannot negate -m; put it before the module's option", negate)
            if i >= n or _is_option(tokens[i]):
                raise fail("-m needs a module name", tok)
            modules.append(_Builder(tokens[i].text))
            in_target = False
            i += 1
            continue
        if text in ("-j", "--jump", "-g", "--goto"):
            if negate is not None:
                raise fail("'!' cannot negate a target", negate)
            if target is not None:
                raise fail("a rule has only one target", tok)
            if i >= n or _is_option(tokens[i]):
                raise fail(f"{text} needs a target name", tok)
            target = Target(tokens[i].text, (), goto=text in ("-g", "--goto"))
            in_target = True
            i += 1
            continue
        if text == "-c" or text == "--set-counters":  # ``-c PKTS BYTES`` (iptables -S -v)
            i += 2
            continue
        head = HEADER_OPTIONS.get(text)
        if head is not None:
            negated = negate is not None
            negate = None
            if head == "-f":
                header.append(Option("-f", (), negated))
                continue
            if i < n and tokens[i].text == "!" and not tokens[i].quoted and not negated:
                negated = True  # old placement: -s ! 10.0.0.0/8
                i += 1
            if i >= n or _is_option(tokens[i]):
                raise fail(f"option '{text}' needs an argument", tok)
            value = tokens[i].text
            i += 1
            if head == "-p":
                proto = value.lower()
            header.append(Option(head, (value,), negated))
            continue
        # A module's or the target's own option.
        owner: list[Option] | None = None
        if in_target:
            owner = target_opts
        else:
            for b in reversed(modules):
                known = MODULE_OPTIONS.get(b.module)
                if known is not None and text in known:
                    owner = b.options
                    break
            if owner is None and proto is not None and proto in _PROTO_MODULES:
                pm = _PROTO_MODULES[proto]
                if text in MODULE_OPTIONS[pm]:
                    if implicit is None:
                        implicit = _Builder(pm, implicit=True)
                        modules.append(implicit)
                    owner = implicit.options
            if owner is None:
                for b in reversed(modules):
                    if b.module not in MODULE_OPTIONS:
                        owner = b.options
                        break
            if owner is None:
                if modules:
                    owner = modules[-1].options  # kept; the trace engine reports it as unknown
                else:
                    raise fail(f"unknown option '{text}'", tok)
        negated = negate is not None
        negate = None
        args, i = _take_args(tokens, i, text)
        if args and args[0] == "!" and not negated:
            negated = True
            args = args[1:]
        owner.append(Option(text, tuple(args), negated))
    if negate is not None:
        raise fail("'!' at the end of the rule negates nothing", negate)
    if target is not None and target_opts:
        target = Target(target.name, tuple(target_opts), target.goto)
    header.sort(key=lambda o: HEADER_ORDER[o.name])
    matches = [Match(HEADER, (o,)) for o in header]
    matches.extend(Match(b.module, tuple(b.options), b.implicit) for b in modules)
    return RuleSpec(tuple(matches), target)


def _take_args(tokens: list[Token], i: int, name: str) -> tuple[list[str], int]:
    n = len(tokens)
    arity = _ARITY.get(name)
    if arity is not None:
        args: list[str] = []
        if i < n and tokens[i].text == "!" and not tokens[i].quoted:
            args.append("!")
            i += 1
        end = min(n, i + arity)
        args.extend(t.text for t in tokens[i:end])
        return args, end
    args = []
    while i < n:
        tok = tokens[i]
        if _is_option(tok) or (tok.text == "!" and not tok.quoted and args):
            break
        args.append(tok.text)
        i += 1
    return args, i
