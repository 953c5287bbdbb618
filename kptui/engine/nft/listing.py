"""``nft list ruleset`` text (any of ``-a``, ``-n``, ``-nn``, ``-s``) read into an :class:`NftRuleset`.

The listing is line oriented: ``table F N {`` … ``}`` holds ``chain``/``set``/``map``/object blocks, a chain
block its header (``type filter hook input priority filter; policy accept;``), comment and one rule per line, a
set block its declarations and an ``elements = { … }`` list that may span lines. ``# handle N`` ends a line
under ``-a``. Comment lines are skipped, except nft's ``# Warning: table ip filter is managed by iptables-nft,
do not touch!`` (on standard error, but pasted listings carry it), which marks that table.

Damage is survived and reported where it is: a cut-off listing keeps what it has (a warning at the last line),
a block left open is closed by the next ``chain``/``set``/``table`` line, a stray ``}`` is ignored, a rule or
declaration kptui cannot read is kept verbatim (rules: an undecidable statement) — each with a located warning.
Only text with no table at all is refused (:class:`ParseError`). Set and map blocks are read by
:mod:`.listing_sets`.
"""

from __future__ import annotations

import re

from ..errors import Diagnostic, ParseError
from .build import IPTABLES_NFT_NOTE, canonical_flags, has_xt
from .lexer import Token, tokenize
from .listing_sets import SetBlock, SetBlocks
from .model import CHAIN_TYPES, FAMILIES, HOOKS, NftChain, NftObject, NftRule, NftRuleset, NftSet, NftTable
from .rule_text import parse_rule, rule_counter
from .symbols import resolve_priority

__all__ = ["parse_listing"]

_HANDLE = re.compile(r"\s+# handle (\d+)\s*$")
_WARNING = re.compile(r"#\s*Warning: table (\S+) (\S+) is managed by iptables-nft[^\n]*")
_HEADER = re.compile(r"type (\S+) hook (\S+)(?: device (\"[^\"]*\"|\S+)| devices = \{([^}]*)\})? priority "
                     r"([^;]+);(?:\s*policy (\S+);)?")  # fmt: skip
_OBJECTS = ("counter", "quota", "limit", "flowtable", "secmark", "synproxy", "tunnel")
_CT_OBJECTS = ("helper", "timeout", "expectation")


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


class _Table:
    def __init__(self, family: str, name: str, handle: int | None, line: int) -> None:
        self.family, self.name, self.handle, self.line = family, name, handle, line
        self.flags: tuple[str, ...] = ()
        self.comment: str | None = None
        self.chains: dict[str, _Chain] = {}
        self.sets: dict[str, SetBlock] = {}
        self.objects: list[NftObject] = []


class _Reader(SetBlocks):
    def __init__(self, text: str, source: str | None, warnings: list[Diagnostic]) -> None:
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.source = source
        self.warnings = warnings
        self.tables: list[NftTable] = []
        self.table: _Table | None = None
        self.block: _Chain | SetBlock | NftObject | None = None
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
            if type(block) is SetBlock:
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
            plain = s[:-1].split() if '"' not in s else None
            if plain is not None and len(plain) == 2 and plain[0] in ("chain", "set", "map"):
                kind, name = plain  # the common case, without tokenizing
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
                    self.block = t.sets[name] = SetBlock(kind, name, handle, lineno)
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
            elif isinstance(self.block, SetBlock):
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
                if c.hook not in HOOKS:  # nft refuses it; no packet ever meets the chain (the trace skips it)
                    col = line.find(c.hook, line.find("hook"))
                    self.warn(f"unknown hook '{c.hook}' (nft knows {', '.join(HOOKS)}): no packet meets this chain",
                              lineno, line, col, len(c.hook))  # fmt: skip
                if c.type not in CHAIN_TYPES:
                    col = line.find(c.type)
                    self.warn(f"unknown chain type '{c.type}' (nft knows {', '.join(CHAIN_TYPES)})", lineno, line,
                              col, len(c.type))  # fmt: skip
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

def parse_listing(text: str, source: str | None, warnings: list[Diagnostic]) -> NftRuleset:
    reader = _Reader(text, source, warnings)
    tables = reader.run()
    return NftRuleset(tuple(tables), tuple(warnings), source, len(reader.lines), "text")
