"""The service index under construction: one mutable :class:`Draft` per service port, frozen at the end.

Drafts are keyed by chain hash (service ports with nat chains) or, for service ports kube-proxy only wrote
filter rules for (no endpoints), by name or address. Names are settled in :meth:`Drafts.resolve_names`: a
candidate from a comment counts when it hashes to the chains' hash; a chain without any usable comment is
looked up among every name the dump mentions and a few well-known ones (:class:`.hashes.NameResolver`).
"""

from __future__ import annotations

import re
from fractions import Fraction
from types import MappingProxyType

from ..model import Ruleset
from .facts import rows_of
from .hashes import PROTOCOLS, NameResolver, chain_hash, hash_matches, names_in
from .model import BlockingRule, Endpoint, ServicePort

__all__ = ["Draft", "Drafts", "PortFields"]

_KINDS = ("SVC", "SVL", "EXT", "FW", "XLB")
_COMMENTS = re.compile(r'--comment (?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s"]+))')
_TRUSTED = ("portal", "nodeport", "filter")  # comments that name their own service port (not a neighbour's)


class PortFields:
    """What a service port under construction learns, in either mode's reader (:class:`Draft` for iptables
    mode, :class:`.nft_draft.NftPort` for nftables mode): each mode's freeze turns it into a ServicePort."""

    __slots__ = (
        "addresses", "affinity", "blocks", "chains", "cluster_ip", "etp", "ext_or_lb", "external", "h",
        "hash_verified", "itp", "lb", "local_shares", "name", "name_source", "no_endpoints", "no_local",
        "node_ports", "notes", "port", "proto", "ranges", "shares",
    )  # fmt: skip

    def __init__(self, h: str | None) -> None:
        self.h = h
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
        self.addresses: dict[str, str | None] = {}  # endpoint (its chain, or "=IP:PORT" inline) → address
        self.no_endpoints = False
        self.no_local = False
        self.blocks: list[BlockingRule] = []
        self.notes: list[str] = []


class Draft(PortFields):
    """Everything learnt about one service port so far."""

    __slots__ = ("ext_to_local", "hc_port", "names")

    def __init__(self, h: str | None) -> None:
        super().__init__(h)
        self.names: list[tuple[str, str]] = []  # (candidate, where it was read)
        self.hc_port: int | None = None
        self.ext_to_local = False

    def add_name(self, text: str, where: str) -> None:
        if all(text != t for t, _ in self.names):
            self.names.append((text, where))

    def set_proto(self, proto: str | None) -> None:
        if proto and self.proto is None:
            self.proto = proto

    def set_affinity(self, seconds: str | None) -> None:
        if seconds is not None and seconds.isdigit() and self.affinity is None:
            self.affinity = int(seconds)

    def add_block(self, table: str | None, chain: str, index: int, line: int, target: str, reason: str,
                  destination: str | None) -> None:  # fmt: skip
        self.blocks.append(BlockingRule(table, chain, index, line, target, reason, destination))

    @property
    def exposed(self) -> bool:
        """Reachable from outside the cluster network: NodePort, external or load-balancer IPs."""
        return bool(self.node_ports or self.external or self.lb or self.ext_or_lb
                    or "EXT" in self.chains or "FW" in self.chains or "XLB" in self.chains)  # fmt: skip

    def freeze(self) -> ServicePort:
        local_chain = "SVL" if "SVL" in self.chains else "XLB" if "XLB" in self.chains else None
        primary = self.shares if "SVC" in self.chains else (self.local_shares or {})
        local_shares = self.local_shares if self.local_shares is not None else {}
        if local_chain is not None:
            known_local: bool | None = True
        elif self.etp == "Local" or self.itp == "Local" or self.no_local:
            known_local = False  # Local policy and no local-endpoints chain: this node has none
        else:
            known_local = None
        addresses = self.addresses
        if self.local_shares is None and primary is self.shares:  # the common case, in one pass
            endpoints = tuple([Endpoint(addresses.get(sep), sep, share, None, known_local)
                               for sep, share in primary.items()])  # fmt: skip
        else:
            has_local = self.local_shares is not None
            order = dict.fromkeys([*self.shares, *local_shares])
            endpoints = tuple([
                Endpoint(addresses.get(sep), sep, primary.get(sep),
                         local_shares.get(sep) if has_local else None,
                         (sep in local_shares) if known_local else known_local)
                for sep in order
            ])  # fmt: skip
        notes = list(self.notes)
        node_ports = list(self.node_ports)
        if len(node_ports) > 1:
            notes.append(f"several NodePorts jump to the same chains: {', '.join(map(str, node_ports))}")
        return ServicePort(
            name=self.name, name_source=self.name_source, hash_verified=self.hash_verified,
            chain_hash=self.h or (chain_hash(self.name, self.proto) if self.name and self.proto else None),
            protocol=self.proto, cluster_ip=self.cluster_ip, port=self.port,
            node_port=node_ports[0] if node_ports else None, health_check_node_port=self.hc_port,
            external_ips=tuple(self.external), load_balancer_ips=tuple(self.lb),
            external_or_lb_ips=tuple(ip for ip in self.ext_or_lb
                                     if ip not in self.external and ip not in self.lb),
            source_ranges=tuple(self.ranges), external_traffic_policy=self.etp if self.exposed else None,
            internal_traffic_policy=self.itp, affinity_timeout=self.affinity, endpoints=endpoints,
            chains=MappingProxyType({k: self.chains[k] for k in _KINDS if k in self.chains}),
            no_endpoints=self.no_endpoints, no_local_endpoints=self.no_local,
            blocking_rules=tuple(self.blocks), notes=tuple(notes),
        )  # fmt: skip


class Drafts:
    """All drafts, with the lookups the filter pass needs."""

    def __init__(self) -> None:
        self._hashed: dict[str, Draft] = {}
        self._other: dict[tuple[object, ...], Draft] = {}
        self._by_name: dict[tuple[str, str | None], Draft] = {}
        self._by_addr: dict[tuple[str | None, str, int | None], Draft] = {}
        self._by_node_port: dict[tuple[str | None, int], Draft] = {}

    def by_hash(self, h: str) -> Draft:
        draft = self._hashed.get(h)
        if draft is None:
            draft = self._hashed[h] = Draft(h)
        return draft

    def hashed(self) -> list[Draft]:
        return list(self._hashed.values())

    def known_hash(self, h: str) -> Draft | None:
        return self._hashed.get(h)

    def resolve_names(self, ruleset: Ruleset) -> None:
        """Settle every hashed draft's name and protocol (see the module doc), then index them."""
        resolver: NameResolver | None = None
        for d in self._hashed.values():
            if self._from_comments(d):
                continue
            if d.h is not None:
                if resolver is None:
                    resolver = NameResolver(_all_names(ruleset))
                hit = resolver.lookup(d.h)
                if hit is not None and d.proto in (None, hit[1]):
                    d.name, d.proto, d.name_source, d.hash_verified = hit[0], hit[1], "hash", True
                    continue
            trusted = [t for t, where in d.names if where in _TRUSTED]
            if trusted:
                d.name, d.name_source, d.hash_verified = trusted[0], "comment", False
                d.notes.append(f"the comments name {trusted[0]}, but the chain hash {d.h} is not its hash")
        for d in self._hashed.values():
            self.index(d)

    @staticmethod
    def _from_comments(d: Draft) -> bool:
        protos = (d.proto,) if d.proto else PROTOCOLS
        for text, _ in d.names:
            for proto in protos:
                if d.h is not None and hash_matches(text, proto, d.h):
                    d.name, d.proto, d.name_source, d.hash_verified = text, proto, "comment", True
                    return True
        return False

    def index(self, d: Draft) -> None:
        if d.name:
            self._by_name.setdefault((d.name, d.proto), d)
            self._by_name.setdefault((d.name, None), d)
        for ip in [*([d.cluster_ip] if d.cluster_ip else []), *d.external, *d.lb, *d.ext_or_lb]:
            self._by_addr.setdefault((d.proto, ip, d.port), d)
        for np in d.node_ports:
            self._by_node_port.setdefault((d.proto, np), d)

    def find(self, name: str | None, proto: str | None, ip: str | None, port: int | None,
             node_port: int | None) -> Draft | None:  # fmt: skip
        """The draft a filter rule is about: by its comment's name, else by address and port."""
        if name:
            found = self._by_name.get((name, proto))
            if found is not None:
                return found
        if ip is not None:
            found = self._by_addr.get((proto, ip, port))
            if found is not None:
                return found
        if node_port is not None:
            return self._by_node_port.get((proto, node_port))
        return None

    def chainless(self, name: str | None, proto: str | None, ip: str | None, port: int | None,
                  node_port: int | None) -> Draft:  # fmt: skip
        """A draft for a service port kube-proxy wrote no nat chains for (it has no endpoints)."""
        key: tuple[object, ...] = ("name", name, proto) if name else ("addr", proto, ip, port, node_port)
        draft = self._other.get(key)
        if draft is None:
            draft = self._other[key] = Draft(None)
            draft.proto = proto
            if name:
                draft.name, draft.name_source = name, "comment"
        return draft

    def finish(self) -> tuple[ServicePort, ...]:
        services = [d.freeze() for d in [*self._hashed.values(), *self._other.values()]]
        services.sort(key=lambda s: (s.name is None, s.name or "", s.protocol or "", s.chain_hash or "",
                                     s.cluster_ip or "", s.node_port or 0, s.external_or_lb_ips))  # fmt: skip
        return tuple(services)


def _all_names(ruleset: Ruleset) -> list[str]:
    """Every service-port-looking name in any comment of the dump (candidates for hash lookups)."""
    found: dict[str, None] = {}
    for table in ruleset.tables.values():
        for chain in table.chains.values():
            for row in rows_of(chain):
                raw = row[1]
                if "--comment" not in raw:
                    continue
                for quoted, bare in _COMMENTS.findall(raw):
                    for name in names_in(quoted or bare):
                        found[name] = None
    return list(found)
