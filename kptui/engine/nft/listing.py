"""``nft list ruleset`` text (any of ``-a``, ``-n``, ``-nn``, ``-s``) read into an :class:`NftRuleset`.

The listing is line oriented: ``table F N {`` … ``}`` holds ``chain``/``set``/``map``/object blocks, a chain
block its header (``type filter hook input priority filter; policy accept;``), comment and one rule per line, a
set block its declarations and an ``elements = { … }`` list that may span lines. ``# handle N`` ends a line
under ``-a``. Comment lines are skipped, except nft's ``# Warning: table ip filter is managed by iptables-nft,
do not touch!`` (on standard error, but pasted listings carry it), which marks that table.

Damage is survived and reported where it is: a cut-off listing keeps what it has (a warning at the last line),
a block left open is closed by the next ``chain``/``set``/``table`` line, a stray ``}`` is ignored, a rule or
declaration kptui cannot read is kept verbatim (rules: an undecidable statement) — each with a located warning.
Only text with no table at all is refused (:class:`ParseError`).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import Diagnostic, ParseError
from .build import IPTABLES_NFT_NOTE, canonical_flags, element, has_xt
from .lexer import Cursor, Token, tokenize
from .model import FAMILIES, NftChain, NftElement, NftObject, NftRule, NftRuleset, NftSet, NftTable
from .rule_text import RuleParser, parse_rule, rule_counter
from .symbols import parse_time, resolve_priority

__all__ = ["parse_listing"]

_HANDLE = re.compile(r"\s+# handle (\d+)\s*$")
_WARNING = re.compile(r"#\s*Warning: table (\S+) (\S+) is managed by iptables-nft[^\n]*")
_HEADER = re.compile(r"type (\S+) hook (\S+)(?: device (\"[^\"]*\"|\S+)| devices = \{([^}]*)\})? priority "
                     r"([^;]+);(?:\s*policy (\S+);)?")  # fmt: skip
_OBJECTS = ("counter", "quota", "limit", "flowtable", "secmark", "synproxy", "tunnel")
_CT_OBJECTS = ("helper", "timeout", "expectation")


class _MultiCursor(Cursor):
    """A cursor over tokens from several lines (an ``elements = { … }`` block): errors point at the token's line."""

    def __init__(self, tokens: list[Token], where: list[tuple[int, str]]) -> None:
        super().__init__(tokens, where[0][1] if where else "", where[0][0] if where else None)
        self.where = where

    def error(self, message: str, at: Token | None = None) -> ParseError:
        i = self.pos if at is None else self.tokens.index(at)
        i = min(i, len(self.where) - 1)
        if i >= 0:
            self.lineno, self.line = self.where[i]
        return super().error(message, at)


class _Chain:
    def __init__(self, name: str, handle: int | None, line: int) -> None:
        self.name, self.handle, self.line = name, handle, line
        self.type: str | None = None
        self.hook: str | None = None
        self.priority: int | None = None
        self.priority_text: str | None = None
        self.policy: str | None = None
        self.devices: tuple[str, ...] = ()
        self.comment: str | None = None
        self.flags: tuple[str, ...] = ()
        self.rules: list[NftRule] = []


class _Set:
    def __init__(self, kind: str, name: str, handle: int | None, line: int) -> None:
        self.kind, self.name, self.handle, self.line = kind, name, handle, line
        self.key_type: tuple[str, ...] = ()
        self.data_type: tuple[str, ...] | None = None
        self.typeof: str | None = None
        self.opts: dict[str, Any] = {}
        self.flags: tuple[str, ...] = ()
        self.stmts: list[str] = []
        self.elements: list[NftElement] = []


class _Table:
    def __init__(self, family: str, name: str, handle: int | None, line: int) -> None:
        self.family, self.name, self.handle, self.line = family, name, handle, line
        self.flags: tuple[str, ...] = ()
        self.comment: str | None = None
        self.chains: dict[str, _Chain] = {}
        self.sets: dict[str, _Set] = {}
        self.objects: list[NftObject] = []


class _Reader:
    def __init__(self, text: str, source: str | None, warnings: list[Diagnostic]) -> None:
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.source = source
        self.warnings = warnings
        self.tables: list[NftTable] = []
        self.table: _Table | None = None
        self.block: _Chain | _Set | NftObject | None = None
        self.managed: set[tuple[str, str]] = set()
        self.first_other: tuple[int, str] | None = None

    def warn(self, message: str, lineno: int | None, line: str = "", col: int = 0, length: int = 1) -> None:
        self.warnings.append(Diagnostic(message, lineno, col, length, line, severity="warning"))

    def add_warning(self, d: Diagnostic) -> None:
        self.warnings.append(d)

    # -- the line loop --------------------------------------------------------------------------------
    def run(self) -> list[NftTable]:
        lines = self.lines
        i = 0
        n = len(lines)
        while i < n:
            line = lines[i]
            lineno = i + 1
            i += 1
            if "# Warning: table" in line and not line.lstrip().startswith("#"):
                # ``nft list ruleset > FILE 2>&1``: nft's warning (stderr, unbuffered) lands wherever the
                # buffered listing stood, inside a line; take it out and join the line's two halves
                m = _WARNING.search(line)
                if m:
                    self.managed.add((m.group(1), m.group(2)))
                    line = line[: m.start()] + (lines[i] if i < n else "")
                    i += 1 if i < n else 0
            s = line.strip()
            if not s:
                continue
            if s[0] == "#":
                m = _WARNING.match(s)
                if m:
                    self.managed.add((m.group(1), m.group(2)))
                continue
            handle = None
            end = len(line)
            if "# handle " in line:
                hm = _HANDLE.search(line)
                if hm:
                    handle = int(hm.group(1))
                    end = hm.start()
                    s = line[:end].strip()
            block = self.block
            if type(block) is _Chain:
                if s == "}":
                    self.block = None
                elif not self._opens_block(s):
                    self.chain_line(block, line, lineno, s, end, handle)
                    continue
                else:
                    self.warn(f"chain '{block.name}' is not closed before this line (unbalanced braces)", lineno,
                              line)  # fmt: skip
                    self.block = None
                    self.top(line, lineno, s, handle, end)
                continue
            if type(block) is _Set:
                if s == "}":
                    self.block = None
                elif self._opens_block(s):
                    self.warn(f"{block.kind} '{block.name}' is not closed before this line (unbalanced braces)",
                              lineno, line)  # fmt: skip
                    self.block = None
                    self.top(line, lineno, s, handle, end)
                else:
                    i = self.set_line(block, line, lineno, s, i)
                continue
            if block is not None:  # an object: its body is not modelled
                if s == "}" or s.endswith("}") and s.count("{") < s.count("}"):
                    self.block = None
                continue
            self.top(line, lineno, s, handle, end)
        self.finish_eof()
        return self.tables

    def _opens_block(self, s: str) -> bool:
        if not s.endswith("{"):
            return False
        first = s.split(None, 1)[0]
        return first in ("table", "chain", "set", "map", *_OBJECTS) or s.startswith("ct ")

    def top(self, line: str, lineno: int, s: str, handle: int | None, end: int) -> None:
        """A line at table level or outside any table."""
        words = s.split()
        if words[0] == "table" and s.endswith("{"):
            if self.table is not None:
                self.warn(f"table {self.table.family} {self.table.name} is not closed before this line "
                          "(unbalanced braces)", lineno, line)  # fmt: skip
                self.close_table()
            toks = [t for t in tokenize(line, 0, end, lineno=lineno) if t.text != "{"]
            if len(toks) == 3:
                family, name = toks[1].text, toks[2].text
            elif len(toks) == 2:  # ``table NAME {``: the ip family
                family, name = "ip", toks[1].text
            else:
                self.warn("a table line needs a family and a name", lineno, line)
                family, name = "ip", "?"
            if family not in FAMILIES:
                self.warn(f"unknown table family '{family}'", lineno, line, toks[1].col, len(family))
            self.table = _Table(family, name, handle, lineno)
            return
        t = self.table
        if t is None:
            if s == "}":
                self.warn("a '}' that closes nothing (unbalanced braces)", lineno, line, line.find("}"))
            elif self.first_other is None:
                self.first_other = (lineno, line)
                if self.tables:
                    self.warn("not part of an nft listing (expected 'table FAMILY NAME {')", lineno, line)
            elif self.tables:
                self.warn("not part of an nft listing (expected 'table FAMILY NAME {')", lineno, line)
            return
        if s == "}":
            self.close_table()
            return
        if s.endswith("{"):
            words = s[:-1].split() if '"' not in s else None
            if words is not None and len(words) == 2 and words[0] in ("chain", "set", "map"):
                kind, name = words  # the common case, without tokenizing
                toks = [Token(kind, 0), Token(name, 0)]
            else:
                toks = [tk for tk in tokenize(line, 0, end, lineno=lineno) if tk.text != "{"]
            kind = toks[0].text if toks else "{"
            if kind in ("chain", "set", "map") and len(toks) == 2:
                name = toks[1].text
                if kind == "chain":
                    if name in t.chains:
                        self.warn(f"chain '{name}' is listed twice; the later one is kept", lineno, line)
                    self.block = t.chains[name] = _Chain(name, handle, lineno)
                else:
                    self.block = t.sets[name] = _Set(kind, name, handle, lineno)
                return
            if kind in _OBJECTS and len(toks) >= 2:
                self.block = NftObject(kind, toks[-1].text, handle, lineno)
                t.objects.append(self.block)
                return
            if kind == "ct" and len(toks) >= 3 and toks[1].text in _CT_OBJECTS:
                self.block = NftObject(f"ct {toks[1].text}", toks[2].text, handle, lineno)
                t.objects.append(self.block)
                return
        if s.startswith("comment ") and s.endswith('"'):
            t.comment = s[len("comment "):].strip().strip('"')
            return
        if s.startswith("flags "):
            t.flags = tuple(f.strip() for f in s[6:].split(","))
            return
        self.warn("not a chain, set or map of the table: skipped", lineno, line)

    def close_table(self) -> None:
        t = self.table
        if t is None:
            return
        self.table = None
        self.block = None
        chains = {}
        for c in t.chains.values():
            chains[c.name] = NftChain(
                c.name, t.family, t.name, tuple(c.rules), c.type, c.hook, c.priority,
                c.policy if c.policy is not None or c.hook is None else "accept", c.devices, c.comment, c.flags,
                c.handle, c.line, c.priority_text,
            )  # fmt: skip
        sets = {}
        for st in t.sets.values():
            o = st.opts
            sets[st.name] = NftSet(
                st.name, t.family, t.name, st.kind, st.key_type, st.data_type, canonical_flags(st.flags),
                o.get("timeout"), o.get("gc-interval"), o.get("size"), o.get("policy"), o.get("comment"),
                tuple(st.elements), tuple(st.stmts), st.handle, st.line, st.typeof, bool(o.get("auto-merge")),
            )  # fmt: skip
        rules = [r for c in chains.values() for r in c.rules]
        managed = (t.family, t.name) in self.managed or has_xt(rules)
        if managed:
            self.warn(f"table {t.family} {t.name} {IPTABLES_NFT_NOTE}", t.line, self.lines[t.line - 1])
        table = NftTable(t.family, t.name, chains, sets, tuple(t.objects), t.flags, t.comment, managed, t.handle,
                         t.line)  # fmt: skip
        for i, old in enumerate(self.tables):
            if (old.family, old.name) == (t.family, t.name):
                self.warn(f"table {t.family} {t.name} is listed twice; the later one is kept", t.line,
                          self.lines[t.line - 1])  # fmt: skip
                del self.tables[i]
                break
        self.tables.append(table)

    def finish_eof(self) -> None:
        last = len(self.lines)
        text = self.lines[-1] if self.lines else ""
        if self.table is not None:
            what = ""
            if isinstance(self.block, _Chain):
                what = f"chain '{self.block.name}' of "
            elif isinstance(self.block, _Set):
                what = f"{self.block.kind} '{self.block.name}' of "
            self.warn(f"the listing ends inside {what}table {self.table.family} {self.table.name} (cut off?); "
                      "what was read is kept", last, text, len(text))  # fmt: skip
            self.close_table()
        if not self.tables and self.first_other is not None:
            lineno, line = self.first_other
            col = len(line) - len(line.lstrip())
            raise ParseError(Diagnostic("not an nft listing: expected 'table FAMILY NAME {'", lineno, col,
                                        max(1, len(line.strip())), line))  # fmt: skip

    # -- chains ---------------------------------------------------------------------------------------
    def chain_line(self, c: _Chain, line: str, lineno: int, s: str, end: int, handle: int | None) -> None:
        t = self.table
        assert t is not None
        if s.startswith("type ") and not c.rules:
            m = _HEADER.match(s)
            if m:
                c.type, c.hook = m.group(1), m.group(2)
                if m.group(3):
                    c.devices = (m.group(3).strip('"'),)
                elif m.group(4) is not None:
                    c.devices = tuple(d.strip().strip('"') for d in m.group(4).split(",") if d.strip())
                c.priority_text = m.group(5).strip()
                c.priority = resolve_priority(c.priority_text, t.family)
                if c.priority is None:
                    col = line.find(c.priority_text)
                    self.warn(f"unknown priority '{c.priority_text}'", lineno, line, col, len(c.priority_text))
                c.policy = m.group(6)
                return
            self.warn("a base chain header kptui cannot read", lineno, line, len(line) - len(line.lstrip()))
            return
        if s.startswith("comment ") and not c.rules and s.endswith('"') and s.count('"') == 2:
            c.comment = s[len("comment "):].strip()[1:-1]
            return
        start = len(line) - len(line.lstrip())
        try:
            stmts, comment = parse_rule(line, start, end, lineno, t.family, self.add_warning)
        except ParseError as exc:
            d = exc.diagnostic
            self.warnings.append(Diagnostic(f"{d.message}: rule skipped", lineno, d.column, d.length, line,
                                            severity="warning"))  # fmt: skip
            return
        c.rules.append(NftRule(t.family, t.name, c.name, len(c.rules) + 1, stmts, comment, rule_counter(stmts),
                               handle, lineno, s))  # fmt: skip

    # -- sets -----------------------------------------------------------------------------------------
    def set_line(self, st: _Set, line: str, lineno: int, s: str, i: int) -> int:
        """One declaration of a set block; returns the index of the next line (an element list may span
        several)."""
        t = self.table
        assert t is not None
        word, _, rest = s.partition(" ")
        if word == "type":
            key, _, data = rest.partition(" : ")
            st.key_type = tuple(p.strip() for p in key.split(" . "))
            if data:
                st.data_type = tuple(p.strip() for p in data.split(" . "))
        elif word == "typeof":
            self.typeof(st, line, lineno, rest)
        elif word == "flags":
            st.flags = tuple(f.strip() for f in rest.split(","))
        elif word in ("timeout", "gc-interval"):
            v = parse_time(rest.strip())
            if v is None:
                self.warn(f"'{rest.strip()}' is not a time", lineno, line, line.find(rest), len(rest))
            st.opts[word] = v
        elif word == "size" and rest.strip().isdigit():
            st.opts["size"] = int(rest)
        elif word == "policy":
            st.opts["policy"] = rest.strip()
        elif word == "auto-merge":
            st.opts["auto-merge"] = True
        elif word == "comment" and s.endswith('"'):
            st.opts["comment"] = rest.strip()[1:-1]
        elif word == "counter" and not rest:
            st.stmts.append("counter")
        elif s.startswith("elements = {"):
            return self.elements(st, line, lineno, i)
        else:
            self.warn(f"unknown {st.kind} declaration '{word}': skipped", lineno, line,
                      len(line) - len(line.lstrip()), len(word))  # fmt: skip
        return i

    def typeof(self, st: _Set, line: str, lineno: int, rest: str) -> None:
        t = self.table
        assert t is not None
        st.typeof = rest.strip()
        start = line.find(rest)
        cur = Cursor(tokenize(line, start, len(line), lineno=lineno), line, lineno)
        p = RuleParser(cur, t.family, self.add_warning)
        try:
            key = p.expr()
            d = p.dtype(key)
            st.key_type = d if isinstance(d, tuple) else (d,)
            if cur.accept(":"):
                if cur.peek() == "verdict":
                    st.data_type = ("verdict",)
                else:
                    dd = p.dtype(p.expr())
                    st.data_type = dd if isinstance(dd, tuple) else (dd,)
        except ParseError as exc:
            d0 = exc.diagnostic
            self.warnings.append(Diagnostic(f"{d0.message}: the {st.kind}'s type is not known", lineno, d0.column,
                                            d0.length, line, severity="warning"))  # fmt: skip

    def elements(self, st: _Set, line: str, lineno: int, i: int) -> int:
        """Read ``elements = { … }`` from this line on; returns the index of the line after the block."""
        tokens: list[Token] = []
        where: list[tuple[int, str]] = []
        depth = 0
        cur_line, cur_no, idx = line, lineno, i
        start = line.index("{")
        while True:
            toks = tokenize(cur_line, start, len(cur_line), lineno=cur_no) if cur_line.count('"') % 2 == 0 else []
            for tk in toks:
                if not tk.quoted:
                    depth += tk.text == "{"
                    depth -= tk.text == "}"
            tokens.extend(toks)
            where.extend([(cur_no, cur_line)] * len(toks))
            if depth <= 0 or idx >= len(self.lines):
                break
            cur_line = self.lines[idx]
            cur_no = idx + 1
            idx += 1
            start = 0
            if cur_line.strip() == "}" and depth == 1 and tokens and tokens[-1].text != ",":
                # the list's own brace is missing: this one closes the set
                self.warn(f"the element list of {st.kind} '{st.name}' is not closed", cur_no, cur_line)
                tokens.append(Token("}", 0))
                where.append(where[-1])
                self.parse_elements(st, tokens, where)
                return idx - 1
        if depth > 0:
            self.warn(f"the element list of {st.kind} '{st.name}' is cut off; the elements read are kept",
                      where[-1][0] if where else lineno, where[-1][1] if where else line)  # fmt: skip
            tokens.append(Token("}", len(where[-1][1]) if where else 0))
            where.append(where[-1] if where else (lineno, line))
        self.parse_elements(st, tokens, where)
        return idx

    def parse_elements(self, st: _Set, tokens: list[Token], where: list[tuple[int, str]]) -> None:
        t = self.table
        assert t is not None
        cur = _MultiCursor(tokens, where)
        p = RuleParser(cur, t.family, self.add_warning)
        key: Any = st.key_type if len(st.key_type) > 1 else (st.key_type[0] if st.key_type else "integer")
        data: Any = "verdict" if st.data_type == ("verdict",) else (
            st.data_type if st.data_type and len(st.data_type) > 1 else (st.data_type or ("integer",))[0])
        try:
            cur.expect("{")
            while not cur.accept("}"):
                item = p.element(key, data)
                st.elements.append(element(item))
                if not cur.accept(","):
                    cur.expect("}")
                    break
        except ParseError as exc:
            d = exc.diagnostic
            self.warnings.append(Diagnostic(f"{d.message}: the elements after this point are skipped", d.line,
                                            d.column, d.length, d.text, severity="warning"))  # fmt: skip


def parse_listing(text: str, source: str | None, warnings: list[Diagnostic]) -> NftRuleset:
    reader = _Reader(text, source, warnings)
    tables = reader.run()
    return NftRuleset(tuple(tables), tuple(warnings), source, len(reader.lines), "text")
