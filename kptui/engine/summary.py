"""``kptui summary``: the shape of a dump as plain data (the CLI prints it as text or JSON).

The JSON form is a stable interface (documented in the README): keys are only ever added, never renamed or
removed, and ``schema`` changes when a key's meaning changes.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .graph import graph_of
from .kube.era import detect_layout, layout_to_dict
from .model import BUILTIN_CHAINS, TABLE_ORDER, Chain, Ruleset

if TYPE_CHECKING:
    from .ipvs.node import IpvsNode

__all__ = ["SCHEMA", "ipvs_summary", "summarize"]

SCHEMA = "kptui.summary/1"
_PKTS, _BYTES = itemgetter(2), itemgetter(3)
TOP_CHAINS = 10


def summarize(ruleset: Ruleset, ipvs: IpvsNode | None = None) -> dict[str, Any]:
    """A JSON-ready dict describing ``ruleset`` (see the README for every key); ``ipvs`` (an IPVS-mode node's
    table, ipsets and sysctls) adds the ``ipvs`` key and what the node says about the proxy mode."""
    graph = graph_of(ruleset)
    tables = []
    sizes: list[tuple[int, str, str | None]] = []
    order = {name: i for i, name in enumerate(TABLE_ORDER)}
    total_rules = 0
    for name, table in sorted(ruleset.tables.items(), key=lambda kv: order.get(kv[0] or "", 99)):
        policies = {}
        builtins = BUILTIN_CHAINS.get(name or "", ())
        rows_of = [_rows(c) for c in table.chains.values()]
        counts = list(zip(map(len, rows_of), table.chains))
        for chain in table.chains.values():
            if chain.policy is not None or chain.name in builtins:
                policies[chain.name] = chain.policy
        # Only the biggest chains are listed: keep a table's top ones, not a sorted list of 50k chains.
        sizes.extend((n, c, name) for n, c in heapq.nlargest(TOP_CHAINS, counts))
        packets, bytes_ = _totals(rows_of)
        rules = sum(n for n, _ in counts)
        total_rules += rules
        tables.append(
            {
                "name": name,
                "chains": len(table.chains),
                "user_chains": len(table.chains) - len(policies),
                "rules": rules,
                "policies": policies,
                "packets": packets,
                "bytes": bytes_,
            }
        )
    sizes.sort(key=lambda s: (-s[0], s[2] or "", s[1]))
    return {
        "schema": SCHEMA,
        "source": ruleset.source,
        "family": ruleset.family,
        "backend": ruleset.backend,
        "iptables_version": ruleset.version,
        "form": ruleset.form,
        "legacy_tables_present": ruleset.legacy_tables_present,
        "lines": ruleset.line_count,
        "total_rules": total_rules,
        "total_chains": sum(len(t.chains) for t in ruleset.tables.values()),
        "tables": tables,
        "top_chains": [
            {"table": t, "chain": c, "rules": n} for n, c, t in sizes[:TOP_CHAINS] if n > 0
        ],
        "dangling_jumps": [
            {"table": ref.table, "chain": ref.chain, "index": ref.index, "line": ref.line, "target": target}
            for ref, target in graph.dangling
        ],
        "unreferenced_chains": [{"table": ref.table, "chain": ref.chain} for ref in graph.unreferenced],
        "loops": [[{"table": ref.table, "chain": ref.chain} for ref in loop] for loop in graph.loops],
        "warnings": [
            {"line": w.line, "message": w.message} for w in ruleset.warnings
        ],
        "kube": layout_to_dict(detect_layout(ruleset, ipvs)),
        **({"ipvs": ipvs_summary(ipvs)} if ipvs is not None else {}),
        **input_report(ruleset),
    }


def input_report(ruleset: Ruleset) -> dict[str, Any]:
    """What of a pasted dump was not rules (skipped lines), what may be missing, how -S listings were placed,
    and the other family's dump of the same paste (keys added in schema kptui.summary/1)."""
    return {
        "skipped": [{"line": line, "kind": kind, "text": text} for line, kind, text in ruleset.skipped],
        "rules_missing": list(ruleset.rules_missing),
        "inferred_tables": [{"table": t, "reason": why} for t, why in ruleset.inferred_tables],
        "unplaced_chains": list(ruleset.unplaced_chains),
        "other_families": [
            {"family": c.family, "total_rules": c.rule_count, "tables": [t for t in c.tables if t is not None]}
            for c in ruleset.companions
        ],
    }


def ipvs_summary(node: IpvsNode) -> dict[str, Any]:
    """The ``ipvs`` key: what the IPVS table, the ipsets and kube-ipvs0 hold (None where not given)."""
    table = node.table
    return {
        "virtual_services": len(table) if table is not None else None,
        "real_servers": sum(len(vs.real_servers) for vs in table) if table is not None else None,
        "draining_real_servers": sum(1 for vs in table for r in vs.real_servers if r.weight == 0)
        if table is not None else None,
        "without_real_servers": sum(1 for vs in table if not vs.real_servers) if table is not None else None,
        "schedulers": sorted({vs.scheduler for vs in table if vs.scheduler}) if table is not None else None,
        "listing": table.listing if table is not None else None,
        "ipsets": len(node.ipsets) if node.ipsets is not None else None,
        "ipset_members": sum(len(s) for s in node.ipsets.sets.values()) if node.ipsets is not None else None,
        "kube_ipvs0": list(node.kube_ipvs0) if node.kube_ipvs0 is not None else None,
        "vs_conntrack": node.conntrack, "proxy_mode": node.proxy_mode,
    }  # fmt: skip


def _rows(chain: Chain) -> Sequence[tuple[Any, ...]]:
    """The parser's compact rows (line, raw, packets, bytes, target, goto), or rows made from Rule objects."""
    rows = getattr(chain.rules, "rows", None)
    if rows is not None:
        return rows  # type: ignore[no-any-return]
    return [(r.line, r.raw, r.counters and str(r.counters.packets), r.counters and str(r.counters.bytes),
             r.target_name, r.goto) for r in chain.rules]  # fmt: skip


def _totals(rows_of: Iterable[Sequence[tuple[Any, ...]]]) -> tuple[int, int]:
    """Packet and byte counters summed over every row (one pass; map + itemgetter run in C)."""
    pks: list[str | None] = []
    bys: list[str | None] = []
    for rows in rows_of:
        pks.extend(map(_PKTS, rows))
        bys.extend(map(_BYTES, rows))
    return sum(map(int, filter(None, pks))), sum(map(int, filter(None, bys)))
