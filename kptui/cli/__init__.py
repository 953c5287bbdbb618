"""The ``kptui`` command: the entry point and the dispatch to one module per command (or family of commands).

The command layer sits on top: it gets every rule and all node context from a snapshot
(:mod:`kptui.node`), writes what it is told to write, talks to the terminal, sets exit codes and starts the
explorer (:mod:`kptui.cli.explorer`). Modules, top down: this one; :mod:`.summary`, :mod:`.trace`
(``trace``, ``trace-commands``), :mod:`.kube` (``services``, ``diff``, ``explain``, ``lint``), :mod:`.live`
(``top``, ``capture``), :mod:`.deltas`, :mod:`.conntrack`, :mod:`.fleet` (``fleet``) and :mod:`.fleet_capture`
(``fleet capture``), :mod:`.explorer` (no command: the explorer); and
below them all :mod:`.common`, the helpers they share. No module imports one above it.

Exit status: 0 success, 1 a finding the command was asked to flag, 2 bad input or usage (a clear message on
stderr, never a traceback; running out of memory included), 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from kptui import __version__
from kptui.engine import ParseError
from kptui.fmt import out_of_memory

from .common import ORIGINS, UserError, node_from_args
from .conntrack import add_conntrack_command
from .deltas import add_deltas_command
from .explorer import build_app_parser, is_app_invocation
from .fleet import add_fleet_command
from .kube import add_kube_commands
from .live import add_live_commands
from .summary import add_summary_command
from .trace import add_trace_commands

__all__ = ["ORIGINS", "UserError", "build_parser", "command_names", "entry", "main", "node_from_args"]



def add_commands(sub: Any) -> None:
    """Register every subcommand on ``sub``, in the order ``kptui -h`` lists them."""
    add_summary_command(sub)
    add_trace_commands(sub)  # trace, trace-commands
    add_kube_commands(sub)  # services, diff, explain, lint
    add_live_commands(sub)  # top, capture
    add_deltas_command(sub)
    add_conntrack_command(sub)
    add_fleet_command(sub)  # fleet (and, parsed apart, fleet capture)


def _build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="kptui",
        description="Explore kube-proxy's netfilter rules: decode iptables-save dumps and trace packets.",
        epilog="kptui [FILE] [packet options] (no command) opens the interactive explorer, on FILE or on this "
        "node's live rules; kptui --live -h lists its options.",
    )
    parser.add_argument("--version", action="version", version=f"kptui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_commands(sub)
    return parser, dict(sub.choices)


def build_parser() -> argparse.ArgumentParser:
    return _build_parsers()[0]


def command_names() -> frozenset[str]:
    """The subcommands (``summary``, ``trace``, …): any other first word is the explorer's FILE."""
    return frozenset(_build_parsers()[1])


def _parse(argv: list[str]) -> argparse.Namespace:
    """The arguments, or SystemExit after argparse printed the usage of the parser concerned: an argument a
    subcommand does not take is that subcommand's usage error, not the top-level one."""
    parser, subs = _build_parsers()
    commands = frozenset(subs)
    if argv[:2] == ["fleet", "capture"]:  # a word of its own: `kptui fleet ./capture` compares a directory
        from .fleet_capture import build_fleet_capture_parser

        return build_fleet_capture_parser().parse_args(argv[2:])
    if is_app_invocation(argv, commands):
        return build_app_parser(commands).parse_args(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        (subs.get(getattr(args, "command", "") or "") or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = _parse(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse already printed usage; keep its status (2 for errors)
        return int(exc.code or 0)
    handler: Callable[[argparse.Namespace, TextIO, TextIO], int] = args.handler
    oom = False
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
    except MemoryError:
        oom = True  # reported below, once the frames holding the data are gone
    except BrokenPipeError:  # `kptui summary big | head`: the reader left, which is fine
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    if oom:
        gc.collect()
        print(out_of_memory(getattr(args, "command", None) or "the explorer"), file=err)
    return 2


def entry() -> None:
    """The console script. After the work is done, skip the interpreter's teardown: freeing a 200k-rule
    ruleset object by object takes a tenth of a second and helps nobody."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)
