"""``kptui lint`` and ``kptui explain`` output: findings grouped by severity, explanations of a chain and its
rules, as text and as JSON-ready data. Text from the dump goes through :func:`printable` here.

JSON forms are stable interfaces (keys are only ever added): ``kptui lint --json`` prints a list of
:func:`~.findings.finding_to_dict` objects; ``kptui explain --json`` an object of schema ``kptui.explain/1``.
"""

from __future__ import annotations

from typing import Any

from ..errors import printable
from ..model import Ruleset
from .explain import Explainer
from .findings import SEVERITIES, Finding, Pitfalls, finding_to_dict

__all__ = ["EXPLAIN_SCHEMA", "explain_text", "explain_to_dict", "lint_text", "resolve_chain"]

EXPLAIN_SCHEMA = "kptui.explain/1"
_HEADINGS = {"error": "errors", "warning": "warnings", "info": "info"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 or word == "info" else f"{n} {word}s"


def lint_text(findings: tuple[Finding, ...] | Pitfalls, source: str | None) -> str:
    """Findings grouped by severity (errors first), each with its location, detail and advice."""
    items = tuple(findings)
    counts = {s: sum(1 for f in items if f.severity == s) for s in SEVERITIES}
    head = ", ".join(_plural(counts[s], s) for s in SEVERITIES)
    out = [f"{printable(source or '<dump>')}: {head}" if items else f"{printable(source or '<dump>')}: no findings"]
    for severity in SEVERITIES:
        group = [f for f in items if f.severity == severity]
        if not group:
            continue
        out.append("")
        out.append(f"{_HEADINGS[severity].upper()} ({len(group)})")
        for f in group:
            out.append(f"  [{f.code}] {printable(f.title)}")
            where = f"    at {printable(f.location)}" if f.chain is not None else "    the whole dump"
            if f.service:
                where += f" · service {printable(f.service)}"
            if f.count > 1:
                where += f" · stands for {f.count}"
            out.append(where)
            out.append(f"    {printable(f.detail)}")
            out.append(f"    advice: {printable(f.advice)}")
    return "\n".join(out)


def resolve_chain(ruleset: Ruleset, chain: str, table: str | None) -> str | None:
    """The table holding ``chain`` (``table`` when given); LookupError when none or several do."""
    if table is not None:
        if table not in ruleset.tables:
            names = ", ".join(t for t in ruleset.tables if t) or "none"
            raise LookupError(f"no table {table} in the dump (tables: {names})")
        if chain not in ruleset.tables[table].chains:
            raise LookupError(f"no chain {chain} in table {table}")
        return table
    found = [t for t, tbl in ruleset.tables.items() if chain in tbl.chains]
    if not found:
        raise LookupError(f"no chain {chain} in the dump")
    if len(found) > 1:
        raise LookupError(f"chain {chain} is in several tables ({', '.join(t or '?' for t in found)}): "
                          "pick one with --table")  # fmt: skip
    return found[0]


def explain_to_dict(ruleset: Ruleset, explainer: Explainer, pitfalls: Pitfalls, table: str | None, chain: str,
                    rule_index: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A chain's explanation and its rules' (only rule ``rule_index`` when given), with their findings."""
    ch = ruleset.chain(table, chain)
    if ch is None:
        raise LookupError(f"no chain {chain} in table {table}")
    about = explainer.chain(table, chain)
    indices = [rule_index] if rule_index is not None else list(range(1, len(ch.rules) + 1))
    rules = []
    for i in indices:
        e = explainer.rule(table, chain, i)
        rule = ch.rules[i - 1]
        rules.append({
            "index": i, "line": rule.line, "rule": rule.raw, "explanation": e.text, "kind": e.kind,
            "kube": e.kube, "service": e.service,
            "findings": [finding_to_dict(f) for f in pitfalls.for_rule(table, chain, i)],
        })  # fmt: skip
    return {
        "schema": EXPLAIN_SCHEMA, "source": ruleset.source, "table": table, "chain": chain,
        "explanation": about.text, "kind": about.kind, "kube": about.kube, "service": about.service,
        "rule_count": len(ch.rules), "rules": rules,
        "findings": [finding_to_dict(f) for f in pitfalls.for_chain(table, chain)],
    }  # fmt: skip


def explain_text(data: dict[str, Any]) -> str:
    """:func:`explain_to_dict`'s data as text."""
    head = f"{data['table'] or '?'}/{data['chain']}"
    if data["service"]:
        head += f"  (service {data['service']})"
    out = [printable(head), f"  {printable(data['explanation'])}"]
    out.extend(_finding_lines(data["findings"], "  "))
    for r in data["rules"]:
        out.append("")
        out.append(f"  {r['index']}  (line {r['line']})  {printable(r['rule'])}")
        out.append(f"     {printable(r['explanation'])}")
        out.extend(_finding_lines(r["findings"], "     "))
    if not data["rules"]:
        out.append("  (no rules)")
    return "\n".join(out)


def _finding_lines(findings: list[dict[str, Any]], indent: str) -> list[str]:
    return [f"{indent}{f['severity']}: [{f['code']}] {printable(f['title'])}" for f in findings]
