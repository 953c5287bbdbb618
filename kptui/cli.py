"""The ``kptui`` command: the only module that reads files, talks to the terminal and sets exit codes.

Exit status: 0 success, 1 a finding the command was asked to flag, 2 bad input or usage (a clear message on
stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import json
import sys
from typing import Any, Callable, Sequence, TextIO

from kptui import __version__
from kptui.engine import ParseError, Ruleset, parse_ruleset_bytes
from kptui.engine.errors import Diagnostic
from kptui.engine.summary import summarize
from kptui.reports import summary_text

__all__ = ["main"]

MAX_WARNINGS = 20  # shown on stderr in text mode; --json carries them all


class UserError(Exception):
    """A problem the user can fix; printed as ``kptui: message`` with exit status 2."""


def read_input(path: str) -> tuple[bytes, str]:
    """The bytes of FILE, or of standard input for ``-``; and the name to use in messages."""
    if path == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise UserError("'-' reads a dump from standard input, but standard input is a terminal "
                            "(try: iptables-save | kptui summary -)")  # fmt: skip
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        with open(path, "rb") as fh:
            return fh.read(), path
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a dump") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def load(path: str) -> Ruleset:
    data, source = read_input(path)
    return parse_ruleset_bytes(data, source=source)


def print_warnings(diags: Sequence[Diagnostic], err: TextIO) -> None:
    for d in diags[:MAX_WARNINGS]:
        print(d.format(), file=err)
    if len(diags) > MAX_WARNINGS:
        print(f"kptui: … and {len(diags) - MAX_WARNINGS} more warnings (--json lists all)", file=err)


def emit_json(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, ensure_ascii=True)
    out.write("\n")


# -- commands ---------------------------------------------------------------------------------------------
def cmd_summary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ruleset = load(args.file)
    summary = summarize(ruleset)
    if args.json:
        emit_json(summary, out)
    else:
        print_warnings(ruleset.warnings, err)
        print(summary_text(summary), file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kptui",
        description="Explore kube-proxy's netfilter rules: decode iptables-save dumps and trace packets.",
    )
    parser.add_argument("--version", action="version", version=f"kptui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "summary",
        help="what a dump holds: backend, family, tables, chains, rules, dangling jumps",
        description="Summarise an iptables-save / ip6tables-save dump (or iptables -S output).",
    )
    p.add_argument("file", metavar="FILE", help="the dump to read; '-' reads standard input")
    p.add_argument("--json", action="store_true", help="print JSON (stable; see the README)")
    p.set_defaults(handler=cmd_summary)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage; keep its status (2 for errors)
        return int(exc.code or 0)
    handler: Callable[[argparse.Namespace, TextIO, TextIO], int] = args.handler
    try:
        return handler(args, out, err)
    except ParseError as exc:
        print(exc.diagnostic.format(), file=err)
        return 2
    except UserError as exc:
        print(f"kptui: {exc}", file=err)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kptui summary big | head`
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return 0


def entry() -> None:
    """The console script. After the work is done, skip the interpreter's teardown: freeing a 200k-rule
    ruleset object by object takes a tenth of a second and helps nobody."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)
