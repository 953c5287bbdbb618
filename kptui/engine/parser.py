"""``parse_ruleset(text) -> Ruleset`` for iptables-save / ip6tables-save output, kube-proxy's restore input and
the ``iptables -S`` form.

Speed matters (a big node's dump has 200k+ rules), so the whole text is split into classified lines by one
compiled regular expression, rule lines take a fast path, and a rule's options are checked against a cache of
rule *shapes* (the line with its values blanked): kube-proxy writes a few dozen shapes, so full decoding runs
a few dozen times, yet every rule is checked. Everything else (chains, tables, comments) goes through
:mod:`.structure`.
"""

from __future__ import annotations

import codecs
import gc
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from operator import itemgetter

from .errors import Diagnostic, ParseError
from .graph import graph_of
from .lexer import tokenize
from .model import Ruleset
from .rulelist import Row
from .rules import decode_tokens
from .structure import Builder

__all__ = ["PARALLEL_CHARS", "Progress", "Spawn", "parse_ruleset", "parse_ruleset_bytes"]

# Every line, classified: a rule line in either form (with or without a counter prefix), or anything else.
_LINE = re.compile(
    r"^(?:\[(\d+):(\d+)\] )?(-A ([^\s\"'\\]+)(?: (.*))?)$"  # a rule: counters, raw, chain, options
    r"|^:([^\s\"']+) ([A-Z-]+) \[(\d+):(\d+)\]$"  # a chain declaration: name, policy, counters
    r"|^(.*)$",  # anything else
    re.MULTILINE,
)
# The values of a rule, blanked to `` v`` to make its shape. A shape that fails the check only sends its rule
# down the slow path (full decoding), so the shape may be coarser than the rule (it blanks -p's value too).
_VALUE = re.compile(r' (?:"[^"]*"|[^\s!\-"][^\s"]*)')  # one common prefix: the regex engine scans fast
_LOOSE_RULE = re.compile(r"\s*(?:\[(\d+):(\d+)\]\s+)?(-A(?:\s.*)?)$")
_LINE_OF = itemgetter(0)
_SHAPES: dict[str, object] = {}  # shape → _OK or _SLOW (a module-level memo: shapes recur across dumps)


def parse_ruleset_bytes(data: bytes, *, source: str | None = None, progress: Progress | None = None,
                        parallel: Spawn | None = None) -> Ruleset:
    """Decode bytes (UTF-8; bytes that are not UTF-8 are read as Latin-1, with a warning) and parse them
    (``progress`` and ``parallel``: see :func:`parse_ruleset`)."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        start = data.rfind(b"\n", 0, nul) + 1
        end = data.find(b"\n", nul)
        text = data[start : end if end >= 0 else len(data)].decode("utf-8", "backslashreplace")
        col = len(data[start:nul].decode("utf-8", "backslashreplace"))
        raise ParseError(
            Diagnostic(
                "NUL byte: this is not iptables-save text (binary or corrupted file?)",
                line, col, 1, text, source,
            )
        )  # fmt: skip
    warnings: list[Diagnostic] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        shown = data[start : end if end >= 0 else len(data)].decode("utf-8", "backslashreplace")
        col = len(data[start : exc.start].decode("utf-8", "backslashreplace"))
        warnings.append(
            Diagnostic(
                "invalid UTF-8; bytes that are not UTF-8 are read as Latin-1",
                line, col, 4, shown, source, "warning",
            )
        )  # fmt: skip
        codecs.register_error("kptui-latin1", _latin1_fallback)
        text = data.decode("utf-8", "kptui-latin1")
    return parse_ruleset(text, source=source, progress=progress, parallel=parallel, _warnings=warnings)


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Read bytes that are not UTF-8 as Latin-1: nothing is lost, and old Latin-1 comments read right."""
    assert isinstance(exc, UnicodeDecodeError)
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


def parse_ruleset(
    text: str, *, source: str | None = None, progress: Progress | None = None, parallel: Spawn | None = None,
    _warnings: list[Diagnostic] | None = None,
) -> Ruleset:
    """Parse a dump. Raises :class:`ParseError` (with file, line and caret) for input it cannot load;
    recoverable damage (a missing final COMMIT, a cut-off last line) loads what is there, with warnings.

    ``progress(lines done, lines in all)`` is called after every piece of the text (4 MiB) and at the end.
    ``parallel``: a way to run the rules' shape checks elsewhere while this thread builds the rules (the
    command layer's :func:`kptui.forked.spawn`: a forked child on the second core), used for a dump of
    PARALLEL_CHARS or more; the answer, errors and warnings included, is the same either way (tests compare)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if "\x00" in text:
        pos = text.index("\x00")
        line_start = text.rfind("\n", 0, pos) + 1
        line_end = text.find("\n", pos)
        raise ParseError(
            Diagnostic(
                "NUL byte: this is not iptables-save text (binary or corrupted file?)",
                text.count("\n", 0, pos) + 1, pos - line_start, 1,
                text[line_start : line_end if line_end >= 0 else len(text)], source,
            )
        )  # fmt: skip
    # The parse allocates a few hundred thousand tuples and no reference cycles; the cyclic garbage collector
    # would walk them again and again for nothing (about 20 % of the parse time on a big dump).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        checks = parallel(_slow_shaped_lines, text) if parallel is not None and len(text) >= PARALLEL_CHARS else None
        ruleset = _parse(text, source, list(_warnings or ()), progress, checks)
        graph_of(ruleset)  # structural facts, computed once while the collector is still off
        return ruleset
    except ParseError as exc:
        raise exc.with_source(source) from None
    finally:
        if gc_was_enabled:
            gc.enable()


def _parse(text: str, source: str | None, warnings: list[Diagnostic], progress: Progress | None = None,
           checks: Callable[[], list[SlowLine]] | None = None) -> Ruleset:
    """The parse; with ``checks`` (the lines :func:`_slow_shaped_lines` finds, computed elsewhere) the rules of
    plain pieces take the fast path unchecked here, and the checks' slow lines are decoded fully afterwards
    (:func:`_settle`), which gives what checking each line on the way gives: see there."""
    builder = Builder(source, warnings, spec_form=not _has_table_header(text))
    truncated = bool(text) and not text.endswith("\n")
    last = text.count("\n") + (1 if truncated else 0)  # number of the last line
    done_slow: set[int] = set()  # lines of plain pieces sent down the slow path here (with ``checks``)
    try:
        _lines(text, builder, progress, checks is not None, done_slow, last, truncated)
    except ParseError as exc:
        if checks is not None:  # an earlier line may fail its check: that error comes first
            line = exc.diagnostic.line
            _settle(builder, checks(), done_slow, last, truncated, before=last + 1 if line is None else line)
        raise
    if checks is not None:
        _settle(builder, checks(), done_slow, last, truncated)
    return builder.finish(text, last)


def _lines(text: str, builder: Builder, progress: Progress | None, unchecked: bool, done_slow: set[int],
           last: int, truncated: bool) -> None:  # fmt: skip
    shapes = _SHAPES
    value_sub = _VALUE.sub
    add_rule = builder.add_rule
    names: dict[str, str] = {}
    intern = names.setdefault  # one string object per target name, not one per rule
    for first, lines, plain in _chunks(text):
        cur_chain: str | None = None  # the chain the last rule went to: rules come in runs per chain
        cur_rows: list[Row] = []
        skip = unchecked and plain  # the shape checks of this piece are done elsewhere
        for lineno, (pk, by, raw, chain, rest, dname, dpolicy, dpk, dby, other) in enumerate(lines, first):
            if raw:
                status: object = _SLOW
                if skip and (lineno != last or not truncated):  # a cut-off last line is checked here
                    status = _OK
                elif plain or ("\\" not in rest and "'" not in rest):
                    shape = value_sub(" v", rest)
                    status = shapes.get(shape, _UNKNOWN)
                    if status is _UNKNOWN:
                        status = shapes[shape] = _check_shape(shape)
                if status is _OK:
                    pos = rest.rfind(" -j ")
                    if pos >= 0 or rest.startswith("-j "):
                        tail, goto = rest[pos + 4 if pos >= 0 else 3 :], False
                    else:
                        pos = rest.rfind(" -g ")
                        if pos >= 0 or rest.startswith("-g "):
                            tail, goto = rest[pos + 4 if pos >= 0 else 3 :], True
                        else:
                            cur_chain = None
                            add_rule(lineno, chain, raw, pk or None, by or None, None, False)
                            continue
                    if '"' not in tail:  # else the flag may sit inside a quoted string: decode fully
                        name = tail.partition(" ")[0]
                        if chain == cur_chain:
                            cur_rows.append((lineno, raw, pk or None, by or None, intern(name, name), goto))
                        else:
                            cur_rows = add_rule(lineno, chain, raw, pk or None, by or None, intern(name, name), goto)
                            cur_chain = chain
                        continue
                cur_chain = None
                if skip:
                    done_slow.add(lineno)
                _slow_rule(builder, lineno, pk, by, raw, chain, lineno == last and truncated)
            elif dname:
                cur_chain = None
                builder.declare(lineno, dname, dpolicy, dpk, dby)
            else:
                cur_chain = None
                m = _LOOSE_RULE.match(other)
                if m:  # a rule with unusual spacing or a quoted chain name
                    cut_off = lineno == last and truncated
                    try:
                        tokens = tokenize(m.group(3), lineno=lineno)
                    except ParseError as exc:
                        if cut_off:
                            builder.drop_cut_off_line(exc.diagnostic)
                            continue
                        raise
                    if len(tokens) < 2:
                        raise ParseError(Diagnostic("-A needs a chain name", lineno, 0, len(other), other))
                    _slow_rule(builder, lineno, m.group(1) or "", m.group(2) or "", m.group(3),
                               tokens[1].text, cut_off)  # fmt: skip
                else:
                    builder.other_line(lineno, other, is_last=lineno == last, truncated=truncated)
        if progress is not None:
            progress(first + len(lines) - 1, last)


_CHUNK = 1 << 22  # parse 4 MiB at a time: the regex's list of line tuples stays small


def _chunks(text: str) -> Iterator[tuple[int, list[tuple[str, ...]], bool]]:
    """Yield (first line number, classified lines, plain) for consecutive newline-aligned pieces of
    ``text``; ``plain`` says the piece has no backslash and no single quote (no per-line check needed)."""
    start, lineno, n = 0, 1, len(text)
    while start < n:
        end = text.find("\n", min(start + _CHUNK, n))
        end = n if end < 0 else end + 1
        lines = _LINE.findall(text, start, end)
        if lines and not any(lines[-1]) and text[end - 1 : end] == "\n":
            lines.pop()  # the empty match after the piece's final newline
        plain = text.find("\\", start, end) < 0 and text.find("'", start, end) < 0
        yield lineno, lines, plain
        lineno += len(lines)
        start = end


_OK, _SLOW, _UNKNOWN = "ok", "slow", object()
_SLOW_OPTIONS = (" -c ", " --set-counters ", " --jump ", " --goto ")


def _check_shape(shape: str) -> str:
    """"ok" when every rule of this shape decodes; "slow" when its rules need a full decode each."""
    if any(o in f" {shape} " for o in _SLOW_OPTIONS):
        return _SLOW
    try:
        decode_tokens(shape, tokenize(shape), lineno=None, start=0)
    except ParseError:
        return _SLOW  # the slow path reports the error with the real text (or finds the rule valid)
    return _OK


def _has_table_header(text: str) -> bool:
    return text.startswith("*") or "\n*" in text


def _slow_rule(
    builder: Builder, lineno: int, pk: str, by: str, raw: str, chain: str, cut_off: bool
) -> None:
    """Fully decode a rule the fast path could not vouch for; errors point into the original line."""
    row = _decoded_row(builder, lineno, pk, by, raw, cut_off)
    if row is not None:
        builder.add_rule(lineno, chain, *row[1:])


def _decoded_row(builder: Builder, lineno: int, pk: str, by: str, raw: str, cut_off: bool) -> Row | None:
    """The row of a fully decoded rule; None for a cut-off last line that does not decode (dropped, with a
    warning). A rule that does not decode raises ParseError pointing into the original line."""
    prefix = len(f"[{pk}:{by}] ") if pk else 0
    try:
        tokens = tokenize(raw, lineno=lineno)
        spec = decode_tokens(raw, tokens, lineno=lineno, start=2)
    except ParseError as exc:
        d = exc.diagnostic
        full = (f"[{pk}:{by}] " if pk else "") + raw
        diag = Diagnostic(d.message, lineno, d.column + prefix, d.length, full)
        if cut_off:
            builder.drop_cut_off_line(diag)
            return None
        raise ParseError(diag) from None
    counters: tuple[str | None, str | None] = (pk or None, by or None)
    for i, tok in enumerate(tokens):  # iptables -S -v puts counters at the end: ``-c PKTS BYTES``
        if not tok.quoted and tok.text in ("-c", "--set-counters") and i + 2 < len(tokens) + 1:
            vals = [t.text for t in tokens[i + 1 : i + 3]]
            if len(vals) == 2 and all(v.isdigit() for v in vals):
                counters = (vals[0], vals[1])
    t = spec.target
    return (lineno, raw, counters[0], counters[1], t.name if t else None, bool(t and t.goto))


# -- the shape checks on the second core ----------------------------------------------------------------
PARALLEL_CHARS = 1 << 23  # 8 MiB (≈ 70k lines): smaller dumps parse in well under a second, fork or not
SlowLine = tuple[int, str, str, str, str]  # (line, packets, bytes, raw, chain): a rule line as the parser splits it
Progress = Callable[[int, int], None]
Spawn = Callable[[Callable[[str], list[SlowLine]], str], Callable[[], list[SlowLine]]]  # fn, arg → wait for fn(arg)


def _slow_shaped_lines(text: str) -> list[SlowLine]:
    """The rule lines of the plain pieces of ``text`` whose shape fails the check, ascending: exactly the lines
    of those pieces that the checking parse sends down the slow path because of their shape."""
    out: list[SlowLine] = []
    shapes = _SHAPES
    value_sub = _VALUE.sub
    for first, lines, plain in _chunks(text):
        if not plain:
            continue
        for lineno, (pk, by, raw, chain, rest, *_) in enumerate(lines, first):
            if raw:
                shape = value_sub(" v", rest)
                status = shapes.get(shape, _UNKNOWN)
                if status is _UNKNOWN:
                    status = shapes[shape] = _check_shape(shape)
                if status is not _OK:
                    out.append((lineno, pk, by, raw, chain))
    return out


def _settle(builder: Builder, slow: list[SlowLine], done_slow: set[int], last: int, truncated: bool, *,
            before: int | None = None) -> None:  # fmt: skip
    """Decode fully the lines the checks found slow (those before line ``before``), in line order, as the
    checking parse would have on the way: the first that does not decode raises its error; one that decodes
    replaces the row the fast path made for it (a -c counter or a quoted target can differ). A row that went
    meanwhile (a later -F or -X) needs no fixing, but its line is still checked. Rows are made in the same
    order and by the same calls either way, so chains, warnings and errors are the same."""
    for lineno, pk, by, raw, chain in slow:
        if before is not None and lineno >= before:
            break
        if lineno in done_slow:
            continue
        row = _decoded_row(builder, lineno, pk, by, raw, lineno == last and truncated)
        assert row is not None  # a cut-off last line is checked on the way (see _lines)
        for table in builder.tables.values():
            ch = table.chains.get(chain)
            if ch is None:
                continue
            rows = ch.rows
            at = bisect_left(rows, lineno, key=_LINE_OF)
            if at < len(rows) and rows[at][0] == lineno:
                rows[at] = row
                break
