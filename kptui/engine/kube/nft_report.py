"""``kptui explain`` on an nft listing: which table holds a chain or set (:func:`resolve_nft`), and a chain's,
rule's, set's or element's explanation with its findings as JSON-ready data (:func:`nft_explain_to_dict`) in the
``kptui.explain/1`` schema (keys only added: ``mode``, ``family``; for a set ``set`` and ``elements``). The text
form is :func:`.findings_report.explain_text`'s for chains, :func:`nft_set_text` for sets."""

from __future__ import annotations

from typing import Any

from ..errors import printable
from ..nft.model import NftRuleset
from .findings import Pitfalls
from .findings_model import finding_to_dict
from .findings_report import EXPLAIN_SCHEMA
from .nft_explain import NftExplainer
from .nft_words import element_text

__all__ = ["nft_explain_text", "nft_explain_to_dict", "resolve_nft"]


def resolve_nft(ruleset: NftRuleset, name: str, table: str | None) -> tuple[str, str, str, bool]:
    """(family, table, name, is_set) of chain ``name`` (``@name``: a set or map; a name no chain has is looked up
    among the sets too) in the table ``table`` names (``"ip kube-proxy"``, or ``"kube-proxy"`` when one family has
    it); LookupError when none or several tables hold it."""
    want_set = name.startswith("@")
    bare = name.removeprefix("@")
    tables = list(ruleset.tables)
    if table is not None:
        fam, _, tname = table.rpartition(" ")
        tables = [t for t in tables if t.name == tname and (not fam or t.family == fam)]
        if not tables:
            have = ", ".join(f"{t.family} {t.name}" for t in ruleset.tables) or "none"
            raise LookupError(f"no table {table} in the listing (tables: {have})")
    chains = [t for t in tables if not want_set and bare in t.chains]
    found, is_set = (chains, False) if chains else ([t for t in tables if bare in t.sets], True)
    if not found:
        what = "set or map" if want_set else "chain (or set)"
        where = f"table {table}" if table else "the listing"
        raise LookupError(f"no {what} {bare} in {where}")
    if len(found) > 1:
        raise LookupError(f"{bare} is in several tables ({', '.join(f'{t.family} {t.name}' for t in found)}): "
                          "pick one with --table 'FAMILY NAME'")  # fmt: skip
    return found[0].family, found[0].name, bare, is_set


def _findings(p: Pitfalls, table: str, chain: str, index: int | None) -> list[dict[str, Any]]:
    found = p.for_rule(table, chain, index) if index is not None else p.for_chain(table, chain)
    return [finding_to_dict(f) for f in found]


def nft_explain_to_dict(ruleset: NftRuleset, ex: NftExplainer, pitfalls: Pitfalls, family: str, table: str,
                        name: str, index: int | None = None, *, is_set: bool = False) -> dict[str, Any]:  # fmt: skip
    """A chain's explanation and its rules' (rule ``index`` only, when given), or a set's and its elements'."""
    t = ruleset.table(family, table)
    if t is None:
        raise LookupError(f"no table {family} {table}")
    where = f"{family} {table}"
    if is_set:
        st = t.sets[name]
        about = ex.set(family, table, name)
        indices = [index] if index is not None else list(range(1, len(st.elements) + 1))
        elements = []
        for i in indices:
            e = ex.element(family, table, name, i)
            elements.append({"index": i, "element": element_text(st, st.elements[i - 1]), "explanation": e.text,
                             "kind": e.kind, "kube": e.kube, "service": e.service,
                             "findings": _findings(pitfalls, where, f"@{name}", i)})  # fmt: skip
        return {"schema": EXPLAIN_SCHEMA, "source": ruleset.source, "mode": "nftables", "family": family,
                "table": where, "chain": None, "set": name, "explanation": about.text, "kind": about.kind,
                "kube": about.kube, "service": about.service, "rule_count": 0, "rules": [],
                "element_count": len(st.elements), "elements": elements,
                "findings": _findings(pitfalls, where, f"@{name}", None)}  # fmt: skip
    chain = t.chains[name]
    about = ex.chain(family, table, name)
    indices = [index] if index is not None else list(range(1, len(chain.rules) + 1))
    rules = []
    for i in indices:
        e = ex.rule(family, table, name, i)
        rule = chain.rules[i - 1]
        rules.append({"index": i, "line": rule.line, "handle": rule.handle, "rule": rule.text, "explanation": e.text,
                      "kind": e.kind, "kube": e.kube, "service": e.service,
                      "findings": _findings(pitfalls, where, name, i)})  # fmt: skip
    return {"schema": EXPLAIN_SCHEMA, "source": ruleset.source, "mode": "nftables", "family": family, "table": where,
            "chain": name, "explanation": about.text, "kind": about.kind, "kube": about.kube, "service": about.service,
            "rule_count": len(chain.rules), "rules": rules,
            "findings": _findings(pitfalls, where, name, None)}  # fmt: skip


def nft_explain_text(data: dict[str, Any]) -> str:
    """:func:`nft_explain_to_dict`'s data as text (a chain and its rules, or a set and its elements)."""
    is_set = data["chain"] is None
    head = f"{data['table']}/" + (f"@{data['set']}" if is_set else data["chain"])
    out = [printable(head + (f"  (service {data['service']})" if data["service"] else "")),
           f"  {printable(data['explanation'])}"]
    out += [f"  {f['severity']}: [{f['code']}] {printable(f['title'])}" for f in data["findings"]]
    for item in data["elements"] if is_set else data["rules"]:
        out.append("")
        where = "" if is_set or item["line"] is None else f"  (line {item['line']})"
        out.append(f"  {item['index']}{where}  {printable(item['element'] if is_set else item['rule'])}")
        out.append(f"     {printable(item['explanation'])}")
        out += [f"     {f['severity']}: [{f['code']}] {printable(f['title'])}" for f in item["findings"]]
    if not (data["elements"] if is_set else data["rules"]):
        out.append("  (no elements)" if is_set else "  (no rules)")
    return "\n".join(out)
