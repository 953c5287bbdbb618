"""Packet presets built from a service's frontends: "pod → this ClusterIP", "outside → this NodePort", …"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import NamedTuple

from kptui.engine.kube.explain_common import hostport

from .services import Frontend, ServiceInfo

__all__ = ["NODE_NEEDED", "OUTSIDE_CLIENT", "Preset", "pod_source", "presets_for"]

NODE_NEEDED = "a NodePort is reached on the node's own address: type the node's IP here, then enter"

OUTSIDE_CLIENT = "203.0.113.10"  # TEST-NET-3: an address no cluster owns
OUTSIDE_CLIENT6 = "2001:db8::10"


class Preset(NamedTuple):
    label: str
    fields: dict[str, str]  # packet builder field id → value
    node_fields: tuple[str, ...] = ()  # the fields that take the node's own address (empty while unknown)


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


def presets_for(service: ServiceInfo, *, node_ips: Sequence[str] = (), pod_cidrs: Sequence[str] = (),
                family: int | None = None) -> list[Preset]:
    """The presets for each of the service's frontends, the node address and pod CIDR taken of the
    frontend's IP family (a dual-stack node: the IPv6 ClusterIP gets an IPv6 pod source). A frontend without
    an address of its own (a NodePort) takes the family of the node address: the first of ``family`` (the
    dump's, when it says), else the first typed; none typed, ``family``. The labels and their order never
    depend on the node (the palette lists them without it)."""
    out: list[Preset] = []
    for fe in service.frontends:
        if fe.ip:
            fe_family = _family(fe.ip)
        else:
            first = _first_of(family, node_ips) or _first_of(None, node_ips)
            fe_family = _family(first) if first else family
        node_ip = _first_of(fe_family, node_ips) or ""
        out.extend(_presets(service.name, fe, node_ip, _first_of(fe_family, pod_cidrs), fe_family == 6))
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
                   {**base, "origin": "external", "src": outside, "dst": node_ip}, ("dst",)),
            Preset(f"node → NodePort {where} ({name})",
                   {**base, "origin": "local", "src": node_ip, "dst": node_ip}, ("src", "dst")),
        ]  # fmt: skip
    label = {"loadbalancer": "LoadBalancer IP", "external-ip": "external IP"}.get(fe.kind, fe.kind)
    return [Preset(f"outside → {label} {where} ({name})",
                   {**base, "origin": "external", "src": outside, "dst": fe.ip or ""})]
