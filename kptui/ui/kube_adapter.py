"""Adapter from the kube engine (``kptui.engine.kube``) to :class:`kptui.ui.services.Insights`.

The engine's service index (:func:`kptui.engine.kube.build_service_index`) names every KUBE-SVC/SVL/EXT/FW/
XLB/SEP chain's service port, comments or not, and lists each port's addresses, policies and endpoints: the
UI uses it for chain labels, the detail pane's service line and the packet presets.

Explanations come from :class:`kptui.engine.kube.explain.Explainer` (per rule or chain, cheap: only the rule
at hand is decoded); pitfall findings from :func:`kptui.engine.kube.findings.analyse_pitfalls`, computed once,
on the first question (about 0.35 s on a 220k-rule dump, so not at start-up), then looked up per rule or chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kptui.engine import Rule, Ruleset

from .locs import Loc
from .service_info import Finding, Frontend, ServiceInfo

if TYPE_CHECKING:
    from .services import Insights

__all__ = ["KubeInsights", "ServiceInfos", "finding_text", "kube_insights", "service_info"]


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


class ServiceInfos(Mapping[str, ServiceInfo]):
    """Label → :class:`ServiceInfo` of a service index (the first port of each label), each made on first use: a
    30,000-service dump's would cost a second before the first screen, which shows a few."""

    def __init__(self, index: Any) -> None:
        self._ports: dict[str, Any] = {}
        for sp in index:
            self._ports.setdefault(sp.label, sp)
        self._made: dict[str, ServiceInfo] = {}

    def __getitem__(self, label: str) -> ServiceInfo:
        info = self._made.get(label)
        if info is None:
            info = self._made[label] = service_info(self._ports[label])  # KeyError: not a service's label
        return info

    def __contains__(self, label: object) -> bool:
        return label in self._ports

    def __iter__(self) -> Iterator[str]:
        return iter(self._ports)

    def __len__(self) -> int:
        return len(self._ports)


class KubeInsights:
    """:class:`~kptui.ui.services.Insights` from the kube engine's service index."""

    def __init__(self, ruleset: Ruleset, index: Any, layout: Any) -> None:
        self.ruleset = ruleset
        self.index = index
        self.services: Mapping[str, ServiceInfo] = ServiceInfos(index)
        values = tuple(getattr(layout, "local_detector_values", ()) or ())
        self.pod_cidr: str | None = values[0] if getattr(layout, "local_detector", None) == "cidr" and values else None
        # A big dump's findings take 0.4-0.8 s: the app sets this and calls prepare_findings() in its background
        # thread after the first paint; until then the detail pane shows none (it is redrawn when they come).
        self.defer_findings = False

    def prepare_findings(self) -> None:
        _ = self._pitfalls

    def service_of(self, table: str | None, chain: str) -> str | None:
        if table not in ("nat", None):
            return None
        sp = self.index.by_chain(chain)
        return sp.label if sp is not None else None

    @cached_property
    def _explainer(self) -> Any:
        from kptui.engine.kube.explain import Explainer

        return Explainer(self.ruleset, self.index)

    @cached_property
    def _pitfalls(self) -> Any:
        from kptui.engine.kube.findings import analyse_pitfalls

        return analyse_pitfalls(self.ruleset)

    def explain(self, rule: Rule) -> str | None:
        """What ``rule`` does (kube-proxy's terms for its own rules, neutral words for any other)."""
        try:
            return str(self._explainer.rule(rule.table, rule.chain, rule.index).text)
        except LookupError:
            return None

    def explain_chain(self, table: str | None, chain: str) -> str | None:
        """What ``chain`` is for."""
        try:
            return str(self._explainer.chain(table, chain).text)
        except LookupError:
            return None

    def findings(self, loc: Loc) -> Sequence[Finding]:
        """The pitfall findings about a rule or a chain (none for a table)."""
        if loc.chain is None or (self.defer_findings and "_pitfalls" not in self.__dict__):
            return ()
        found = (self._pitfalls.for_chain(loc.table, loc.chain) if loc.index is None
                 else self._pitfalls.for_rule(loc.table, loc.chain, loc.index))  # fmt: skip
        return tuple(Finding(f.severity, finding_text(f)) for f in found)


def finding_text(f: Any) -> str:
    """One engine finding as the detail pane's line: title, code, what it means, what to do."""
    more = f" (stands for {f.count})" if f.count > 1 else ""
    return f"{f.title} [{f.code}]{more}. {f.detail} Advice: {f.advice}"


def kube_insights(ruleset: Ruleset) -> Insights | None:
    """The kube engine's insights, or None when the engine is not there or the dump is not kube-proxy's."""
    try:
        from kptui.engine.kube import detect_layout, service_index_of
    except ImportError:
        return None
    layout = detect_layout(ruleset)
    if not layout.kube_proxy or layout.mode != "iptables":
        return None
    # kept with the ruleset: the pitfall findings (after the first paint) use the same index, not a second build
    return KubeInsights(ruleset, service_index_of(ruleset), layout)
