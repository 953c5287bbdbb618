"""The kube-proxy 1.22-era iptables layout (used by :func:`tools.kubegen.generate` with ``layout="1.22"``).

Differences from the modern layout, following proxier.go of release-1.22 and the kubelet of that era:

* no KUBE-EXT/KUBE-SVL chains: externalTrafficPolicy=Local uses ``KUBE-XLB-<hash>`` (pods redirected to
  the SVC chain, LOCAL sources masqueraded, "Balancing rule N" over local endpoints, or
  ``"S has no local endpoints"`` -> KUBE-MARK-DROP);
* every load-balancer IP goes through ``KUBE-FW-<hash>``, which ends in KUBE-MARK-DROP; KUBE-MARK-DROP
  sets mark 0x8000 and filter KUBE-FIREWALL (kubelet) drops ``--mark 0x8000/0x8000``;
* NodePorts with eTP=Cluster mark-masq in KUBE-NODEPORTS itself; external IPs mark-masq in KUBE-SVC;
* SVC->SEP rules are commented with the bare service port name, no ``-> IP:PORT``;
* no KUBE-PROXY-FIREWALL, no KUBE-IPTABLES-HINT; KUBE-FORWARD has the two "pod source/destination" rules.
"""

from __future__ import annotations

from tools.kubegen import (
    DROP_MARK,
    MASQ_MARK,
    Endpoint,
    NodeConfig,
    Ruleset,
    ServicePort,
    add_postrouting,
    add_sep,
    cidr_contains,
    if_not_local,
    probability,
    q,
)

__all__ = ["generate_122"]


def generate_122(services: list[ServicePort], node: NodeConfig) -> Ruleset:
    """Build the ruleset a kube-proxy/kubelet 1.22 node would have."""
    rs = Ruleset()
    _base(rs, node)
    for svc in services:
        _service(rs, svc, node)
    rs.add("nat", "KUBE-SERVICES", "-m", "comment", "--comment",
           q("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
           "-m", "addrtype", "--dst-type", "LOCAL", "-j", "KUBE-NODEPORTS")
    return rs


def _base(rs: Ruleset, node: NodeConfig) -> None:
    """Fixed chains (kubelet's KUBE-MARK-DROP/KUBE-FIREWALL included) and built-in chain jumps."""
    rs.chain("mangle", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY")
    rs.chain("filter", "KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-EXTERNAL-SERVICES",
             "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-SERVICES")
    rs.chain("nat", "KUBE-KUBELET-CANARY", "KUBE-MARK-DROP", "KUBE-MARK-MASQ", "KUBE-POSTROUTING",
             "KUBE-PROXY-CANARY", "KUBE-NODEPORTS", "KUBE-SERVICES")
    new = ["-m", "conntrack", "--ctstate", "NEW"]
    for chain, extra, comment, target in (
        ("INPUT", [], "kubernetes health check service ports", "KUBE-NODEPORTS"),
        ("INPUT", new, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
        ("INPUT", [], "", "KUBE-FIREWALL"),
        ("FORWARD", [], "kubernetes forwarding rules", "KUBE-FORWARD"),
        ("FORWARD", new, "kubernetes service portals", "KUBE-SERVICES"),
        ("FORWARD", new, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
        ("OUTPUT", new, "kubernetes service portals", "KUBE-SERVICES"),
        ("OUTPUT", [], "", "KUBE-FIREWALL"),
    ):
        rs.add("filter", chain, extra, ["-m", "comment", "--comment", q(comment)] if comment else [],
               "-j", target)
    for chain, comment, target in (("PREROUTING", "kubernetes service portals", "KUBE-SERVICES"),
                                   ("OUTPUT", "kubernetes service portals", "KUBE-SERVICES"),
                                   ("POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING")):
        rs.add("nat", chain, "-m", "comment", "--comment", q(comment), "-j", target)
    rs.add("filter", "KUBE-FIREWALL", "-m", "comment", "--comment",
           q("kubernetes firewall for dropping marked packets"), "-m", "mark", "--mark",
           f"{DROP_MARK}/{DROP_MARK}", "-j", "DROP")
    rs.add("filter", "KUBE-FIREWALL", "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-m", "comment",
           "--comment", q("block incoming localnet connections"), "-m", "conntrack", "!", "--ctstate",
           "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
    rs.add("nat", "KUBE-MARK-DROP", "-j", "MARK", "--set-xmark", f"{DROP_MARK}/{DROP_MARK}")
    add_postrouting(rs, node)
    rs.add("filter", "KUBE-FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
    rs.add("filter", "KUBE-FORWARD", "-m", "comment", "--comment", q("kubernetes forwarding rules"),
           "-m", "mark", "--mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j", "ACCEPT")
    for which in ("source", "destination"):
        rs.add("filter", "KUBE-FORWARD", "-m", "comment", "--comment",
               q(f"kubernetes forwarding conntrack pod {which} rule"),
               "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")


def _service(rs: Ruleset, svc: ServicePort, node: NodeConfig) -> None:
    """All rules of one service port, following release-1.22 syncProxyRules."""
    name = svc.svc_port_name
    has_eps = bool(svc.endpoints)
    svc_chain, xlb_chain, fw_chain = svc.chain("SVC"), svc.chain("XLB"), svc.chain("FW")
    no_eps = ["-m", "comment", "--comment", q(f"{name} has no endpoints")]
    if has_eps:
        rs.chain("nat", svc_chain)
    if svc.etp_local:
        rs.chain("nat", xlb_chain)
    cluster = ["-m", "comment", "--comment", q(f"{name} cluster IP"), *svc.match(svc.cluster_ip + _host(svc))]
    if has_eps:
        if node.masquerade_all:
            rs.add("nat", svc_chain, *cluster, "-j", "KUBE-MARK-MASQ")
        elif node.cluster_cidr:
            rs.add("nat", svc_chain, *cluster, if_not_local(node), "-j", "KUBE-MARK-MASQ")
        rs.add("nat", "KUBE-SERVICES", *cluster, "-j", svc_chain)
    else:
        rs.add("filter", "KUBE-SERVICES", no_eps, svc.match(svc.cluster_ip + _host(svc)), "-j", "REJECT")
    for ip in svc.external_ips:
        args = ["-m", "comment", "--comment", q(f"{name} external IP"), *svc.match(ip + _host(svc))]
        if not has_eps:
            rs.add("filter", "KUBE-EXTERNAL-SERVICES", no_eps, svc.match(ip + _host(svc)), "-j", "REJECT")
            continue
        dest = xlb_chain
        if not svc.etp_local:
            dest = svc_chain
            rs.add("nat", svc_chain, *args, if_not_local(node), "-j", "KUBE-MARK-MASQ")
        rs.add("nat", "KUBE-SERVICES", *args, "-j", dest)
    for ip in svc.lb_ips:
        if not has_eps:
            rs.add("filter", "KUBE-EXTERNAL-SERVICES", no_eps, svc.match(ip + _host(svc)), "-j", "REJECT")
            continue
        rs.chain("nat", fw_chain)
        rs.add("nat", "KUBE-SERVICES", "-m", "comment", "--comment", q(f"{name} loadbalancer IP"),
               svc.match(ip + _host(svc)), "-j", fw_chain)
        fw = ["-m", "comment", "--comment", q(f"{name} loadbalancer IP")]
        chosen = xlb_chain
        if not svc.etp_local:
            rs.add("nat", fw_chain, *fw, "-j", "KUBE-MARK-MASQ")
            chosen = svc_chain
        if not svc.lb_source_ranges:
            rs.add("nat", fw_chain, *fw, "-j", chosen)
        else:
            for src in svc.lb_source_ranges:
                rs.add("nat", fw_chain, *fw, "-s", src, "-j", chosen)
            if any(cidr_contains(src, node.node_ip) for src in svc.lb_source_ranges):
                rs.add("nat", fw_chain, *fw, "-s", ip + _host(svc), "-j", chosen)
        rs.add("nat", fw_chain, *fw, "-j", "KUBE-MARK-DROP")
    if svc.node_port:
        args = ["-m", "comment", "--comment", name, *svc.match(None, svc.node_port)]
        if not has_eps:
            rs.add("filter", "KUBE-EXTERNAL-SERVICES", no_eps, "-m", "addrtype", "--dst-type", "LOCAL",
                   svc.match(None, svc.node_port), "-j", "REJECT")
        elif not svc.etp_local:
            rs.add("nat", "KUBE-NODEPORTS", *args, "-j", "KUBE-MARK-MASQ")
            rs.add("nat", "KUBE-NODEPORTS", *args, "-j", svc_chain)
        else:
            loopback = "::1/128" if ":" in svc.cluster_ip else "127.0.0.0/8"
            rs.add("nat", "KUBE-NODEPORTS", *args, "-s", loopback, "-j", "KUBE-MARK-MASQ")
            rs.add("nat", "KUBE-NODEPORTS", *args, "-j", xlb_chain)
    if svc.health_check_node_port:
        rs.add("filter", "KUBE-NODEPORTS", "-m", "comment", "--comment", q(f"{name} health check node port"),
               "-m", "tcp", "-p", "tcp", "--dport", str(svc.health_check_node_port), "-j", "ACCEPT")
    if not has_eps:
        return
    _balance(rs, svc, svc_chain, [name] * len(svc.endpoints), svc.endpoints)
    for ep in svc.endpoints:
        add_sep(rs, svc, ep, name)
    if svc.etp_local:
        _xlb(rs, svc, node)


def _xlb(rs: Ruleset, svc: ServicePort, node: NodeConfig) -> None:
    """The KUBE-XLB chain of an externalTrafficPolicy=Local service."""
    name, svc_chain, xlb = svc.svc_port_name, svc.chain("SVC"), svc.chain("XLB")
    if node.cluster_cidr:
        rs.add("nat", xlb, "-m", "comment", "--comment",
               q("Redirect pods trying to reach external loadbalancer VIP to clusterIP"),
               "-s", node.cluster_cidr, "-j", svc_chain)
    rs.add("nat", xlb, "-m", "comment", "--comment", q(f"masquerade LOCAL traffic for {name} LB IP"),
           "-m", "addrtype", "--src-type", "LOCAL", "-j", "KUBE-MARK-MASQ")
    rs.add("nat", xlb, "-m", "comment", "--comment",
           q(f"route LOCAL traffic for {name} LB IP to service chain"),
           "-m", "addrtype", "--src-type", "LOCAL", "-j", svc_chain)
    local = [ep for ep in svc.endpoints if ep.local]
    if not local:
        rs.add("nat", xlb, "-m", "comment", "--comment", q(f"{name} has no local endpoints"),
               "-j", "KUBE-MARK-DROP")
        return
    comments = [q(f"Balancing rule {i} for {name}") for i in range(len(local))]
    _balance(rs, svc, xlb, comments, local, affinity_comment=name)


def _balance(rs: Ruleset, svc: ServicePort, chain: str, comments: list[str], eps: list[Endpoint],
             affinity_comment: str | None = None) -> None:
    """Affinity ``recent --rcheck`` rules, then statistic jumps to the SEP chains (one comment each)."""
    if svc.affinity_timeout is not None:
        for ep in eps:
            rs.add("nat", chain, "-m", "comment", "--comment", affinity_comment or svc.svc_port_name,
                   "-m", "recent", "--name", svc.sep_chain(ep), "--rcheck", "--seconds",
                   str(svc.affinity_timeout), "--reap", "-j", svc.sep_chain(ep))
    for i, (ep, comment) in enumerate(zip(eps, comments)):
        stat = ["-m", "statistic", "--mode", "random", "--probability", probability(len(eps) - i)]
        rs.add("nat", chain, "-m", "comment", "--comment", comment, stat if i < len(eps) - 1 else [],
               "-j", svc.sep_chain(ep))


def _host(svc: ServicePort) -> str:
    """1.22 wrote service addresses through ToCIDR (``10.96.0.10/32``)."""
    return "/128" if ":" in svc.cluster_ip else "/32"
