"""``kptui fleet DIR|BUNDLE… [--json] [--service NS/NAME] [--all]``: compare the nodes of a fleet (a ``kptui fleet
capture`` directory, or capture bundles); with ``--src … --dst …|node`` one packet traced on every node and the
outcomes compared. ``kptui fleet capture …`` (:mod:`.fleet_capture`) takes the captures."""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .common import UserError, add_input_options, emit_json, limits_of, node_errors, printable_text

if TYPE_CHECKING:
    from kptui.engine.kube.fleet_model import NodeParts

__all__ = ["add_fleet_command", "cmd_fleet", "load_fleet"]


def load_fleet(paths: Sequence[str], args: argparse.Namespace) -> list[NodeParts]:
    """Every node ``paths`` name, read (a node that cannot be: its ``error``), names made unique."""
    from kptui.node.fleet import fleet_entries, load_parts

    with node_errors():
        entries = fleet_entries(paths)
    parts = [load_parts(e, limits_of(args)) for e in entries]
    seen: dict[str, int] = {}
    out = []
    for p in parts:
        n = seen[p.name] = seen.get(p.name, 0) + 1
        if n > 1:
            import dataclasses

            p = dataclasses.replace(p, name=f"{p.name}#{n}")
        out.append(p)
    return out


def _trace(args: argparse.Namespace, parts: Sequence[NodeParts], out: TextIO) -> int:
    from kptui.engine.packet import Packet, parse_mark
    from kptui.engine.trace_fleet import TraceTarget, own_address, trace_fleet

    from .common import check_ports

    check_ports(args)
    targets = [TraceTarget(p.name, p.netfilter, p.context, p.error) for p in parts]
    addresses = {p.name: p.addresses for p in parts}

    def packet_for(t: TraceTarget) -> Packet:
        dst = args.dst
        if dst == "node":
            dst = own_address(addresses[t.name], ":" in args.src)
        return Packet(args.src, dst, args.proto, args.sport, args.dport, args.origin, args.in_iface,
                      parse_mark(args.mark), args.ctstate)  # fmt: skip

    try:
        result = trace_fleet(targets, packet_for)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        emit_json({"schema": "kptui.fleet-trace/1", "packet": result.packet, "majority": result.majority,
                   "outcomes": [{"node": o.node, "packet": o.packet, "outcome": o.outcome,
                                 "endpoints": list(o.endpoints), "masquerade": o.masquerade,
                                 "through": float(o.through), "verdicts": list(o.verdicts), "error": o.error}
                                for o in result.outcomes],
                   "differing": [{"node": n, "what": w} for n, w in result.differing]}, out)  # fmt: skip
        return 1 if result.differing else 0
    lines = [f"kptui fleet trace: {result.packet}" + (" (--dst node: each node's own address)"
                                                      if args.dst == "node" else ""),
             f"majority: {result.majority}", ""]  # fmt: skip
    width = max(len(o.node) for o in result.outcomes)
    lines += [f"{o.node.ljust(width)}  {o.outcome}" for o in result.outcomes]
    if result.differing:
        lines += ["", "DIFFER FROM THE MAJORITY"] + [f"{n}: {w}" for n, w in result.differing]
    out.write(printable_text("\n".join(lines) + "\n"))
    return 1 if result.differing else 0


def cmd_fleet(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.kube.fleet import compare_fleet
    from kptui.engine.kube.fleet_node import fleet_node
    from kptui.engine.kube.fleet_report import fleet_text, fleet_to_dict

    if any((args.node_ip, args.pod_cidr, args.iface, args.uplink, args.pod_iface)):
        raise UserError("each node brings its own addresses and interfaces: the node options do not apply here")
    if bool(args.src) != bool(args.dst):
        raise UserError("--src and --dst go together (--dst node: each node's own address)")
    start = time.perf_counter()
    parts = load_fleet(args.paths, args)
    if not parts:
        raise UserError("no node to compare")
    gc.freeze()  # the nodes' rules live until the command ends: keep the collector from walking them again
    if args.src:
        return _trace(args, parts, out)
    nodes = [fleet_node(p) for p in parts]
    report = compare_fleet(nodes, service=args.service)
    if args.service and not report.services:
        raise UserError(f"no service port named {args.service} on any compared node")
    if args.json:
        emit_json(fleet_to_dict(report), out)
    else:
        out.write(printable_text(fleet_text(report, all_services=args.all or bool(args.service))))
        print(f"kptui: compared {len(parts)} nodes in {time.perf_counter() - start:.2f} s", file=err)
    bad = any(f.severity in ("error", "warning") for f in report.findings) or any(r.differs for r in report.services)
    return 1 if bad else 0


def add_fleet_command(sub: Any) -> None:
    from .common import add_packet_options

    p = sub.add_parser("fleet", help="compare the nodes of a cluster (kptui fleet capture -h: capture them)",
                       description="Compare the nodes of a fleet: a kptui fleet capture directory, or capture bundles. "
                       "Per service port: the nodes whose endpoints or shares differ from the majority, the nodes "
                       "without it, eTP=Local endpoints per node (which NodePorts blackhole where), NodePort and "
                       "load-balancer reachability. Per node: mode, backend, era, how far its rules are from the "
                       "majority's, leftovers of another mode, other components' rules in front of kube-proxy's, "
                       "stale conntrack entries, failed captures. With --src/--dst: one packet traced on every "
                       "node. 'kptui fleet capture' captures the nodes (kptui fleet capture -h).",
                       epilog="exit status: 0 the nodes agree, 1 they differ (or a finding), 2 bad input")  # fmt: skip
    p.add_argument("paths", nargs="+", metavar="DIR|BUNDLE", help="a fleet capture directory, or capture bundles")
    p.add_argument("--service", metavar="NS/NAME[:PORT]", help="only this service's ports (listed in full)")
    p.add_argument("--all", action="store_true", help="list every service port, not only those that differ")
    p.add_argument("--json", action="store_true", help="print JSON (kptui.fleet/1; docs/json.md)")
    add_packet_options(p, required=False)
    add_input_options(p)
    p.set_defaults(handler=cmd_fleet)
