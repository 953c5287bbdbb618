"""Pitfall findings for kube-proxy's nftables mode: ``nft_pitfalls(listing)`` gives a
:class:`~.findings.Pitfalls` (the same findings, lookups and JSON as the iptables side), located at the nft rule
(``table`` ``"ip kube-proxy"``, the chain, the 1-based rule index) and, for map elements, also at
``(table, "@map", element index)``.

Per service port (:func:`service_findings`): ``no-endpoints`` (rejected), ``no-local-endpoints`` (a Local traffic
policy and no endpoint here: dropped), ``lb-source-ranges``, ``client-source-ip-lost`` (externalTrafficPolicy
Cluster), ``hairpin-masquerade``, ``uneven-shares`` (a numgen map that is not 1/N). Node-wide checks are in
:mod:`.nft_findings_node`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction

from ..model import Ruleset
from ..nft.model import NftRuleset, NftTable
from .findings import Pitfalls
from .findings_model import Finding, Key
from .findings_services import _covered
from .model import ServiceIndex, ServicePort
from .nft_build import nft_service_index_of
from .nft_layout import TABLE, kube_tables, nft_layout

__all__ = ["nft_pitfalls", "service_findings"]

Pair = tuple[Finding, Sequence[Key]]
_NAMES = 5


def _names(svcs: Sequence[ServicePort]) -> str:
    labels = list(dict.fromkeys(s.label for s in svcs))
    more = f" and {len(labels) - _NAMES} more" if len(labels) > _NAMES else ""
    return ", ".join(labels[:_NAMES]) + more


def _element_keys(table: NftTable, where: str, svc: ServicePort, maps: Sequence[str]) -> list[Key]:
    """The elements of ``maps`` that are about ``svc`` (by their comment, or by the chain they go to)."""
    own = set(svc.chains.values())
    out: list[Key] = []
    for name in maps:
        st = table.sets.get(name)
        for i, el in enumerate(st.elements if st is not None else ()):
            target = getattr(el.value, "target", None)
            if (svc.name is not None and el.comment == svc.name) or target in own:
                out.append((where, f"@{name}", i + 1))
    return out


def service_findings(table: NftTable, index: ServiceIndex, pod_cidr: str | None) -> Iterator[Pair]:
    where = f"{table.family} {TABLE}"
    lost: list[tuple[Key, int, ServicePort]] = []
    hairpin: list[tuple[Key, int, ServicePort]] = []
    for svc in index:
        yield from _refusals(table, where, svc)
        if svc.source_ranges and "FW" in svc.chains:
            yield _ranges(table, where, svc, pod_cidr)
        ext = table.chains.get(svc.chains.get("EXT", ""))
        if svc.external_traffic_policy == "Cluster" and ext is not None:
            for r in ext.rules:
                if r.text.startswith("jump mark-for-masquerade"):
                    lost.append(((where, ext.name, r.index), r.line or 0, svc))
                    break
        for ep in svc.endpoints:
            chain = table.chains.get(ep.chain) if ep.chain else None
            rule = next((r for r in chain.rules if "saddr" in r.text and "mark-for-masquerade" in r.text), None) \
                if chain is not None else None  # fmt: skip
            if rule is not None:
                hairpin.append(((where, ep.chain, rule.index), rule.line or 0, svc))
                break
        for kind, local in (("SVC", False), ("SVL", True)):
            shares = [e.local_probability if local else e.probability for e in svc.endpoints]
            known = [s for s in shares if s is not None]
            if kind in svc.chains and len(known) >= 2 and len(set(known)) > 1:
                yield _uneven(table, where, svc, svc.chains[kind], known)
    if lost:
        (t, c, i), line, svc = lost[0]
        n = len(lost)
        yield Finding(
            "client-source-ip-lost", "info",
            f"external clients' source IP is lost ({n} service port{'s' if n != 1 else ''} with "
            "externalTrafficPolicy Cluster)",
            "The external chain of these service ports marks every connection for masquerade (jump "
            "mark-for-masquerade), so the endpoint sees this node's address instead of the client's. Service ports: "
            f"{_names([x[2] for x in lost])}.",
            "If the application needs the client address, use externalTrafficPolicy Local (traffic then only goes to "
            "nodes with endpoints) or a proxy protocol on the load balancer.",
            t, c, i, line or None, svc.label if n == 1 else None, n,
        ), [k for k, _, _ in lost[1:]]  # fmt: skip
    if hairpin:
        (t, c, i), line, svc = hairpin[0]
        n = len(hairpin)
        yield Finding(
            "hairpin-masquerade", "info", f"hairpin traffic is masqueraded ({n} service port{'s' if n != 1 else ''})",
            "Each endpoint chain marks connections that come from the endpoint itself for masquerade (ip saddr EP "
            "jump mark-for-masquerade): a pod that reaches its own Service and is picked sees the connection come "
            f"from the node. Service ports: {_names([x[2] for x in hairpin])}.",
            "kube-proxy's normal behaviour; it matters to applications that log or check client addresses.",
            t, c, i, line or None, svc.label if n == 1 else None, n,
        ), [k for k, _, _ in hairpin[1:]]  # fmt: skip


def _refusals(table: NftTable, where: str, svc: ServicePort) -> Iterator[Pair]:
    for reason, code in (("no endpoints", "no-endpoints"), ("no local endpoints", "no-local-endpoints")):
        blocks = [b for b in svc.blocking_rules if b.reason == reason]
        if not blocks:
            continue
        b = blocks[0]
        shown = [f"NodePort {x.destination[2:]}" if x.destination and x.destination.startswith("*:") else
                 x.destination for x in blocks if x.destination]  # fmt: skip
        addrs = ", ".join(dict.fromkeys(s for s in shown if s)) or "its addresses"
        also: list[Key] = [(x.table, x.chain, x.index) for x in blocks[1:]]
        also += _element_keys(table, where, svc, ("no-endpoint-services", "no-endpoint-nodeports"))
        if code == "no-endpoints":
            yield Finding(
                code, "warning", f"{svc.label} has no endpoints",
                f"Every new connection to {addrs} is rejected (@no-endpoint-services / @no-endpoint-nodeports → "
                "goto reject-chain): the Service has no ready endpoint, because its selector matches no pod or none "
                "of them is ready. Clients see \"connection refused\".",
                f"kubectl get endpointslices -n {svc.namespace or 'NS'} -l kubernetes.io/service-name="
                f"{svc.service or 'NAME'}; check the Service's selector and the pods' readiness.",
                b.table, b.chain, b.index, b.line or None, svc.label,
            ), also  # fmt: skip
            continue
        if svc.internal_traffic_policy == "Local" and svc.cluster_ip and any(svc.cluster_ip in s for s in shown):
            detail = (f"internalTrafficPolicy Local and no endpoint on this node: connections from this node's pods to "
                      f"{addrs} are dropped (a timeout, not an error).")  # fmt: skip
            advice = "Run an endpoint on every node that calls it (a DaemonSet), or use internalTrafficPolicy Cluster."
        else:
            detail = (f"externalTrafficPolicy Local and no endpoint on this node: external traffic to {addrs} that "
                      "arrives here is dropped (a blackhole). By design only if the load balancer health-checks the "
                      "Service's healthCheckNodePort and stops sending to this node.")  # fmt: skip
            advice = ("Check the load balancer's health check uses the Service's healthCheckNodePort; for NodePort "
                      "clients, use nodes that run an endpoint, or externalTrafficPolicy Cluster (which loses the "
                      "client IP).")  # fmt: skip
        if "EXT" in svc.chains:
            also.append((where, svc.chains["EXT"], None))
        yield Finding(code, "warning", f"{svc.label} has no local endpoints", detail, advice, b.table, b.chain,
                      b.index, b.line or None, svc.label), also  # fmt: skip


def _ranges(table: NftTable, where: str, svc: ServicePort, pod_cidr: str | None) -> Pair:
    fw = svc.chains["FW"]
    chain = table.chains[fw]
    rule = next((r for r in chain.rules if "drop" in r.text), chain.rules[0] if chain.rules else None)
    ranges = ", ".join(svc.source_ranges)
    ips = ", ".join((*svc.load_balancer_ips, *svc.external_or_lb_ips)) or "its load-balancer IP"
    detail = (f"Connections to {ips} from sources outside {ranges} are dropped in {fw}, reached from firewall-check "
              "before DNAT. That includes pods and this node when they use the load-balancer IP.")  # fmt: skip
    severity = "info"
    if pod_cidr is not None and _covered(pod_cidr, svc.source_ranges) is False:
        severity = "warning"
        detail += f" The pod network {pod_cidr} is not in the ranges, so in-cluster clients of {ips} are dropped."
    also = _element_keys(table, where, svc, ("firewall-ips",))
    return Finding(
        "lb-source-ranges", severity, f"{svc.label}: only loadBalancerSourceRanges may use the load-balancer IP",
        detail, "Add the client networks (and the pod CIDR, if pods use the load-balancer address) to "
        "spec.loadBalancerSourceRanges, or have in-cluster clients use the ClusterIP.",
        where, fw, rule.index if rule else None, (rule.line or None) if rule else None, svc.label,
    ), also  # fmt: skip


def _uneven(table: NftTable, where: str, svc: ServicePort, chain: str, shares: list[Fraction]) -> Pair:
    rule = next((r for r in table.chains[chain].rules if "numgen" in r.text), None)
    n = len(shares)
    return Finding(
        "uneven-shares", "warning", f"{svc.label}: endpoints get unequal shares",
        f"The numgen map in {chain} gives the endpoints {', '.join(f'{float(s) * 100:.1f} %' for s in shares)} of new "
        f"connections instead of {100 / n:.1f} % each: kube-proxy maps each of the N values to one endpoint.",
        "These rules were not written by kube-proxy as they are (edited, or another tool): find the writer, then let "
        "kube-proxy resync.",
        where, chain, rule.index if rule else None, (rule.line or None) if rule else None, svc.label,
    ), [(where, chain, None)]  # fmt: skip


def nft_pitfalls(nft: NftRuleset, ruleset: Ruleset | None = None, proxy_mode: str | None = None) -> Pitfalls:
    """Every nftables-mode pitfall of the listing ``nft`` (with the node's iptables dump ``ruleset`` and
    kube-proxy's reported mode, when known, for leftovers and mixed modes)."""
    import gc

    from .nft_findings_node import node_findings

    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small acyclic objects; the cyclic collector would walk a big listing in vain
    try:
        pairs: list[Pair] = list(node_findings(nft, ruleset, proxy_mode))
        for table in kube_tables(nft):
            lay = nft_layout(table)
            pod = lay.local_detector_values[0] if lay.local_detector == "cidr" and lay.local_detector_values else None
            pairs.extend(service_findings(table, nft_service_index_of(nft, table.family), pod))
        return Pitfalls(pairs)
    finally:
        if gc_was_enabled:
            gc.enable()
