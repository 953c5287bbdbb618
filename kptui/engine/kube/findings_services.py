"""Per-service-port pitfall checks: no endpoints, no local endpoints, loadBalancerSourceRanges, client source
IP lost, hairpin masquerade, uneven or low-precision endpoint shares. Read from the service index (already
built) and a few rows of the service's own chains, so they stay fast on a 220k-rule dump."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from fractions import Fraction
from functools import lru_cache

from ..model import Ruleset, Table
from .era import nat_and_filter
from .explain_common import pct
from .facts import rows_of
from .findings_model import Finding, Key
from .model import ServiceIndex, ServicePort

__all__ = ["service_checks"]

Pair = tuple[Finding, Sequence[Key]]
UNEVEN = Fraction(1, 1000)  # a share more than 0.1 % (relative) off 1/n: the cascade is not kube-proxy's
IMPRECISE = Fraction(1, 10**8)  # more than the kernel's 2^-31 rounding: probabilities of fewer decimals
_NAMES_SHOWN = 5


def service_checks(ruleset: Ruleset, index: ServiceIndex) -> Iterator[Pair]:
    nat, _ = nat_and_filter(ruleset)
    layout = index.layout
    pod_cidr = layout.local_detector_values[0] if layout.local_detector == "cidr" and \
        layout.local_detector_values else None  # fmt: skip
    hairpin: list[tuple[Key, int, ServicePort]] = []
    lost: list[tuple[Key, int, ServicePort]] = []
    imprecise: list[tuple[Key, int, ServicePort, Fraction]] = []
    for svc in index:
        yield from _refusals(svc)
        if nat is None:
            continue
        if svc.source_ranges and "FW" in svc.chains:
            yield from _source_ranges(nat, svc, pod_cidr)
        if svc.external_traffic_policy == "Cluster":
            lost.extend(_masquerade_rules(nat, svc))
        for ep in svc.endpoints:
            for i, row in enumerate(rows_of(nat.chains.get(ep.chain))):
                if row[4] == "KUBE-MARK-MASQ" and " -s " in f" {row[1]}":
                    hairpin.append(((nat.name, ep.chain, i + 1), row[0], svc))
                    break
        for kind, local in (("SVC", False), ("SVL", True), ("XLB", True)):
            shares = [ep.local_probability if local else ep.probability for ep in svc.endpoints]
            known = [s for s in shares if s is not None]
            if kind not in svc.chains or len(known) < 2:
                continue
            dev = _deviation(tuple(known))
            if dev <= IMPRECISE:
                continue
            key, line = _first_statistic(nat, svc.chains[kind])
            if dev > UNEVEN:
                yield _uneven(nat, svc, svc.chains[kind], known, key, line)
            elif key is not None:
                imprecise.append((key, line, svc, dev))
    if hairpin:
        yield _hairpin(hairpin)
    if lost:
        yield _lost(lost)
    if imprecise:
        yield _imprecise(imprecise)


@lru_cache(maxsize=1024)
def _deviation(shares: tuple[Fraction, ...]) -> Fraction:
    """How far the largest share is from an even split, relative to it (memoised: a big dump has thousands
    of services with the same cascade)."""
    n = len(shares)
    return max(abs(s * n - 1) for s in shares)


def _names(items: Sequence[tuple[object, ...]]) -> str:
    labels = list(dict.fromkeys(str(getattr(it[2], "label", "?")) for it in items))
    more = f" and {len(labels) - _NAMES_SHOWN} more" if len(labels) > _NAMES_SHOWN else ""
    return ", ".join(labels[:_NAMES_SHOWN]) + more


def _refusals(svc: ServicePort) -> Iterator[Pair]:
    for reason, code in (("no endpoints", "no-endpoints"), ("no local endpoints", "no-local-endpoints")):
        blocks = [b for b in svc.blocking_rules if b.reason == reason]
        if not blocks:
            continue
        b = blocks[0]
        also: list[Key] = [(x.table, x.chain, x.index) for x in blocks[1:]]
        shown = [f"NodePort {x.destination[2:]}" if x.destination.startswith("*:") else x.destination
                 for x in blocks if x.destination]  # fmt: skip
        if not shown and svc.node_port is not None:
            shown.append(f"NodePort {svc.node_port}")
        shown.extend(ip for ip in (*svc.load_balancer_ips, *svc.external_ips) if not any(ip in t for t in shown))
        addrs = ", ".join(shown) or "its addresses"
        if code == "no-endpoints":
            yield Finding(
                code, "warning", f"{svc.label} has no endpoints",
                f"Every new connection to {addrs} is refused ({b.target}): the Service has no ready endpoint, "
                "because its selector matches no pod or none of them is ready. Clients see \"connection refused\" "
                "(or, past the ICMP rate limit, a timeout).",
                f"kubectl get endpointslices -n {svc.namespace or 'NS'} -l kubernetes.io/service-name="
                f"{svc.service or 'NAME'}; check the Service's selector and the pods' readiness.",
                b.table, b.chain, b.index, b.line, svc.label,
            ), also  # fmt: skip
            continue
        internal = b.chain == "KUBE-SERVICES"
        if internal:
            detail = (f"internalTrafficPolicy Local and no endpoint on this node: connections from this node's pods "
                      f"to {addrs} are dropped (a timeout, not an error).")  # fmt: skip
            advice = "Run an endpoint on every node that calls it (a DaemonSet), or use internalTrafficPolicy Cluster."
        else:
            hc = svc.health_check_node_port
            detail = (f"externalTrafficPolicy Local and no endpoint on this node: external traffic to {addrs} that "
                      "arrives here is dropped (a blackhole). That is by design only if the load balancer "
                      f"health-checks {'node port ' + str(hc) if hc else 'the health-check node port'} and stops "
                      "sending to this node.")  # fmt: skip
            advice = ("Check the load balancer's health check uses the Service's healthCheckNodePort; for NodePort "
                      "clients, use nodes that run an endpoint, or externalTrafficPolicy Cluster (which loses the "
                      "client IP).")  # fmt: skip
        ext = svc.chains.get("EXT")
        if ext is not None:
            also.append(("nat" if b.table == "filter" else b.table, ext, None))
        yield Finding(code, "warning", f"{svc.label} has no local endpoints", detail, advice, b.table, b.chain,
                      b.index, b.line, svc.label), also  # fmt: skip


def _covered(cidr: str, ranges: Sequence[str]) -> bool | None:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
        return any(net.version == (r := ipaddress.ip_network(x, strict=False)).version and net.subnet_of(r)  # type: ignore[arg-type]
                   for x in ranges)  # fmt: skip
    except ValueError:
        return None


def _source_ranges(nat: Table, svc: ServicePort, pod_cidr: str | None) -> Iterator[Pair]:
    """Who the ranges admit, worded from what they include: the pod network (the local-traffic detector's CIDR,
    when the dump has one) and this node (kube-proxy admits the load-balancer IP itself as a source, in KUBE-FW,
    exactly when the node's address is in a range: its ``allowFromNode``)."""
    fw = svc.chains["FW"]
    rows = rows_of(nat.chains.get(fw))
    if not rows:
        return
    last = len(rows) - 1
    for i in range(len(rows) - 1, -1, -1):
        if rows[i][4] in (None, "KUBE-MARK-DROP"):
            last = i
            break
    also: list[Key] = [(b.table, b.chain, b.index) for b in svc.blocking_rules if b.reason == "source ranges"]
    ranges = ", ".join(svc.source_ranges)
    lb = (*svc.load_balancer_ips, *svc.external_or_lb_ips)
    ips = ", ".join(lb) or "its load-balancer IP"
    how = ("is marked by KUBE-MARK-DROP at the end of it and dropped by filter KUBE-FIREWALL"
           if rows[last][4] == "KUBE-MARK-DROP" else "leaves it un-NATed, and filter KUBE-PROXY-FIREWALL drops it")
    from_node = next((i for i, row in enumerate(rows) if (m := _SOURCE.search(row[1])) and _host(m.group(1)) in lb
                      and row[4] is not None), None)  # fmt: skip
    covered = _covered(pod_cidr, svc.source_ranges) if pod_cidr is not None else None
    if pod_cidr is None:
        pods = "pods are admitted only from addresses in the ranges (the dump does not say the pod network)"
    elif covered:
        pods = f"the pod network {pod_cidr} is in the ranges, so pods are admitted"
    elif _overlaps(pod_cidr, svc.source_ranges):
        pods = f"only part of the pod network {pod_cidr} is in the ranges: pods outside it are dropped"
    else:
        pods = f"the pod network {pod_cidr} is not in the ranges, so in-cluster clients of {ips} are dropped"
    if from_node is not None:
        node = (f"this node's address is in the ranges (kube-proxy then also admits {ips} itself as a source, "
                f"{fw}:{from_node + 1}), so connections from this node's address are admitted")
    else:
        node = ("this node's address is not in the ranges (kube-proxy would also admit the load-balancer IP "
                "itself as a source), so connections from this node's address are dropped too")
    detail = (f"Traffic to {ips} from sources outside {ranges} falls through {fw}, {how}. Pods and this node go "
              f"through the same chain when they use the load-balancer IP: {pods}; {node}.")  # fmt: skip
    severity = "warning" if pod_cidr is not None and not covered else "info"
    missing = [what for what, out in (("the pod CIDR if pods use the load-balancer address", not covered),
                                      ("this node's network if the node does", from_node is None)) if out]  # fmt: skip
    advice = ("Add the client networks" + (f" (and {', and '.join(missing)})" if missing else "")
              + " to spec.loadBalancerSourceRanges" + (", or have in-cluster clients use the ClusterIP." if missing
                                                         else "."))  # fmt: skip
    yield Finding(
        "lb-source-ranges", severity, f"{svc.label}: only loadBalancerSourceRanges may use the load-balancer IP",
        detail, advice, nat.name, fw, last + 1, rows[last][0], svc.label,
    ), also  # fmt: skip


_SOURCE = re.compile(r"(?:^|[^!] )-s (\S+)")


def _host(text: str) -> str:
    return text[:-3] if text.endswith("/32") else text.removesuffix("/128")


def _overlaps(cidr: str, ranges: Sequence[str]) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
        return any(net.version == (r := ipaddress.ip_network(x, strict=False)).version and net.overlaps(r)
                   for x in ranges)  # fmt: skip
    except ValueError:
        return False


def _masquerade_rules(nat: Table, svc: ServicePort) -> Iterator[tuple[Key, int, ServicePort]]:
    """The rules that masquerade external traffic of an externalTrafficPolicy Cluster service port."""
    for kind in ("EXT", "FW"):
        name = svc.chains.get(kind)
        if name is None:
            continue
        for i, row in enumerate(rows_of(nat.chains.get(name))):
            raw = row[1]
            if row[4] == "KUBE-MARK-MASQ" and " -s " not in raw and "--src-type" not in raw:
                yield (nat.name, name, i + 1), row[0], svc
                return
    if svc.node_port is None:
        return
    port = f"--dport {svc.node_port} "
    for i, row in enumerate(rows_of(nat.chains.get("KUBE-NODEPORTS"))):  # kube-proxy 1.23 and older
        if row[4] == "KUBE-MARK-MASQ" and port in row[1] and " -s " not in row[1]:
            yield (nat.name, "KUBE-NODEPORTS", i + 1), row[0], svc
            return


def _first_statistic(nat: Table, chain: str) -> tuple[Key | None, int]:
    for i, row in enumerate(rows_of(nat.chains.get(chain))):
        if "--probability" in row[1]:
            return (nat.name, chain, i + 1), row[0]
    return None, 0


def _uneven(nat: Table, svc: ServicePort, chain: str, shares: list[Fraction], key: Key | None,
            line: int) -> Pair:  # fmt: skip
    probs = [r[1].partition("--probability ")[2].partition(" ")[0] for r in rows_of(nat.chains.get(chain))
             if "--probability" in r[1]]  # fmt: skip
    n = len(shares)
    expected = ", ".join(f"1/{n - i}" for i in range(n - 1))
    table, name, idx = key if key is not None else (nat.name, chain, None)
    return Finding(
        "uneven-shares", "warning", f"{svc.label}: endpoints get unequal shares",
        f"The statistic cascade in {chain} gives the endpoints {', '.join(pct(s) for s in shares)} of new "
        f"connections instead of {pct(Fraction(1, n))} each: its probabilities are {', '.join(probs) or 'unusual'}, "
        f"where kube-proxy writes {expected} (1/(n-i)) and leaves the last rule without one.",
        "These rules were not written by kube-proxy as they are (edited, or another tool): find the writer, then "
        "let kube-proxy resync (restarting it rewrites every rule).",
        table, name, idx, line or None, svc.label,
    ), [(nat.name, chain, None)]  # fmt: skip


def _hairpin(items: list[tuple[Key, int, ServicePort]]) -> Pair:
    (table, chain, idx), line, svc = items[0]
    n = len(items)
    return Finding(
        "hairpin-masquerade", "info",
        f"hairpin traffic is masqueraded ({n} endpoint chain{'s' if n != 1 else ''})",
        "Each KUBE-SEP chain marks packets that come from the endpoint itself for masquerade: a pod that reaches "
        "its own Service and is picked as the endpoint sees the connection come from the node (its gateway "
        f"address), not from itself. Services: {_names(items)}.",
        "This is kube-proxy's normal behaviour; it matters to applications that log or check client addresses. "
        "On bridge-based CNIs hairpin traffic also needs hairpin mode on the pods' bridge ports.",
        table, chain, idx, line, svc.label if n == 1 else None, n,
    ), [k for k, _, _ in items[1:]]  # fmt: skip


def _lost(items: list[tuple[Key, int, ServicePort]]) -> Pair:
    (table, chain, idx), line, svc = items[0]
    n = len({id(it[2]) for it in items})
    return Finding(
        "client-source-ip-lost", "info",
        f"external clients' source IP is lost ({n} service port{'s' if n != 1 else ''} with "
        "externalTrafficPolicy Cluster)",
        "External traffic to NodePorts, external IPs and load-balancer IPs of these service ports is marked for "
        "masquerade, so the endpoint sees this node's address instead of the client's (the endpoint may be on "
        f"another node, and its reply must come back through this one). Service ports: {_names(items)}.",
        "If the application needs the client address, use externalTrafficPolicy Local (traffic then only goes "
        "to nodes with endpoints) or a proxy protocol on the load balancer.",
        table, chain, idx, line, svc.label if n == 1 else None, n,
    ), [k for k, _, _ in items[1:]]  # fmt: skip


def _imprecise(items: list[tuple[Key, int, ServicePort, Fraction]]) -> Pair:
    (table, chain, idx), line, svc, _ = items[0]
    worst = max(it[3] for it in items)
    n = len(items)
    return Finding(
        "low-precision-probabilities", "info",
        f"statistic probabilities of low precision ({n} service chain{'s' if n != 1 else ''})",
        "These cascades use probabilities written with about 5 decimals (0.33333 for 1/3, saved as 0.33332999982), "
        "as kube-proxy 1.16 and older or another tool wrote them; kube-proxy now writes 10. Endpoint shares are "
        f"off by up to {float(worst) * 100:.4f} % (relative) of an even split. Service ports: {_names(items)}.",
        "Harmless in practice; it points at an old kube-proxy or at rules some other tool wrote.",
        table, chain, idx, line, svc.label if n == 1 else None, n,
    ), [k for k, *_ in items[1:]]  # fmt: skip
