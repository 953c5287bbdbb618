"""The kube-proxy commands of ``kptui``: ``services`` (and the commands that read a dump as kube-proxy's
Services), registered by :func:`add_commands` from :func:`kptui.cli.build_parser`.

Part of kptui's I/O layer with :mod:`kptui.cli`: files are read through :func:`kptui.cli.load`; everything
else is the pure engine (:mod:`kptui.engine.kube`).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

__all__ = ["add_commands"]


def cmd_services(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.cli import emit_json, load, print_warnings
    from kptui.engine.kube.report import matches_filter, service_to_dict, services_text

    ruleset = load(args.file)
    services = [s for s in ruleset.service_index if args.filter is None or matches_filter(s, args.filter)]
    if args.json:
        emit_json([service_to_dict(s) for s in services], out, compact=len(services) > 1000)
    else:
        print_warnings(ruleset.warnings, err)
        out.write(services_text(services) + "\n")
    return 0


def add_commands(sub: Any) -> None:
    """Register the kube-proxy commands on the ``kptui`` subparsers."""
    p = sub.add_parser(
        "services",
        help="kube-proxy's service ports: addresses, policies, affinity, endpoints with their shares",
        description="List the service ports a kube-proxy dump implements, recovered from the jump graph "
        "(names from comments, checked against the chain hash, or recovered from it).",
    )
    p.add_argument("file", metavar="FILE", help="the dump to read; '-' reads standard input")
    p.add_argument("--filter", metavar="TEXT",
                   help="only service ports whose name, namespace, chain, address (IP or CIDR) or port matches")
    p.add_argument("--json", action="store_true", help="print JSON (stable; see the README)")
    p.set_defaults(handler=cmd_services)
    add_diff_command(sub)  # kptui diff (below)


def cmd_diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``kptui diff OLD NEW``: exit 0 without differences, 1 with some (like diff(1)), 2 on bad input."""
    from kptui.cli import UserError, emit_json, load, print_warnings
    from kptui.engine.kube.diff import diff_services
    from kptui.engine.kube.diff_report import diff_text, diff_to_dict
    from kptui.engine.kube.report import matches_filter

    if args.old == "-" and args.new == "-":
        raise UserError("OLD and NEW cannot both be '-': standard input can be read only once")
    old, new = load(args.old), load(args.new)
    diff = diff_services(old, new)
    if args.filter is not None:
        text = args.filter
        diff = diff.only(lambda s: matches_filter(s, text))
    if args.json:
        emit_json(diff_to_dict(diff), out, compact=len(diff.added) + len(diff.removed) + len(diff.changed) > 1000)
    else:
        print_warnings(old.warnings, err)
        print_warnings(new.warnings, err)
        out.write(diff_text(diff) + "\n")
    return 0 if diff.empty else 1


def add_diff_command(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help="what changed between two dumps, service port by service port (counters: see kptui deltas)",
        description="Compare two kube-proxy dumps (or capture bundles) at service level: service ports added "
        "and removed; per service port, endpoints added and removed, share changes, chain renames and changed "
        "policies (traffic policies, affinity, NodePort, addresses, source ranges); and on the node, layout "
        "changes and rules added or removed in kube-proxy's fixed chains. Rule order and counters are ignored "
        "(counters: see kptui deltas). Exit status 0: no differences, 1: differences, 2: bad input.",
    )
    p.add_argument("old", metavar="OLD", help="the earlier dump or capture bundle; '-' reads standard input")
    p.add_argument("new", metavar="NEW", help="the later dump or capture bundle; '-' reads standard input")
    p.add_argument("--filter", metavar="TEXT", help="only service ports (old or new) whose name, namespace, "
                   "chain, address (IP or CIDR) or port matches, as in kptui services; node-level changes "
                   "are then left out")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON (format kptui.diff/1, stable; see the README)")
    p.set_defaults(handler=cmd_diff)
