"""``kptui services``: the service index as JSON-ready data, as a text table, and filtered by a search text.

The JSON form is a stable interface documented in the README: keys are only ever added. Text taken from the
dump goes through :func:`printable` here, so the table can never carry terminal escapes.
"""

from __future__ import annotations

import ipaddress
from fractions import Fraction
from typing import Any

from ..errors import printable
from .era import layout_to_dict
from .model import Endpoint, ServicePort

__all__ = ["endpoint_to_dict", "layout_to_dict", "matches_filter", "service_to_dict", "services_text"]


def _share(p: Fraction | None) -> float | None:
    return float(p) if p is not None else None


def _exact(p: Fraction | None) -> str | None:
    return f"{p.numerator}/{p.denominator}" if p is not None else None


def endpoint_to_dict(ep: Endpoint, service: ServicePort | None = None) -> dict[str, Any]:
    """One endpoint; with its ``service``, also whether the SEP chain's hash is name + protocol + address."""
    return {
        "address": ep.address, "ip": ep.ip, "port": ep.port, "chain": ep.chain,
        "hash_verified": service.endpoint_hash_matches(ep) if service is not None else None,
        "probability": _share(ep.probability), "probability_exact": _exact(ep.probability),
        "local_probability": _share(ep.local_probability),
        "local_probability_exact": _exact(ep.local_probability), "local": ep.local,
        "weight": ep.weight, "forward": ep.forward, "active_connections": ep.active,
        "inactive_connections": ep.inactive,
    }  # fmt: skip


def service_to_dict(s: ServicePort) -> dict[str, Any]:
    """One service port as a JSON-ready dict (see the README for every key)."""
    return {
        "name": s.name, "namespace": s.namespace, "service": s.service, "port_name": s.port_name,
        "name_source": s.name_source, "hash_verified": s.hash_verified, "chain_hash": s.chain_hash,
        "protocol": s.protocol, "cluster_ip": s.cluster_ip, "port": s.port, "node_port": s.node_port,
        "health_check_node_port": s.health_check_node_port, "external_ips": list(s.external_ips),
        "load_balancer_ips": list(s.load_balancer_ips), "external_or_lb_ips": list(s.external_or_lb_ips),
        "source_ranges": list(s.source_ranges), "external_traffic_policy": s.external_traffic_policy,
        "internal_traffic_policy": s.internal_traffic_policy, "affinity_timeout": s.affinity_timeout,
        "endpoints": [endpoint_to_dict(e, s) for e in s.endpoints],
        "chains": {k.lower(): v for k, v in s.chains.items()},
        "no_endpoints": s.no_endpoints, "no_local_endpoints": s.no_local_endpoints,
        "blocking_rules": [
            {"table": b.table, "chain": b.chain, "index": b.index, "line": b.line, "target": b.target,
             "reason": b.reason, "destination": b.destination}
            for b in s.blocking_rules
        ],
        "notes": list(s.notes),
        "mode": s.mode, "scheduler": s.scheduler,
        "virtual_services": [{"role": role, "key": key} for role, key in s.virtual_services],
    }  # fmt: skip


def matches_filter(s: ServicePort, text: str) -> bool:
    """``--filter``: a number matches a port, NodePort, health-check or endpoint port exactly; an IP address
    matches any of the service's addresses or endpoint IPs exactly, a CIDR any address inside it; ``tcp``,
    ``udp``, ``sctp`` the protocol; any other text matches (case-insensitively) a substring of the name
    (hence the namespace), a chain name or hash, an address or ``IP:PORT``."""
    text = text.strip()
    if not text:
        return True
    if text.isdigit():
        n = int(text)
        return n in (s.port, s.node_port, s.health_check_node_port) or any(e.port == n for e in s.endpoints)
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            return any(_in(ip, net) for ip in _ips(s))
        addr = str(ipaddress.ip_address(text))  # iptables-save prints addresses in this canonical form
        return any(ip == addr or ip.lower() == addr for ip in _ips(s))
    except ValueError:
        pass
    if text.lower() == s.protocol:
        return True
    parts = [s.name or "", s.chain_hash or "", *s.chains.values(), *s.all_ips(), *s.source_ranges]
    if s.cluster_ip and s.port is not None:
        parts.append(_hostport(s.cluster_ip, s.port))
    for e in s.endpoints:
        parts.append(e.address or "")
        parts.append(e.chain)
    return text.lower() in "\n".join(parts).lower()


def _ips(s: ServicePort) -> list[str]:
    return [*s.all_ips(), *(ip for e in s.endpoints if (ip := e.ip) is not None)]


def _in(ip: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(ip) in net
    except ValueError:
        return False


def _hostport(ip: str, port: int | None) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}" if port is not None else host


def _pct(p: Fraction | None) -> str:
    if p is None:
        return "?"
    return f"{float(p) * 100:.2f}%" if p < 1 else "100%"


_LOCAL = {True: "local", False: "remote", None: "?"}
_HEADER = ("SERVICE", "PROTO", "CLUSTER IP:PORT", "NODEPORT", "EXTERNAL / LB", "POLICY ext/int", "AFFINITY",
           "ENDPOINTS")  # fmt: skip


def _row(s: ServicePort) -> tuple[str, ...]:
    cluster = _hostport(s.cluster_ip, s.port) if s.cluster_ip else "-"
    ext = [*s.external_ips, *(f"lb:{ip}" for ip in s.load_balancer_ips),
           *(f"{ip}?" for ip in s.external_or_lb_ips)]  # fmt: skip
    if s.source_ranges:
        ext.append("from " + ",".join(s.source_ranges))
    policy = f"{s.external_traffic_policy or '-'}/{s.internal_traffic_policy or '-'}"
    affinity = f"{s.affinity_timeout}s" if s.affinity_timeout is not None else "-"
    if s.no_endpoints and not s.endpoints:
        eps = "none (REJECT)"
    else:
        local = sum(1 for e in s.endpoints if e.local)
        known = any(e.local is not None for e in s.endpoints)
        eps = f"{len(s.endpoints)}" + (f" ({local} local)" if known else "")
        if s.no_local_endpoints:
            eps += ", no local: DROP"
    node_port = str(s.node_port) if s.node_port is not None else "-"
    if s.health_check_node_port is not None:
        node_port += f" hc:{s.health_check_node_port}"
    return (s.label, s.protocol or "?", cluster, node_port, " ".join(ext) or "-", policy, affinity, eps)


def services_text(services: list[ServicePort] | tuple[ServicePort, ...], *, endpoints: bool = True) -> str:
    """A table, one row per service port, each followed by its endpoints (share of a first packet,
    locality)."""
    if not services:
        return "no services"
    rows = [tuple(printable(c) for c in _row(s)) for s in services]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_HEADER)]
    out = ["  ".join(h.ljust(w) for h, w in zip(_HEADER, widths)).rstrip()]
    for s, row in zip(services, rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if not endpoints:
            continue
        for e in s.endpoints:
            share = _pct(e.probability)
            if e.local_probability is not None and e.local_probability != e.probability:
                share += f" (local {_pct(e.local_probability)})"
            addr = printable(e.address or "?")
            tail = printable(e.chain) if e.chain else (f"weight {e.weight} {printable(e.forward or '')}".rstrip()
                                                       if e.weight is not None else "")  # fmt: skip
            out.append(f"    -> {addr:<24} {share:<20} {_LOCAL[e.local]:<6} {tail}".rstrip())
        if s.virtual_services:
            extra = [f"{printable(k)} ({r})" for r, k in s.virtual_services[1:]]
            out.append(f"    ipvs: {printable(s.scheduler or 'scheduler not listed')}"
                       + (f" persistent {s.affinity_timeout} s" if s.affinity_timeout is not None else "")
                       + (f"; also {', '.join(extra)}" if extra else ""))  # fmt: skip
        for note in s.notes:
            out.append(f"    note: {printable(note)}")
    unknown = sum(1 for s in services if s.name is None and s.mode != "ipvs")
    ipvs = sum(1 for s in services if s.mode == "ipvs")
    out.append("")
    out.append(f"{len(services)} service port{'s' if len(services) != 1 else ''}"
               + (f", {unknown} without a recoverable name (shown as ?HASH)" if unknown else ""))  # fmt: skip
    if any(s.mode == "nftables" for s in services):
        out.append("nftables mode: shares are the numgen maps' exact 1/N; health-check node ports have no rule "
                   "(kube-proxy only listens on them), so none is shown")  # fmt: skip
    if ipvs:
        out.append("IPVS mode: the IPVS table and kube-proxy's ipsets carry no names; each service port is shown as "
                   "its cluster IP's virtual service, shares are the schedulers' for a new connection")  # fmt: skip
    if any(s.external_or_lb_ips for s in services):
        out.append("IP? under EXTERNAL / LB: an external or a load-balancer IP (this node's rules do not "
                   "tell which); lb: marks a load-balancer IP")  # fmt: skip
    if endpoints and any(e.local is None for s in services for e in s.endpoints):
        out.append("locality ?: this node's rules do not tell (only Local traffic policies separate local "
                   "endpoints)")  # fmt: skip
    return "\n".join(out)
