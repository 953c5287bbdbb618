"""The modern kube-proxy iptables layout (1.28-1.30; used by :func:`tools.kubegen.generate`).

Follows proxier.go's syncProxyRules: per service port KUBE-SVC (cluster policy), KUBE-SVL (local
policy), KUBE-EXT (external traffic), KUBE-FW (loadBalancerSourceRanges) and KUBE-SEP chains; filter
KUBE-SERVICES / KUBE-EXTERNAL-SERVICES REJECT/DROP rules for services without (local) endpoints,
KUBE-PROXY-FIREWALL for source ranges, KUBE-NODEPORTS health check ports, and the kubelet/kube-proxy
fixed chains and jumps of a 1.28+ node.
"""

from __future__ import annotations

from tools.kubegen import (
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

__all__ = ["generate_modern"]


def generate_modern(services: list[ServicePort], node: NodeConfig) -> Ruleset:
    """Build the ruleset a kube-proxy 1.28+ node would have (iptables mode)."""
    rs = Ruleset()
    _modern_base(rs, node)
    for svc in services:
        _modern_service(rs, svc, node)
    loopback = ["!", "-d", "::1/128"] if node.family == 6 else []
    rs.add("nat", "KUBE-SERVICES", "-m", "comment", "--comment",
           q("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
           "-m", "addrtype", "--dst-type", "LOCAL", loopback, "-j", "KUBE-NODEPORTS")
    return rs


def _modern_base(rs: Ruleset, node: NodeConfig) -> None:
    """Fixed chains, canaries and the jumps from the built-in chains (kubelet + kube-proxy 1.28+)."""
    rs.chain("mangle", "KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY")
    rs.chain("filter", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-EXTERNAL-SERVICES",
             "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-SERVICES")
    rs.chain("nat", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-MARK-MASQ", "KUBE-NODEPORTS",
             "KUBE-POSTROUTING", "KUBE-SERVICES")
    new = ["-m", "conntrack", "--ctstate", "NEW"]
    jumps = [  # (chain, extra, comment, target), in the order the prepends leave them
        ("INPUT", new, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
        ("INPUT", [], "kubernetes health check service ports", "KUBE-NODEPORTS"),
        ("INPUT", new, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
        ("INPUT", [], "", "KUBE-FIREWALL"),
        ("FORWARD", new, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
        ("FORWARD", [], "kubernetes forwarding rules", "KUBE-FORWARD"),
        ("FORWARD", new, "kubernetes service portals", "KUBE-SERVICES"),
        ("FORWARD", new, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
        ("OUTPUT", new, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
        ("OUTPUT", new, "kubernetes service portals", "KUBE-SERVICES"),
        ("OUTPUT", [], "", "KUBE-FIREWALL"),
    ]
    for chain, extra, comment, target in jumps:
        rs.add("filter", chain, extra, ["-m", "comment", "--comment", q(comment)] if comment else [],
               "-j", target)
    for chain, comment, target in (("PREROUTING", "kubernetes service portals", "KUBE-SERVICES"),
                                   ("OUTPUT", "kubernetes service portals", "KUBE-SERVICES"),
                                   ("POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING")):
        rs.add("nat", chain, "-m", "comment", "--comment", q(comment), "-j", target)
    add_postrouting(rs, node)
    if node.family == 4:
        rs.add("filter", "KUBE-FIREWALL", "-m", "comment", "--comment",
               q("block incoming localnet connections"),
               "-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate",
               "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
    rs.add("filter", "KUBE-FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
    rs.add("filter", "KUBE-FORWARD", "-m", "comment", "--comment", q("kubernetes forwarding rules"),
           "-m", "mark", "--mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j", "ACCEPT")
    rs.add("filter", "KUBE-FORWARD", "-m", "comment", "--comment", q("kubernetes forwarding conntrack rule"),
           "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")


def _modern_service(rs: Ruleset, svc: ServicePort, node: NodeConfig) -> None:
    """All rules of one service port, following proxier.go's syncProxyRules (1.28)."""
    name = svc.svc_port_name
    cluster_eps = svc.endpoints if (not svc.itp_local or svc.externally_accessible) else []
    local_eps = [ep for ep in svc.endpoints if ep.local] if (svc.itp_local or svc.etp_local) else []
    reachable = [ep for ep in svc.endpoints if ep in cluster_eps or ep in local_eps]
    has_eps = bool(reachable)
    has_internal = bool(local_eps) if svc.itp_local else has_eps
    has_external = bool(local_eps) if svc.etp_local else has_eps
    svc_chain, svl_chain, ext_chain, fw_chain = (svc.chain(k) for k in ("SVC", "SVL", "EXT", "FW"))
    internal_chain = svl_chain if svc.itp_local else svc_chain
    external_policy_chain = svl_chain if svc.etp_local else svc_chain
    uses_fw = has_eps and bool(svc.lb_ips) and bool(svc.lb_source_ranges)
    lb_chain = fw_chain if uses_fw else ext_chain

    def no_eps(local: bool) -> tuple[str, str]:
        return ((q(f"{name} has no local endpoints"), "DROP") if local and has_eps
                else (q(f"{name} has no endpoints"), "REJECT"))

    if has_internal:
        args = ["-m", "comment", "--comment", q(f"{name} cluster IP"), *svc.match(svc.cluster_ip)]
        if node.masquerade_all:
            rs.add("nat", internal_chain, *args, "-j", "KUBE-MARK-MASQ")
        elif node.cluster_cidr:
            rs.add("nat", internal_chain, *args, if_not_local(node), "-j", "KUBE-MARK-MASQ")
        rs.add("nat", "KUBE-SERVICES", *args, "-j", internal_chain)
    else:
        comment, target = no_eps(svc.itp_local)
        rs.add("filter", "KUBE-SERVICES", "-m", "comment", "--comment", comment,
               svc.match(svc.cluster_ip), "-j", target)
    ext_comment, ext_target = no_eps(svc.etp_local)
    for ip in svc.external_ips:
        if has_eps:
            rs.add("nat", "KUBE-SERVICES", "-m", "comment", "--comment", q(f"{name} external IP"),
                   svc.match(ip), "-j", ext_chain)
        if not has_external:
            rs.add("filter", "KUBE-EXTERNAL-SERVICES", "-m", "comment", "--comment", ext_comment,
                   svc.match(ip), "-j", ext_target)
    for ip in svc.lb_ips:
        if has_eps:
            rs.add("nat", "KUBE-SERVICES", "-m", "comment", "--comment", q(f"{name} loadbalancer IP"),
                   svc.match(ip), "-j", lb_chain)
        if uses_fw:
            rs.add("filter", "KUBE-PROXY-FIREWALL", "-m", "comment", "--comment",
                   q(f"{name} traffic not accepted by {fw_chain}"), svc.match(ip), "-j", "DROP")
    if not has_external:
        for ip in svc.lb_ips:
            rs.add("filter", "KUBE-EXTERNAL-SERVICES", "-m", "comment", "--comment", ext_comment,
                   svc.match(ip), "-j", ext_target)
    if svc.node_port:
        if has_eps:
            rs.add("nat", "KUBE-NODEPORTS", "-m", "comment", "--comment", name,
                   svc.match(None, svc.node_port), "-j", ext_chain)
        if not has_external:
            rs.add("filter", "KUBE-EXTERNAL-SERVICES", "-m", "comment", "--comment", ext_comment,
                   "-m", "addrtype", "--dst-type", "LOCAL", svc.match(None, svc.node_port), "-j", ext_target)
    if svc.health_check_node_port:
        rs.add("filter", "KUBE-NODEPORTS", "-m", "comment", "--comment", q(f"{name} health check node port"),
               "-m", "tcp", "-p", "tcp", "--dport", str(svc.health_check_node_port), "-j", "ACCEPT")
    if not has_eps:
        return
    if cluster_eps:
        rs.chain("nat", svc_chain)
    if local_eps:
        rs.chain("nat", svl_chain)
    if svc.externally_accessible:
        rs.chain("nat", ext_chain)
        if not svc.etp_local:
            rs.add("nat", ext_chain, "-m", "comment", "--comment",
                   q(f"masquerade traffic for {name} external destinations"), "-j", "KUBE-MARK-MASQ")
        else:
            if node.cluster_cidr:
                rs.add("nat", ext_chain, "-m", "comment", "--comment",
                       q(f"pod traffic for {name} external destinations"), "-s", node.cluster_cidr,
                       "-j", svc_chain)
            rs.add("nat", ext_chain, "-m", "comment", "--comment",
                   q(f"masquerade LOCAL traffic for {name} external destinations"),
                   "-m", "addrtype", "--src-type", "LOCAL", "-j", "KUBE-MARK-MASQ")
            rs.add("nat", ext_chain, "-m", "comment", "--comment",
                   q(f"route LOCAL traffic for {name} external destinations"),
                   "-m", "addrtype", "--src-type", "LOCAL", "-j", svc_chain)
        if has_external:
            rs.add("nat", ext_chain, "-j", external_policy_chain)
    if uses_fw:
        rs.chain("nat", fw_chain)
        allow_from_node = False
        for src in svc.lb_source_ranges:
            rs.add("nat", fw_chain, "-m", "comment", "--comment", q(f"{name} loadbalancer IP"),
                   "-s", src, "-j", ext_chain)
            allow_from_node = allow_from_node or cidr_contains(src, node.node_ip)
        if allow_from_node:
            for ip in svc.lb_ips:
                rs.add("nat", fw_chain, "-m", "comment", "--comment", q(f"{name} loadbalancer IP"),
                       "-s", ip, "-j", ext_chain)
        rs.add("nat", fw_chain, "-m", "comment", "--comment",
               q(f"other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"))
    if cluster_eps:
        _to_endpoints(rs, svc, svc_chain, cluster_eps)
    if local_eps:
        _to_endpoints(rs, svc, svl_chain, local_eps)
    for ep in reachable:
        add_sep(rs, svc, ep, name)


def _to_endpoints(rs: Ruleset, svc: ServicePort, chain: str, eps: list[Endpoint]) -> None:
    """Affinity ``recent --rcheck`` rules, then the statistic-balanced jumps to the SEP chains."""
    name = svc.svc_port_name
    if svc.affinity_timeout is not None:
        for ep in eps:
            rs.add("nat", chain, "-m", "comment", "--comment", q(f"{name} -> {ep.addr}"),
                   "-m", "recent", "--name", svc.sep_chain(ep), "--rcheck", "--seconds",
                   str(svc.affinity_timeout), "--reap", "-j", svc.sep_chain(ep))
    for i, ep in enumerate(eps):
        stat = ["-m", "statistic", "--mode", "random", "--probability", probability(len(eps) - i)]
        rs.add("nat", chain, "-m", "comment", "--comment", q(f"{name} -> {ep.addr}"),
               stat if i < len(eps) - 1 else [], "-j", svc.sep_chain(ep))
