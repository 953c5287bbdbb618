"""The explorer's :class:`~kptui.ui.services.Insights` for a view that shows an IPVS-mode node's ipsets and IPVS
table (:func:`kptui.engine.ipvs.display.with_ipvs`): the ``ipset`` and ``ipvsadm`` display tables answered from
the node's IPVS side (:mod:`kptui.engine.ipvs.present`: what each set holds, each virtual service's real servers
and shares, the service it belongs to), every other table by the insights the view had without them. Services
come from the IPVS table (``build_ipvs_service_index``) when the rules are kube-proxy's IPVS mode, so the packet
builder's presets work on an IPVS node whose rules have no KUBE-SVC chains. No Textual here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kptui.engine import Rule, Ruleset
from kptui.engine.ipvs.display import IPSET_TABLE, IPVS_TABLE, is_ipvs_table
from kptui.engine.nft.display import xtables_of

from .locs import Loc
from .service_info import Finding, ServiceInfo

if TYPE_CHECKING:
    from kptui.engine.ipvs.node import IpvsNode

    from .services import Insights

__all__ = ["IpvsInsights", "with_ipvs_insights"]


def with_ipvs_insights(insights: Insights, view: Ruleset, node: IpvsNode | None) -> Insights:
    """``insights`` itself when the view shows no IPVS table, else :class:`IpvsInsights` around it."""
    if node is None or not any(is_ipvs_table(t) for t in view.tables):
        return insights
    return IpvsInsights(insights, view, node)


class IpvsInsights:
    """``inner``'s answers, and the IPVS side's for the ``ipset`` and ``ipvsadm`` tables."""

    def __init__(self, inner: Insights, view: Ruleset, node: IpvsNode) -> None:
        from kptui.engine.kube.build_ipvs import service_index_for

        from .kube_adapter import service_info

        self.inner, self.view, self.ipvs = inner, view, node
        self.services: dict[str, ServiceInfo] = dict(inner.services)
        self.pod_cidr: str | None = inner.pod_cidr
        self._vs_service: dict[str, str] = {}
        xtables = xtables_of(view) or Ruleset({}, family=view.family)  # the iptables tables (kept with the view)
        try:
            index = service_index_for(xtables, node)
        except (LookupError, ValueError):  # a service index is help, not a must: the tables still show
            index = None
        for sp in index or ():
            if getattr(sp, "mode", None) != "ipvs":
                continue
            self.services.setdefault(sp.label, service_info(sp))
            for _role, key in sp.virtual_services:  # ("cluster", "TCP 10.96.0.1:443"), ("nodeport", …), …
                self._vs_service.setdefault(key, sp.label)

    def __getattr__(self, name: str) -> Any:  # what else the panes ask of the inner insights (nft, ruleset, …)
        if name in ("inner", "view", "ipvs"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def defer_findings(self) -> bool:
        return bool(getattr(self.inner, "defer_findings", False))

    @defer_findings.setter
    def defer_findings(self, value: bool) -> None:
        if hasattr(self.inner, "defer_findings"):
            self.inner.defer_findings = value

    # -- the Insights protocol ----------------------------------------------------------------------------
    def service_of(self, table: str | None, chain: str) -> str | None:
        if table == IPVS_TABLE:
            return self._vs_service.get(chain)
        if table == IPSET_TABLE:
            return None
        return self.inner.service_of(table, chain)

    def explain(self, rule: Rule) -> str | None:
        if is_ipvs_table(rule.table):
            return None  # the detail pane shows the set's or virtual service's detail (ipvs_detail)
        return self.inner.explain(rule)

    def explain_chain(self, table: str | None, chain: str) -> str | None:
        if is_ipvs_table(table):
            return None
        return self.inner.explain_chain(table, chain)

    def findings(self, loc: Loc) -> Sequence[Finding]:
        if is_ipvs_table(loc.table):
            return ()
        return self.inner.findings(loc)

    def chain_note(self, table: str | None, chain: str) -> str | None:
        """After a set's name its type; after a virtual service's its scheduler (and persistence)."""
        if table == IPSET_TABLE and self.ipvs.ipsets is not None:
            s = self.ipvs.ipsets.get(chain)
            return s.type if s is not None else None
        if table == IPVS_TABLE:
            vs = self._vs.get(chain)
            if vs is None:
                return None
            persist = f" persistent {vs.persistence}" if vs.persistence is not None else ""
            return f"{vs.scheduler or 'scheduler not listed'}{persist}"
        note = getattr(self.inner, "chain_note", None)
        return note(table, chain) if note is not None else None

    @cached_property
    def _vs(self) -> dict[str, Any]:
        return {vs.key: vs for vs in self.ipvs.table or ()}

    def ipvs_detail(self, loc: Loc) -> str | None:
        """The detail pane's text for a place in the ``ipset`` or ``ipvsadm`` table (None elsewhere)."""
        from kptui.engine.ipvs.present import service_detail, set_detail

        xt = xtables_of(self.view)
        if loc.table == IPSET_TABLE:
            if loc.chain is None:
                n = len(self.ipvs.ipsets) if self.ipvs.ipsets is not None else 0
                return f"the node's ipsets ({n}; `ipset save`): the rules' -m set matches are decided from them"
            return set_detail(self.ipvs, loc.chain, xt)
        if loc.table == IPVS_TABLE:
            if loc.chain is None:
                n = len(self.ipvs.table) if self.ipvs.table is not None else 0
                return (f"the node's IPVS table ({n} virtual services; `ipvsadm -S -n`): traces run the IPVS step "
                        "from it, forking per real server with its share")  # fmt: skip
            return service_detail(self.ipvs, loc.chain)
        return None
