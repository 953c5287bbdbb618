"""A fleet comparison as text (``kptui fleet``) and as JSON (``kptui fleet --json``, schema ``kptui.fleet/1``,
docs/json.md). Text and JSON say the same things; text leaves out the service ports every node agrees on
unless asked (``all_services``)."""

from __future__ import annotations

from typing import Any

from .fleet_model import FleetNode, FleetReport, NodeRow, ServiceRow

__all__ = ["SCHEMA", "fleet_text", "fleet_to_dict"]

SCHEMA = "kptui.fleet/1"
_STATE = {"ok": "ok", "drop": "DROP", "reject": "REJECT", "absent": "absent", "unknown": "?", "partly": "partly"}


def _node_dict(row: NodeRow) -> dict[str, Any]:
    n = row.node
    return {"name": n.name, "source": n.source, "mode": n.mode, "mode_source": n.mode_source,
            "mode_note": n.mode_note, "backend": n.backend, "era": n.era,
            "services": len(n.services) if n.services is not None else None, "services_note": n.services_note,
            "sync": row.sync, "differs": row.differs, "leftovers": list(n.leftovers),
            "foreign": [{"where": f.where, "index": f.index, "rule": f.rule, "effect": f.effect,
                         "ahead_of": f.ahead_of} for f in n.foreign],
            "stale_conntrack": n.stale_conntrack, "stale_examples": list(n.stale_examples),
            "failed_parts": list(n.failed_parts), "error": n.error, "captured": n.captured,
            "addresses": list(n.addresses)}  # fmt: skip


def _service_dict(r: ServiceRow) -> dict[str, Any]:
    return {"service": r.service, "key": r.key, "protocol": r.protocol, "cluster_ip": r.cluster_ip, "port": r.port,
            "node_port": r.node_port, "frontends": list(r.frontends), "nodes_with": list(r.nodes_with),
            "nodes_without": list(r.nodes_without), "majority": r.majority, "endpoints": list(r.endpoints),
            "nodes_differing": [{"node": d.node, "kind": d.kind, "what": d.what} for d in r.nodes_differing],
            "external_policy": r.external_policy, "local_endpoints": dict(r.local_endpoints),
            "blackholes": list(r.blackholes),
            "reach": [{"node": x.node, "state": x.state, "detail": x.detail} for x in r.reach]}  # fmt: skip


def fleet_to_dict(report: FleetReport) -> dict[str, Any]:
    return {"schema": SCHEMA, "nodes": [_node_dict(r) for r in report.nodes],
            "services": [_service_dict(r) for r in report.services],
            "findings": [f.to_dict() for f in report.findings], "compared": list(report.compared),
            "notes": list(report.notes)}  # fmt: skip


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _mode(n: FleetNode) -> str:
    if n.error is not None:
        return "FAILED"
    return n.mode or "?"


def fleet_text(report: FleetReport, *, all_services: bool = False) -> str:
    out: list[str] = []
    differ = [r for r in report.services if r.differs]
    out.append(f"kptui fleet: {len(report.nodes)} nodes ({len(report.compared)} compared), "
               f"{len(report.services)} service ports, {len(differ)} differ between nodes")  # fmt: skip
    out += [f"note: {n}" for n in report.notes]
    out.append("")
    rows = [["NODE", "MODE", "BACKEND", "ERA", "SERVICES", "SYNC (as the rules show it)"]]
    for r in report.nodes:
        n = r.node
        sync = n.error if n.error is not None else r.sync
        rows.append([n.name, _mode(n), n.backend or "-", n.era or "-",
                     str(len(n.services)) if n.services is not None else "-", sync])  # fmt: skip
    out += _table(rows)
    shown = report.services if all_services else differ
    if shown:
        out += ["", "SERVICE PORTS" + ("" if all_services else " THAT DIFFER")]
        for s in shown:
            out.append(f"{s.service}  {', '.join(s.frontends)}  — {s.majority}, on {len(s.nodes_with)} nodes")
            out += [f"    {d.node}: {d.what}" for d in s.nodes_differing]
    local = [s for s in report.services if s.local_endpoints and s.external_policy == "Local"]
    if local:
        out += ["", "externalTrafficPolicy=Local: LOCAL ENDPOINTS PER NODE"]
        for s in local:
            counts = " ".join(f"{n}:{c}" for n, c in s.local_endpoints.items())
            missing = [n for n in report.compared if n not in s.local_endpoints]
            holes = f" — NodePort {s.node_port} drops on {', '.join(s.blackholes)}" if s.blackholes else ""
            out.append(f"{s.service}  {counts}{' (absent: ' + ', '.join(missing) + ')' if missing else ''}{holes}")
    reach = [s for s in report.services if s.reach]
    if reach:
        out += ["", "NODEPORT / LOAD-BALANCER REACHABILITY"]
        for s in reach:
            where = f"*:{s.node_port}" if s.node_port is not None else "LB"
            out.append(f"{s.service} {where}: " + " · ".join(f"{x.node} {_STATE.get(x.state, x.state)}"
                                                             for x in s.reach))
            out += [f"    {x.node}: {x.detail}" for x in s.reach if x.state not in ("ok",)]
    detail = [r for r in report.nodes if r.node.leftovers or r.node.foreign or r.node.stale_conntrack
              or r.node.failed_parts or r.node.mode_note]  # fmt: skip
    if detail:
        out += ["", "PER NODE"]
        for r in detail:
            n = r.node
            out.append(f"{n.name}:")
            if n.mode_note:
                out.append(f"    mode: {n.mode_note}")
            out += [f"    {left}" for left in n.leftovers]
            for fr in n.foreign[:10]:
                idx = f" rule {fr.index}" if fr.index else ""
                out.append(f"    in front of kube-proxy: {fr.where}{idx}: {fr.rule} ({fr.effect}; ahead of {fr.ahead_of})")
            if len(n.foreign) > 10:
                out.append(f"    … and {len(n.foreign) - 10} more rules in front of kube-proxy's (--json lists all)")
            if n.stale_conntrack:
                out.append(f"    stale conntrack entries: {n.stale_conntrack} ({'; '.join(n.stale_examples)})")
            out += [f"    capture: {p}" for p in n.failed_parts]
    if report.findings:
        out += ["", "FINDINGS"]
        for f in report.findings:
            out.append(f"{f.severity:<7} {f.code}: {f.title}")
            if f.detail:
                out.append(f"        {f.detail}")
    return "\n".join(out) + "\n"
