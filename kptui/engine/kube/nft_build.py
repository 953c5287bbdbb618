"""``build_nft_service_index(ruleset)``: kube-proxy's service ports recovered from its nftables-mode table.

The same :class:`~.model.ServiceIndex` / :class:`~.model.ServicePort` values as the iptables side
(:mod:`.build`), with ``mode`` ``"nftables"``, read from ``table ip|ip6 kube-proxy``:

* ``service-ips`` (``ADDR . PROTO . PORT : goto CHAIN``): a cluster IP goes to the service's ``service-`` chain
  (``local-`` with internalTrafficPolicy Local), an external or load-balancer IP to its ``external-`` chain;
  ``cluster-ips`` says which addresses are cluster IPs; ``firewall-ips`` (``: goto firewall-…``) which are
  load-balancer IPs with loadBalancerSourceRanges (the others are told apart by nothing: ``external_or_lb_ips``);
* ``service-nodeports`` (``PROTO . PORT : goto external-…``): NodePorts;
* ``no-endpoint-services`` / ``no-endpoint-nodeports``: ``goto reject-chain`` (no endpoints) or ``drop``
  (no local endpoints), each element commented with the service port's name;
* the per-service chains (``service-``/``local-`` pick an endpoint with ``numgen random mod N vmap { … }``, each
  value 1/N exactly; ``ip saddr @affinity-… goto endpoint-…`` rules for ClientIP affinity, whose sets carry the
  timeout; ``external-`` tells externalTrafficPolicy; ``firewall-`` the source ranges) and the endpoint chains
  (``dnat to IP:PORT``). Newer kube-proxies DNAT in the service chain (``dnat … to numgen … map { 0 : IP .
  PORT }``): endpoints without chains.

Names come from the chain names (``service-HASH8-ns/name/proto/port``, the hash checked: ``name_source``
``"chain"``) and, for service ports without chains, from the elements' comments (``"comment"``). Health-check
node ports have no rule in nftables mode: always None. Pure, stdlib only.
"""

from __future__ import annotations

import gc

from ..nft.exprs import SetRef, Value, Verdict, VMap
from ..nft.model import NftRule, NftRuleset, NftTable
from .model import BlockingRule, ServiceIndex, ServicePort
from .nft_chains import ChainReader
from .nft_draft import KINDS, PROTOS, NftPort, hostport, norm, target_of
from .nft_layout import element_key, kube_layout_of, kube_tables
from .nft_names import PREFIXES, NftChainName, nft_base, parse_chain

__all__ = ["build_nft_service_index", "nft_service_index_of"]

_SERVICE_PREFIXES = ("service-", "local-", "external-", "firewall-")


def build_nft_service_index(ruleset: NftRuleset, family: str | None = None) -> ServiceIndex:
    """Every service port of kube-proxy's nftables tables in ``ruleset`` (only ``family``'s, "ip" or "ip6",
    when given); see the module doc. A listing without them gives an empty index."""
    services: list[ServicePort] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small acyclic objects: the cyclic collector would walk them in vain
    try:
        for table in kube_tables(ruleset):
            if family is None or table.family == family:
                services += _TablePass(table).run()
        services.sort(key=lambda s: (s.name is None, s.name or "", s.protocol or "", s.cluster_ip or "",
                                     s.chain_hash or "", s.node_port or 0, s.external_or_lb_ips))  # fmt: skip
        return ServiceIndex(tuple(services), kube_layout_of(ruleset, family))
    finally:
        if gc_was_enabled:
            gc.enable()


def nft_service_index_of(ruleset: NftRuleset, family: str | None = None) -> ServiceIndex:
    """The service index of ``ruleset``'s kube-proxy tables, built once and kept with it."""
    tables = kube_tables(ruleset)
    if family is None and len(tables) == 1:
        family = tables[0].family  # the same index: build it once
    return ruleset.derived(f"kube-services:{family or ''}", lambda rs: build_nft_service_index(rs, family))


class _TablePass:
    """Reads one kube-proxy table: maps and sets first, then each service port's chains."""

    def __init__(self, table: NftTable) -> None:
        self.table = table
        self.where = f"{table.family} kube-proxy"
        self.ports: dict[object, NftPort] = {}
        self.by_addr: dict[tuple[str | None, str, int | None], NftPort] = {}
        self.by_node_port: dict[tuple[str | None, int], NftPort] = {}
        st = table.sets.get("cluster-ips")
        self.cluster_ips = {norm(str(e.key[0])) for e in st.elements} if st is not None else None
        fw = table.sets.get("firewall-ips")
        self.fw_ips = {(norm(str(k[0])), str(k[1]), k[2]) for e in (fw.elements if fw else ())
                       if len(k := element_key(e.key)) == 3}  # fmt: skip
        self.map_rules = self._map_rules()

    def _map_rules(self) -> dict[str, tuple[str, NftRule]]:
        """Map name → (the chain and rule that look it up), for the blocking rules' location."""
        out: dict[str, tuple[str, NftRule]] = {}
        for chain in self.table.chains.values():
            if chain.name.startswith(PREFIXES) and parse_chain(chain.name) is not None:
                continue
            for rule in chain.rules:
                for s in rule.exprs:
                    if isinstance(s, VMap) and isinstance(s.data, SetRef):
                        out.setdefault(s.data.name, (chain.name, rule))
        return out

    # -- the drafts ----------------------------------------------------------------------------------
    def port(self, parsed: NftChainName) -> NftPort:
        base = parsed.service_base
        p = self.ports.get(base)
        if p is None:
            p = self.ports[base] = NftPort(base)
            if parsed.truncated:
                p.notes.append("the chain names are cut at nft's length limit: they do not hold the whole service "
                               "port name, and the hash cannot be checked")  # fmt: skip
            name = parsed.port_name if not parsed.truncated else None
            if name is not None:
                p.name, p.name_source = name, "chain"
            p.proto = parsed.protocol if parsed.protocol in PROTOS else None
        if not parsed.truncated and parsed.prefix != "affinity":
            ok = parsed.verified
            if ok is False and p.hash_verified is not False:
                p.notes.append(f"the hash {parsed.hash} of chain {parsed.prefix}-{parsed.base} is not the hash of "
                               "its name: not written by kube-proxy as it is")  # fmt: skip
            if p.hash_verified is None or ok is False:
                p.hash_verified = ok
        return p

    def index(self, p: NftPort) -> None:
        for ip in [*([p.cluster_ip] if p.cluster_ip else []), *p.external, *p.lb, *p.ext_or_lb]:
            self.by_addr.setdefault((p.proto, norm(ip), p.port), p)
        for np in p.node_ports:
            self.by_node_port.setdefault((p.proto, np), p)

    def chainless(self, name: str | None, proto: str, ip: str | None, port: int | None,
                  node_port: int | None) -> NftPort:  # fmt: skip
        """The port an element without chains is about: by its comment's name, else by address."""
        if name:
            base = nft_base(name, proto)
            p = self.ports.get(base)
            if p is None:
                p = self.ports[base] = NftPort(base)
                p.name, p.name_source, p.proto = name, "comment", proto
            return p
        found = self.by_addr.get((proto, norm(ip), port)) if ip else self.by_node_port.get((proto, node_port or 0))
        if found is not None:
            return found
        key = ("addr", proto, ip, port, node_port)
        p = self.ports.get(key)
        if p is None:
            p = self.ports[key] = NftPort(None)
            p.proto = proto
        return p

    # -- the pass ------------------------------------------------------------------------------------
    def run(self) -> list[ServicePort]:
        for name in self.table.chains:
            if not name.startswith(_SERVICE_PREFIXES):
                continue
            parsed = parse_chain(name)
            if parsed is not None and parsed.kind in KINDS:
                self.port(parsed).chains[parsed.kind] = name
        self._service_ips()
        self._node_ports()
        self._firewall_ips()
        for p in list(self.ports.values()):
            self.index(p)
        self._no_endpoints("no-endpoint-services", nodeport=False)
        self._no_endpoints("no-endpoint-nodeports", nodeport=True)
        reader = ChainReader(self.table, self.where)
        for p in list(self.ports.values()):
            reader.read(p)
        return [p.freeze() for p in self.ports.values()]

    def _elements(self, name: str, width: int) -> list[tuple[tuple[Value, ...], Value | None, str | None]]:
        st = self.table.sets.get(name)
        out = []
        for e in st.elements if st is not None else ():
            key = element_key(e.key)
            if len(key) == width:
                out.append((key, e.value, e.comment))
        return out

    def _owner(self, target: str | None) -> tuple[NftPort, NftChainName] | None:
        parsed = parse_chain(target) if target else None
        if parsed is None or parsed.kind not in KINDS:
            return None
        return self.port(parsed), parsed

    def _service_ips(self) -> None:
        for (addr, proto, port), value, _ in self._elements("service-ips", 3):
            found = self._owner(target_of(value))
            if found is None:
                continue
            p, parsed = found
            ip, proto_s, port_i = str(addr), str(proto), port if isinstance(port, int) else None
            if p.proto is None and proto_s in PROTOS:
                p.proto = proto_s
            cluster = parsed.kind in ("SVC", "SVL") if self.cluster_ips is None else norm(ip) in self.cluster_ips
            if cluster:
                if p.cluster_ip is None:
                    p.cluster_ip, p.port = ip, port_i
                    p.itp = "Local" if parsed.kind == "SVL" else "Cluster"
                elif norm(p.cluster_ip) != norm(ip):
                    p.notes.append(f"a second cluster IP {ip} leads to the same chains")
            else:
                if (norm(ip), proto_s, port_i) in self.fw_ips:
                    p.lb[ip] = None
                else:
                    p.ext_or_lb[ip] = None
                if p.port is None:
                    p.port = port_i

    def _node_ports(self) -> None:
        for (proto, port), value, _ in self._elements("service-nodeports", 2):
            found = self._owner(target_of(value))
            if found is None or not isinstance(port, int):
                continue
            p = found[0]
            if p.proto is None and str(proto) in PROTOS:
                p.proto = str(proto)
            p.node_ports[port] = None

    def _firewall_ips(self) -> None:
        for (addr, _, port), value, _ in self._elements("firewall-ips", 3):
            found = self._owner(target_of(value))
            if found is None:
                continue
            p, ip = found[0], str(addr)
            p.ext_or_lb.pop(ip, None)
            p.lb[ip] = None
            if p.port is None and isinstance(port, int):
                p.port = port

    def _no_endpoints(self, name: str, *, nodeport: bool) -> None:
        where = self.map_rules.get(name)
        for key, value, comment in self._elements(name, 2 if nodeport else 3):
            if nodeport:
                proto, port = key
                ip, svc_port, node_port = None, None, port if isinstance(port, int) else None
            else:
                addr, proto, port = key
                ip, svc_port, node_port = str(addr), port if isinstance(port, int) else None, None
            proto_s = str(proto)
            reject = target_of(value) == "reject-chain"
            drop = isinstance(value, Verdict) and value.kind == "drop"
            if not (reject or drop):
                continue
            p = self.chainless(comment, proto_s, ip, svc_port, node_port)
            reason = "no endpoints" if reject else "no local endpoints"
            if reject:
                p.no_endpoints = True
            else:
                p.no_local = True
            if node_port is not None:
                p.node_ports.setdefault(node_port, None)
                if drop:
                    p.etp = "Local"
            elif ip is not None:
                if self.cluster_ips is not None and norm(ip) in self.cluster_ips:
                    if p.cluster_ip is None:
                        p.cluster_ip = ip
                    if drop:
                        p.itp = "Local"
                else:
                    if ip not in p.external and ip not in p.lb:
                        target = p.lb if (norm(ip), proto_s, svc_port) in self.fw_ips else p.ext_or_lb
                        target.setdefault(ip, None)
                    if drop:
                        p.etp = "Local"
                if p.port is None:
                    p.port = svc_port
            chain, rule = where if where is not None else (name, None)
            dest = hostport(ip, svc_port) if ip is not None else f"*:{node_port}"
            p.blocks.append(BlockingRule(self.where, chain, rule.index if rule else 0,
                                         rule.line or 0 if rule else 0, "reject" if reject else "drop", reason,
                                         dest))  # fmt: skip
            self.index(p)
