"""``kptui trace``: a connection's first packet through the rules, every path with its probability and hops;
and ``kptui trace-commands``: the commands that make the kernel trace one connection (printed, never run)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from .common import (
    UserError,
    add_packet_options,
    add_source_options,
    check_ports,
    emit_json,
    load_snapshot,
    netfilter_of,
    node_for_trace,
    packet_from_args,
    print_snapshot_warnings,
    print_warnings,
    printable_text,
)

__all__ = ["add_trace_commands"]


def cmd_trace(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.trace import trace
    from kptui.engine.trace_report import trace_text, trace_to_dict
    from kptui.engine.traceable import trace_refusal

    packet, node = packet_from_args(args)
    snap = load_snapshot(args, need_rules="any")  # FILE (a dump, an nft listing, a bundle), or the live node
    rules = netfilter_of(snap, packet.family)
    refused = trace_refusal(rules, packet.family)
    if refused is not None:  # never a verdict without hops (issue 14.2)
        for rs in rules.xtables.values():
            print_warnings(rs.warnings, err)
        raise UserError(f"{snap.source}: {refused}")
    node = node_for_trace(args, node, snap)  # a bundle's / the live node's context under the node options
    result = trace(rules, packet, node)
    if args.json:
        emit_json(trace_to_dict(result), out, compact=True)
    else:
        for rs in rules.xtables.values():
            print_warnings(rs.warnings, err)
        if rules.nft is not None:
            print_warnings(rules.nft.warnings, err)
        print_snapshot_warnings(snap, err)
        out.write(printable_text(trace_text(result, all_hops=args.all_hops)))
    return 0


def cmd_trace_commands(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.trace_commands import trace_commands
    from kptui.live.runner import check_netns_name

    check_ports(args)
    try:
        if args.netns:
            check_netns_name(args.netns)
        cmds = trace_commands(src=args.src, dst=args.dst, proto=args.proto, sport=args.sport, dport=args.dport,
                              origin=args.origin, backend=args.backend, netns=args.netns)  # fmt: skip
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        emit_json({"schema": "kptui.trace-commands/1", **cmds.to_dict()}, out)
    else:
        out.write(cmds.text())
    return 0


def add_trace_commands(sub: Any) -> None:
    """Register ``trace`` and ``trace-commands``."""
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
    p.add_argument("--json", action="store_true", help="print JSON (stable; see docs/json.md)")
    p.add_argument("--all-hops", action="store_true", help="also list the rules that did not match")
    p.set_defaults(handler=cmd_trace)
    p = sub.add_parser("trace-commands", help="print the commands that make the kernel trace a connection",
                       description="Print (never run) the commands to capture the kernel's own trace of a "
                       "connection: a raw-table TRACE rule for it, the monitor, and the command that removes the "
                       "rule again. Run them as root on the node.")  # fmt: skip
    add_packet_options(p)
    p.add_argument("--backend", choices=("nft", "legacy", "nftables"), default="nft",
                   help="iptables-nft (default), iptables-legacy, or native nftables (kube-proxy's nftables mode)")
    p.add_argument("--netns", metavar="NAME", help="prefix the commands with ip netns exec NAME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_trace_commands)
