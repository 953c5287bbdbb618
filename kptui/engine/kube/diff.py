"""``diff_services(old, new)``: two dumps compared at the level of kube-proxy's service ports.

Both service indexes (:func:`.build.service_index_of`) are matched port by port, in passes, each over what is
still unmatched:

1. by name (``ns/name:port`` and protocol, then the name alone: a protocol change is the same port);
2. by chain hash (a name one dump lost with its comments: the chains' hash still ties the two);
3. service ports kube-proxy wrote only filter rules for (no endpoints) and whose comments are gone come as
   nameless fragments, one per address; each fragment joins the other dump's port with that address;
4. by address (cluster IP + port + protocol, else NodePort, else external addresses), when a name is
   unknown on one side at least.

A matched pair is compared on what kube-proxy's rules say: endpoints by address (added, removed, exact share
and locality changes), chain names (a changed hash), and every setting (policies, affinity, NodePorts,
addresses, source ranges, the no-(local-)endpoints state). Rule order and counters play no part: the index is
built from the jump graph. What one dump cannot tell (a name without comments, an external-or-LB address, a
health-check NodePort whose comment is gone) is not reported as a change. Node-level changes come from
:mod:`.diff_node`; reports from :mod:`.diff_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from fractions import Fraction

from ..model import Ruleset
from .build import service_index_of
from .diff_model import ChainRename, EndpointDelta, FieldChange, NodeDiff, ServiceChange, ServiceDiff
from .diff_node import diff_node, orphan_health_ports
from .model import Endpoint, ServiceIndex, ServicePort

__all__ = ["diff_indexes", "diff_services"]

ROUNDING = Fraction(1, 1 << 30)  # iptables' shares carry the kernel's 2^-31 rounding; nftables' are exact 1/N

_KIND_ORDER = ("SVC", "SVL", "EXT", "FW", "XLB")
_SCALARS = ("protocol", "cluster_ip", "port", "node_port", "external_traffic_policy", "affinity_timeout",
            "no_endpoints", "no_local_endpoints")  # fmt: skip


def diff_services(old: Ruleset, new: Ruleset) -> ServiceDiff:
    """What changed from ``old`` to ``new``, service port by service port, and on the node (see the module
    doc). Pure; the two service indexes are built (once) if they were not yet."""
    return diff_indexes(service_index_of(old), service_index_of(new), diff_node(old, new), old_source=old.source,
                        new_source=new.source, hc_old=orphan_health_ports(old), hc_new=orphan_health_ports(new))


def diff_indexes(old: ServiceIndex, new: ServiceIndex, node: NodeDiff, *, old_source: str | None = None,
                 new_source: str | None = None, hc_old: frozenset[int] = frozenset(),
                 hc_new: frozenset[int] = frozenset()) -> ServiceDiff:  # fmt: skip
    """Two service indexes compared (any modes: iptables, nftables, or one of each — a mode switch, where chain
    names differ by design and are not compared, shares are equal within the kernel's rounding of iptables'
    probabilities, and a health-check NodePort only iptables mode has a rule for is not a change)."""
    a, b = old.services, new.services
    old_mode, new_mode = old.layout.mode or "iptables", new.layout.mode or "iptables"
    cross = old_mode != new_mode
    pairs, members = _match(a, b)
    changed: list[ServiceChange] = []
    unchanged: list[tuple[ServicePort, ServicePort]] = []
    paired_a: set[int] = set()
    paired_b: set[int] = set()
    for o, n, how in pairs:
        paired_a.update(id(p) for p in members.get(id(o), (o,)))
        paired_b.update(id(p) for p in members.get(id(n), (n,)))
        change = _compare(o, n, how, hc_old, hc_new, cross=cross)
        if change.empty:
            unchanged.append((o, n))
        else:
            changed.append(change)
    changed.sort(key=lambda c: (c.label, c.new.protocol or "", c.new.chain_hash or ""))
    return ServiceDiff(
        added=tuple(s for s in b if id(s) not in paired_b),
        removed=tuple(s for s in a if id(s) not in paired_a),
        changed=tuple(changed), unchanged=tuple(unchanged), node=node,
        old_source=old_source, new_source=new_source, old_count=len(a), new_count=len(b),
        old_mode=old_mode, new_mode=new_mode,
    )  # fmt: skip


# -- matching ---------------------------------------------------------------------------------------------
Pair = tuple[ServicePort, ServicePort, str]
Members = dict[int, tuple[ServicePort, ...]]  # id(merged port) → the index entries it stands for


class _Side:
    """One dump's service ports, the unmatched ones in index order."""

    def __init__(self, services: Iterable[ServicePort]) -> None:
        self.left: dict[int, ServicePort] = {id(s): s for s in services}

    def take(self, s: ServicePort) -> None:
        del self.left[id(s)]

    def by(self, key: Callable[[ServicePort], Hashable | None]) -> dict[Hashable, list[ServicePort]]:
        out: dict[Hashable, list[ServicePort]] = {}
        for s in self.left.values():
            k = key(s)
            if k is not None:
                out.setdefault(k, []).append(s)
        return out


def _match(a: tuple[ServicePort, ...], b: tuple[ServicePort, ...]) -> tuple[list[Pair], Members]:
    sa, sb = _Side(a), _Side(b)
    pairs: list[Pair] = []
    members: Members = {}

    def pass_(key: Callable[[ServicePort], Hashable | None], how: str,
              ok: Callable[[ServicePort, ServicePort], bool] = lambda o, n: True) -> None:  # fmt: skip
        index = sb.by(key)
        for o in list(sa.left.values()):
            k = key(o)
            candidates = index.get(k) if k is not None else None
            n = next((c for c in candidates if id(c) in sb.left and ok(o, c)), None) if candidates else None
            if n is not None:
                sa.take(o)
                sb.take(n)
                pairs.append((o, n, how))

    pass_(lambda s: (s.name, s.protocol) if s.name else None, "name")
    pass_(lambda s: s.name, "name")
    pass_(lambda s: s.chain_hash, "hash")
    pairs += _fragments(sa, sb, members, old_side=True)
    pairs += _fragments(sb, sa, members, old_side=False)
    pass_(_address_key, "address", lambda o, n: o.name is None or n.name is None)
    return pairs, members


def _is_fragment(s: ServicePort) -> bool:
    return s.name is None and s.chain_hash is None and not s.chains and not s.endpoints


def _externals(s: ServicePort) -> tuple[str, ...]:
    return (*s.external_ips, *s.load_balancer_ips, *s.external_or_lb_ips)


def _fragments(frag: _Side, other: _Side, members: Members, *, old_side: bool) -> list[Pair]:
    """Nameless filter-only fragments of ``frag`` joined to the ``other`` port that has their address."""
    pieces = [s for s in frag.left.values() if _is_fragment(s)]
    if not pieces:
        return []
    where: dict[tuple[object, ...], ServicePort] = {}
    for s in other.left.values():
        if _is_fragment(s):
            continue
        if s.cluster_ip:
            where.setdefault((s.protocol, "c", s.cluster_ip, s.port), s)
        if s.node_port is not None:
            where.setdefault((s.protocol, "n", s.node_port), s)
        for ip in _externals(s):
            where.setdefault((s.protocol, "e", ip, s.port), s)
    groups: dict[int, list[ServicePort]] = {}
    owners: dict[int, ServicePort] = {}
    for f in pieces:
        keys: list[tuple[object, ...]] = [(f.protocol, "c", f.cluster_ip, f.port)] if f.cluster_ip else []
        if f.node_port is not None:
            keys.append((f.protocol, "n", f.node_port))
        keys += [(f.protocol, "e", ip, f.port) for ip in _externals(f)]
        owner = next((where[k] for k in keys if k in where), None)
        if owner is not None:
            groups.setdefault(id(owner), []).append(f)
            owners[id(owner)] = owner
    pairs: list[Pair] = []
    for key, group in groups.items():
        owner = owners[key]
        for f in group:
            frag.take(f)
        other.take(owner)
        merged = _merge(group)
        members[id(merged)] = tuple(group)
        pairs.append((merged, owner, "address") if old_side else (owner, merged, "address"))
    return pairs


def _merge(parts: list[ServicePort]) -> ServicePort:
    """One service port from the per-address fragments of a nameless port without endpoints."""
    if len(parts) == 1:
        return parts[0]
    head = next((p for p in parts if p.cluster_ip), parts[0])

    def union(get: Callable[[ServicePort], tuple[str, ...]]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v for p in parts for v in get(p)))

    return replace(
        head,
        port=next((p.port for p in [head, *parts] if p.port is not None), None),
        node_port=next((p.node_port for p in parts if p.node_port is not None), None),
        external_ips=union(lambda p: p.external_ips), load_balancer_ips=union(lambda p: p.load_balancer_ips),
        external_or_lb_ips=union(lambda p: p.external_or_lb_ips), source_ranges=union(lambda p: p.source_ranges),
        external_traffic_policy=next((v for p in parts if (v := p.external_traffic_policy)), None),
        internal_traffic_policy=next((v for p in parts if (v := p.internal_traffic_policy)), None),
        no_endpoints=any(p.no_endpoints for p in parts),
        no_local_endpoints=any(p.no_local_endpoints for p in parts),
        blocking_rules=tuple(b for p in parts for b in p.blocking_rules),
    )  # fmt: skip


def _address_key(s: ServicePort) -> Hashable | None:
    if s.cluster_ip:
        return (s.protocol, "c", s.cluster_ip, s.port)
    if s.node_port is not None:
        return (s.protocol, "n", s.node_port)
    ext = _externals(s)
    return (s.protocol, "e", frozenset(ext), s.port) if ext else None


# -- comparing --------------------------------------------------------------------------------------------
def _same(a: Fraction | None, b: Fraction | None, cross: bool) -> bool:
    if a == b:
        return True
    return cross and a is not None and b is not None and abs(a - b) <= ROUNDING


def _compare(o: ServicePort, n: ServicePort, how: str, hc_old: frozenset[int], hc_new: frozenset[int], *,
             cross: bool = False) -> ServiceChange:  # fmt: skip
    fields: list[FieldChange] = []
    if o.name and n.name and o.name != n.name:
        fields.append(FieldChange("name", o.name, n.name))
    for name in _SCALARS:
        before, after = getattr(o, name), getattr(n, name)
        if before != after:
            fields.append(FieldChange(name, before, after))
    itp_o, itp_n = o.internal_traffic_policy, n.internal_traffic_policy
    if itp_o is not None and itp_n is not None and itp_o != itp_n:  # None: the layout cannot tell (<= 1.23)
        fields.append(FieldChange("internal_traffic_policy", itp_o, itp_n))
    hc_o, hc_n = o.health_check_node_port, n.health_check_node_port
    # A health-check NodePort is only known from its comment: a dump without it has an anonymous ACCEPT.
    no_rule = "nftables" in (o.mode, n.mode)  # nftables mode writes no rule for health-check node ports
    if hc_o != hc_n and not no_rule and not (hc_o is None and hc_n in hc_old) and not (hc_n is None and hc_o in hc_new):
        fields.append(FieldChange("health_check_node_port", hc_o, hc_n))
    fields += _external_changes(o, n)
    if set(o.source_ranges) != set(n.source_ranges):
        fields.append(FieldChange("source_ranges", tuple(sorted(o.source_ranges)), tuple(sorted(n.source_ranges))))
    kinds_o = tuple(k for k in _KIND_ORDER if k in o.chains)
    kinds_n = tuple(k for k in _KIND_ORDER if k in n.chains)
    if kinds_o != kinds_n:
        fields.append(FieldChange("chains", kinds_o, kinds_n))
    renames = [ChainRename(k, o.chains[k], n.chains[k]) for k in _KIND_ORDER
               if k in o.chains and k in n.chains and o.chains[k] != n.chains[k] and not cross]  # fmt: skip
    eps_o, eps_n = _by_address(o.endpoints), _by_address(n.endpoints)
    deltas: list[EndpointDelta] = []
    for key, e in eps_o.items():
        f = eps_n.get(key)
        if f is None:
            continue
        if e.chain != f.chain and not cross:
            renames.append(ChainRename("SEP", e.chain, f.chain, key))
        if not _same(e.probability, f.probability, cross):
            deltas.append(EndpointDelta(key, "probability", e.probability, f.probability))
        if not _same(e.local_probability, f.local_probability, cross):
            deltas.append(EndpointDelta(key, "local_probability", e.local_probability, f.local_probability))
        if e.local is not None and f.local is not None and e.local != f.local:
            deltas.append(EndpointDelta(key, "local", e.local, f.local))
    return ServiceChange(
        old=o, new=n, matched_by=how,
        endpoints_added=tuple(k for k in eps_n if k not in eps_o),
        endpoints_removed=tuple(k for k in eps_o if k not in eps_n),
        endpoint_changes=tuple(deltas), renames=tuple(renames), fields=tuple(fields),
    )  # fmt: skip


def _by_address(endpoints: tuple[Endpoint, ...]) -> dict[str, Endpoint]:
    return {e.address if e.address is not None else e.chain: e for e in endpoints}


def _external_changes(o: ServicePort, n: ServicePort) -> list[FieldChange]:
    """External and load-balancer IPs. An address the rules do not classify (``external_or_lb_ips``: its
    comment is gone) takes the other dump's kind, so only real additions, removals and kind changes show."""
    kind_o = _kinds(o)
    kind_n = _kinds(n)
    for mine, theirs in ((kind_o, kind_n), (kind_n, kind_o)):
        for ip, kind in mine.items():
            if kind == "external_or_lb_ips" and theirs.get(ip, kind) != kind:
                mine[ip] = theirs[ip]
    out: list[FieldChange] = []
    for field in ("external_ips", "load_balancer_ips", "external_or_lb_ips"):
        before = tuple(sorted(ip for ip, k in kind_o.items() if k == field))
        after = tuple(sorted(ip for ip, k in kind_n.items() if k == field))
        if before != after:
            out.append(FieldChange(field, before, after))
    return out


def _kinds(s: ServicePort) -> dict[str, str]:
    out: dict[str, str] = {}
    for field in ("external_or_lb_ips", "load_balancer_ips", "external_ips"):  # the last known kind wins
        for ip in getattr(s, field):
            out[ip] = field
    return out
