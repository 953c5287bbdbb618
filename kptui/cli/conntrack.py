"""``kptui conntrack FILE|--live``: the conntrack entries of kube-proxy's services, and the stale ones."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .common import (
    UserError,
    add_source_options,
    emit_json,
    load_snapshot,
    node_errors,
    print_snapshot_warnings,
)

if TYPE_CHECKING:
    from kptui.engine.conntrack import EntryMatch, Frontend
    from kptui.engine.model import Ruleset

__all__ = ["add_conntrack_command", "conntrack_text", "matches_to_dict"]

SCHEMA = "kptui.conntrack/1"
_KEEP = ("stale", "not-dnat", "other-service")


def _entry(m: EntryMatch) -> dict[str, Any]:
    e = m.entry
    fe = m.frontend
    return {"line": e.line, "family": e.family, "proto": e.proto, "state": e.state, "timeout": e.timeout,
            "flags": sorted(e.flags), "mark": e.mark, "zone": e.zone, "orig": e.orig._asdict(),
            "reply": e.reply._asdict(), "dnat": e.dnat, "target": e.target if e.dnat else None,
            "service": m.service, "frontend": fe._asdict() if fe else None, "status": m.status, "reason": m.reason,
            "endpoint_of": list(m.endpoint_of)}  # fmt: skip


def matches_to_dict(matches: Sequence[EntryMatch], *, source: str, rules: str | None, entries: int,
                    skipped: int) -> dict[str, Any]:  # fmt: skip
    stale = [m for m in matches if m.status == "stale"]
    return {"schema": SCHEMA, "source": source, "rules": rules, "entries_read": entries, "lines_skipped": skipped,
            "listed": len(matches), "stale": len(stale), "entries": [_entry(m) for m in matches]}  # fmt: skip


def _delete_command(m: EntryMatch) -> str:
    """The ``conntrack -D`` that removes a stale flow (printed for the user; kptui never runs it)."""
    e = m.entry
    parts = ["conntrack", "-D", "-p", e.proto, "--orig-dst", e.orig.dst]
    if e.orig.dport is not None:
        parts += ["--orig-port-dst", str(e.orig.dport)]
    parts += ["--reply-src", e.reply.src]
    if e.zone is not None:
        parts += ["-w", str(e.zone)]
    return " ".join(parts)


def conntrack_text(doc: dict[str, Any], matches: Sequence[EntryMatch], *, show_all: bool, limit: int = 50) -> str:
    from kptui.fmt import plural, printable

    if doc["rules"]:
        head = (f", rules from {doc['rules']}; {plural(len(matches), 'service entry', 'service entries')}, "
                f"{doc['stale']} stale")  # fmt: skip
    else:  # without rules nothing tells which entries are services' or which endpoints are alive
        head = (f", no rules: services and endpoints unknown (give --rules DUMP, or a bundle); "
                f"{plural(len(matches), 'DNATed entry', 'DNATed entries')}, staleness not checked")  # fmt: skip
    out = [f"{doc['source']}: {plural(doc['entries_read'], 'entry', 'entries')}{head}"]
    groups: dict[str, list[EntryMatch]] = {}
    unknown = "(services unknown without rules)" if not doc["rules"] else "(no service)"
    for m in matches:
        groups.setdefault(m.service or unknown, []).append(m)
    fixes: dict[str, None] = {}
    for name, ms in sorted(groups.items(), key=lambda kv: (-sum(m.status in _KEEP for m in kv[1]), kv[0])):
        bad = [m for m in ms if m.status in _KEEP]
        fe = ms[0].frontend
        where = f" {fe.kind} {fe.ip or '*'}:{fe.port}/{fe.proto}" if fe else ""
        out.append("")
        out.append(f"{name}{where}: {plural(len(ms), 'entry', 'entries')}" + (f", {len(bad)} suspect" if bad else ""))
        shown = ms if show_all else bad + [m for m in ms if m.status not in _KEEP][: max(0, 5 - len(bad))]
        for m in shown[:limit]:
            e = m.entry
            tag = {"stale": "STALE", "not-dnat": "NOT DNATED", "other-service": "OTHER SERVICE"}.get(m.status)
            extra = f"  timeout {e.timeout}s" if e.timeout is not None else ""
            zone = f" zone {e.zone}" if e.zone is not None else ""
            out.append(f"  {e.describe()}{zone}{extra}" + (f"  {tag}: {m.reason}" if tag else ""))
        for m in bad:
            if m.status == "stale":
                fixes[_delete_command(m)] = None
        if len(ms) > len(shown[:limit]):
            out.append(f"  … and {len(ms) - len(shown[:limit])} more (--all lists every entry)")
    if fixes:
        out.append("")
        out.append("Stale flows keep going to the old endpoint while packets keep coming (UDP never times out "
                   "under steady traffic). To drop them (kptui never does), as root on the node:")  # fmt: skip
        out += [f"  {c}" for c in list(fixes)[:limit]]
    return "\n".join(printable(line) for line in out)


def index_view(ruleset: Ruleset) -> tuple[list[Frontend], dict[tuple[str, str, int | None], tuple[str, ...]]] | None:
    """Service addresses and endpoints from the service index (:mod:`kptui.engine.kube`): it also names
    services whose comments were dropped. The nat table's other DNAT targets count as endpoints too. None when
    the index is not available."""
    from kptui.engine.conntrack import Frontend, dnat_endpoints

    try:
        from kptui.engine.kube import service_index_of

        index = service_index_of(ruleset)
        frontends: list[Frontend] = []
        endpoints: dict[tuple[str, str, int | None], list[str]] = {k: list(v) for k, v in dnat_endpoints(ruleset).items()}
        for svc in index:
            proto, label = svc.protocol or "", svc.label
            if svc.port is not None:
                for kind, ips in (("cluster IP", [svc.cluster_ip] if svc.cluster_ip else []),
                                  ("external IP", svc.external_ips), ("loadbalancer IP", svc.load_balancer_ips),
                                  ("external IP", svc.external_or_lb_ips)):  # fmt: skip
                    frontends += [Frontend(label, kind, ip, svc.port, proto, not svc.no_endpoints) for ip in ips]
            if svc.node_port is not None:
                frontends.append(Frontend(label, "nodeport", None, svc.node_port, proto, not svc.no_endpoints))
            for ep in svc.endpoints:
                if ep.ip is not None:
                    owners = endpoints.setdefault((proto, _norm(ep.ip), ep.port), [])
                    if label not in owners:
                        owners.append(label)
    except Exception:  # noqa: BLE001 - optional: the rules are scanned directly when the index is unusable
        return None
    return frontends, {k: tuple(v) for k, v in endpoints.items()}


def _norm(ip: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def cmd_conntrack(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.conntrack import match_entries, parse_conntrack

    family = args.family or "ipv4"
    ruleset: Ruleset | None = None
    snap = None
    if args.live or args.netns:
        from kptui.node.collect import read_conntrack

        if args.file:
            raise UserError("give a conntrack FILE or --live/--netns, not both")
        with node_errors():
            read = read_conntrack(family, netns=args.netns)
        prefix = f"ip netns exec {args.netns} " if args.netns else ""
        text, source = read.data.decode("utf-8", "replace"), prefix + " ".join(read.command)
        if not args.rules:
            snap = load_snapshot(args)
            ruleset = snap.ruleset
    else:
        if not args.file:
            raise UserError("give a conntrack -L FILE (or a bundle), or --live")
        found = load_snapshot(args, need_rules=False)
        source = found.source
        if found.origin == "bundle":
            if found.conntrack is None:
                raise UserError(f"{source}: the bundle holds no {family} conntrack table")
            data, snap = found.conntrack, found
            if found.rules is not None and not args.rules:
                ruleset = found.ruleset
        else:  # a file: read as `conntrack -L` output, whatever else it looks like (the parser says)
            parts = (*found.conntrack_tables.values(), found.rules, found.nft)
            data = next((a.data for a in parts if a is not None), b"")
        text = data.decode("utf-8", "replace")
    if args.rules:
        rules_snap = load_snapshot(args, args.rules, live_ok=False)
        ruleset = rules_snap.ruleset
        snap = snap or rules_snap
    dst = None
    if args.dst:
        host, sep, port = args.dst.rpartition(":")
        if not sep or not port.isdigit():
            raise UserError(f"--dst '{args.dst}' should read IP:PORT ([IPv6]:PORT)")
        dst = (host.strip("[]"), int(port))
    table = parse_conntrack(text)
    if table.skipped and not table.entries and len(table.skipped) > 1:
        raise UserError(f"{source}: no conntrack entries found (is this `conntrack -L` output?)")
    node = snap.node.addresses if snap is not None and snap.captured else ()
    view = index_view(ruleset) if ruleset is not None else None
    frontends, endpoints = view if view is not None else (None, None)
    matches = match_entries(table.entries, ruleset, node_addresses=node, service=args.service, dst=dst,
                            frontends=frontends, endpoints=endpoints)  # fmt: skip
    if args.service and ruleset is not None and not matches:
        from kptui.engine.conntrack import service_frontends

        if not any(f.service == args.service or f.service.startswith(args.service + ":")
                   for f in frontends or service_frontends(ruleset)):  # fmt: skip
            raise UserError(f"no service '{args.service}' in the rules (give ns/name or ns/name:port)")
    doc = matches_to_dict(matches, source=source, rules=ruleset.source if ruleset is not None else None,
                          entries=len(table.entries), skipped=len(table.skipped))  # fmt: skip
    if args.json:
        emit_json(doc, out, compact=len(matches) > 1000)
    else:
        print_snapshot_warnings(snap, err)
        print(conntrack_text(doc, matches, show_all=args.all), file=out)
    return 1 if doc["stale"] else 0


def add_conntrack_command(sub: Any) -> None:
    p = sub.add_parser("conntrack", help="conntrack entries of services; flags flows DNATed to dead endpoints",
                       description="List the conntrack entries to kube-proxy's service addresses (cluster IPs, "
                       "NodePorts, external/LB IPs) and flag those whose DNAT target is no endpoint in the current "
                       "rules (stale: the flow is blackholed). Exit status 1 when stale entries are found.")  # fmt: skip
    p.add_argument("file", metavar="FILE", nargs="?", help="conntrack -L output, or a capture bundle")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--service", metavar="NAME", help="only this service (ns/name or ns/name:port)")
    g.add_argument("--dst", metavar="IP:PORT", help="only entries to this original destination")
    p.add_argument("--rules", metavar="DUMP", help="the rules to check against (default: the bundle's / live)")
    p.add_argument("--all", action="store_true", help="list every entry (default: suspect ones and a few others)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_source_options(p)
    p.set_defaults(handler=cmd_conntrack)
