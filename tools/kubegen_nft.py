"""Generate kube-proxy's nftables-mode ruleset (``nft -f`` input) from the model of :mod:`tools.kubegen`.

:func:`generate_nft` takes the same :class:`~tools.kubegen.ServicePort` / :class:`~tools.kubegen.NodeConfig`
as the iptables generator and returns an :class:`NftScript` whose :meth:`~NftScript.render` is the ruleset
kube-proxy's nftables proxier would install on that node, as ``add table`` / ``add set`` / ``add map`` /
``add chain`` / ``add rule`` / ``add element`` commands in the order its sync transaction writes them (the
``flush``/``delete`` housekeeping of a re-sync left out: the script is for an empty table).

Layouts (``layout=``), read from kubernetes/kubernetes ``pkg/proxy/nftables``:

- ``"1.33"`` (default): the layout of kube-proxy 1.33 onwards as its own ``proxier_test.go`` expects it
  (``baseRules`` and ``TestOverallNFTablesRules``): filter chains ``filter-prerouting-pre-dnat`` and
  ``filter-output-pre-dnat`` at priority dstnat-10 (-110) doing only ``firewall-check``, ``filter-input`` /
  ``filter-forward`` / ``filter-output`` at priority filter (0) with the endpoint and cluster-IP checks, and the
  cluster-IP masquerade rule without a port match (``ip daddr C ip saddr != CIDR jump mark-for-masquerade``).
- ``"1.31"``: the earlier revision of ``proxier.go`` (kubernetes commit b0f823e6; the same layout in the
  GoogleCloudPlatform/kubernetes copy 3a65f31, 1.32-era code), i.e. kube-proxy 1.31 and 1.32: every
  filter chain (``filter-prerouting``, ``filter-input``, ``filter-forward``, ``filter-output``) at dstnat-10
  (-110), a ``filter-output-post-dnat`` chain at dstnat+10 (-90) for ``cluster-ips-check``, and the cluster-IP
  masquerade rule with the service port (``ip daddr C tcp dport P ip saddr != CIDR jump …``).

Not reproduced (seen, but not enough of the source to be exact): the first alpha (1.29: one
``endpoints-check`` chain, NodePorts matched with ``fib daddr type local``) and the newest listings (1.35+:
``masquerading`` as one rule ``meta mark & 0x4000 != 0 … masquerade fully-random``, a ``hairpin-connections``
set, and service chains that DNAT inline with ``dnat ip to numgen random mod N map { 0 : IP . PORT, … }``
instead of endpoint chains).

Chain names are kube-proxy's: prefix + HASH8 + ``-ns/name/proto/portname`` (endpoints ``…__IP/port``, IPv6
colons as dots), HASH8 the first 8 base32 characters of sha256 of the part after the prefix (:func:`hash8`).
The masquerade mark is written as kube-proxy formats it (``fmt.Sprintf("%#08x", 1<<14)`` = ``0x004000``);
its unit tests use ``0x4000`` (``masq_mark=``). Endpoints keep the order given (kube-proxy sorts them).
Health-check node ports get no rule in nftables mode (only a listener).

CLI: ``python3 -m tools.kubegen_nft SPEC.json [--layout 1.31]`` (SPEC as for ``tools.kubegen``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import sys
from dataclasses import dataclass, field

from tools.kubegen import Endpoint, NodeConfig, ServicePort, cidr_contains, load_spec

__all__ = ["LAYOUTS", "BaseChain", "NftScript", "chain_base", "endpoint_chain_base", "generate_nft", "hash8",
           "service_chain_base"]

TABLE = "kube-proxy"
KUBE_PROXY_MARK = f"{1 << 14:#08x}"  # Go's "%#08x": 0x004000
NAME_MAX = 256 - 16  # knftables.NameLengthMax minus the longest chain prefix


@dataclass(frozen=True)
class BaseChain:
    """A base chain: name, type, hook and numeric priority."""

    name: str
    type: str
    hook: str
    priority: int


@dataclass(frozen=True)
class Layout:
    """What differs between kube-proxy revisions."""

    name: str
    base: tuple[BaseChain, ...]
    jumps: tuple[tuple[str, str, str], ...]  # (to chain, from chain, extra match), in setupNFTables order
    port_in_masq_rule: bool  # the cluster-IP masquerade rule also matches "PROTO dport PORT"


def _jumps(pre: str, out_pre: str, cluster_check_from: str) -> tuple[tuple[str, str, str], ...]:
    new = "ct state new"
    return (("nodeport-endpoints-check", "filter-input", new), ("service-endpoints-check", "filter-input", new),
            ("service-endpoints-check", "filter-forward", new), ("service-endpoints-check", "filter-output", new),
            ("firewall-check", pre, new), ("firewall-check", out_pre, new),
            ("services", "nat-output", ""), ("services", "nat-prerouting", ""),
            ("masquerading", "nat-postrouting", ""),
            ("cluster-ips-check", "filter-forward", new), ("cluster-ips-check", cluster_check_from, new))


_NAT = (BaseChain("nat-prerouting", "nat", "prerouting", -100), BaseChain("nat-output", "nat", "output", -100),
        BaseChain("nat-postrouting", "nat", "postrouting", 100))
LAYOUTS = {
    "1.33": Layout("1.33", (
        BaseChain("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
        BaseChain("filter-output-pre-dnat", "filter", "output", -110),
        BaseChain("filter-input", "filter", "input", 0), BaseChain("filter-forward", "filter", "forward", 0),
        BaseChain("filter-output", "filter", "output", 0), *_NAT),
        _jumps("filter-prerouting-pre-dnat", "filter-output-pre-dnat", "filter-output"), False),
    "1.31": Layout("1.31", (
        BaseChain("filter-prerouting", "filter", "prerouting", -110),
        BaseChain("filter-input", "filter", "input", -110), BaseChain("filter-forward", "filter", "forward", -110),
        BaseChain("filter-output", "filter", "output", -110),
        BaseChain("filter-output-post-dnat", "filter", "output", -90), *_NAT),
        _jumps("filter-prerouting", "filter-output", "filter-output-post-dnat"), True),
}


def hash8(name: str) -> str:
    """kube-proxy's chain hash: the first 8 characters of base32(sha256(name))."""
    return base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]


def chain_base(name: str) -> str:
    """``HASH8-name``, cut to kube-proxy's limit with ``...`` (never happens for valid Kubernetes names)."""
    out = f"{hash8(name)}-{name}"
    return out if len(out) <= NAME_MAX else out[:NAME_MAX - 3] + "..."


def service_chain_base(svc: ServicePort) -> str:
    """``HASH8-ns/name/proto/portname`` of a service port (an unnamed port leaves the last part empty)."""
    return chain_base(f"{svc.namespace}/{svc.name}/{svc.proto}/{svc.port_name}")


def endpoint_chain_base(svc: ServicePort, ep: Endpoint) -> str:
    """``HASH8-ns/name/proto/portname__IP/port``; IPv6 colons become dots."""
    return chain_base(f"{svc.namespace}/{svc.name}/{svc.proto}/{svc.port_name}__{ep.ip.replace(':', '.')}/{ep.port}")


def _q(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


@dataclass
class NftScript:
    """``nft -f`` input for one table, built command by command; :attr:`base` lists its base chains."""

    family: str
    table: str
    lines: list[str] = field(default_factory=list)
    base: list[BaseChain] = field(default_factory=list)
    chains: list[str] = field(default_factory=list)
    _elements: set[tuple[str, str]] = field(default_factory=set)

    def _obj(self, kind: str, name: str, body: str = "") -> None:
        self.lines.append(f"add {kind} {self.family} {self.table} {name}{' ' + body if body else ''}")

    def add_table(self, comment: str | None = None) -> None:
        self.lines.append(f"add table {self.family} {self.table}" + (f" {{ comment {_q(comment)} ; }}" if comment else ""))

    def add_chain(self, name: str, *, base: BaseChain | None = None, comment: str | None = None) -> None:
        """A chain, once (kube-proxy's ensureChain)."""
        if name in self.chains:
            return
        self.chains.append(name)
        parts = [f"type {base.type} hook {base.hook} priority {base.priority} ;"] if base else []
        parts += [f"comment {_q(comment)} ;"] if comment else []
        if base:
            self.base.append(base)
        self._obj("chain", name, "{ " + " ".join(parts) + " }" if parts else "")

    def add_set(self, name: str, type_: str, *, comment: str | None = None, flags: str | None = None,
                timeout: int | None = None, kind: str = "set") -> None:  # fmt: skip
        parts = [f"type {type_} ;"] + ([f"flags {flags} ;"] if flags else [])
        parts += ([f"timeout {timeout}s ;"] if timeout is not None else []) + ([f"comment {_q(comment)} ;"] if comment else [])
        self._obj(kind, name, "{ " + " ".join(parts) + " }")

    def add_rule(self, chain: str, rule: str, comment: str | None = None) -> None:
        self._obj("rule", chain, rule + (f" comment {_q(comment)}" if comment else ""))

    def add_element(self, name: str, key: str, value: str | None = None, comment: str | None = None) -> None:
        """An element, once per key (kube-proxy's ensureElem)."""
        if (name, key) in self._elements:
            return
        self._elements.add((name, key))
        body = key + (f" comment {_q(comment)}" if comment else "") + (f" : {value}" if value else "")
        self._obj("element", name, "{ " + body + " }")

    def render(self) -> str:
        """The ``nft -f`` text."""
        return "\n".join(self.lines) + "\n"


def generate_nft(services: list[ServicePort], node: NodeConfig, layout: str = "1.33", *,
                 masq_mark: str = KUBE_PROXY_MARK) -> NftScript:  # fmt: skip
    """The ``table ip|ip6 kube-proxy`` kube-proxy's nftables proxier (``layout`` "1.33" or "1.31") would
    install for the services of ``node``'s family (the family of ``node.node_ip``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown nftables layout {layout!r} (known: {', '.join(LAYOUTS)})")
    gen = _Gen(LAYOUTS[layout], node, masq_mark)
    gen.setup()
    for svc in services:
        if (":" in svc.cluster_ip) == (node.family == 6):
            gen.service(svc)
    return gen.out


class _Gen:
    """One sync of kube-proxy's nftables proxier (setupNFTables, then syncProxyRules per service port)."""

    def __init__(self, layout: Layout, node: NodeConfig, mark: str) -> None:
        self.layout, self.node, self.mark = layout, node, mark
        self.v6 = node.family == 6
        self.ip = "ip6" if self.v6 else "ip"
        self.addr = "ipv6_addr" if self.v6 else "ipv4_addr"
        self.no_localhost = "ip6 daddr != ::1" if self.v6 else "ip daddr != 127.0.0.0/8"
        self.match_all = node.nodeport_addresses == "all"
        self.out = NftScript("ip6" if self.v6 else "ip", TABLE)

    # ---- setupNFTables -------------------------------------------------------------------------------
    def setup(self) -> None:
        o, ip, addr = self.out, self.ip, self.addr
        o.add_table("rules for kube-proxy")
        for bc in self.layout.base:
            o.add_chain(bc.name, base=bc)
        for dst, src, extra in self.layout.jumps:
            o.add_chain(dst)
            o.add_rule(src, f"{extra} jump {dst}".strip())
        for chain in ("services", "cluster-ips-check", "masquerading", "mark-for-masquerade"):
            o.add_chain(chain)
        o.add_rule("mark-for-masquerade", f"mark set mark or {self.mark}")
        o.add_rule("masquerading", f"mark and {self.mark} == 0 return")
        o.add_rule("masquerading", f"mark set mark xor {self.mark}")
        o.add_rule("masquerading", "masquerade fully-random")
        o.add_set("cluster-ips", addr, comment="Active ClusterIPs")
        o.add_rule("cluster-ips-check", f"{ip} daddr @cluster-ips reject",
                   "Reject traffic to invalid ports of ClusterIPs")
        cidrs = [c for c in self.node.service_cidrs if (":" in c) == self.v6]
        if cidrs:
            o.add_rule("cluster-ips-check", f"{ip} daddr {{ {','.join(cidrs)} }} drop",
                       "Drop traffic to unallocated ClusterIPs")
        if not self.match_all:
            o.add_set("nodeport-ips", addr, comment="IPs that accept NodePort traffic")
            if not ipaddress.ip_address(self.node.node_ip).is_loopback:
                o.add_element("nodeport-ips", self.node.node_ip)
        o.add_set("no-endpoint-services", f"{addr} . inet_proto . inet_service : verdict", kind="map",
                  comment="vmap to drop or reject packets to services with no endpoints")
        o.add_set("no-endpoint-nodeports", "inet_proto . inet_service : verdict", kind="map",
                  comment="vmap to drop or reject packets to service nodeports with no endpoints")
        o.add_chain("reject-chain", comment="helper for @no-endpoint-services / @no-endpoint-nodeports")
        o.add_rule("reject-chain", "reject")
        o.add_rule("service-endpoints-check", f"{ip} daddr . meta l4proto . th dport vmap @no-endpoint-services")
        where = self.no_localhost if self.match_all else f"{ip} daddr @nodeport-ips"
        o.add_rule("nodeport-endpoints-check", f"{where} meta l4proto . th dport vmap @no-endpoint-nodeports")
        o.add_set("firewall-ips", f"{addr} . inet_proto . inet_service : verdict", kind="map",
                  comment="destinations that are subject to LoadBalancerSourceRanges")
        o.add_chain("firewall-check")
        o.add_rule("firewall-check", f"{ip} daddr . meta l4proto . th dport vmap @firewall-ips")
        o.add_set("service-ips", f"{addr} . inet_proto . inet_service : verdict", kind="map",
                  comment="ClusterIP, ExternalIP and LoadBalancer IP traffic")
        o.add_set("service-nodeports", "inet_proto . inet_service : verdict", kind="map", comment="NodePort traffic")
        o.add_rule("services", f"{ip} daddr . meta l4proto . th dport vmap @service-ips")
        nodeports = (f"fib daddr type local {self.no_localhost}" if self.match_all else f"{ip} daddr @nodeport-ips")
        o.add_rule("services", f"{nodeports} meta l4proto . th dport vmap @service-nodeports")

    # ---- syncProxyRules, one service port ------------------------------------------------------------
    def service(self, svc: ServicePort) -> None:  # follows proxier.go's one long loop body
        o, ip, node = self.out, self.ip, self.node
        proto, port, name = svc.proto, svc.port, svc.svc_port_name
        base = service_chain_base(svc)
        cluster_chain, local_chain = f"service-{base}", f"local-{base}"
        ext_chain, fw_chain = f"external-{base}", f"firewall-{base}"
        ext_ok = svc.externally_accessible
        etp_local = svc.etp_local and ext_ok
        cluster_eps = svc.endpoints if (not svc.itp_local or ext_ok) else []
        local_eps = [ep for ep in svc.endpoints if ep.local] if (svc.itp_local or etp_local) else []
        reachable = [ep for ep in svc.endpoints if ep in cluster_eps or ep in local_eps]
        has_eps = bool(svc.endpoints)  # "any usable endpoints on any node, not just this one"
        has_internal = bool(local_eps) if svc.itp_local else has_eps
        has_external = bool(local_eps) if etp_local else has_eps
        internal_chain = local_chain if svc.itp_local else cluster_chain
        external_policy_chain = local_chain if etp_local else cluster_chain
        affinity = svc.affinity_timeout is not None
        for ep in reachable:
            o.add_chain(f"endpoint-{endpoint_chain_base(svc, ep)}")
        uses_cluster = bool(cluster_eps)
        uses_local = bool(local_eps)
        if uses_cluster:
            o.add_chain(cluster_chain)
        if uses_local:
            o.add_chain(local_chain)
        uses_ext = has_eps and ext_ok
        if uses_ext:
            o.add_chain(ext_chain)
        internal_verdict = external_verdict = "goto reject-chain"
        if has_eps:
            internal_verdict = "" if has_internal else "drop"
            external_verdict = "" if has_external else "drop"

        def key(addr: str, p: int = port) -> str:
            return f"{addr} . {proto} . {p}"

        o.add_element("cluster-ips", svc.cluster_ip)
        if has_internal:
            o.add_element("service-ips", key(svc.cluster_ip), f"goto {internal_chain}")
        else:
            o.add_element("no-endpoint-services", key(svc.cluster_ip), internal_verdict, name)
        for addr in svc.external_ips:
            if has_eps:
                o.add_element("service-ips", key(addr), f"goto {ext_chain}")
            if not has_external:
                o.add_element("no-endpoint-services", key(addr), external_verdict, name)
        uses_fw = bool(svc.lb_ips) and bool(svc.lb_source_ranges)
        if uses_fw:
            o.add_chain(fw_chain)
        for addr in svc.lb_ips:
            if has_eps:
                o.add_element("service-ips", key(addr), f"goto {ext_chain}")
            if uses_fw:
                o.add_element("firewall-ips", key(addr), f"goto {fw_chain}")
        if not has_external:
            for addr in svc.lb_ips:
                o.add_element("no-endpoint-services", key(addr), external_verdict, name)
        if svc.node_port:
            if has_eps:
                o.add_element("service-nodeports", f"{proto} . {svc.node_port}", f"goto {ext_chain}")
            if not has_external:
                o.add_element("no-endpoint-nodeports", f"{proto} . {svc.node_port}", external_verdict, name)
        if has_internal:
            dport = f" {proto} dport {port}" if self.layout.port_in_masq_rule else ""
            if node.masquerade_all:
                o.add_rule(internal_chain, f"{ip} daddr {svc.cluster_ip}{dport} jump mark-for-masquerade")
            elif node.cluster_cidr:
                o.add_rule(internal_chain, f"{ip} daddr {svc.cluster_ip}{dport} {ip} saddr != {node.cluster_cidr} "
                                           "jump mark-for-masquerade")  # fmt: skip
        if uses_ext:
            if not etp_local:
                o.add_rule(ext_chain, "jump mark-for-masquerade")
            else:
                if node.cluster_cidr:
                    o.add_rule(ext_chain, f"{ip} saddr {node.cluster_cidr} goto {cluster_chain}",
                               "short-circuit pod traffic")
                o.add_rule(ext_chain, "fib saddr type local jump mark-for-masquerade", "masquerade local traffic")
                o.add_rule(ext_chain, f"fib saddr type local goto {cluster_chain}", "short-circuit local traffic")
            if has_external:
                o.add_rule(ext_chain, f"goto {external_policy_chain}")
        if uses_fw:
            sources = [str(ipaddress.ip_network(c.strip(), strict=False)) for c in svc.lb_source_ranges]
            if any(cidr_contains(c, node.node_ip) for c in svc.lb_source_ranges):
                sources += svc.lb_ips
            o.add_rule(fw_chain, f"{ip} saddr != {{ {' , '.join(sources)} }} drop")
        if affinity:
            for ep in reachable:
                o.add_set(f"affinity-{endpoint_chain_base(svc, ep)}", self.addr, flags="dynamic,timeout",
                          timeout=svc.affinity_timeout)
        if uses_cluster:
            self._to_endpoints(svc, cluster_chain, cluster_eps)
        if uses_local:
            self._to_endpoints(svc, local_chain, local_eps)
        for ep in reachable:
            chain = f"endpoint-{endpoint_chain_base(svc, ep)}"
            o.add_rule(chain, f"{ip} saddr {ep.ip} jump mark-for-masquerade")
            if affinity:
                o.add_rule(chain, f"update @affinity-{endpoint_chain_base(svc, ep)} {{ {ip} saddr }}")
            o.add_rule(chain, f"meta l4proto {proto} dnat to {ep.addr}")

    def _to_endpoints(self, svc: ServicePort, chain: str, eps: list[Endpoint]) -> None:
        """writeServiceToEndpointRules: affinity lookups, then the numgen verdict map."""
        if svc.affinity_timeout is not None:
            for ep in eps:
                b = endpoint_chain_base(svc, ep)
                self.out.add_rule(chain, f"{self.ip} saddr @affinity-{b} goto endpoint-{b}")
        entries = " , ".join(f"{i} : goto endpoint-{endpoint_chain_base(svc, ep)}" for i, ep in enumerate(eps))
        self.out.add_rule(chain, f"numgen random mod {len(eps)} vmap {{ {entries} }}")


def main(argv: list[str]) -> int:
    """CLI: print the ``nft -f`` text for a JSON spec file."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    layout = argv[argv.index("--layout") + 1] if "--layout" in argv else "1.33"
    services, node = load_spec(argv[0])
    sys.stdout.write(generate_nft(services, node, layout).render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
