"""``kptui diff``'s two forms: JSON-ready data (``diff_to_dict``) and text (``diff_text``).

The JSON form is a stable interface (``"format": "kptui.diff/1"``): keys are only ever added. Shares are
given as floats and as exact fractions (``"1/3"``). The text form reads like ``git diff --stat`` meets a
changelog, one line per finding so that it greps well::

    + shop/new:http  tcp 10.96.0.50:80, 2 endpoints
    - shop/old:http  tcp 10.96.0.51:80, 3 endpoints
    ~ default/web:http: endpoints 3 → 5 (+10.244.1.9:8080 +10.244.1.10:8080)
    ~ default/web:http: shares 33.3 % → 20.0 % for 10.244.1.7:8080 10.244.1.8:8080 10.244.1.9:8080

Every text taken from a dump goes through :func:`printable`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..errors import printable
from .diff_model import EndpointDelta, FieldChange, NodeDiff, ServiceChange, ServiceDiff, Value
from .model import ServicePort
from .report import service_to_dict

__all__ = ["FORMAT", "diff_text", "diff_to_dict"]

FORMAT = "kptui.diff/1"
_LIST_LIMIT = 6  # endpoints or renames listed on one line before "… and N more"
_LABELS = {
    "name": "name", "protocol": "protocol", "cluster_ip": "cluster IP", "port": "port", "node_port": "NodePort",
    "health_check_node_port": "health-check NodePort", "external_traffic_policy": "externalTrafficPolicy",
    "internal_traffic_policy": "internalTrafficPolicy", "affinity_timeout": "session affinity",
    "no_endpoints": "no endpoints (REJECT)", "no_local_endpoints": "no local endpoints (DROP)",
    "external_ips": "external IPs", "load_balancer_ips": "load-balancer IPs",
    "external_or_lb_ips": "external/LB IPs", "source_ranges": "loadBalancerSourceRanges", "chains": "chains",
    # node level (layout_to_dict keys)
    "kube_proxy": "kube-proxy rules", "era": "kube-proxy era", "backends_present": "backends present",
    "ipvs_leftovers": "IPVS leftovers", "local_detector": "local-traffic detector",
    "local_detector_values": "local-traffic detector values", "localhost_nodeports": "NodePorts on localhost",
    "nodeport_addresses": "--nodeport-addresses", "nfacct": "nfacct counters",
    "masquerade_mark": "masquerade mark", "drop_mark": "drop mark", "random_fully": "MASQUERADE --random-fully",
    "kubelet_chains": "kubelet chains", "mode": "kube-proxy mode", "ip_service_cidrs": "ServiceCIDRs (ip)",
    "ip6_service_cidrs": "ServiceCIDRs (ip6)", "ip_base_chains": "base chains (ip)",
    "ip6_base_chains": "base chains (ip6)",
}  # fmt: skip


# -- JSON -------------------------------------------------------------------------------------------------
def _json(v: Value | Fraction) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, Fraction):
        return float(v)
    return v


def _exact(v: object) -> str | None:
    return f"{v.numerator}/{v.denominator}" if isinstance(v, Fraction) else None


def _field(f: FieldChange) -> dict[str, Any]:
    return {"field": f.field, "old": _json(f.old), "new": _json(f.new)}


def change_to_dict(c: ServiceChange) -> dict[str, Any]:
    """One changed service port."""
    return {
        "label": c.label, "name": c.new.name or c.old.name, "protocol": c.new.protocol,
        "chain_hash": c.new.chain_hash, "old_chain_hash": c.old.chain_hash, "matched_by": c.matched_by,
        "endpoints": {"old": c.scale[0], "new": c.scale[1], "added": list(c.endpoints_added),
                      "removed": list(c.endpoints_removed)},
        "endpoint_changes": [
            {"endpoint": d.endpoint, "field": d.field, "old": _json(d.old), "new": _json(d.new),
             "old_exact": _exact(d.old), "new_exact": _exact(d.new)}
            for d in c.endpoint_changes
        ],
        "renames": [{"kind": r.kind, "old": r.old, "new": r.new, "endpoint": r.endpoint} for r in c.renames],
        "changes": [_field(f) for f in c.fields],
    }  # fmt: skip


def node_to_dict(n: NodeDiff) -> dict[str, Any]:
    return {
        "layout": [_field(f) for f in n.layout],
        "chains_added": [{"table": t, "chain": c} for t, c in n.chains_added],
        "chains_removed": [{"table": t, "chain": c} for t, c in n.chains_removed],
        "rules_added": [{"table": r.table, "chain": r.chain, "rule": r.text, "count": r.count}
                        for r in n.rules_added],
        "rules_removed": [{"table": r.table, "chain": r.chain, "rule": r.text, "count": r.count}
                          for r in n.rules_removed],
    }  # fmt: skip


def diff_to_dict(d: ServiceDiff) -> dict[str, Any]:
    """The whole diff as JSON-ready data (stable keys; see the README)."""
    return {
        "format": FORMAT,
        "old": {"source": d.old_source, "service_ports": d.old_count, "mode": d.old_mode},
        "new": {"source": d.new_source, "service_ports": d.new_count, "mode": d.new_mode},
        "identical": d.empty, "filtered": d.filtered,
        "mode_switch": {"old": d.old_mode, "new": d.new_mode, "same_services": _same_services(d)}
        if d.mode_switch else None,
        "counts": {"added": len(d.added), "removed": len(d.removed), "changed": len(d.changed),
                   "unchanged": len(d.unchanged)},
        "added": [service_to_dict(s) for s in d.added],
        "removed": [service_to_dict(s) for s in d.removed],
        "changed": [change_to_dict(c) for c in d.changed],
        "node": node_to_dict(d.node),
    }  # fmt: skip


def _same_services(d: ServiceDiff) -> bool:
    return not (d.added or d.removed or d.changed)


# -- text -------------------------------------------------------------------------------------------------
def _pct(p: Fraction | None, places: int = 1) -> str:
    if p is None:
        return "?"
    if p in (0, 1):
        return f"{int(p) * 100} %"
    return f"{float(p) * 100:.{places}f} %"


def shares(old: Fraction | None, new: Fraction | None) -> str:
    """``33.3 % → 20.0 %``, with more decimals when one would hide the difference."""
    for places in (1, 2, 4, 6):
        a, b = _pct(old, places), _pct(new, places)
        if a != b:
            break
    return f"{a} → {b}"


def _hostport(ip: str | None, port: int | None) -> str:
    host = f"[{ip}]" if ip and ":" in ip else (ip or "-")
    return f"{host}:{port}" if port is not None else host


def _some(items: list[str] | tuple[str, ...], limit: int = _LIST_LIMIT) -> str:
    shown = " ".join(items[:limit])
    return shown + (f" … and {len(items) - limit} more" if len(items) > limit else "")


def _value(field: str, v: Value) -> str:
    if field == "affinity_timeout":
        return "off" if v is None else f"ClientIP {v} s"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, tuple):
        return ",".join(v) if v else "none"
    return "none" if v is None else str(v)


def field_text(f: FieldChange) -> str:
    label = _LABELS.get(f.field, f.field)
    if isinstance(f.old, tuple) and isinstance(f.new, tuple) and f.field != "chains":
        plus = [f"+{x}" for x in f.new if x not in f.old]
        minus = [f"-{x}" for x in f.old if x not in f.new]
        return f"{label} {_some(plus + minus)}"
    return f"{label} {_value(f.field, f.old)} → {_value(f.field, f.new)}"


def _endpoint_lines(c: ServiceChange) -> list[str]:
    out: list[str] = []
    if c.endpoints_added or c.endpoints_removed:
        listed = [f"+{a}" for a in c.endpoints_added] + [f"-{a}" for a in c.endpoints_removed]
        out.append(f"endpoints {c.scale[0]} → {c.scale[1]} ({_some(listed)})")
    for field, what in (("probability", "shares"), ("local_probability", "local shares")):
        moves = [(d.endpoint, shares(_frac(d.old), _frac(d.new))) for d in c.endpoint_changes if d.field == field]
        if len(moves) > 1 and len({m for _, m in moves}) == 1:  # every endpoint moved alike (to the decimal)
            out.append(f"{what} {moves[0][1]} for {_some([e for e, _ in moves])}")
        else:
            out += [f"{what[:-1]} of {endpoint} {move}" for endpoint, move in moves]
    for d in c.endpoint_changes:
        if d.field == "local":
            out.append(f"endpoint {d.endpoint} {_local(d)}")
    return out


def _frac(v: Fraction | bool | None) -> Fraction | None:
    return v if isinstance(v, Fraction) else None


def _local(d: EndpointDelta) -> str:
    return f"{'local' if d.old else 'remote'} → {'local' if d.new else 'remote'}"


def change_lines(c: ServiceChange) -> list[str]:
    """``~ LABEL: finding`` lines for one changed service port."""
    items = [field_text(f) for f in c.fields if f.field == "name"]
    items += _endpoint_lines(c)
    items += [field_text(f) for f in c.fields if f.field != "name"]
    own = [r for r in c.renames if r.endpoint is None]
    seps = [r for r in c.renames if r.endpoint is not None]
    items += [f"chain {r.old} → {r.new}" for r in own]
    if seps:
        listed = [f"{r.endpoint}: {r.old} → {r.new}" for r in seps]
        items.append(f"{len(seps)} endpoint chain{'s' if len(seps) != 1 else ''} renamed ("
                     + "; ".join(listed[:3]) + (f"; … and {len(listed) - 3} more" if len(listed) > 3 else "")
                     + ")")  # fmt: skip
    label = printable(c.label)
    return [f"~ {label}: {printable(item)}" for item in items]


def service_line(sign: str, s: ServicePort) -> str:
    """``+ LABEL  tcp 10.96.0.10:53, NodePort 30053, 2 endpoints`` (``-`` for a removed one)."""
    parts = [f"{s.protocol or '?'} {_hostport(s.cluster_ip, s.port)}"]
    if s.node_port is not None:
        parts.append(f"NodePort {s.node_port}")
    ext = [*s.external_ips, *s.load_balancer_ips, *s.external_or_lb_ips]
    if ext:
        parts.append("external " + ",".join(ext))
    if s.no_endpoints and not s.endpoints:
        parts.append("no endpoints (REJECT)")
    else:
        parts.append(f"{len(s.endpoints)} endpoint{'s' if len(s.endpoints) != 1 else ''}")
    return printable(f"{sign} {s.label}  {', '.join(parts)}")


def node_lines(n: NodeDiff) -> list[str]:
    out = [printable(f"~ node: {field_text(f)}") for f in n.layout]
    out += [printable(f"+ node: chain {t or '-'} {c}") for t, c in n.chains_added]
    out += [printable(f"- node: chain {t or '-'} {c}") for t, c in n.chains_removed]
    for sign, rules in (("+", n.rules_added), ("-", n.rules_removed)):
        for r in rules:
            times = f" (×{r.count})" if r.count > 1 else ""
            out.append(printable(f"{sign} node: {r.table or '-'} {r.chain}: {r.text}{times}"))
    return out


def diff_text(d: ServiceDiff) -> str:
    """The diff as text: a header, one line per finding, and a summary line."""
    out = [printable(f"--- {d.old_source or 'old'} ({_ports(d.old_count)})"),
           printable(f"+++ {d.new_source or 'new'} ({_ports(d.new_count)})")]  # fmt: skip
    if d.filtered:
        out.append("(--filter: only the matching service ports; node-level changes are not shown)")
    out += [service_line("+", s) for s in sorted(d.added, key=_order)]
    out += [service_line("-", s) for s in sorted(d.removed, key=_order)]
    for c in d.changed:
        out += change_lines(c)
    node = node_lines(d.node)
    out += node
    if d.mode_switch:
        n = len(d.added) + len(d.removed) + len(d.changed)
        what = (f"the same {_ports(len(d.unchanged))}, endpoints and shares" if not n else
                f"{n} of the service ports differ (above)")  # fmt: skip
        out.append(f"mode switch: {d.old_mode} → {d.new_mode} mode, {what}")
    summary = (f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
               f"{len(d.unchanged)} unchanged service port{'s' if len(d.unchanged) != 1 else ''}")  # fmt: skip
    if not d.filtered:
        summary += f"; {len(node)} node-level change{'s' if len(node) != 1 else ''}"
    out.append("")
    out.append(("no differences: " if d.empty else "") + summary)
    return "\n".join(out)


def _ports(n: int) -> str:
    return f"{n} service port{'s' if n != 1 else ''}"


def _order(s: ServicePort) -> tuple[str, str]:
    return (s.label, s.protocol or "")
