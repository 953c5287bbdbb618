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
