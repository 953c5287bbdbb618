"""One node of a fleet, analysed on its own: :func:`fleet_node` turns the :class:`~.fleet_model.NodeParts` the
command layer read into a :class:`~.fleet_model.FleetNode`: which mode kube-proxy runs in (its ``/proxyMode``,
else what the rules hold), its service ports (through :data:`SERVICE_BUILDERS`), leftovers of another mode,
other components' rules in front of kube-proxy's (:mod:`.fleet_foreign`), stale conntrack entries.

Adding a mode's services is one entry in :data:`SERVICE_BUILDERS`: a function from the node's parts to its
service ports (:class:`~.model.ServicePort`), as :func:`~.build.service_index_of` is for iptables mode. A mode
without one is reported as "mode X (services not compared yet)", never compared as if it had no services.
Pure: parsed values in, values out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from ..conntrack import match_entries, parse_conntrack
from ..ipvs.node import IpvsNode
from ..nft.model import NftRuleset
from .era import KubeLayout, detect_layout
from .fleet_foreign import foreign_in_front
from .fleet_model import FleetNode, NodeParts
from .model import ServicePort

__all__ = ["MODES", "SERVICE_BUILDERS", "fleet_node", "kube_nft_chains"]

MODES = ("iptables", "nftables", "ipvs")
ServiceBuilder = Callable[[NodeParts], tuple[ServicePort, ...]]


def _iptables_services(parts: NodeParts) -> tuple[ServicePort, ...]:
    from .build import service_index_of

    return service_index_of(parts.ruleset).services if parts.ruleset is not None else ()


def _ipvs_services(parts: NodeParts) -> tuple[ServicePort, ...]:
    """From the IPVS table and kube-proxy's ipsets (:func:`~.build_ipvs.build_ipvs_service_index`)."""
    from ..ipvs.node import ipvs_context
    from .build_ipvs import build_ipvs_service_index

    if parts.ipvs is None:
        raise ValueError("the IPVS table was not captured (ipvsadm -S -n)")
    if parts.ruleset is None:
        raise ValueError("no iptables rules: the IPVS-mode service ports need kube-proxy's chains too")
    node = ipvs_context(parts.ipsets, parts.ipvs, ipset_source=f"{parts.source}: ipset save",
                        ipvs_source=f"{parts.source}: ipvsadm -S -n", proxy_mode=parts.proxy_mode)  # fmt: skip
    return build_ipvs_service_index(parts.ruleset, node).services


# mode → the builder of its service ports (a function of the node's parts; ValueError: it cannot, and why).
# nftables mode plugs in here when its builder exists.
SERVICE_BUILDERS: Mapping[str, ServiceBuilder] = MappingProxyType({"iptables": _iptables_services,
                                                                   "ipvs": _ipvs_services})


def kube_nft_chains(nft: NftRuleset | None) -> int:
    """The chains of kube-proxy's nft tables (``ip kube-proxy``, ``ip6 kube-proxy``)."""
    return sum(len(t.chains) for t in (nft.tables if nft is not None else ())
               if t.name == "kube-proxy" and t.family in ("ip", "ip6"))  # fmt: skip


def _service_chains(layout: KubeLayout | None) -> dict[str, int]:
    return dict(layout.chain_counts) if layout is not None else {}


def _signs(parts: NodeParts, layout: KubeLayout | None) -> dict[str, str]:
    """mode → what in the rules says kube-proxy wrote rules of that mode."""
    signs: dict[str, str] = {}
    counts = _service_chains(layout)
    chains = sum(counts.values())
    if layout is not None and layout.mode == "iptables" and (chains or layout.kube_proxy):
        signs["iptables"] = (f"{counts.get('SVC', 0)} KUBE-SVC and {counts.get('SEP', 0)} KUBE-SEP chains"
                             if chains else "KUBE-SERVICES (no service chains)")  # fmt: skip
    if kube_nft_chains(parts.nft):
        signs["nftables"] = f"table ip kube-proxy ({kube_nft_chains(parts.nft)} chains)"
    ipvs = []
    if layout is not None and layout.mode == "ipvs":
        ipvs.append("IPVS-mode iptables chains")
    if "kube-ipvs0" in parts.interfaces:
        ipvs.append("interface kube-ipvs0")
    if parts.ipvs and "-A " in parts.ipvs:
        ipvs.append(f"{parts.ipvs.count('-A ')} IPVS virtual services")
    if ipvs:
        signs["ipvs"] = ", ".join(ipvs)
    return signs


def _mode(parts: NodeParts, signs: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(mode, how it is known, why it is not)."""
    if parts.proxy_mode in MODES:
        return parts.proxy_mode, "kube-proxy's /proxyMode", None
    said = f" (kube-proxy's /proxyMode said {parts.proxy_mode!r})" if parts.proxy_mode else ""
    if len(signs) == 1:
        return next(iter(signs)), "the rules", None
    if not signs:
        return None, None, f"no kube-proxy rules on the node{said}"
    both = ", ".join(f"{m} ({why})" for m, why in signs.items())
    return None, None, (f"the rules hold service rules of several modes: {both}; kube-proxy's /proxyMode was not "
                        f"read{said}, so which one runs cannot be told")


def _leftovers(mode: str | None, signs: Mapping[str, str], layout: KubeLayout | None) -> tuple[str, ...]:
    if mode is None:
        return ()
    out = []
    for other, why in signs.items():
        if other == mode:
            continue
        still = " (still in the kernel: its rules run next to kube-proxy's)" if other in ("iptables", "nftables") else ""
        out.append(f"{other}-mode leftovers: {why}{still}")
    if mode == "iptables" and layout is not None and layout.ipvs_leftovers and "ipvs" not in signs:
        out.append("ipvs-mode leftovers: IPVS-mode chains or ipset matches next to the iptables-mode chains")
    return tuple(out)


def _stale(parts: NodeParts, mode: str | None) -> tuple[int | None, tuple[str, ...]]:
    if parts.conntrack is None or mode != "iptables" or parts.ruleset is None:
        return None, ()
    table = parse_conntrack(parts.conntrack)
    stale = [m for m in match_entries(table.entries, parts.ruleset, node_addresses=parts.addresses)
             if m.status == "stale"]  # fmt: skip
    return len(stale), tuple(f"{m.service or '?'}: {m.reason}" for m in stale[:3])


def _ipvs_node(parts: NodeParts) -> IpvsNode | None:
    """What the IPVS side tells the layout detection (the IPVS table, kube-proxy's ipsets), when captured; not
    kube-proxy's /proxyMode: the layout here is the rules' own word, which :func:`_mode` weighs against it."""
    if parts.ipvs is None and parts.ipsets is None:
        return None
    from ..ipvs.node import ipvs_context

    try:
        return ipvs_context(parts.ipsets, parts.ipvs)
    except ValueError:
        return None


def fleet_node(parts: NodeParts, builders: Mapping[str, ServiceBuilder] = SERVICE_BUILDERS) -> FleetNode:
    """``parts`` analysed (see the module doc)."""
    if parts.error is not None:
        return FleetNode(parts.name, parts.source, None, None, None, parts.backend, None, None,
                         f"capture failed: {parts.error}", failed_parts=parts.failed_parts, error=parts.error,
                         captured=parts.captured, addresses=parts.addresses, parts=parts)  # fmt: skip
    rs = parts.ruleset
    layout = detect_layout(rs, _ipvs_node(parts)) if rs is not None and rs.rule_count else None
    signs = _signs(parts, layout)
    mode, source, note = _mode(parts, signs)
    services: tuple[ServicePort, ...] | None = None
    if mode is None:
        why = f"mode not known ({note})"
    elif mode in builders:
        try:
            services = builders[mode](parts)
            why = None
        except ValueError as exc:  # ParseError included: a part that does not parse
            why = f"mode {mode}, services not built: {exc}"
    else:
        why = f"mode {mode} (services not compared yet)"
    stale, examples = _stale(parts, mode)
    backend = "nft" if mode == "nftables" else parts.backend
    era = layout.era if layout is not None and mode in ("iptables", "ipvs") else None
    return FleetNode(parts.name, parts.source, mode, source, note, backend, era, services, why,
                     leftovers=_leftovers(mode, signs, layout), foreign=foreign_in_front(rs, parts.nft, mode),
                     stale_conntrack=stale, stale_examples=examples, failed_parts=parts.failed_parts,
                     captured=parts.captured, addresses=parts.addresses, parts=parts)  # fmt: skip
