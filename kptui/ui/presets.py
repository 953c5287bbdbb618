"""Packet presets built from a service's frontends: "pod → this ClusterIP", "outside → this NodePort", …"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import NamedTuple

from kptui.engine.kube.explain_common import hostport

from .services import Frontend, ServiceInfo

__all__ = ["OUTSIDE_CLIENT", "Preset", "pod_source", "presets_for"]

OUTSIDE_CLIENT = "203.0.113.10"  # TEST-NET-3: an address no cluster owns
OUTSIDE_CLIENT6 = "2001:db8::10"


class Preset(NamedTuple):
    label: str
    fields: dict[str, str]  # packet builder field id → value


def pod_source(pod_cidr: str | None) -> str:
    """A plausible pod address inside the pod CIDR (the dump's local-traffic detector), else empty."""
    if not pod_cidr:
        return ""
    try:
        net = ipaddress.ip_network(pod_cidr, strict=False)
    except ValueError:
        return ""
    offset = 261 if net.num_addresses > 512 else 5 if net.num_addresses > 8 else 1
    return str(net.network_address + offset)


def _family(text: str | None) -> int | None:
    try:
        return ipaddress.ip_network(text or "", strict=False).version
    except ValueError:
        return None


def _first_of(family: int | None, values: Sequence[str]) -> str | None:
    """The first of ``values`` (addresses or CIDRs) of that IP family (any family for None)."""
    return next((v for v in values if family is None or _family(v) == family), None)


def presets_for(service: ServiceInfo, *, node_ips: Sequence[str] = (), pod_cidrs: Sequence[str] = ()) -> list[Preset]:
    """The presets for each of the service's frontends, the node address and pod CIDR taken of the
    frontend's IP family (a dual-stack node: the IPv6 ClusterIP gets an IPv6 pod source)."""
    out: list[Preset] = []
    for fe in service.frontends:
        family = _family(fe.ip) if fe.ip else _family(_first_of(None, node_ips))
        node_ip = _first_of(family, node_ips) or ""
        out.extend(_presets(service.name, fe, node_ip, _first_of(family, pod_cidrs), family == 6))
    return out


def _presets(name: str, fe: Frontend, node_ip: str, pod_cidr: str | None, v6: bool) -> list[Preset]:
    outside = OUTSIDE_CLIENT6 if v6 else OUTSIDE_CLIENT
    base = {"proto": fe.proto, "dport": str(fe.port), "sport": "", "in_iface": "", "mark": "0", "ctstate": "NEW"}
    where = hostport(fe.ip, fe.port, fe.proto)
    if fe.kind == "cluster-ip":
        return [Preset(f"pod → ClusterIP {where} ({name})",
                       {**base, "origin": "pod", "src": pod_source(pod_cidr), "dst": fe.ip or ""})]
    if fe.kind == "nodeport":
        return [
            Preset(f"outside → NodePort {where} ({name})",
                   {**base, "origin": "external", "src": outside, "dst": node_ip}),
            Preset(f"node → NodePort {where} ({name})",
                   {**base, "origin": "local", "src": node_ip, "dst": node_ip}),
        ]  # fmt: skip
    label = {"loadbalancer": "LoadBalancer IP", "external-ip": "external IP"}.get(fe.kind, fe.kind)
    return [Preset(f"outside → {label} {where} ({name})",
                   {**base, "origin": "external", "src": outside, "dst": fe.ip or ""})]
