"""nft tables in the shape of the rule model's tables, for the views that show iptables and nft tables side by side:
the explorer's tree and search, ``kptui top``, watch mode's counters (:func:`display_ruleset`).

Each nft table becomes a :class:`~kptui.engine.model.Table` named ``"FAMILY NAME"`` (``"ip kube-proxy"``: a
space no iptables table name has, :func:`is_nft_table`), each chain a :class:`~kptui.engine.model.Chain` whose
rows are the nft rules as nft lists them, a counter's values left out of the text (they are the row's packets and
bytes, so a rule keeps its identity while its counter moves): (line, text, packets, bytes, target, goto) with the target the chain a
``jump``/``goto`` names, else the verdict in iptables' words (``DROP``, ``REJECT``, ``ACCEPT``, ``RETURN``,
``DNAT``, ``SNAT``, ``MASQUERADE``, ``REDIRECT``, ``MARK`` for a mark set) so counters, colours and refusals read
alike. A base chain has its policy (``ACCEPT``/``DROP``). Sets and maps become chains named ``@NAME`` whose rows
are their elements (a verdict map's element targets the chain it goes to). These rows are for showing: an nft
rule's text is no iptables rule and must never be decoded as one (the views look at :func:`is_nft_table` first).

The iptables-nft tables an nft listing also shows are left out when the iptables dump is given (it shows them
fully; nft only in translation). Tables are ordered by the first priority their base chains hook in at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..model import TABLE_ORDER, Chain, Ruleset, Table
from ..rulelist import Row, RuleList
from .exprs import Mangle, MapItem, Nat, Reject, SetLit, SetRef, Stmt, Verdict, VMap
from .model import NftRule, NftRuleset, NftSet, NftTable
from .printer import element_text

__all__ = ["IPTABLES_PRIORITY", "display_ruleset", "follow_targets", "is_nft_table", "nft_name", "rule_target",
           "rule_targets", "table_key", "xtables_of"]

IPTABLES_PRIORITY = {"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50}
_NAT = {"dnat": "DNAT", "snat": "SNAT", "masquerade": "MASQUERADE", "redirect": "REDIRECT"}
_VERDICT = {"drop": "DROP", "accept": "ACCEPT", "return": "RETURN", "queue": "NFQUEUE"}
_COUNTS = re.compile(r"\bcounter packets \d+ bytes \d+")  # a row's text: the counter statement, not its values


def table_key(family: str, name: str) -> str:
    """The display table of nft table ``family name``: ``"ip kube-proxy"``."""
    return f"{family} {name}"


def is_nft_table(name: str | None) -> bool:
    """A display table that is an nft table (its rows are nft rules, not iptables ones)."""
    return name is not None and " " in name


def nft_name(key: str) -> tuple[str, str]:
    """``"ip kube-proxy"`` → ``("ip", "kube-proxy")``."""
    family, _, name = key.partition(" ")
    return family, name


def rule_target(stmts: Sequence[Stmt]) -> tuple[str | None, bool]:
    """(target, goto) of a rule's statements, as a row carries them (see the module doc)."""
    target: str | None = None
    for s in stmts:
        if isinstance(s, Verdict):
            if s.kind in ("jump", "goto"):
                return s.target, s.kind == "goto"
            target = _VERDICT.get(s.kind, target)
        elif isinstance(s, Reject):
            target = "REJECT"
        elif isinstance(s, Nat):
            target = _NAT.get(s.kind, target)
        elif isinstance(s, Mangle) and target is None:
            target = "MARK"
    return target, False


def rule_targets(rule: NftRule) -> list[str]:
    """Every chain a rule jumps or goes to: its verdict's and those of an inline verdict map (``numgen random mod 3
    vmap { 0 : goto endpoint-A, … }``), which a row's single target cannot hold."""
    out = [s.target for s in rule.exprs if isinstance(s, Verdict) and s.target]
    for s in rule.exprs:
        if isinstance(s, VMap) and isinstance(s.data, SetLit):
            out += [t for i in s.data.items if isinstance(i, MapItem) and isinstance(i.value, Verdict)
                    and (t := i.value.target)]  # fmt: skip
    return out


def follow_targets(rule: NftRule) -> list[str]:
    """Where following a rule can lead, in the display's chain names: every chain it jumps or goes to
    (:func:`rule_targets`, each once) and the named verdict maps it looks up (``vmap @m``: the display's ``@m``)."""
    out = dict.fromkeys(rule_targets(rule))
    for s in rule.exprs:
        if isinstance(s, VMap) and isinstance(s.data, SetRef):
            out[f"@{s.data.name}"] = None
    return list(out)


def _rows(chain_rules: Sequence[NftRule]) -> list[Row]:
    rows: list[Row] = []
    for r in chain_rules:
        target, goto = rule_target(r.exprs)
        c = r.counter
        rows.append((r.line or 0, _COUNTS.sub("counter", r.text), None if c is None else str(c[0]),
                     None if c is None else str(c[1]), target, goto))  # fmt: skip
    return rows


def _set_rows(st: NftSet) -> list[Row]:
    rows: list[Row] = []
    for el in st.elements:
        target, goto = rule_target((el.value,)) if isinstance(el.value, Verdict) else (None, False)
        c = el.counter
        rows.append((st.line or 0, element_text(st, el), None if c is None else str(c[0]),
                     None if c is None else str(c[1]), target, goto))  # fmt: skip
    return rows


def _table(t: NftTable) -> Table:
    key = table_key(t.family, t.name)
    chains: dict[str, Chain] = {}
    for c in t.chains.values():
        policy = (c.policy or "accept").upper() if c.is_base else None
        chains[c.name] = Chain(c.name, key, policy, None, RuleList(key, c.name, _rows(c.rules)), c.line)
    for st in t.sets.values():
        name = f"@{st.name}"
        chains[name] = Chain(name, key, None, None, RuleList(key, name, _set_rows(st)), st.line)
    return Table(key, chains, t.line)


def first_priority(t: NftTable) -> int:
    """The lowest priority a base chain of the table hooks in at (a table without one sorts last)."""
    return min((c.priority for c in t.chains.values() if c.is_base and c.priority is not None), default=1 << 20)


def display_ruleset(xtables: Ruleset | None, nft: NftRuleset | None, *, families: Sequence[str] | None = None) -> Ruleset:
    """One ruleset holding the iptables dump's tables and the nft listing's (of ``families``, nft families such as
    ``("ip", "inet")``; default all), ordered by the priority they hook in at. ``xtables`` itself when there is
    no nft listing."""
    if nft is None:
        return xtables if xtables is not None else Ruleset({})
    order: list[tuple[int, int, str | None, Table]] = []
    if xtables is not None:
        for name, xt in xtables.tables.items():
            prio = IPTABLES_PRIORITY.get(name or "", 0)
            order.append((prio, TABLE_ORDER.index(name) if name in TABLE_ORDER else 9, name, xt))
    fam_of_dump = {"ipv4": "ip", "ipv6": "ip6"}.get(xtables.family or "ipv4") if xtables is not None else None
    for nt in nft.tables:
        if families is not None and nt.family not in families:
            continue
        if xtables is not None and nt.name in xtables.tables and nt.family == fam_of_dump and (
                nt.iptables_nft or nt.name in IPTABLES_PRIORITY):  # fmt: skip
            continue  # the dump shows this iptables-nft table as iptables wrote it
        order.append((first_priority(nt), 10, table_key(nt.family, nt.name), _table(nt)))
    order.sort(key=lambda x: (x[0], x[1]))
    tables = {name: t for _, _, name, t in order}
    family = xtables.family if xtables is not None and xtables.family else (
        "ipv6" if nft.tables and all(t.family == "ip6" for t in nft.tables) else "ipv4" if nft.tables else None)
    return Ruleset(tables, source=(xtables.source if xtables is not None else nft.source), family=family,
                   backend=xtables.backend if xtables is not None else None,
                   version=xtables.version if xtables is not None else None,
                   warnings=(*(xtables.warnings if xtables is not None else ()), *nft.warnings),
                   line_count=(xtables.line_count if xtables is not None else 0) + nft.line_count)  # fmt: skip


def xtables_of(display: Ruleset) -> Ruleset | None:
    """The iptables tables of a display ruleset, as the ruleset a trace walks (None when it has none); kept with
    it, so its compiled rules are built once."""
    def build(rs: Ruleset) -> Ruleset | None:
        from ..ipvs.display import (
            is_ipvs_table,  # an IPVS node's sets and virtual services: shown, not walked
        )

        tables = {k: t for k, t in rs.tables.items() if not is_nft_table(k) and not is_ipvs_table(k)}
        if len(tables) == len(rs.tables):
            return rs
        if not tables:
            return None
        return Ruleset(tables, source=rs.source, family=rs.family, backend=rs.backend, version=rs.version,
                       form=rs.form, legacy_tables_present=rs.legacy_tables_present, line_count=rs.line_count)

    return display.derived("xtables", build)
