"""``nft_summary(ruleset)``: the shape of an nft listing as plain data (the CLI prints it as text or JSON).

Keys (format ``kptui.nft-summary/1``; keys are only ever added, ``schema`` changes when a meaning changes):

- ``schema``, ``source`` (file name or None), ``form`` (``text`` or ``json``), ``nft_version`` (from JSON's
  metainfo, else None), ``lines`` (lines of the listing);
- ``tables``: one per table in listing order: ``family``, ``name``, ``comment``, ``flags``, ``iptables_nft``
  (managed by iptables-nft: read that table from iptables-nft-save instead), ``rules`` (in the table),
  ``chains`` (every chain: ``name``, ``base`` (bool), ``rules``), ``base_chains`` (``name``, ``type``,
  ``hook``, ``priority`` (resolved number), ``priority_text`` (as listed), ``policy``, ``devices``, ``rules``),
  ``sets`` (sets and maps: ``name``, ``kind`` (set/map), ``key_type`` and ``data_type`` (lists of type names;
  data_type None for a set), ``flags``, ``elements`` (count)), ``objects`` (``kind``, ``name``);
- ``totals``: ``tables``, ``chains``, ``rules``, ``elements``;
- ``warnings``: ``line`` (None for JSON), ``message``, ``severity``.
"""

from __future__ import annotations

from typing import Any

from .model import NftRuleset

__all__ = ["SCHEMA", "nft_summary"]

SCHEMA = "kptui.nft-summary/1"


def nft_summary(ruleset: NftRuleset) -> dict[str, Any]:
    """A JSON-ready dict describing ``ruleset`` (keys in the module docstring)."""
    tables: list[dict[str, Any]] = []
    for t in ruleset.tables:
        tables.append({
            "family": t.family,
            "name": t.name,
            "comment": t.comment,
            "flags": list(t.flags),
            "iptables_nft": t.iptables_nft,
            "rules": t.rule_count,
            "chains": [{"name": c.name, "base": c.is_base, "rules": len(c.rules)} for c in t.chains.values()],
            "base_chains": [
                {"name": c.name, "type": c.type, "hook": c.hook, "priority": c.priority,
                 "priority_text": c.priority_text, "policy": c.policy, "devices": list(c.devices),
                 "rules": len(c.rules)}
                for c in t.base_chains()
            ],
            "sets": [
                {"name": s.name, "kind": s.kind, "key_type": list(s.key_type),
                 "data_type": list(s.data_type) if s.data_type is not None else None, "flags": list(s.flags),
                 "elements": len(s.elements)}
                for s in t.sets.values()
            ],
            "objects": [{"kind": o.kind, "name": o.name} for o in t.objects],
        })  # fmt: skip
    return {
        "schema": SCHEMA,
        "source": ruleset.source,
        "form": ruleset.form,
        "nft_version": ruleset.nft_version,
        "lines": ruleset.line_count,
        "tables": tables,
        "totals": {
            "tables": len(tables),
            "chains": sum(len(t["chains"]) for t in tables),
            "rules": sum(t["rules"] for t in tables),
            "elements": sum(s["elements"] for t in tables for s in t["sets"]),
        },
        "warnings": [{"line": w.line, "message": w.message, "severity": w.severity} for w in ruleset.warnings],
    }
