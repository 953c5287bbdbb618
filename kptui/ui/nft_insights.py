"""The explorer's :class:`~kptui.ui.services.Insights` for a view that holds nft tables (the display ruleset of
:func:`kptui.engine.nft.display.display_ruleset`): kube-proxy's nftables table answered by the kube engine's
nftables-mode modules (service index, explanations, findings), every other nft table neutrally, and the iptables
tables by the insights the dump's own tables get (:func:`kptui.ui.services.load_insights`).

Also what else the panes need of an nft table and knows nothing of Textual: the nft rule (or set element) a
display location stands for, the text ``y`` copies (the rule as ``nft list`` prints it) and ``Y`` (the ``nft list``
command), and the display location of a trace hop (an nft hop names its family and table apart).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kptui.engine import Rule, Ruleset
from kptui.engine.ipvs.display import IPVS_TABLE
from kptui.engine.nft.display import is_nft_table, nft_name, table_key

from .locs import Loc
from .service_info import Finding, ServiceInfo

if TYPE_CHECKING:
    from kptui.engine.nft import NftRule, NftRuleset
    from kptui.engine.nft.model import NftElement, NftSet
    from kptui.engine.schedule import Netfilter
    from kptui.engine.trace_model import Hop

    from .services import Insights

__all__ = ["NftInsights", "copy_command", "copy_text", "hop_loc", "nft_item", "trace_rules", "view_insights"]


def view_insights(display: Ruleset, nft: NftRuleset | None) -> Insights:
    """The insights of a view: the dump's alone (:func:`kptui.ui.services.load_insights`) without an nft listing,
    else :class:`NftInsights` over both."""
    from kptui.engine.nft.display import xtables_of

    from .services import load_insights

    xt = xtables_of(display)
    if nft is None:
        return load_insights(xt if xt is not None else display)  # (xt: without an IPVS node's display tables)
    return NftInsights(display, nft, load_insights(xt) if xt is not None else None)


def trace_rules(display: Ruleset, nft: NftRuleset | None) -> Ruleset | Netfilter:
    """What a trace of the view walks: the dump, or its iptables tables and the nft listing in the kernel's order."""
    from kptui.engine.nft.display import xtables_of
    from kptui.engine.schedule import Netfilter

    if nft is None:
        xt = xtables_of(display)  # without an IPVS node's display tables, if any
        return xt if xt is not None else display
    xt = xtables_of(display)
    xtables = {xt.family or "ipv4": xt} if xt is not None else {}
    return display.derived("netfilter", lambda _rs: Netfilter(xtables, nft))


def nft_item(nft: NftRuleset, loc: Loc) -> NftRule | tuple[NftSet, NftElement] | None:
    """The nft rule (or ``(set, element)`` of an ``@set`` chain) that display location ``loc`` stands for."""
    if not is_nft_table(loc.table) or loc.chain is None or loc.index is None:
        return None
    family, name = nft_name(loc.table or "")
    table = nft.table(family, name)
    if table is None:
        return None
    if loc.chain.startswith("@"):
        st = table.sets.get(loc.chain[1:])
        return (st, st.elements[loc.index - 1]) if st is not None and 0 < loc.index <= len(st.elements) else None
    chain = table.chains.get(loc.chain)
    return chain.rules[loc.index - 1] if chain is not None and 0 < loc.index <= len(chain.rules) else None


def copy_text(nft: NftRuleset, loc: Loc) -> str | None:
    """What ``y`` copies on an nft rule: the rule as ``nft list ruleset`` prints it (an element: as ``nft list
    set`` does); None for what is not an nft rule."""
    from kptui.engine.nft.printer import element_text

    item = nft_item(nft, loc)
    if item is None:
        return None
    if isinstance(item, tuple):
        return element_text(*item)
    return item.text


def copy_command(loc: Loc, *, kind: str = "map") -> str | None:
    """What ``Y`` copies on an nft chain, rule or set: ``nft list chain ip kube-proxy services`` (``nft list set|map
    …`` for a set); None outside nft tables."""
    if not is_nft_table(loc.table) or loc.chain is None:
        if is_nft_table(loc.table):
            family, name = nft_name(loc.table or "")
            return f"nft list table {family} {shlex.quote(name)}"
        return None
    family, name = nft_name(loc.table or "")
    if loc.chain.startswith("@"):
        return f"nft list {kind} {family} {shlex.quote(name)} {shlex.quote(loc.chain[1:])}"
    return f"nft list chain {family} {shlex.quote(name)} {shlex.quote(loc.chain)}"


def hop_loc(hop: Hop, tables: Sequence[str | None] | Any) -> Loc:
    """The display location of a trace hop: ``ip kube-proxy`` for an nft hop (its table is listed under its family),
    the table's own name for an iptables hop."""
    if hop.table == "ipvs" and IPVS_TABLE in tables:  # the IPVS step: the virtual service (and real server) shown
        chain = tables[IPVS_TABLE].chains.get(hop.chain) if hasattr(tables, "get") else None
        if chain is not None:
            index = next((i for i, row in enumerate(chain.rules.rows, 1) if hop.target and
                          row[1].startswith(f"-> {hop.target} ")), None)  # fmt: skip
            return Loc(IPVS_TABLE, hop.chain, index)
    key = table_key(hop.family, hop.table) if hop.family else None
    table = key if key is not None and key in tables else hop.table
    return Loc(table, hop.chain, hop.index)


class NftInsights:
    """Insights for a display ruleset: nft tables from the kube engine's nftables-mode modules, iptables tables from
    ``xt`` (the dump's insights; None: there is no dump)."""

    def __init__(self, display: Ruleset, nft: NftRuleset, xt: Insights | None = None) -> None:
        from kptui.engine.kube.nft_build import nft_service_index_of
        from kptui.engine.kube.nft_layout import kube_tables, nft_layout

        from .kube_adapter import service_info

        self.display, self.nft, self.xt = display, nft, xt
        self.services: dict[str, ServiceInfo] = dict(xt.services) if xt is not None else {}
        self.indexes = {t.family: nft_service_index_of(nft, t.family) for t in kube_tables(nft)}
        for index in self.indexes.values():
            for sp in index:
                self.services.setdefault(sp.label, service_info(sp))
        self.pod_cidr: str | None = xt.pod_cidr if xt is not None else None
        for t in kube_tables(nft):
            lay = nft_layout(t)
            if self.pod_cidr is None and lay.local_detector == "cidr" and lay.local_detector_values:
                self.pod_cidr = lay.local_detector_values[0]
        self.defer_findings = False
        self.ruleset: Ruleset | None = None  # iptables insights carry it; ours is the display ruleset

    def prepare_findings(self) -> None:
        _ = self._pitfalls
        prepare = getattr(self.xt, "prepare_findings", None)
        if prepare is not None:
            prepare()

    @cached_property
    def _explainer(self) -> Any:
        from kptui.engine.kube.nft_explain import NftExplainer

        return NftExplainer(self.nft)

    @cached_property
    def _pitfalls(self) -> Any:
        from kptui.engine.kube.nft_findings import nft_pitfalls

        xt = getattr(self.xt, "ruleset", None) if self.xt is not None else None
        return nft_pitfalls(self.nft, xt if isinstance(xt, Ruleset) else None)

    def service_of(self, table: str | None, chain: str) -> str | None:
        if not is_nft_table(table):
            return self.xt.service_of(table, chain) if self.xt is not None else None
        family, name = nft_name(table or "")
        index = self.indexes.get(family) if name == "kube-proxy" else None
        if index is None:
            return None
        if chain.startswith("@affinity-"):
            chain = "endpoint-" + chain.removeprefix("@affinity-")
        sp = index.by_chain(chain)
        return sp.label if sp is not None else None

    @cached_property
    def _callers(self) -> dict[tuple[str, str], tuple[Loc, ...]]:
        from kptui.engine.nft.display import rule_targets
        from kptui.engine.nft.exprs import Verdict

        found: dict[tuple[str, str], list[Loc]] = {}
        for t in self.nft.tables:
            key = table_key(t.family, t.name)
            if key not in self.display.tables:
                continue
            for chain in t.chains.values():
                for i, rule in enumerate(chain.rules, 1):
                    for target in dict.fromkeys(rule_targets(rule)):
                        found.setdefault((key, target), []).append(Loc(key, chain.name, i))
            for st in t.sets.values():
                for i, el in enumerate(st.elements, 1):
                    if isinstance(el.value, Verdict) and el.value.target:
                        found.setdefault((key, el.value.target), []).append(Loc(key, f"@{st.name}", i))
        return {k: tuple(v) for k, v in found.items()}

    def callers_of(self, table: str | None, chain: str) -> tuple[Loc, ...] | None:
        """The rules and map elements of an nft table that jump or go to ``chain`` (inline verdict maps and named
        maps' elements included); None outside nft tables (the jump graph answers there)."""
        if not is_nft_table(table):
            return None
        return self._callers.get((table or "", chain), ())

    def follow_targets(self, loc: Loc) -> tuple[str, ...]:
        """Where enter on nft rule ``loc`` can lead (:func:`~kptui.engine.nft.display.follow_targets`): the chains
        and maps of its table it names, in its order; none outside nft tables."""
        from kptui.engine.nft.display import follow_targets

        item = nft_item(self.nft, loc)
        table = self.display.tables.get(loc.table)
        if item is None or isinstance(item, tuple) or table is None:
            return ()
        return tuple(t for t in follow_targets(item) if t in table.chains)

    def chain_note(self, table: str | None, chain: str) -> str | None:
        """What the tree shows after an nft chain's name: a base chain's type, hook and priority (as listed, with
        the number), a set's or map's type; None for a regular chain (and outside nft tables)."""
        if not is_nft_table(table):
            return None
        family, name = nft_name(table or "")
        t = self.nft.table(family, name)
        if t is None:
            return None
        if chain.startswith("@"):
            st = t.sets.get(chain[1:])
            if st is None:
                return None
            return " . ".join(st.key_type) + (f" : {' . '.join(st.data_type)}" if st.data_type else "")
        c = t.chains.get(chain)
        if c is None or not c.is_base:
            return None
        prio = c.priority_text or str(c.priority)
        if c.priority is not None and prio != str(c.priority):
            prio += f" = {c.priority}"
        return f"{c.type} hook {c.hook} priority {prio}"

    def explain(self, rule: Rule) -> str | None:
        if not is_nft_table(rule.table):
            return self.xt.explain(rule) if self.xt is not None else None
        family, name = nft_name(rule.table or "")
        try:
            if rule.chain.startswith("@"):
                return str(self._explainer.element(family, name, rule.chain[1:], rule.index).text)
            return str(self._explainer.rule(family, name, rule.chain, rule.index).text)
        except LookupError:
            return None

    def explain_chain(self, table: str | None, chain: str) -> str | None:
        if not is_nft_table(table):
            return self.xt.explain_chain(table, chain) if self.xt is not None else None
        family, name = nft_name(table or "")
        try:
            if chain.startswith("@"):
                return str(self._explainer.set(family, name, chain[1:]).text)
            return str(self._explainer.chain(family, name, chain).text)
        except LookupError:
            return None

    def explain_table(self, table: str | None) -> str | None:
        if not is_nft_table(table):
            return None
        family, name = nft_name(table or "")
        try:
            return str(self._explainer.table(family, name).text)
        except LookupError:
            return None

    def findings(self, loc: Loc) -> Sequence[Finding]:
        if not is_nft_table(loc.table):
            return self.xt.findings(loc) if self.xt is not None else ()
        if loc.chain is None or (self.defer_findings and "_pitfalls" not in self.__dict__):
            return ()
        from .kube_adapter import finding_text

        p = self._pitfalls
        found = p.for_chain(loc.table, loc.chain) if loc.index is None else p.for_rule(loc.table, loc.chain, loc.index)
        return tuple(Finding(f.severity, finding_text(f)) for f in found)
