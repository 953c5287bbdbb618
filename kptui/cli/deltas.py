"""``kptui deltas OLD NEW``: the rules whose counters moved between two saved dumps (or bundles).

Without counters on both sides there are no deltas: no rule moved, no packets, no refusing rule rose, as far
as anyone can tell; the report then lists only the rules that appeared or vanished and says why."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from .common import add_input_options, emit_json, load_snapshot, print_snapshot_warnings, print_warnings

if TYPE_CHECKING:
    from kptui.engine.comments import ServiceLabels
    from kptui.engine.counters import CounterDiff, RuleDelta

__all__ = ["add_deltas_command", "deltas_text", "deltas_to_dict"]

SCHEMA = "kptui.deltas/1"


def _rule(d: RuleDelta, labels: ServiceLabels, diff: CounterDiff) -> dict[str, Any]:
    """A rule's JSON; without counters on both sides its delta is null, and so are the totals of a side
    saved without counters."""
    k = d.key
    totals = diff.old_counters if d.status == "vanished" else diff.new_counters
    return {"table": k.table, "chain": k.chain, "index": d.index, "line": d.line, "occurrence": k.occurrence,
            "rule": k.text, "status": d.status, "target": d.target, "service": labels.rule(k.table, k.chain, k.text),
            "packets": d.packets if diff.counters else None, "bytes": d.bytes if diff.counters else None,
            "total_packets": d.total_packets if totals else None, "total_bytes": d.total_bytes if totals else None,
            "drops": d.drops}  # fmt: skip


def deltas_to_dict(diff: CounterDiff, labels: ServiceLabels, old: str, new: str) -> dict[str, Any]:
    """The stable JSON of ``kptui deltas`` (see the README)."""
    rules: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for d in (*diff.rules, *diff.appeared):
        rules.setdefault((d.key.table, d.key.chain), []).append(_rule(d, labels, diff))
    if not diff.counters:
        rules = {}
    chains = [{"table": c.table, "chain": c.chain, "service": labels.chain(c.table, c.chain), "packets": c.packets,
               "bytes": c.bytes, "exact": c.exact, "policy": c.policy, "policy_packets": c.policy_packets,
               "policy_bytes": c.policy_bytes, "rules": rules.get((c.table, c.chain), [])}
              for c in diff.chains]  # fmt: skip
    total = diff.total  # packets and services count what entered them, each packet once (kptui.engine.entries)
    counted = diff.counters  # without counters on both sides there are no deltas at all
    return {
        "schema": SCHEMA, "old": old, "new": new, "seconds": diff.seconds or None, "counters": diff.counters,
        "compared": diff.compared, "packets": total.packets if counted else None,
        "bytes": total.bytes if counted else None, "packets_table": total.table if counted else None,
        "packets_exact": total.exact if counted else None, "chains": chains,
        "services": [s._asdict() for s in diff.services(labels)] if counted else [],
        "appeared": [_rule(d, labels, diff) for d in diff.appeared],
        "vanished": [_rule(d, labels, diff) for d in diff.vanished],
        "drops": [_rule(d, labels, diff) for d in diff.drops], "notes": list(diff.notes),
    }  # fmt: skip


def deltas_text(doc: dict[str, Any], *, limit: int = 20) -> str:
    from kptui.fmt import human, plural, printable

    secs = doc["seconds"]
    over = f" over {secs:.1f} s" if secs else ""
    if not doc["counters"]:
        out = [(f"{doc['old']} → {doc['new']}{over}: {plural(doc['compared'], 'rule')} in both, "
                f"{len(doc['appeared'])} appeared, {len(doc['vanished'])} vanished; no counter deltas (no rule "
                "moved, no packets counted, no refusing rule rising: the counters are not there to compare)")]
    else:
        out = [(f"{doc['old']} → {doc['new']}{over}: {plural(doc['compared'], 'rule')} in both, "
                f"{sum(len(c['rules']) for c in doc['chains'])} moved ({len(doc['appeared'])} appeared, "
                f"{len(doc['vanished'])} vanished); {'' if doc['packets_exact'] else 'at least '}"
                f"{human(doc['packets'])} packets, {human(doc['bytes'])} bytes entered "
                f"{'the ' + doc['packets_table'] + ' table' if doc['packets_table'] else 'the rules'}")]
    out += [f"note: {n}" for n in doc["notes"]]
    for r in doc["drops"][:limit]:
        out.append(f"!! {r['target']} rising: {r['table']}/{r['chain']}:{r['index']} +{r['packets']} packets"
                   + (f" ({r['service']})" if r["service"] else ""))  # fmt: skip

    def rate(n: int) -> str:
        return f" ({n / secs:.1f}/s)" if secs else ""

    for c in doc["chains"][:limit]:
        svc = f"  [{c['service']}]" if c["service"] else ""
        pol = f"  policy {c['policy']} +{c['policy_packets']}" if c["policy_packets"] else ""
        out.append("")
        least = "" if c["exact"] else " (at least)"
        out.append(f"{c['table']}/{c['chain']}  +{human(c['packets'])} pkts{rate(c['packets'])} "
                   f"+{human(c['bytes'])} bytes entered{least}{svc}{pol}")  # fmt: skip
        for r in c["rules"][:limit]:
            tag = {"appeared": " (new)", "reset": " (zeroed, counted from 0)"}.get(r["status"], "")
            svc = f" [{r['service']}]" if r["service"] and r["service"] != c["service"] else ""
            out.append(f"  {'+' + human(r['packets']):>8} pkts {'+' + human(r['bytes']):>8} B  :{r['index']}{tag}"
                       f"{svc}  {r['rule']}")  # fmt: skip
        if len(c["rules"]) > limit:
            out.append(f"  … and {plural(len(c['rules']) - limit, 'more rule', 'more rules')}")
    if len(doc["chains"]) > limit:
        out.append(f"… and {plural(len(doc['chains']) - limit, 'more chain', 'more chains')} (--json lists all)")
    if doc["services"]:
        out.append("")
        out.append("By service (the packets that entered it):")
        for s in doc["services"][:limit]:
            out.append(f"  {s['service']:<50} +{human(s['packets'])} pkts{rate(s['packets'])} "
                       f"+{human(s['bytes'])} bytes entered ({plural(s['rules'], 'rule')} moved)")  # fmt: skip
    if doc["appeared"] and not doc["counters"]:
        out.append("")
        out.append(f"Appeared ({len(doc['appeared'])}):")
        out += [f"  {r['table']}/{r['chain']}:{r['index']}  {r['rule']}" for r in doc["appeared"][:limit]]
        if len(doc["appeared"]) > limit:
            out.append(f"  … and {plural(len(doc['appeared']) - limit, 'more rule', 'more rules')}")
    if doc["vanished"]:
        out.append("")
        out.append(f"Vanished ({len(doc['vanished'])}):")
        out += [f"  {r['table']}/{r['chain']}:{r['index']}  {r['rule']}" for r in doc["vanished"][:limit]]
        if len(doc["vanished"]) > limit:
            out.append(f"  … and {plural(len(doc['vanished']) - limit, 'more rule', 'more rules')}")
    return "\n".join(printable(line) for line in out)


def cmd_deltas(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.comments import ServiceLabels
    from kptui.engine.counters import diff_counters

    old_snap = load_snapshot(args, args.old, live_ok=False)
    new_snap = load_snapshot(args, args.new, live_ok=False)
    old, new = old_snap.ruleset, new_snap.ruleset
    seconds = args.seconds
    if seconds is None and old_snap.captured and new_snap.captured:
        a, b = old_snap.metadata.get("created_unix"), new_snap.metadata.get("created_unix")
        seconds = float(b) - float(a) if isinstance(a, int | float) and isinstance(b, int | float) else None
    diff = diff_counters(old, new, seconds or 0.0)
    doc = deltas_to_dict(diff, ServiceLabels(new), old.source or args.old, new.source or args.new)
    if args.filter:
        needle = args.filter.lower()

        def keep(r: dict[str, Any]) -> bool:
            return any(needle in str(r.get(k) or "").lower() for k in ("chain", "rule", "service"))

        for c in doc["chains"]:
            c["rules"] = [r for r in c["rules"] if keep(r)]
        doc["chains"] = [c for c in doc["chains"] if c["rules"] or keep(c)]
        for key in ("appeared", "vanished", "drops"):
            doc[key] = [r for r in doc[key] if keep(r)]
        doc["services"] = [s for s in doc["services"] if needle in s["service"].lower()]
    if args.json:
        emit_json(doc, out)
    else:
        print_warnings((*old.warnings, *new.warnings), err)
        print_snapshot_warnings(old_snap, err)
        print_snapshot_warnings(new_snap, err)
        print(deltas_text(doc, limit=args.limit), file=out)
    return 0


def add_deltas_command(sub: Any) -> None:
    p = sub.add_parser("deltas", help="which rules' counters moved between two saved dumps (iptables-save -c)",
                       description="Compare the counters of two dumps (or bundles) of the same node: the rules "
                       "that moved and by how much, grouped by chain and by service; rules that appeared or "
                       "vanished in between. Rules are matched by table, chain and text, not position.")  # fmt: skip
    p.add_argument("old", metavar="OLD", help="the earlier dump or bundle")
    p.add_argument("new", metavar="NEW", help="the later dump or bundle")
    p.add_argument("--seconds", type=float, metavar="S",
                   help="time between the two (default: from the bundles' capture times; rates need it)")
    p.add_argument("--filter", metavar="TEXT", help="only rules/chains whose name, text or service contains TEXT")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="chains and rules per chain shown (text)")
    p.add_argument("--json", action="store_true", help="print JSON (stable; see docs/json.md)")
    add_input_options(p)
    p.set_defaults(handler=cmd_deltas)
