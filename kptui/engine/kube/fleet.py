"""Compare the nodes of a fleet: :func:`compare_fleet` takes the :class:`~.fleet_model.FleetNode` s (from
:func:`~.fleet_node.fleet_node`) and finds, per service port, the nodes whose rules differ from the majority's
(and in what), the nodes without it, its eTP=Local endpoints per node and where its NodePort blackholes, its
NodePort and load-balancer reachability per node; per node, how far its rules are from the majority's (its
kube-proxy's last sync, as far as the rules show it); and the findings (:mod:`.fleet_findings`).

Only nodes whose services could be built are compared (:attr:`FleetNode.compared`); a majority is more than
half of the nodes that have the service port, and where there is none the comparison says so instead of
picking a side. Service ports are matched by name and protocol; a port without a name (IPVS mode) by its
cluster IP, port and protocol. Pure: values in, values out.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from types import MappingProxyType

from .fleet_findings import fleet_findings
from .fleet_model import Difference, FleetNode, FleetReport, NodeRow, Reach, ServiceRow
from .fleet_reach import reach_of
from .model import ServicePort

__all__ = ["compare_fleet", "service_key"]

_SETTINGS = (("cluster_ip", "cluster IP"), ("port", "port"), ("node_port", "NodePort"),
             ("health_check_node_port", "health-check NodePort"), ("external_ips", "external IPs"),
             ("load_balancer_ips", "load-balancer IPs"), ("source_ranges", "source ranges"),
             ("external_traffic_policy", "externalTrafficPolicy"),
             ("internal_traffic_policy", "internalTrafficPolicy"), ("affinity_timeout", "session affinity"))  # fmt: skip


def service_key(sp: ServicePort) -> str:
    """What ties one service port's entries on several nodes together."""
    if sp.name:
        return f"{sp.name} {sp.protocol or '?'}"
    if sp.cluster_ip and sp.port is not None:
        return f"{sp.protocol or '?'} {sp.cluster_ip}:{sp.port}"
    return f"?{sp.chain_hash or id(sp)}"


def _frontend(ip: str, port: int | None, proto: str | None) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}/{proto or '?'}"


def frontends(sp: ServicePort) -> tuple[str, ...]:
    out = [_frontend(sp.cluster_ip, sp.port, sp.protocol)] if sp.cluster_ip else []
    if sp.node_port is not None:
        out.append(f"*:{sp.node_port}/{sp.protocol or '?'} (NodePort)")
    out += [_frontend(ip, sp.port, sp.protocol) + " (external IP)" for ip in sp.external_ips]
    out += [_frontend(ip, sp.port, sp.protocol) + " (load balancer)" for ip in sp.load_balancer_ips]
    out += [_frontend(ip, sp.port, sp.protocol) + " (external or LB IP)" for ip in sp.external_or_lb_ips]
    return tuple(out)


def _local_policy(sp: ServicePort) -> bool:
    return sp.internal_traffic_policy == "Local"


def _endpoints(sp: ServicePort) -> frozenset[str]:
    return frozenset(e.address or e.chain for e in sp.endpoints)


def _shares(sp: ServicePort) -> tuple[tuple[str, Fraction | None], ...]:
    return tuple(sorted(((e.address or e.chain, e.probability) for e in sp.endpoints), key=lambda x: x[0]))


def _setting(sp: ServicePort, attr: str) -> object:
    value = getattr(sp, attr)
    return tuple(sorted(value)) if isinstance(value, tuple) else value


def _show(value: object) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _majority(values: dict[str, object]) -> tuple[object, bool]:
    """The value more than half of the nodes have (and True), or the most common one and False."""
    counts = Counter(values.values())
    top, n = counts.most_common(1)[0]
    return top, n * 2 > len(values)


def _tally(values: list[tuple[tuple[str, Fraction | None], ...]]) -> list[tuple[tuple[tuple[str, Fraction | None], ...], int]]:
    """Distinct values by equality, most common first (Fractions hash slowly; there are few distinct values)."""
    seen: list[list[object]] = []
    for v in values:
        for entry in seen:
            if entry[0] == v:
                entry[1] = int(entry[1]) + 1  # type: ignore[call-overload]
                break
        else:
            seen.append([v, 1])
    seen.sort(key=lambda e: -int(e[1]))  # type: ignore[call-overload]
    return [(e[0], int(e[1])) for e in seen]  # type: ignore[misc, call-overload]


def _pct(p: Fraction | None) -> str:
    return "?" if p is None else f"{float(p) * 100:.1f} %"


def _compare_entries(entries: dict[str, ServicePort]) -> tuple[list[Difference], str, tuple[str, ...]]:
    """The differences of each node from the majority among ``entries`` (node → its entry)."""
    diffs: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    split = False

    def add(node: str, kind: str, what: str) -> None:
        diffs.setdefault(node, []).append(what)
        kinds.setdefault(node, kind)

    some = next(iter(entries.values()))
    local = any(_local_policy(sp) for sp in entries.values())
    eps = {n: _endpoints(sp) for n, sp in entries.items()}
    counts = Counter(eps.values())
    top_eps, top_n = counts.most_common(1)[0]
    eps_major = top_n * 2 > len(eps)
    if not local:
        for node, mine in eps.items():
            if mine == top_eps:
                continue
            if not eps_major:
                split = True
            plus, minus = sorted(mine - top_eps), sorted(top_eps - mine)
            what = " ".join([*(f"+{a}" for a in plus), *(f"−{a}" for a in minus)])
            ref = "the majority" if eps_major else "the most common set (no majority)"
            add(node, "endpoints" if eps_major else "no-majority", f"endpoints {what} ({ref}: {len(top_eps)})")
        same = {n: _shares(sp) for n, sp in entries.items() if eps[n] == top_eps}
        if len(same) > 1:
            top_sh, sh_n = _tally(list(same.values()))[0]
            for node, shares in same.items():
                if shares != top_sh and sh_n * 2 > len(same):
                    changed = [f"{a} {_pct(p)} ({_pct(q)})" for (a, p), (_, q) in zip(shares, top_sh, strict=True)
                               if p != q]  # fmt: skip
                    add(node, "shares", "shares " + ", ".join(changed) + " (the majority's in brackets)")
    for attr, label in _SETTINGS:
        values = {n: _setting(sp, attr) for n, sp in entries.items()}
        if len(set(values.values())) == 1:
            continue
        top, major = _majority(values)
        for node, value in values.items():
            if value != top:
                split |= not major
                ref = "the majority" if major else "most nodes"
                add(node, "setting" if major else "no-majority", f"{label} {_show(value)} ({ref}: {_show(top)})")
    if local:
        summary = f"internalTrafficPolicy Local: each node its own endpoints ({len(some.endpoints)} here)"
    else:
        summary = f"{len(top_eps)} endpoint{'s' if len(top_eps) != 1 else ''}" + ("" if not split else
                                                                                   " (no majority)")
    out = [Difference(n, kinds[n], "; ".join(ws)) for n, ws in diffs.items()]
    return out, summary, tuple(sorted(top_eps))


def _local_counts(entries: dict[str, ServicePort]) -> dict[str, int]:
    return {n: sum(1 for e in sp.endpoints if e.local) for n, sp in entries.items()}


def _row(key: str, entries: dict[str, ServicePort], compared: Sequence[FleetNode]) -> ServiceRow:
    names = [n.name for n in compared]
    have = [n for n in names if n in entries]
    lack = [n for n in names if n not in entries]
    diffs, summary, endpoints = _compare_entries(entries)
    if lack:
        if len(have) * 2 > len(names):
            diffs += [Difference(n, "missing", f"missing (on {len(have)} of {len(names)} nodes)") for n in lack]
        elif len(have) * 2 < len(names):
            diffs += [Difference(n, "extra", f"only on {len(have)} of {len(names)} nodes ({', '.join(have)})")
                      for n in have]  # fmt: skip
        else:
            diffs += [Difference(n, "no-majority", f"on {len(have)} of {len(names)} nodes: no majority either way")
                      for n in names]  # fmt: skip
    merged: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for d in diffs:
        merged.setdefault(d.node, []).append(d.what)
        kinds.setdefault(d.node, d.kind)
    order = {n: i for i, n in enumerate(names)}
    differing = tuple(Difference(n, kinds[n], "; ".join(ws)) for n, ws in sorted(merged.items(),
                                                                                  key=lambda kv: order[kv[0]]))
    # an entry with the majority's endpoints speaks for the service: its name, addresses, policy
    ref = entries[next((n for n in have if tuple(sorted(_endpoints(entries[n]))) == endpoints), have[0])]
    etp = ref.external_traffic_policy
    local_eps = _local_counts(entries) if etp == "Local" or _local_policy(ref) else {}
    reach: tuple[Reach, ...] = ()
    if any(sp.node_port is not None or sp.load_balancer_ips for sp in entries.values()):
        reach = tuple(reach_of(ref, node, entries.get(node.name)) for node in compared)
    blackholes = tuple(r.node for r in reach if r.state == "drop" and "local endpoint" in r.detail)
    return ServiceRow(key, ref.label, ref.protocol, ref.cluster_ip, ref.port, ref.node_port, frontends(ref),
                      tuple(have), tuple(lack), summary, endpoints, differing, etp, MappingProxyType(local_eps),
                      blackholes, reach, MappingProxyType(dict(entries)))  # fmt: skip


def _group(compared: Sequence[FleetNode]) -> dict[str, dict[str, ServicePort]]:
    """key → node → entry; unnamed ports join a named group with their cluster IP, port and protocol."""
    groups: dict[str, dict[str, ServicePort]] = {}
    by_frontend: dict[tuple[object, ...], str] = {}
    unnamed: list[tuple[str, ServicePort]] = []
    for node in compared:
        for sp in node.services or ():
            if not sp.name:
                unnamed.append((node.name, sp))
                continue
            key = service_key(sp)
            groups.setdefault(key, {}).setdefault(node.name, sp)
            by_frontend.setdefault((sp.protocol, sp.cluster_ip, sp.port), key)
    for name, sp in unnamed:
        key = by_frontend.get((sp.protocol, sp.cluster_ip, sp.port)) or service_key(sp)
        groups.setdefault(key, {}).setdefault(name, sp)
    return groups


def _sync(node: FleetNode, rows: Sequence[ServiceRow]) -> tuple[str, int]:
    if not node.compared:
        return (f"unknown: {node.services_note}" if node.services_note else "unknown"), 0
    mine = [r.difference(node.name) for r in rows]
    diffs = [d for d in mine if d is not None and d.kind != "no-majority"]
    if not diffs:
        return "in step with the majority", 0
    count = Counter(d.kind for d in diffs)
    parts = [f"{count[k]} {label}" for k, label in (("missing", "missing"), ("extra", "extra"),
                                                    ("endpoints", "with other endpoints"),
                                                    ("shares", "with other shares"), ("setting", "with other settings"))
             if count[k]]  # fmt: skip
    return f"behind or ahead of the majority in {len(diffs)} service ports ({', '.join(parts)})", len(diffs)


def compare_fleet(nodes: Sequence[FleetNode], *, service: str | None = None) -> FleetReport:
    """The comparison of ``nodes`` (see the module doc); ``service`` (``ns/name`` or ``ns/name:port``) keeps the
    rows of that service only (the node columns still say how far each node is from the majority)."""
    compared = [n for n in nodes if n.compared]
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small acyclic values next to the nodes' big rulesets: the collector would walk those
    try:
        groups = _group(compared)
        rows = [_row(key, entries, compared) for key, entries in sorted(groups.items())]
    finally:
        if gc_was_enabled:
            gc.enable()
    notes = []
    skipped = [n for n in nodes if not n.compared]
    if skipped:
        notes.append("not compared: " + "; ".join(f"{n.name} ({n.services_note})" for n in skipped))
    if len(compared) < 3 and len(compared) > 1:
        notes.append(f"only {len(compared)} nodes compared: a majority of two is no majority (differences are "
                     "shown both ways)")  # fmt: skip
    node_rows = []
    for n in nodes:
        sync, differs = _sync(n, rows)
        node_rows.append(NodeRow(n, sync, differs))
    findings = fleet_findings(node_rows, rows)
    if service:
        rows = [r for r in rows if r.service == service or r.service.startswith(service + ":")]
    return FleetReport(tuple(node_rows), tuple(rows), findings, tuple(n.name for n in compared), tuple(notes))
