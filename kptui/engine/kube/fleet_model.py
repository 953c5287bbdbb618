"""The values of a fleet comparison: what each node brings (:class:`NodeParts` in, :class:`FleetNode` after the
per-node analysis of :mod:`.fleet_node`), and what the comparison of :mod:`.fleet` finds (:class:`ServiceRow`
per service port, :class:`NodeRow` per node, :class:`FleetFinding`, all in a :class:`FleetReport`).

Services are compared as :class:`~.model.ServicePort` values, whatever built them: kube-proxy's iptables mode
today (:func:`~.build.service_index_of`), and any mode whose builder is registered in
:data:`.fleet_node.SERVICE_BUILDERS` (nftables, IPVS) the same way. Pure values, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .model import ServicePort

if TYPE_CHECKING:
    from ..ipvs.node import IpvsNode
    from ..model import Ruleset
    from ..nft.model import NftRuleset
    from ..packet import NodeContext
    from ..schedule import Netfilter

__all__ = ["Difference", "FleetFinding", "FleetNode", "FleetReport", "ForeignRule", "NodeParts", "NodeRow",
           "Reach", "ServiceRow"]  # fmt: skip


@dataclass(frozen=True)
class NodeParts:
    """What the command layer read of one node, parsed: everything the per-node analysis looks at.

    ``error``: the node could not be read at all (its capture failed: the cause). ``failed_parts``: what its
    capture could not read (``conntrack -L -f ipv4: timed out after 120 s``)."""

    name: str
    source: str = ""
    ruleset: Ruleset | None = None  # the iptables dump in use (IPv4 unless the node has only IPv6)
    nft: NftRuleset | None = None  # the whole nft ruleset
    proxy_mode: str | None = None  # kube-proxy's /proxyMode answer
    backend: str | None = None  # "nf_tables" / "legacy": the iptables backend in use
    conntrack: str | None = None  # `conntrack -L` text of the family in use (None: not read)
    ipvs: str | None = None  # `ipvsadm -S -n` text (None: not read)
    ipsets: str | None = None  # `ipset save` text (None: not read)
    interfaces: tuple[str, ...] = ()  # the node's interface names (kube-ipvs0 tells IPVS mode)
    addresses: tuple[str, ...] = ()  # the node's own addresses, primary first (NodePort probes go there)
    captured: float | None = None  # Unix time of the capture
    failed_parts: tuple[str, ...] = ()
    error: str | None = None
    netfilter: Netfilter | None = field(default=None, compare=False)  # for traces on this node
    context: NodeContext | None = field(default=None, compare=False)
    ipvs_node: IpvsNode | None = field(default=None, compare=False)  # the ipsets and IPVS table, parsed


@dataclass(frozen=True, slots=True)
class ForeignRule:
    """A rule (or nft base chain) of another component that runs before kube-proxy's on a hook, and can change a
    packet's fate there (drop, accept, NAT, a jump into the component's own chains, a mark)."""

    where: str  # "filter FORWARD", "nft inet firewalld filter_INPUT (hook input, priority -10)"
    index: int | None  # 1-based rule index (None: the chain's policy or the chain as a whole)
    rule: str  # the rule as listed (or a description of the chain)
    effect: str  # "DROP", "ACCEPT", "jump CILIUM_PRE", "policy drop", "MARK", …
    ahead_of: str  # what of kube-proxy's it precedes: "KUBE-SERVICES (rule 3)", "kube-proxy's nat PREROUTING"

    @property
    def key(self) -> tuple[str, str]:
        """What makes two nodes' rules the same rule: place and text (not the index)."""
        return self.where, self.rule


@dataclass(frozen=True)
class FleetNode:
    """One node as the comparison sees it: its mode and layout, its service ports (None: not compared, and
    why), and what the node-level checks found."""

    name: str
    source: str
    mode: str | None  # "iptables", "nftables", "ipvs"; None: not known (``mode_note`` says why)
    mode_source: str | None  # "kube-proxy's /proxyMode", "the rules"
    mode_note: str | None
    backend: str | None
    era: str | None
    services: tuple[ServicePort, ...] | None  # None: not compared
    services_note: str | None  # why not: "mode nftables (services not compared yet)", "capture failed"
    leftovers: tuple[str, ...] = ()  # leftovers of another mode
    foreign: tuple[ForeignRule, ...] = ()  # other components' rules in front of kube-proxy's
    stale_conntrack: int | None = None  # entries DNATed to endpoints that are gone (None: table not read)
    stale_examples: tuple[str, ...] = ()
    failed_parts: tuple[str, ...] = ()
    error: str | None = None
    captured: float | None = None
    addresses: tuple[str, ...] = ()
    parts: NodeParts | None = field(default=None, compare=False, repr=False)

    @property
    def compared(self) -> bool:
        return self.services is not None


@dataclass(frozen=True, slots=True)
class Difference:
    """How one node's service port differs from the majority's (``kind``: missing, extra, endpoints, shares,
    setting, no-majority)."""

    node: str
    kind: str
    what: str


@dataclass(frozen=True, slots=True)
class Reach:
    """Whether a service port's NodePort (or load-balancer IP) takes new connections on one node.

    ``state``: ``ok`` (forwarded to endpoints), ``drop`` (eTP Local without local endpoints, or a rule of another
    component), ``reject`` (no endpoints), ``absent`` (no rule for it on the node), ``unknown`` (not compared, or
    the rules of another component in front leave it open)."""

    node: str
    state: str
    detail: str


@dataclass(frozen=True)
class ServiceRow:
    """One service port across the fleet."""

    key: str  # what ties the nodes' entries together: "default/web:http tcp" or "tcp 10.96.10.20:80"
    service: str  # its label
    protocol: str | None
    cluster_ip: str | None
    port: int | None
    node_port: int | None
    frontends: tuple[str, ...]  # "10.96.10.20:80/tcp", "*:30080/tcp (NodePort)", "192.0.2.1:80/tcp (load balancer)"
    nodes_with: tuple[str, ...]  # compared nodes that have it
    nodes_without: tuple[str, ...]  # compared nodes that lack it
    majority: str  # the majority's view in a few words ("3 endpoints"), or why there is none
    endpoints: tuple[str, ...]  # the majority's endpoints
    nodes_differing: tuple[Difference, ...]
    external_policy: str | None
    local_endpoints: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # eTP/iTP Local
    blackholes: tuple[str, ...] = ()  # nodes where its NodePort / LB IPs drop (eTP Local, no local endpoint)
    reach: tuple[Reach, ...] = ()  # per node, when it has a NodePort or load-balancer IPs
    entries: Mapping[str, ServicePort] = field(default_factory=lambda: MappingProxyType({}), compare=False,
                                               repr=False)  # fmt: skip

    @property
    def differs(self) -> bool:
        return bool(self.nodes_differing)

    def difference(self, node: str) -> Difference | None:
        return next((d for d in self.nodes_differing if d.node == node), None)


@dataclass(frozen=True)
class NodeRow:
    """One node with what the comparison says of it: ``sync`` is kube-proxy's last sync as far as the rules
    show it (in step with the majority, or how far not)."""

    node: FleetNode
    sync: str
    differs: int  # service ports where it differs from the majority

    @property
    def name(self) -> str:
        return self.node.name


@dataclass(frozen=True, slots=True)
class FleetFinding:
    code: str  # "stale-node", "mode-differs", "foreign-in-front", "nodeport-blackhole", …
    severity: str  # "error", "warning", "info"
    title: str
    detail: str
    nodes: tuple[str, ...] = ()
    service: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "title": self.title, "detail": self.detail,
                "nodes": list(self.nodes), "service": self.service}  # fmt: skip


@dataclass(frozen=True)
class FleetReport:
    nodes: tuple[NodeRow, ...]
    services: tuple[ServiceRow, ...]
    findings: tuple[FleetFinding, ...]
    compared: tuple[str, ...]  # the nodes whose services were compared
    notes: tuple[str, ...] = ()

    def node(self, name: str) -> NodeRow | None:
        return next((n for n in self.nodes if n.name == name), None)

    def service(self, key_or_label: str) -> ServiceRow | None:
        return next((s for s in self.services if key_or_label in (s.key, s.service)), None)
