"""Decode one rule's tokens the way iptables-restore reads them (getopt_long over the loaded extensions).

- An option belongs to the most recently loaded extension that knows it (``-m`` modules and the ``-j`` target
  in the order they appear, the newest first), else to the protocol match ``-p`` implies (loaded then); long
  options may be abbreviated to any unambiguous prefix, ``--opt=value`` is ``--opt value``.
- ``!`` negates the option after it (only where the option allows it); every argument is checked with the
  value type its unit declares (:mod:`.values`); an option given twice, a missing argument, an unknown option
  of a known module, a ``!`` where it cannot go: each is an error with its column, as iptables-restore refuses
  them. What a newer iptables (or the loading machine) may accept — an unknown module or target option, a host
  or service name, the old ``--opt ! value`` placement — is a *problem*: the rule loads, not understood
  (:attr:`RuleSpec.problems`), and the parser warns with its line.
"""

from __future__ import annotations

from ..errors import Diagnostic, ParseError
from ..lexer import Token
from ..spec import HEADER, Match, Option, RuleSpec, Target
from .matches.header import OPTION_ORDER, SPELLINGS
from .registry import HEADER_UNIT, TARGETS, blankable_options, implicit_module, match_unit
from .unitbase import MatchUnit, Opt, RuleFacts, TargetUnit
from .values import CHAIN, MAX_PARAM, PLACEHOLDER, Bad, VType, chain_name, parse_u32

__all__ = ["decode_tokens"]

# iptables' own long options (xshared.c): (short letter, has_arg); extensions add theirs after these.
_BASE_LONG = {
    "append": "A", "delete": "D", "check": "C", "insert": "I", "replace": "R", "list": "L", "list-rules": "S",
    "flush": "F", "zero": "Z", "new-chain": "N", "delete-chain": "X", "rename-chain": "E", "policy": "P",
    "source": "s", "destination": "d", "src": "s", "dst": "d", "protocol": "p", "in-interface": "i",
    "jump": "j", "table": "t", "match": "m", "numeric": "n", "out-interface": "o", "verbose": "v", "wait": "w",
    "wait-interval": "W", "exact": "x", "fragments": "f", "version": "V", "help": "h", "line-numbers": "0",
    "modprobe": "M", "set-counters": "c", "goto": "g", "ipv4": "4", "ipv6": "6",
}  # fmt: skip
_ARG_SHORT = frozenset("sdiopjgmc")  # rule options with an argument
_COMMANDS = frozenset("ADCIRLSFZNXEP")
_BLANKABLE: dict[int | None, dict[str, VType]] = {}


def _looks_like_option(tok: Token) -> bool:
    t = tok.text
    return len(t) > 1 and t[0] == "-" and (t[1].isalpha() or (t[1] == "-" and len(t) > 2))


class _Ext:
    """One loaded extension instance (a ``-m`` module, the implicit protocol match, or the target)."""

    __slots__ = ("implicit", "name", "options", "seen", "unit", "unknown")

    def __init__(self, name: str, unit: MatchUnit | TargetUnit | None, implicit: bool = False) -> None:
        self.name = name
        self.unit = unit
        self.implicit = implicit
        self.options: list[Option] = []
        self.seen: set[str] = set()
        self.unknown = False  # it keeps an option kptui does not know: its own checks are moot

    def known(self, name: str) -> Opt | None:
        return self.unit.option(name) if self.unit is not None else None

    def long_names(self) -> list[tuple[str, Opt]]:
        if self.unit is None or self.unit.options is None:
            return []
        return [(n[2:], o) for o in self.unit.options for n in o.names if n.startswith("--")]


def _vouched(family: int | None) -> dict[str, VType]:
    got = _BLANKABLE.get(family)
    if got is None:
        got = _BLANKABLE[family] = blankable_options(family)
    return got


def decode_tokens(raw: str, tokens: list[Token], *, lineno: int | None, start: int,
                  family: int | None = None) -> RuleSpec:  # fmt: skip
    """Decode ``tokens[start:]`` (the options after ``-A CHAIN``); raise :class:`ParseError` at the column
    of what iptables-restore would refuse."""
    return _Decoder(raw, tokens, lineno, family).run(start)


class _Decoder:
    def __init__(self, raw: str, tokens: list[Token], lineno: int | None, family: int | None) -> None:
        self.raw, self.tokens, self.lineno, self.family = raw, tokens, lineno, family
        self.header: dict[str, Option] = {}
        self.loaded: list[_Ext] = []  # load order
        self.target: _Ext | None = None
        self.target_goto = False
        self.proto: str | None = None
        self.proto_negated = False
        self.implicit_done = False
        self.problems: list[tuple[str, int, int, str]] = []

    # -- errors ------------------------------------------------------------------------------------------
    def fail(self, msg: str, tok: Token | None) -> ParseError:
        col = tok.column if tok else len(self.raw)
        length = len(tok.text) if tok else 1
        return ParseError(Diagnostic(msg, self.lineno, col, max(1, length), self.raw))

    def problem(self, msg: str, tok: Token | None, scope: str = "rule") -> None:
        """``scope`` "match": the match's compiled checks say so themselves (an unknown module or option, a
        value kptui cannot read); "rule": only the rule as a whole can (kptui.engine.xt.compile)."""
        col = tok.column if tok else len(self.raw)
        self.problems.append((msg, col, max(1, len(tok.text) if tok else 1), scope))

    def bad(self, b: Bad, tok: Token | None, scope: str = "rule") -> None:
        if b.fatal:
            raise self.fail(b.message, tok)
        self.problem(b.message, tok, scope)

    # -- the walk ----------------------------------------------------------------------------------------
    def run(self, start: int) -> RuleSpec:
        tokens = self.tokens
        n = len(tokens)
        negate: Token | None = None
        i = start
        for tok in tokens[start:]:
            if len(tok.text) > MAX_PARAM:
                self.problem(f"an argument of {len(tok.text)} characters: iptables-restore takes at most "
                             f"{MAX_PARAM} (\"Parameter too long!\")", tok)  # fmt: skip
        while i < n:
            tok = tokens[i]
            text = tok.text
            i += 1
            if text == "!":
                if negate is not None:
                    raise self.fail("'!' twice in a row (multiple consecutive ! not allowed)", tok)
                negate = tok
                continue
            if text == "--":  # getopt's end of options: nothing may follow
                if i < n:
                    raise self.fail("unknown arguments after '--'", tokens[i])
                break
            if len(text) < 2 or text[0] != "-" or (text[1] != "-" and not text[1].isalnum()):
                raise self.fail(f"unexpected argument '{text}' (no option before it)", tok)
            if text[1] == "-":
                i = self.long_option(tok, i, negate)
            else:
                i = self.short_option(tok, i, negate)
            negate = None
        if negate is not None:
            raise self.fail("'!' at the end of the rule negates nothing", negate)
        return self.finish()

    def short_option(self, tok: Token, i: int, negate: Token | None) -> int:
        text = tok.text
        letter = text[1]
        attached = text[2:] or None
        if attached is not None and letter not in _ARG_SHORT:
            raise self.fail(f"unknown option '{text}'", tok)
        return self.base(letter, text, tok, i, negate, attached)

    def long_option(self, tok: Token, i: int, negate: Token | None) -> int:
        body, eq, value = tok.text[2:].partition("=")
        attached = value if eq else None
        # exact: iptables' own options, then the extensions (newest first)
        if body in _BASE_LONG:
            return self.base(_BASE_LONG[body], "--" + body, tok, i, negate, attached)
        found: tuple[_Ext, Opt, str] | str | None = self.exact(body)
        if found is None:
            found = self.prefix(body, tok)
        if found is None and self.load_implicit():
            found = self.exact(body) or self.prefix(body, tok)
        if found is None:
            if self.fallback_unknown(tok, i):
                return self.take_unknown(tok, i, negate)
            raise self.fail(f"unknown option '{tok.text}'", tok)
        if isinstance(found, str):
            return self.base(found, "--" + body, tok, i, negate, attached)
        ext, opt, spelled = found
        return self.ext_option(ext, opt, spelled, tok, i, negate, attached)

    def exact(self, body: str) -> tuple[_Ext, Opt, str] | None:
        for ext in reversed(self.loaded):
            opt = ext.known("--" + body)
            if opt is not None:
                return ext, opt, "--" + body
        return None

    def prefix(self, body: str, tok: Token) -> tuple[_Ext, Opt, str] | str | None:
        """getopt_long's abbreviations: the one option ``body`` starts (aliases of one option count once)."""
        if not body:
            return None
        hits: list[tuple[object, tuple[_Ext, Opt, str] | str]] = []
        for name, letter in _BASE_LONG.items():
            if name.startswith(body):
                hits.append((letter, letter))
        for ext in reversed(self.loaded):
            for name, opt in ext.long_names():
                if name.startswith(body):
                    hits.append(((id(ext), id(opt)), (ext, opt, "--" + name)))
        kinds = {k for k, _ in hits}
        if len(kinds) == 1:
            return hits[0][1]
        return None

    def load_implicit(self) -> bool:
        """iptables' ``load_proto``: once, the match named by ``-p`` (if there is one)."""
        if self.implicit_done or self.proto is None or self.proto_negated:
            return False
        self.implicit_done = True
        unit = implicit_module(self.proto, self.family)
        if unit is None:
            return False
        self.loaded.append(_Ext(unit.name, unit, implicit=True))
        return True

    def fallback_unknown(self, tok: Token, i: int) -> bool:
        """An option no loaded extension knows, while one is loaded: kept by the newest one (as a module or
        target kptui does not know keeps all its options), the rule not understood (a newer iptables may know
        the option). Without any extension loaded it is an error."""
        return bool(self.loaded)

    def take_unknown(self, tok: Token, i: int, negate: Token | None) -> int:
        unknown = [e for e in self.loaded if e.unit is None or e.unit.options is None]
        ext = unknown[-1] if unknown else self.loaded[-1]
        args: list[str] = []
        while i < len(self.tokens):
            t = self.tokens[i]
            if t.text == "!" or (t.text.startswith("-") and len(t.text) > 1 and not t.quoted):
                break
            args.append(t.text)
            i += 1
        ext.options.append(Option(tok.text, tuple(args), negate is not None))
        ext.unknown = True
        if ext.unit is None and ext is self.target:
            self.problem(f"'{ext.name}' is not a target kptui knows (a chain takes no options): '{tok.text}' "
                         "not understood", tok)  # fmt: skip
        elif ext.unit is not None and ext.unit.options is None:
            self.problem(f"kptui does not know the options of {ext.name}: '{tok.text}' not understood", tok)
        elif ext.unit is not None:
            self.problem(f"{ext.name}: unknown option '{tok.text}' (iptables-restore here refuses it; a newer "
                         "iptables may know it): not understood", tok, "rule" if ext is self.target else "match")
        return i

    # -- iptables' own options ------------------------------------------------------------------------------
    def base(self, letter: str, spelled: str, tok: Token, i: int, negate: Token | None, attached: str | None) -> int:
        if letter in ("s", "d", "i", "o", "p", "f"):
            return self.header_option(letter, spelled, tok, i, negate, attached)
        if negate is not None and letter in "jgmc":
            what = {"m": "'!' cannot negate -m; put it before the module's option", "j": "'!' cannot negate a target",
                    "g": "'!' cannot negate a target", "c": "'!' cannot negate -c"}[letter]  # fmt: skip
            raise self.fail(what, negate)
        if letter in "jgm":
            if attached is None and (i >= len(self.tokens) or _looks_like_option(self.tokens[i])):
                raise self.fail(f"{tok.text} needs {'a module' if letter == 'm' else 'a target'} name", tok)
            name, i = self.value(tok, i, attached, spelled)
            if letter == "m":
                self.load_match(name, self.tokens[i - 1] if attached is None else tok)
            else:
                self.load_target(name, letter == "g", tok, self.tokens[i - 1] if attached is None else tok)
            return i
        if letter == "c":
            pk, i = self.value(tok, i, attached, spelled)
            if i >= len(self.tokens):
                raise self.fail("-c needs two arguments: packets and bytes", tok)
            by = self.tokens[i].text
            if parse_u32(pk, 0, (1 << 64) - 1) is None or parse_u32(by, 0, (1 << 64) - 1) is None:
                raise self.fail("-c packet and byte counters must be numbers", tok)
            return i + 1
        if letter == "v":
            return i  # verbose: prints the rule, changes nothing
        if letter in "46":
            mine = {4: "4", 6: "6"}.get(self.family or 0)
            if mine is not None and letter != mine:
                raise self.fail(f"'{tok.text}': this is an IPv{self.family} dump", tok)
            return i
        if letter in _COMMANDS:
            raise self.fail(f"'{tok.text}': a second command in one rule", tok)
        if letter == "t":
            raise self.fail("the -t option cannot be used in iptables-restore input (the table is the '*table' line)",
                            tok)  # fmt: skip
        raise self.fail(f"unknown option '{tok.text}'", tok)

    def value(self, tok: Token, i: int, attached: str | None, spelled: str) -> tuple[str, int]:
        if attached is not None:
            return attached, i
        if i >= len(self.tokens):
            raise self.fail(f"option '{spelled}' needs an argument", tok)
        return self.tokens[i].text, i + 1

    def header_option(self, letter: str, spelled: str, tok: Token, i: int, negate: Token | None,
                      attached: str | None) -> int:  # fmt: skip
        short = "-" + letter
        if short in self.header:
            raise self.fail(f"multiple {short} flags not allowed", tok)
        negated = negate is not None
        if letter == "f":
            if attached is not None:
                raise self.fail(f"option '{tok.text}' takes no argument", tok)
            self.header[short] = Option("-f", (), negated)
            return i
        opt = HEADER_UNIT.option(short)
        assert opt is not None
        bang = attached is None and i + 1 < len(self.tokens) and self.tokens[i].text == "!"
        if bang and opt.args[0].check("!", self.family) is None:
            bang = False  # '!' is a value this option takes (an interface named '!'): iptables reads it so
        if bang:
            self.problem(f"'{spelled} ! VALUE' (the old placement of '!'): iptables 1.8 reads '!' as the "
                         f"value and refuses the rule; write '! {spelled} VALUE'", self.tokens[i])  # fmt: skip
            if negated:
                raise self.fail("'!' twice for one option", self.tokens[i])
            negated = True
            i += 1
        value, i = self.value(tok, i, attached, spelled)
        vtok = self.tokens[i - 1] if attached is None else tok
        self.check_arg(opt.args[0], value, spelled, vtok, tok)
        if letter == "p":
            self.proto = value.lower()
            self.proto_negated = negated
            if negated and self.proto in ("all", "0"):
                raise self.fail("! -p all: the rule would never match a protocol", tok)
        self.header[short] = Option(SPELLINGS.get(spelled, short), (value,), negated)
        return i

    def check_arg(self, vtype: VType, value: str, spelled: str, vtok: Token, otok: Token,
                  scope: str = "match") -> None:  # fmt: skip
        if value == PLACEHOLDER:  # a rule shape's blanked value (the parser checks shapes, not rules)
            if _vouched(self.family).get(otok.text) is not vtype or vtok.column <= otok.column or \
                    self.raw[otok.column + len(otok.text):vtok.column].strip(" \t"):  # fmt: skip
                raise self.fail("a blanked value the shape cannot vouch for", vtok)
            return
        got = vtype.check(value, self.family)
        if got is not None:
            self.bad(got._replace(message=f"{spelled}: {got.message}") if not got.message.startswith(
                spelled) else got, vtok, scope)  # fmt: skip

    # -- extensions --------------------------------------------------------------------------------------
    def load_match(self, name: str, ntok: Token) -> None:
        unit = match_unit(name, self.family)
        if unit is None:
            self.problem(f"unknown match module '{name}' (iptables-restore here would refuse it; a newer "
                         f"iptables may know it): not understood", ntok, "match")  # fmt: skip
        self.loaded.append(_Ext(name, unit))

    def load_target(self, name: str, goto: bool, tok: Token, ntok: Token) -> None:
        if self.target is not None:
            raise self.fail("a rule has only one target (multiple -j flags not allowed)", tok)
        if name != PLACEHOLDER:
            bad = chain_name(name, self.family)
            if bad is not None:
                raise self.fail(bad.message, ntok)
        elif ntok.column <= tok.column or _vouched(self.family).get(tok.text) is not CHAIN:
            raise self.fail("a blanked value the shape cannot vouch for", ntok)
        unit = None if goto else TARGETS.get(name)
        ext = _Ext(name, unit)
        self.target, self.target_goto = ext, goto
        self.loaded.append(ext)

    def ext_option(self, ext: _Ext, opt: Opt, spelled: str, tok: Token, i: int, negate: Token | None,
                   attached: str | None) -> int:  # fmt: skip
        if negate is not None and not opt.invert:
            raise self.fail(f"{ext.name}: option '{spelled}' cannot be inverted", negate)
        if opt.name in ext.seen and not opt.repeat:
            raise self.fail(f"{ext.name}: option '{opt.name}' can only be used once", tok)
        ext.seen.add(opt.name)
        negated = negate is not None
        args: list[str] = []
        if opt.args:
            if attached is None and i + 1 < len(self.tokens) and self.tokens[i].text == "!" and not negated \
                    and opt.args[0].check("!", self.family) is not None:  # fmt: skip
                self.problem(f"'{spelled} ! VALUE' (the old placement of '!'): iptables 1.8 reads '!' as the "
                             f"value and refuses the rule; write '! {spelled} VALUE'", self.tokens[i])  # fmt: skip
                negated = True
                i += 1
            scope = "rule" if ext is self.target else "match"
            first, i = self.value(tok, i, attached, spelled)
            args.append(first)
            self.check_arg(opt.args[0], first, spelled, self.tokens[i - 1] if attached is None else tok, tok, scope)
            for vtype in opt.args[1:]:
                nxt = self.tokens[i] if i < len(self.tokens) else None
                if nxt is None or nxt.text.startswith("-") or nxt.text.startswith("!"):
                    raise self.fail(f"{spelled} requires {len(opt.args)} arguments", tok)
                args.append(nxt.text)
                self.check_arg(vtype, nxt.text, spelled + " …", nxt, tok, scope)
                i += 1
        elif attached is not None:
            raise self.fail(f"option '{spelled}' takes no argument", tok)
        ext.options.append(Option(spelled, tuple(args), negated))
        return i

    # -- the result ---------------------------------------------------------------------------------------
    def finish(self) -> RuleSpec:
        facts = RuleFacts(self.proto, self.proto_negated, self.family)
        matches = [Match(HEADER, (o,)) for o in sorted(self.header.values(), key=lambda o: OPTION_ORDER[o.name])]
        for ext in self.loaded:
            if ext is self.target:
                continue
            m = Match(ext.name, tuple(ext.options), ext.implicit)
            unit = ext.unit
            if isinstance(unit, MatchUnit) and not ext.unknown:
                self.mandatory(unit.options, ext, unit.name)
                if unit.validate is not None and (bad := unit.validate(m, facts)) is not None:
                    self.bad(bad, None)
            matches.append(m)
        target = None
        if self.target is not None:
            t = self.target
            target = Target(t.name, tuple(t.options), self.target_goto)
            unit = t.unit
            if isinstance(unit, TargetUnit) and not t.unknown:
                if unit.options is not None:
                    self.mandatory(unit.options, t, unit.name)
                if unit.validate is not None and (bad := unit.validate(target, facts)) is not None:
                    self.bad(bad, None)
        return RuleSpec(tuple(matches), target, tuple(self.problems))

    def mandatory(self, options: tuple[Opt, ...], ext: _Ext, name: str) -> None:
        for o in options:
            if o.mandatory and o.name not in ext.seen:
                raise self.fail(f"{name}: option '{o.name}' must be specified", None)
