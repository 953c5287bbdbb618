"""The service index's values: frozen service ports, endpoints and the filter rules that block them.

Everything here is read from a dump alone. Where the dump cannot tell (an endpoint's locality on a node whose
rules never separate local from remote endpoints, a service name whose every comment was dropped and whose
hash matches no candidate), the value is None rather than a guess.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from types import MappingProxyType

from .era import KubeLayout
from .hashes import chain_hash, hash_matches

__all__ = ["BlockingRule", "Endpoint", "ServiceIndex", "ServicePort"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint (a KUBE-SEP chain) of a service port."""

    address: str | None  # "IP:PORT" ("[IP]:PORT" for IPv6) from the DNAT rule; None if the chain has none
    chain: str  # KUBE-SEP-…
    probability: Fraction | None  # share of the cluster-IP traffic (the SVC chain, or SVL with iTP Local)
    local_probability: Fraction | None  # share within the local-endpoints chain (SVL / XLB), if any
    local: bool | None  # runs on this node; None when the dump cannot tell
    # IPVS mode (chain is then ""): the real server's weight (0: draining), forwarding method and connections
    weight: int | None = None
    forward: str | None = None
    active: int | None = None
    inactive: int | None = None

    @property
    def ip(self) -> str | None:
        if self.address is None:
            return None
        host = self.address.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") else host

    @property
    def port(self) -> int | None:
        if self.address is None:
            return None
        tail = self.address.rpartition(":")[2]
        return int(tail) if tail.isdigit() else None


@dataclass(frozen=True, slots=True)
class BlockingRule:
    """A filter rule kube-proxy wrote to refuse traffic for this service port."""

    table: str | None
    chain: str  # KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-PROXY-FIREWALL (or a KUBE-XLB/FW chain in nat)
    index: int  # 1-based rule index in its chain
    line: int
    target: str  # REJECT, DROP, KUBE-MARK-DROP
    reason: str  # "no endpoints", "no local endpoints", "source ranges"
    destination: str | None  # the address (IP:PORT or NodePort ":PORT") the rule is about


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One service port as this node's rules implement it."""

    name: str | None  # "ns/name:port" ("ns/name" for an unnamed port); None when it cannot be recovered
    name_source: str | None  # "comment", "hash" (a candidate name whose hash matched), or None
    hash_verified: bool | None  # name + protocol hash to the chains' hash (False: not; None: no chains)
    chain_hash: str | None  # the 16-character hash of the service's chains (computed from the name if none)
    protocol: str | None  # "tcp", "udp", "sctp"
    cluster_ip: str | None
    port: int | None
    node_port: int | None
    health_check_node_port: int | None
    external_ips: tuple[str, ...]
    load_balancer_ips: tuple[str, ...]
    external_or_lb_ips: tuple[str, ...]  # external or load-balancer IPs the rules do not tell apart
    source_ranges: tuple[str, ...]  # loadBalancerSourceRanges (from KUBE-FW)
    external_traffic_policy: str | None  # "Cluster", "Local"; None: not externally reachable or unknown
    internal_traffic_policy: str | None  # "Cluster", "Local"; None when the layout cannot tell
    affinity_timeout: int | None  # sessionAffinity ClientIP timeout in seconds, None without affinity
    endpoints: tuple[Endpoint, ...]
    chains: Mapping[str, str]  # kind ("SVC", "SVL", "EXT", "FW", "XLB") → chain name, as present in nat
    no_endpoints: bool  # a "has no endpoints" rule refuses it
    no_local_endpoints: bool  # a "has no local endpoints" rule drops (some of) its traffic
    blocking_rules: tuple[BlockingRule, ...] = ()
    notes: tuple[str, ...] = ()
    # "iptables"; "ipvs": built from the IPVS table and kube-proxy's ipsets; "nftables": from kube-proxy's nft table
    mode: str = "iptables"
    scheduler: str | None = None  # IPVS: the scheduler of its virtual services (rr, wrr, …)
    virtual_services: tuple[tuple[str, str], ...] = ()  # IPVS: (role, key): ("cluster", "TCP 10.96.0.1:443"), …

    @property
    def namespace(self) -> str | None:
        return self.name.partition("/")[0] if self.name else None

    @property
    def service(self) -> str | None:
        """The Service's own name (without namespace and port name)."""
        return self.name.partition("/")[2].partition(":")[0] if self.name else None

    @property
    def port_name(self) -> str | None:
        return self.name.partition(":")[2] if self.name and ":" in self.name else None

    @property
    def label(self) -> str:
        """The name, or ``? (KUBE-…-hash)`` when the name is unknown; IPVS mode (no names): its first virtual
        service (``TCP 10.96.0.1:443``)."""
        if self.name:
            return self.name
        if self.virtual_services:
            return self.virtual_services[0][1]
        return f"?{self.chain_hash}" if self.chain_hash else "?"

    def all_ips(self) -> tuple[str, ...]:
        ips = [self.cluster_ip] if self.cluster_ip else []
        return (*ips, *self.external_ips, *self.load_balancer_ips, *self.external_or_lb_ips)

    def endpoint_hash_matches(self, endpoint: Endpoint) -> bool | None:
        """Whether the SEP chain's hash is name + protocol + address (None when one of those is unknown)."""
        if not (self.name and self.protocol and endpoint.address):
            return None
        if self.mode == "nftables":
            from .nft_names import parse_chain

            parsed = parse_chain(endpoint.chain)
            return parsed.verified if parsed is not None else None
        return hash_matches(self.name, self.protocol, endpoint.chain[len("KUBE-SEP-"):], endpoint.address)


@dataclass(frozen=True, eq=False)
class ServiceIndex:
    """Every service port of a dump, with reverse lookups (built on first use)."""

    services: tuple[ServicePort, ...]
    layout: KubeLayout

    def __iter__(self) -> Iterator[ServicePort]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)

    @cached_property
    def _by_chain(self) -> Mapping[str, ServicePort]:
        out: dict[str, ServicePort] = {}
        for svc in self.services:
            for name in svc.chains.values():
                out.setdefault(name, svc)
            for ep in svc.endpoints:
                if ep.chain:
                    out.setdefault(ep.chain, svc)
            for _, key in svc.virtual_services:  # IPVS: a virtual service's key stands for its chain
                out.setdefault(key, svc)
        return MappingProxyType(out)

    @cached_property
    def _by_endpoint_ip(self) -> Mapping[str, tuple[tuple[ServicePort, Endpoint], ...]]:
        out: dict[str, list[tuple[ServicePort, Endpoint]]] = {}
        for svc in self.services:
            for ep in svc.endpoints:
                if ep.ip is not None:
                    out.setdefault(_norm(ep.ip), []).append((svc, ep))
        return MappingProxyType({k: tuple(v) for k, v in out.items()})

    @cached_property
    def _by_node_port(self) -> Mapping[int, tuple[ServicePort, ...]]:
        out: dict[int, list[ServicePort]] = {}
        for svc in self.services:
            if svc.node_port is not None:
                out.setdefault(svc.node_port, []).append(svc)
        return MappingProxyType({k: tuple(v) for k, v in out.items()})

    @cached_property
    def _by_address(self) -> Mapping[str, tuple[ServicePort, ...]]:
        out: dict[str, list[ServicePort]] = {}
        for svc in self.services:
            for ip in dict.fromkeys(svc.all_ips()):
                out.setdefault(_norm(ip), []).append(svc)
        return MappingProxyType({k: tuple(v) for k, v in out.items()})

    def by_chain(self, chain: str) -> ServicePort | None:
        """The service port owning a KUBE-SVC/SVL/EXT/FW/XLB/SEP chain."""
        return self._by_chain.get(chain)

    def by_endpoint_ip(self, ip: str) -> tuple[tuple[ServicePort, Endpoint], ...]:
        """Pod IP → the service ports (and their endpoint entries) that send traffic to it."""
        return self._by_endpoint_ip.get(_norm(ip), ())

    def by_node_port(self, port: int, protocol: str | None = None) -> tuple[ServicePort, ...]:
        """NodePort → the service ports listening on it (both protocols unless ``protocol`` is given)."""
        found = self._by_node_port.get(port, ())
        return tuple(s for s in found if protocol is None or s.protocol == protocol.lower())

    def by_address(self, ip: str) -> tuple[ServicePort, ...]:
        """Cluster, external or load-balancer IP → the service ports answering on it."""
        return self._by_address.get(_norm(ip), ())

    def by_name(self, name: str) -> tuple[ServicePort, ...]:
        """``ns/name`` (every port) or ``ns/name:port`` → service ports."""
        return tuple(s for s in self.services if s.name and (s.name == name or s.name.startswith(name + ":")))

    def chain_hash_of(self, name: str, protocol: str) -> str:
        """The hash kube-proxy would give ``name`` + ``protocol`` (for looking a service up by name)."""
        return chain_hash(name, protocol.lower())


def _norm(ip: str) -> str:
    """A canonical spelling of an IP address (IPv6 has many); text that is not an address stays as is."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip
