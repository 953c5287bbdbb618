"""The findings of a fleet comparison, most severe first: failed captures, stale nodes, nodes in another mode,
leftovers of another mode, other components' rules in front of kube-proxy's that not every node has, NodePorts
that blackhole on some nodes, stale conntrack entries, service ports without a majority."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .fleet_model import FleetFinding, NodeRow, ServiceRow

__all__ = ["fleet_findings"]

_ORDER = {"error": 0, "warning": 1, "info": 2}


def _names(nodes: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(nodes[:limit])
    return shown + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


def _node_findings(nodes: Sequence[NodeRow]) -> list[FleetFinding]:
    out: list[FleetFinding] = []
    for row in nodes:
        n = row.node
        if n.error is not None:
            out.append(FleetFinding("capture-failed", "error", f"node {n.name}: its capture failed", n.error, (n.name,)))
            continue
        if n.failed_parts:
            out.append(FleetFinding("parts-failed", "warning", f"node {n.name}: parts of its capture failed",
                                    "; ".join(n.failed_parts), (n.name,)))  # fmt: skip
        if n.mode is None:
            out.append(FleetFinding("mode-unknown", "warning", f"node {n.name}: kube-proxy's mode is not known",
                                    n.mode_note or "", (n.name,)))  # fmt: skip
        elif not n.compared:
            out.append(FleetFinding("services-not-compared", "info", f"node {n.name}: {n.services_note}",
                                    f"its mode is {n.mode} ({n.mode_source}); kptui cannot build that mode's "
                                    "service ports yet, so they are left out of the comparison", (n.name,)))
        for left in n.leftovers:
            out.append(FleetFinding("leftovers", "warning", f"node {n.name}: leftovers of another mode", left,
                                    (n.name,)))  # fmt: skip
        if n.stale_conntrack:
            entries = "entry DNATs" if n.stale_conntrack == 1 else "entries DNAT"
            out.append(FleetFinding("stale-conntrack", "warning", f"node {n.name}: {n.stale_conntrack} conntrack "
                                    f"{entries} to endpoints that are gone", "; ".join(n.stale_examples) +
                                    " (kptui conntrack on its bundle lists them with the conntrack -D command)",
                                    (n.name,)))  # fmt: skip
    return out


def _stale(nodes: Sequence[NodeRow]) -> list[FleetFinding]:
    out = []
    compared = [r for r in nodes if r.node.compared]
    for row in compared:
        if row.differs and len(compared) >= 3:
            out.append(FleetFinding("stale-node", "error", f"node {row.name}: its rules differ from the majority's "
                                    f"in {row.differs} service ports", f"{row.sync}: its kube-proxy may have stopped "
                                    "syncing (or the capture caught a change under way)", (row.name,)))
    return out


def _modes(nodes: Sequence[NodeRow]) -> list[FleetFinding]:
    out = []
    modes = Counter(r.node.mode for r in nodes if r.node.mode is not None)
    main_mode = modes.most_common(1)[0][0] if modes else None
    for attr, code, what in (("mode", "mode-differs", "mode"), ("backend", "backend-differs", "iptables backend"),
                             ("era", "era-differs", "kube-proxy layout era")):  # fmt: skip
        # backends and eras are compared among the nodes in the most common mode (another mode has its own)
        values = {r.name: getattr(r.node, attr) for r in nodes if getattr(r.node, attr) is not None
                  and (attr == "mode" or r.node.mode == main_mode)}  # fmt: skip
        counts = Counter(values.values())
        if len(counts) < 2:
            continue
        top, n = counts.most_common(1)[0]
        odd = [name for name, v in values.items() if v != top]
        detail = "; ".join(f"{v}: {_names([k for k, w in values.items() if w == v])}" for v in counts)
        severity = "warning" if attr == "mode" else "info"
        if n * 2 > len(values):
            nodes_ = "node" if len(odd) == 1 else "nodes"
            out.append(FleetFinding(code, severity, f"{len(odd)} {nodes_} in another {what} than the majority's "
                                    f"({top}): {_names(odd)}", detail, tuple(odd)))  # fmt: skip
        else:
            out.append(FleetFinding(code, severity, f"the nodes disagree on the {what} (no majority)", detail,
                                    tuple(values)))  # fmt: skip
    return out


def _foreign(nodes: Sequence[NodeRow]) -> list[FleetFinding]:
    rows = [r for r in nodes if r.node.error is None]
    if not rows:
        return []
    counts = Counter(k for r in rows for k in {f.key for f in r.node.foreign})
    out = []
    for r in rows:
        odd = [f for f in r.node.foreign if counts[f.key] * 2 <= len(rows)]
        if odd:
            shown = "; ".join(f"{f.where}{f' rule {f.index}' if f.index else ''}: {f.rule} ({f.effect}, ahead of "
                              f"{f.ahead_of})" for f in odd[:5])  # fmt: skip
            more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
            rules = "rule of another component" if len(odd) == 1 else "rules of other components"
            out.append(FleetFinding("foreign-in-front", "warning", f"node {r.name}: {len(odd)} {rules} in front of "
                                    "kube-proxy's that most nodes do not have",
                                    shown + more, (r.name,)))  # fmt: skip
    common = [k for k, c in counts.items() if c * 2 > len(rows)]
    if common:
        out.append(FleetFinding("foreign-common", "info", f"{len(common)} rules of other components run in front of "
                                "kube-proxy's on most nodes (the cluster's CNI or firewall?)",
                                "; ".join(f"{w}: {t}" for w, t in common[:5]), ()))  # fmt: skip
    return out


def _services(rows: Sequence[ServiceRow]) -> list[FleetFinding]:
    out = []
    for row in rows:
        if row.blackholes and row.node_port is not None:
            local = [n for n, c in row.local_endpoints.items() if c]
            out.append(FleetFinding("nodeport-blackhole", "warning", f"{row.service}: NodePort {row.node_port} drops "
                                    f"on {len(row.blackholes)} of {len(row.reach)} nodes",
                                    f"externalTrafficPolicy Local, and no local endpoint on {_names(list(row.blackholes))}; "
                                    f"local endpoints on {_names(local) if local else 'no node'} (load balancers "
                                    "steer clear of the others through the health-check NodePort; direct NodePort "
                                    "clients do not)", row.blackholes, row.service))  # fmt: skip
        other = [r for r in row.reach if r.state in ("drop", "reject", "partly") and r.node not in row.blackholes
                 and "no endpoints" not in r.detail]  # fmt: skip
        if other:
            out.append(FleetFinding("nodeport-blocked", "warning", f"{row.service}: not reachable through "
                                    f"{'NodePort ' + str(row.node_port) if row.node_port else 'its load balancer'} on "
                                    f"{_names([r.node for r in other])}", "; ".join(f"{r.node}: {r.detail}"
                                                                                  for r in other),
                                    tuple(r.node for r in other), row.service))  # fmt: skip
        split = [d for d in row.nodes_differing if d.kind == "no-majority"]
        if split:
            out.append(FleetFinding("no-majority", "warning", f"{row.service}: the nodes disagree, no majority",
                                    "; ".join(f"{d.node}: {d.what}" for d in split[:5]), tuple(d.node for d in split),
                                    row.service))  # fmt: skip
    return out


def fleet_findings(nodes: Sequence[NodeRow], rows: Sequence[ServiceRow]) -> tuple[FleetFinding, ...]:
    found = [*_node_findings(nodes), *_stale(nodes), *_modes(nodes), *_foreign(nodes), *_services(rows)]
    captured = [r.node.captured for r in nodes if r.node.captured is not None]
    if len(captured) > 1 and max(captured) - min(captured) > 60:
        found.append(FleetFinding("capture-skew", "info", f"the captures span {max(captured) - min(captured):.0f} s",
                                  "a change made while the nodes were read shows as a difference between them"))
    return tuple(sorted(found, key=lambda f: _ORDER.get(f.severity, 3)))
