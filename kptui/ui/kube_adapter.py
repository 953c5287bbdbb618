"""Adapter from the kube engine (``kptui.engine.kube``) to :class:`kptui.ui.services.Insights`.

The engine's service index (:func:`kptui.engine.kube.build_service_index`) names every KUBE-SVC/SVL/EXT/FW/
XLB/SEP chain's service port, comments or not, and lists each port's addresses, policies and endpoints: the
UI uses it for chain labels, the detail pane's service line and the packet presets.

Extension point: the engine has no per-rule explanation or pitfall findings yet. When it offers them, map
them in :meth:`KubeInsights.explain` / :meth:`KubeInsights.findings`; the detail pane already shows whatever
those return (and nothing when they return nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kptui.engine import Rule, Ruleset

from .locs import Loc
from .services import Finding, Frontend, ServiceInfo

if TYPE_CHECKING:
    from .services import Insights

__all__ = ["KubeInsights", "kube_insights", "service_info"]


def service_info(sp: Any) -> ServiceInfo:
    """A :class:`ServiceInfo` (frontends for presets, facts for the detail pane) from a ``ServicePort``."""
    info = ServiceInfo(sp.label)
    proto = (sp.protocol or "tcp").lower()
    if sp.cluster_ip and sp.port is not None:
        info.add(Frontend("cluster-ip", sp.cluster_ip, sp.port, proto))
    if sp.node_port is not None:
        info.add(Frontend("nodeport", None, sp.node_port, proto))
    if sp.port is not None:
        for ip in sp.load_balancer_ips:
            info.add(Frontend("loadbalancer", ip, sp.port, proto))
        for ip in (*sp.external_ips, *sp.external_or_lb_ips):
            info.add(Frontend("external-ip", ip, sp.port, proto))
    facts = []
    if sp.external_traffic_policy:
        facts.append(f"externalTrafficPolicy {sp.external_traffic_policy}")
    if sp.internal_traffic_policy and sp.internal_traffic_policy != "Cluster":
        facts.append(f"internalTrafficPolicy {sp.internal_traffic_policy}")
    if sp.affinity_timeout is not None:
        facts.append(f"session affinity {sp.affinity_timeout} s")
    facts.append("no endpoints" if sp.no_endpoints else f"{len(sp.endpoints)} endpoint" +
                 ("" if len(sp.endpoints) == 1 else "s"))  # fmt: skip
    if sp.no_local_endpoints:
        facts.append("no local endpoints")
    if sp.source_ranges:
        facts.append("source ranges " + ", ".join(sp.source_ranges))
    info.facts = tuple(facts)
    return info


class KubeInsights:
    """:class:`~kptui.ui.services.Insights` from the kube engine's service index."""

    def __init__(self, ruleset: Ruleset, index: Any, layout: Any) -> None:
        self.ruleset = ruleset
        self.index = index
        self.services: dict[str, ServiceInfo] = {}
        for sp in index:
            self.services.setdefault(sp.label, service_info(sp))
        values = tuple(getattr(layout, "local_detector_values", ()) or ())
        self.pod_cidr: str | None = values[0] if getattr(layout, "local_detector", None) == "cidr" and values else None

    def service_of(self, table: str | None, chain: str) -> str | None:
        if table not in ("nat", None):
            return None
        sp = self.index.by_chain(chain)
        return sp.label if sp is not None else None

    def explain(self, rule: Rule) -> str | None:
        return None  # the engine offers no per-rule explanation yet (see the module docstring)

    def findings(self, loc: Loc) -> Sequence[Finding]:
        return ()  # the engine offers no pitfall findings yet (see the module docstring)


def kube_insights(ruleset: Ruleset) -> Insights | None:
    """The kube engine's insights, or None when the engine is not there or the dump is not kube-proxy's."""
    try:
        from kptui.engine.kube import build_service_index, detect_layout
    except ImportError:
        return None
    layout = detect_layout(ruleset)
    if not layout.kube_proxy or layout.mode != "iptables":
        return None
    return KubeInsights(ruleset, build_service_index(ruleset), layout)
