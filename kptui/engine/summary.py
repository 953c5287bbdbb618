"""``kptui summary``: the shape of a dump as plain data (the CLI prints it as text or JSON).

The JSON form is a stable interface (documented in the README): keys are only ever added, never renamed or
removed, and ``schema`` changes when a key's meaning changes.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterable

from .model import TABLE_ORDER, Chain, Ruleset

__all__ = ["summarize", "SCHEMA"]

SCHEMA = "kptui.summary/1"
TOP_CHAINS = 10


def summarize(ruleset: Ruleset) -> dict[str, Any]:
    """A JSON-ready dict describing ``ruleset`` (see the README for every key)."""
    graph = ruleset.graph
    tables = []
    sizes: list[tuple[int, str, str | None]] = []
    order = {name: i for i, name in enumerate(TABLE_ORDER)}
    for name, table in sorted(ruleset.tables.items(), key=lambda kv: order.get(kv[0] or "", 99)):
        policies = {}
        user = 0
        counts = [(len(c.rules), c.name) for c in table.chains.values()]
        # Only the biggest chains are listed: keep a table's top ones, not a sorted list of 50k chains.
        sizes.extend((n, c, name) for n, c in heapq.nlargest(TOP_CHAINS, counts))
        for chain in table.chains.values():
            if chain.policy is not None or chain.builtin:
                policies[chain.name] = chain.policy
            else:
                user += 1
        packets, bytes_ = _totals(table.chains.values())
        tables.append(
            {
                "name": name,
                "chains": len(table.chains),
                "user_chains": user,
                "rules": sum(n for n, _ in counts),
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
        "total_rules": ruleset.rule_count,
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
    }


def _totals(chains: Iterable[Chain]) -> tuple[int, int]:
    """Packet and byte counters summed over every rule of ``chains`` (one pass, no Rule objects)."""
    pks: list[str] = []
    bys: list[str] = []
    for chain in chains:
        rows = getattr(chain.rules, "rows", None)
        if rows is None:
            pk, by = chain.rule_totals()
            pks.append(str(pk))
            bys.append(str(by))
            continue
        pks.extend([r[2] for r in rows if r[2] is not None])
        bys.extend([r[3] for r in rows if r[3] is not None])
    return sum(map(int, pks)), sum(map(int, bys))
