"""The ``kptui`` command: the only module that reads files, talks to the terminal and sets exit codes.

Together with :mod:`kptui.explorer_command` (the explorer's invocation) and :mod:`kptui.live` (live mode, capture
bundles, ``top``, ``deltas``, ``conntrack``), this is kptui's I/O layer: the only code that reads files, runs commands (all of them through
:func:`kptui.live.runner.run_readonly`, read-only) or starts the app.

Exit status: 0 success, 1 a finding the command was asked to flag, 2 bad input or usage (a clear message on
stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from kptui import __version__
from kptui.engine import ParseError, Ruleset, parse_ruleset_bytes
from kptui.engine.errors import Diagnostic, printable
from kptui.engine.summary import summarize
from kptui.reports import summary_text

if TYPE_CHECKING:
    from kptui.engine.packet import NodeContext, Packet

# The trace machinery is imported by the commands that use it: `kptui summary` on a big dump is a race
# against iptables-restore, and every import counts.
ORIGINS = ("pod", "external", "local")  # kptui.engine.packet.ORIGINS (a test keeps them equal)

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
    if data[:2] == b"\x1f\x8b":  # a capture bundle or a gzip'd dump: kptui.live.commands reads both
        from kptui.live.commands import ruleset_from_bytes

        ruleset = ruleset_from_bytes(data, source)[0]
    else:
        ruleset = parse_ruleset_bytes(data, source=source)
    # The ruleset lives until the command ends: move its million objects out of the cyclic collector's
    # sight, or every later allocation burst makes the collector walk them all again.
    gc.freeze()
    return ruleset


def print_warnings(diags: Sequence[Diagnostic], err: TextIO) -> None:
    for d in diags[:MAX_WARNINGS]:
        print(d.format(), file=err)
    if len(diags) > MAX_WARNINGS:
        print(f"kptui: … and {len(diags) - MAX_WARNINGS} more warnings (--json lists all)", file=err)


def emit_json(data: Any, out: TextIO, *, compact: bool = False) -> None:
    """JSON on stdout; ``compact`` (one line, C encoder) for big documents like a trace's every hop."""
    # dumps, not dump: dump writes the document in thousands of small pieces
    out.write(json.dumps(data, indent=None if compact else 2, ensure_ascii=True) + "\n")


# -- commands ---------------------------------------------------------------------------------------------
def cmd_summary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.live.commands import load_source, print_snapshot_warnings, snapshot_report, snapshot_text

    ruleset, snap = load_source(args)  # FILE (a dump or a capture bundle), or the live node
    summary = summarize(ruleset)
    if snap is not None:
        summary.update(snapshot_report(snap))
        summary["warnings"] += [{"line": None, "message": w} for w in snap.warnings]
    if args.json:
        emit_json(summary, out)
    else:
        print_warnings(ruleset.warnings, err)
        print_snapshot_warnings(snap, err)
        print(summary_text(summary), file=out)
        if snap is not None:
            print("\n" + snapshot_text(snap), file=out)
    return 0


def _split_list(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeated options that also take comma-separated lists: ``--node-ip a --node-ip b,c``."""
    return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())


def add_packet_options(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("the packet")
    g.add_argument("--src", required=required, metavar="ADDR", help="source address")
    g.add_argument("--dst", required=required, metavar="ADDR", help="destination address")
    g.add_argument("--proto", default="tcp", help="tcp (default), udp, sctp, icmp")
    g.add_argument("--sport", type=int, metavar="N", help="source port (default 40000)")
    g.add_argument("--dport", type=int, metavar="N", help="destination port (needed for tcp/udp/sctp)")
    g.add_argument("--from", dest="origin", choices=ORIGINS, default="pod",
                   help="where it comes from: a pod interface, the node's uplink, or a process on the node")
    g.add_argument("--in-iface", metavar="IFACE", help="the interface it arrives on")
    g.add_argument("--mark", default="0", help="initial packet mark, e.g. 0x4000")
    g.add_argument("--ctstate", default="NEW", help="conntrack state (default NEW: a first packet)")
    n = p.add_argument_group("the node")
    n.add_argument("--node-ip", action="append", metavar="IP",
                   help="a node address (repeat, or comma-separate); 127.0.0.0/8 and ::1 are always local")
    n.add_argument("--pod-cidr", action="append", metavar="CIDR",
                   help="pod network(s); this node's pod subnet first")
    n.add_argument("--iface", action="append", metavar="NAME=CIDR[,CIDR]",
                   help="a node interface and its addresses, e.g. eth0=10.0.0.2/24 (repeat)")
    n.add_argument("--uplink", metavar="IFACE", help="the interface outside traffic arrives on / leaves by")
    n.add_argument("--pod-iface", metavar="IFACE", help="the interface pod traffic arrives on (e.g. cni0)")
    n.add_argument("--recent", action="append", metavar="NAME",
                   help="a recent list (session affinity) that already holds the source (repeat)")
    n.add_argument("--affinity-hit", nargs="?", const="any", metavar="ENDPOINT",
                   help="a returning client (session affinity): bound to ENDPOINT (IP:PORT or IP), or, without "
                   "it, to one endpoint of each service, not known which (one path per endpoint)")


def node_from_args(args: argparse.Namespace) -> NodeContext:
    """Build the node from the node options; bad values raise UserError."""
    from kptui.engine.packet import NodeContext

    try:
        ifaces: dict[str, tuple[str, ...]] = {}
        for item in args.iface or ():
            name, sep, cidrs = item.partition("=")
            if not sep or not name:
                raise ValueError(f"--iface '{item}' should read NAME=CIDR[,CIDR]")
            ifaces[name] = tuple(c for c in cidrs.split(",") if c)
        node = NodeContext(
            addresses=_split_list(args.node_ip), pod_cidrs=_split_list(args.pod_cidr), interfaces=ifaces,
            uplink=args.uplink, pod_iface=args.pod_iface, recent=frozenset(_split_list(args.recent)),
            affinity=args.affinity_hit,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return node


def packet_from_args(args: argparse.Namespace) -> tuple[Packet, NodeContext]:
    """Build the packet and node from the packet options; bad values raise UserError."""
    from kptui.engine.packet import Packet, parse_mark

    node = node_from_args(args)
    try:
        packet = Packet(
            args.src, args.dst, args.proto, args.sport, args.dport, args.origin, args.in_iface,
            parse_mark(args.mark), args.ctstate,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return packet, node


def cmd_trace(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.trace import trace
    from kptui.engine.trace_report import trace_text, trace_to_dict
    from kptui.engine.traceable import trace_refusal
    from kptui.live.commands import load_source, node_for_trace, print_snapshot_warnings

    packet, node = packet_from_args(args)
    ruleset, snap = load_source(args)  # FILE (a dump or a capture bundle), or the live node
    node = node_for_trace(args, node, snap)  # a bundle's / the live node's context under the node options
    refused = trace_refusal(ruleset, packet.family)
    if refused is not None:  # never a verdict without hops (issue 14.2)
        print_warnings(ruleset.warnings, err)
        raise UserError(refused)
    result = trace(ruleset, packet, node)
    if args.json:
        emit_json(trace_to_dict(result), out, compact=True)
    else:
        print_warnings(ruleset.warnings, err)
        print_snapshot_warnings(snap, err)
        out.write(printable_text(trace_text(result, all_hops=args.all_hops)))
    return 0


def _build_parsers() -> tuple[argparse.ArgumentParser, frozenset[str]]:
    parser = argparse.ArgumentParser(
        prog="kptui",
        description="Explore kube-proxy's netfilter rules: decode iptables-save dumps and trace packets.",
        epilog="kptui [FILE] [packet options] (no command) opens the interactive explorer, on FILE or on this "
        "node's live rules; kptui --live -h lists its options.",
    )
    parser.add_argument("--version", action="version", version=f"kptui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_commands(sub)
    return parser, frozenset(sub.choices)


def command_names() -> frozenset[str]:
    """The subcommands (``summary``, ``trace``, …): any other first word is the explorer's FILE."""
    return _build_parsers()[1]


def printable_text(text: str) -> str:
    """Multi-line report text with control characters from the dump made visible (newlines kept)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def build_parser() -> argparse.ArgumentParser:
    return _build_parsers()[0]


def add_commands(sub: Any) -> None:
    """Register every subcommand on ``sub``."""
    from kptui.kube_commands import add_commands as add_kube_commands
    from kptui.live.commands import add_commands as add_live_commands
    from kptui.live.commands import add_source_options

    p = sub.add_parser(
        "summary",
        help="what a dump holds: backend, family, tables, chains, rules, dangling jumps",
        description="Summarise an iptables-save / ip6tables-save dump (or iptables -S output).",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="the dump or capture bundle to read; '-' reads "
                   "standard input")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON (stable; see the README)")
    add_source_options(p)
    p.set_defaults(handler=cmd_summary)
    p = sub.add_parser(
        "trace",
        help="walk a connection's first packet through the rules: every path, its probability and hops",
        description="Trace a packet through a dump in the kernel's hook order. Statistic rules branch (each "
        "path has its probability); matches the context cannot decide branch too, and say so.",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="the dump or capture bundle to read (a bundle "
                   "brings its node context); '-' reads standard input")  # fmt: skip
    add_packet_options(p)
    add_source_options(p)
    p.add_argument("--json", action="store_true", help="print JSON (stable; see the README)")
    p.add_argument("--all-hops", action="store_true", help="also list the rules that did not match")
    p.set_defaults(handler=cmd_trace)
    add_kube_commands(sub)  # services, explain, lint, diff (kptui.kube_commands)
    add_live_commands(sub)  # top, capture, deltas, conntrack, trace-commands (kptui.live.commands)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from kptui.explorer_command import build_app_parser, is_app_invocation

    parser, commands = _build_parsers()
    argv = list(sys.argv[1:] if argv is None else argv)
    if is_app_invocation(argv, commands):
        parser = build_app_parser()
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
    except BrokenPipeError:  # `kptui summary big | head`: the reader left, which is fine
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


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
