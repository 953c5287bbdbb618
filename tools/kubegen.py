"""Generate kube-proxy-shaped iptables-restore input (stdlib only).

Describe service ports (:class:`ServicePort`, with :class:`Endpoint` s) and the node
(:class:`NodeConfig`), call :func:`generate` with ``layout="modern"`` (kube-proxy 1.28-1.30 iptables
mode: KUBE-SVC/SVL/EXT/FW/SEP chains, KUBE-PROXY-FIREWALL; :mod:`tools.kubegen_modern`) or
``layout="1.22"`` (KUBE-XLB, KUBE-MARK-DROP 0x8000; :mod:`tools.kubegen_122`) or ``layout="ipvs"``
(kube-proxy's IPVS mode, with its ipsets and IPVS table; :mod:`tools.kubegen_ipvs`) and
:meth:`Ruleset.render` the result. This module holds the model, the hash, the :class:`Ruleset`
builder and the pieces both layouts share.

The rules are written the way kube-proxy writes them (``-m comment`` first, ``-m tcp -p tcp``, no
``/32``), chain names use kube-proxy's hash, and the jumps from the built-in chains appear in the order
kube-proxy's prepends leave them in. What the kernel stores (and ``iptables-save`` prints) differs --
option order, ``/32``, 11-decimal probabilities -- which is why samples must come from a real kernel.

CLI: ``python3 -m tools.kubegen SPEC.json [--layout 1.22]`` where SPEC.json is
``{"node": {...NodeConfig fields...}, "services": [{...ServicePort fields..., "endpoints": [[ip, port,
is_local], ...]}]}``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import sys
from dataclasses import dataclass, field

__all__ = ["Endpoint", "NodeConfig", "Ruleset", "ServicePort", "generate", "load_spec", "port_proto_hash"]

BUILTIN_CHAINS = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
MASQ_MARK = "0x4000"
DROP_MARK = "0x8000"


def port_proto_hash(svc_port_name: str, protocol: str, endpoint: str = "") -> str:
    """kube-proxy's chain hash: first 16 chars of base32(sha256(name + protocol [+ "IP:PORT"]))."""
    digest = hashlib.sha256((svc_port_name + protocol + endpoint).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def q(text: str) -> str:
    """Quote a comment the way kube-proxy does in its restore input."""
    return f'"{text}"'


@dataclass(frozen=True)
class Endpoint:
    """One ready endpoint: ``ip``, target ``port``, and whether it runs on this node."""

    ip: str
    port: int
    local: bool = False

    @property
    def addr(self) -> str:
        """``IP:PORT`` (``[IP]:PORT`` for IPv6) as kube-proxy prints it (and hashes it)."""
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass
class ServicePort:
    """One port of one Service, with its endpoints (the unit kube-proxy builds chains for)."""

    namespace: str
    name: str
    cluster_ip: str
    port: int
    port_name: str = ""
    protocol: str = "TCP"
    node_port: int = 0
    external_ips: list[str] = field(default_factory=list)
    lb_ips: list[str] = field(default_factory=list)
    lb_source_ranges: list[str] = field(default_factory=list)
    external_policy: str = "Cluster"  # externalTrafficPolicy: Cluster | Local
    internal_policy: str = "Cluster"  # internalTrafficPolicy: Cluster | Local
    affinity_timeout: int | None = None  # sessionAffinity ClientIP with this timeout (seconds)
    health_check_node_port: int = 0
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def svc_port_name(self) -> str:
        """``ns/name:port`` (``ns/name`` for an unnamed port), the string kube-proxy hashes."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def proto(self) -> str:
        """Lower-case protocol (``tcp``, ``udp``, ``sctp``)."""
        return self.protocol.lower()

    def chain(self, kind: str) -> str:
        """Per-service chain name: ``chain("SVC")`` -> ``KUBE-SVC-<hash>`` (also SVL/EXT/FW/XLB)."""
        return f"KUBE-{kind}-{port_proto_hash(self.svc_port_name, self.proto)}"

    def sep_chain(self, ep: Endpoint) -> str:
        """``KUBE-SEP-<hash>`` of one endpoint."""
        return "KUBE-SEP-" + port_proto_hash(self.svc_port_name, self.proto, ep.addr)

    @property
    def etp_local(self) -> bool:
        """externalTrafficPolicy is Local."""
        return self.external_policy == "Local"

    @property
    def itp_local(self) -> bool:
        """internalTrafficPolicy is Local."""
        return self.internal_policy == "Local"

    @property
    def externally_accessible(self) -> bool:
        """Has a NodePort, external IPs or load-balancer IPs."""
        return bool(self.node_port or self.external_ips or self.lb_ips)

    def match(self, dst: str | None = None, dport: int | None = None) -> list[str]:
        """``-m PROTO -p PROTO [-d DST] --dport PORT`` as kube-proxy writes it."""
        return ["-m", self.proto, "-p", self.proto, *(["-d", dst] if dst else []),
                "--dport", str(dport if dport is not None else self.port)]


@dataclass
class NodeConfig:
    """Node-wide kube-proxy settings.

    ``cluster_cidr`` feeds the ``! -s CIDR`` local-traffic detector (``None``: detector not
    implemented); ``node_ip`` decides whether a loadBalancerSourceRanges CIDR covers the node.
    ``service_cidrs`` and ``nodeport_addresses`` matter only to the nftables generator.
    """

    cluster_cidr: str | None = "10.244.0.0/16"
    node_ip: str = "10.0.0.2"
    masquerade_all: bool = False
    random_fully: bool = False
    node_addresses: tuple[str, ...] = ()  # IPVS mode: every node address gets a NodePort virtual server
    draining: tuple[str, ...] = ()  # IPVS mode: endpoints (IP:PORT) whose real servers have weight 0
    # nftables mode only (tools/kubegen_nft.py): the ServiceCIDRs of both families (the lab's plan; empty:
    # none known, so no "drop traffic to unallocated ClusterIPs" rule) and --nodeport-addresses ("primary":
    # the node IP, kube-proxy's nftables default; "all": every local address but localhost).
    service_cidrs: tuple[str, ...] = ("10.96.0.0/12", "fd00:10:96::/112")
    nodeport_addresses: str = "primary"

    @property
    def family(self) -> int:
        """6 when the node IP is IPv6, else 4."""
        return 6 if ":" in self.node_ip else 4


@dataclass
class Table:
    """One table of restore input: declared chains (name -> policy or ``-``) and ``-A``/``-I`` lines."""

    name: str
    chains: dict[str, str] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)


class Ruleset:
    """Restore input under construction, table by table, rendered by :meth:`render`."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}

    def table(self, name: str) -> Table:
        """Return table ``name``, creating it with its built-in chains (policy ACCEPT)."""
        if name not in self.tables:
            self.tables[name] = Table(name, {c: "ACCEPT" for c in BUILTIN_CHAINS[name]})
        return self.tables[name]

    def chain(self, table: str, *names: str) -> None:
        """Declare user chains (idempotent)."""
        for name in names:
            self.table(table).chains.setdefault(name, "-")

    def policy(self, table: str, chain: str, policy: str) -> None:
        """Set a built-in chain's policy (e.g. FORWARD DROP as Docker does)."""
        self.table(table).chains[chain] = policy

    def add(self, table: str, chain: str, *args: str | list[str]) -> None:
        """Append ``-A CHAIN ARGS...`` (lists in ``args`` are flattened)."""
        self.table(table).rules.append(" ".join(["-A", chain, *_flat(args)]))

    def prepend(self, table: str, lines: list[str]) -> None:
        """Put raw rule lines (``-A ...``) before everything else in ``table`` (other vendors' rules)."""
        self.table(table).rules[:0] = lines

    def render(self, order: tuple[str, ...] = ("raw", "mangle", "filter", "nat")) -> str:
        """Return iptables-restore text: ``*table``, ``:CHAIN POLICY [0:0]`` lines, rules, ``COMMIT``."""
        out: list[str] = []
        for name in sorted(self.tables, key=lambda n: order.index(n) if n in order else len(order)):
            tbl = self.tables[name]
            out.append(f"*{name}")
            out += [f":{chain} {policy} [0:0]" for chain, policy in tbl.chains.items()]
            out += tbl.rules
            out.append("COMMIT")
        return "\n".join(out) + "\n"


def _flat(args: tuple[str | list[str], ...]) -> list[str]:
    return [a for arg in args for a in ([arg] if isinstance(arg, str) else arg)]


def probability(n: int) -> str:
    """kube-proxy's statistic probability for the first of ``n`` remaining endpoints."""
    return f"{1.0 / n:0.10f}"


def if_not_local(node: NodeConfig) -> list[str]:
    """The local-traffic detector's negative form (``! -s CLUSTER_CIDR``)."""
    return ["!", "-s", node.cluster_cidr] if node.cluster_cidr else []


def generate(services: list[ServicePort], node: NodeConfig, layout: str = "modern") -> Ruleset:
    """Build the ruleset kube-proxy (``layout`` ``"modern"``, ``"1.22"`` or ``"ipvs"``) would install (for
    ``"ipvs"`` a :class:`tools.kubegen_ipvs.IpvsRuleset`, which also holds the ipsets and the IPVS table)."""
    if layout == "modern":
        from tools.kubegen_modern import generate_modern
        return generate_modern(services, node)
    if layout == "1.22":
        from tools.kubegen_122 import generate_122
        return generate_122(services, node)
    if layout == "ipvs":
        from tools.kubegen_ipvs import generate_ipvs
        return generate_ipvs(services, node, node_addresses=node.node_addresses, draining=node.draining)
    raise ValueError(f"unknown layout {layout!r}")


def add_postrouting(rs: Ruleset, node: NodeConfig) -> None:
    """KUBE-POSTROUTING (masquerade 0x4000-marked traffic) and KUBE-MARK-MASQ."""
    rs.add("nat", "KUBE-POSTROUTING", "-m", "mark", "!", "--mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j", "RETURN")
    rs.add("nat", "KUBE-POSTROUTING", "-j", "MARK", "--xor-mark", MASQ_MARK)
    rs.add("nat", "KUBE-POSTROUTING", "-m", "comment", "--comment",
           q("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE",
           ["--random-fully"] if node.random_fully else [])
    rs.add("nat", "KUBE-MARK-MASQ", "-j", "MARK", "--or-mark", MASQ_MARK)


def add_sep(rs: Ruleset, svc: ServicePort, ep: Endpoint, comment: str) -> None:
    """One KUBE-SEP chain: hairpin masquerade, optional ``recent --set``, DNAT."""
    chain = svc.sep_chain(ep)
    rs.chain("nat", chain)
    rs.add("nat", chain, "-m", "comment", "--comment", comment, "-s", ep.ip, "-j", "KUBE-MARK-MASQ")
    recent = ["-m", "recent", "--name", chain, "--set"] if svc.affinity_timeout is not None else []
    rs.add("nat", chain, "-m", "comment", "--comment", comment, recent, "-m", svc.proto, "-p", svc.proto,
           "-j", "DNAT", "--to-destination", ep.addr)


def cidr_contains(cidr: str, ip: str) -> bool:
    """True when ``ip`` lies inside ``cidr``."""
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def service_from_json(data: dict[str, object]) -> ServicePort:
    """Build a :class:`ServicePort` from a JSON object (``endpoints`` as ``[ip, port, is_local]``)."""
    fields = dict(data)
    eps = fields.pop("endpoints", [])
    assert isinstance(eps, list)
    return ServicePort(**fields, endpoints=[Endpoint(str(e[0]), int(e[1]), bool(e[2])) for e in eps])  # type: ignore[arg-type]


def load_spec(path: str) -> tuple[list[ServicePort], NodeConfig]:
    """The services and node of a JSON spec file (see the module docstring)."""
    with open(path) as fh:
        spec = json.load(fh)
    node_spec = dict(spec.get("node", {}))
    if "service_cidrs" in node_spec:
        node_spec["service_cidrs"] = tuple(node_spec["service_cidrs"])
    return [service_from_json(s) for s in spec["services"]], NodeConfig(**node_spec)


def main(argv: list[str]) -> int:
    """CLI: print the restore text for a JSON spec file."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    layout = argv[argv.index("--layout") + 1] if "--layout" in argv else "modern"
    services, node = load_spec(argv[0])
    sys.stdout.write(generate(services, node, layout).render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
