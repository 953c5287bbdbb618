"""The nftables-mode service index under construction: one mutable :class:`NftPort` per service port of a
table, frozen into a :class:`~.model.ServicePort` (``mode`` "nftables") at the end; and the small helpers the
readers share (:mod:`.nft_build` reads the maps and sets, :mod:`.nft_chains` the per-service chains)."""

from __future__ import annotations

import ipaddress
from fractions import Fraction
from types import MappingProxyType

from ..nft.exprs import Match, Meta, Value, Verdict
from .model import BlockingRule, Endpoint, ServicePort

__all__ = ["KINDS", "PROTOS", "NftPort", "hostport", "is_l4proto", "norm", "target_of"]

KINDS = ("SVC", "SVL", "EXT", "FW")  # service-, local-, external-, firewall- (see nft_names.KINDS)
PROTOS = ("tcp", "udp", "sctp")


def hostport(ip: str, port: int | None) -> str:
    """``10.0.0.1:80``; ``[fd00::1]:80`` (as iptables-save prints a DNAT target)."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}" if port is not None else host


def norm(ip: str) -> str:
    """A canonical spelling of an IP address (text that is not one stays as it is)."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def target_of(v: Value | None) -> str | None:
    """The chain a ``goto``/``jump`` verdict names."""
    return v.target if isinstance(v, Verdict) and v.kind in ("goto", "jump") else None


def is_l4proto(m: Match, proto: str | None) -> bool:
    """``meta l4proto P`` (``proto`` None: any): nft's guard before a dnat with a port, no real condition."""
    return isinstance(m.left, Meta) and m.left.key == "l4proto" and m.op == "==" and \
        (proto is None or m.right == proto)  # fmt: skip


class NftPort:
    """Everything learnt about one service port of one table so far."""

    __slots__ = ("addresses", "affinity", "base", "blocks", "chains", "cluster_ip", "etp", "ext_or_lb", "external",
                 "h", "hash_verified", "itp", "lb", "local_shares", "name", "name_source", "no_endpoints",
                 "no_local", "node_ports", "notes", "port", "proto", "ranges", "shares")  # fmt: skip

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.h = base.partition("-")[0] if base else None
        self.name: str | None = None
        self.name_source: str | None = None
        self.hash_verified: bool | None = None
        self.proto: str | None = None
        self.cluster_ip: str | None = None
        self.port: int | None = None
        self.node_ports: dict[int, None] = {}
        self.external: dict[str, None] = {}
        self.lb: dict[str, None] = {}
        self.ext_or_lb: dict[str, None] = {}
        self.ranges: dict[str, None] = {}
        self.etp: str | None = None
        self.itp: str | None = None
        self.affinity: int | None = None
        self.chains: dict[str, str] = {}
        self.shares: dict[str, Fraction | None] = {}
        self.local_shares: dict[str, Fraction | None] | None = None
        self.addresses: dict[str, str | None] = {}  # endpoint id (its chain, or "=IP:PORT" inline) → address
        self.no_endpoints = False
        self.no_local = False
        self.blocks: list[BlockingRule] = []
        self.notes: list[str] = []

    @property
    def exposed(self) -> bool:
        return bool(self.node_ports or self.external or self.lb or self.ext_or_lb or "EXT" in self.chains
                    or "FW" in self.chains)  # fmt: skip

    def freeze(self) -> ServicePort:
        primary = self.shares if "SVC" in self.chains else (self.local_shares or {})
        local_shares = self.local_shares or {}
        if "SVL" in self.chains:
            known: bool | None = True
        elif self.etp == "Local" or self.itp == "Local" or self.no_local:
            known = False  # a Local policy and no local chain: this node has no endpoint of it
        else:
            known = None
        order = dict.fromkeys([*self.shares, *local_shares])
        endpoints = tuple(
            Endpoint(self.addresses.get(ep), "" if ep.startswith("=") else ep, primary.get(ep),
                     local_shares.get(ep) if self.local_shares is not None else None,
                     (ep in local_shares) if known else known)
            for ep in order
        )  # fmt: skip
        notes = list(self.notes)
        if len(self.node_ports) > 1:
            notes.append(f"several NodePorts lead to the same chains: {', '.join(map(str, self.node_ports))}")
        return ServicePort(
            name=self.name, name_source=self.name_source, hash_verified=self.hash_verified, chain_hash=self.h,
            protocol=self.proto, cluster_ip=self.cluster_ip, port=self.port,
            node_port=next(iter(self.node_ports), None), health_check_node_port=None,
            external_ips=tuple(self.external), load_balancer_ips=tuple(self.lb),
            external_or_lb_ips=tuple(ip for ip in self.ext_or_lb if ip not in self.external and ip not in self.lb),
            source_ranges=tuple(self.ranges), external_traffic_policy=self.etp if self.exposed else None,
            internal_traffic_policy=self.itp, affinity_timeout=self.affinity, endpoints=endpoints,
            chains=MappingProxyType({k: self.chains[k] for k in KINDS if k in self.chains}),
            no_endpoints=self.no_endpoints, no_local_endpoints=self.no_local, blocking_rules=tuple(self.blocks),
            notes=tuple(notes), mode="nftables",
        )  # fmt: skip


