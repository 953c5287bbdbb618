"""``kptui deltas OLD NEW``: the rules whose counters moved between two saved dumps (or bundles), and
``kptui trace-commands``: the commands that make the kernel trace one connection (printed, never run)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from kptui.engine.comments import ServiceLabels
    from kptui.engine.counters import CounterDiff, RuleDelta

__all__ = ["add_deltas_command", "add_trace_commands_command", "deltas_text", "deltas_to_dict"]

SCHEMA = "kptui.deltas/1"


def _rule(d: RuleDelta, labels: ServiceLabels) -> dict[str, Any]:
    k = d.key
    return {"table": k.table, "chain": k.chain, "index": d.index, "line": d.line, "occurrence": k.occurrence,
            "rule": k.text, "status": d.status, "target": d.target, "service": labels.rule(k.table, k.chain, k.text),
            "packets": d.packets, "bytes": d.bytes, "total_packets": d.total_packets, "total_bytes": d.total_bytes,
            "drops": d.drops}  # fmt: skip


def deltas_to_dict(diff: CounterDiff, labels: ServiceLabels, old: str, new: str) -> dict[str, Any]:
    """The stable JSON of ``kptui deltas`` (see the README)."""
    rules: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for d in (*diff.rules, *diff.appeared):
        rules.setdefault((d.key.table, d.key.chain), []).append(_rule(d, labels))
    chains = [{"table": c.table, "chain": c.chain, "service": labels.chain(c.table, c.chain), "packets": c.packets,
               "bytes": c.bytes, "exact": c.exact, "policy": c.policy, "policy_packets": c.policy_packets,
               "policy_bytes": c.policy_bytes, "rules": rules.get((c.table, c.chain), [])}
              for c in diff.chains]  # fmt: skip
    total = diff.total  # packets and services count what entered them, each packet once (kptui.engine.entries)
    return {
        "schema": SCHEMA, "old": old, "new": new, "seconds": diff.seconds or None, "counters": diff.counters,
        "compared": diff.compared, "packets": total.packets, "bytes": total.bytes, "packets_table": total.table,
        "packets_exact": total.exact, "chains": chains,
        "services": [s._asdict() for s in diff.services(labels)],
        "appeared": [_rule(d, labels) for d in diff.appeared], "vanished": [_rule(d, labels) for d in diff.vanished],
        "drops": [_rule(d, labels) for d in diff.drops], "notes": list(diff.notes),
    }  # fmt: skip


def deltas_text(doc: dict[str, Any], *, limit: int = 20) -> str:
    from kptui.fmt import human, plural, printable

    secs = doc["seconds"]
    over = f" over {secs:.1f} s" if secs else ""
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
            out.append(f"  … and {len(c['rules']) - limit} more rules")
    if len(doc["chains"]) > limit:
        out.append(f"… and {len(doc['chains']) - limit} more chains (--json lists all)")
    if doc["services"]:
        out.append("")
        out.append("By service (the packets that entered it):")
        for s in doc["services"][:limit]:
            out.append(f"  {s['service']:<50} +{human(s['packets'])} pkts{rate(s['packets'])} "
                       f"+{human(s['bytes'])} bytes entered ({plural(s['rules'], 'rule')} moved)")  # fmt: skip
    if doc["vanished"]:
        out.append("")
        out.append(f"Vanished ({len(doc['vanished'])}):")
        out += [f"  {r['table']}/{r['chain']}:{r['index']}  {r['rule']}" for r in doc["vanished"][:limit]]
    return "\n".join(printable(line) for line in out)


def cmd_deltas(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.cli import emit_json, print_warnings
    from kptui.engine.comments import ServiceLabels
    from kptui.engine.counters import diff_counters

    from .commands import load_path, print_snapshot_warnings

    old, old_snap = load_path(args.old)
    new, new_snap = load_path(args.new)
    seconds = args.seconds
    if seconds is None and old_snap is not None and new_snap is not None:
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
    p.add_argument("--json", action="store_true", help="print JSON (stable; see the README)")
    p.set_defaults(handler=cmd_deltas)


# -- kptui trace-commands ---------------------------------------------------------------------------------------
def cmd_trace_commands(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.cli import emit_json
    from kptui.engine.trace_commands import trace_commands

    from .runner import check_netns_name

    try:
        if args.netns:
            check_netns_name(args.netns)
        cmds = trace_commands(src=args.src, dst=args.dst, proto=args.proto, sport=args.sport, dport=args.dport,
                              origin=args.origin, backend=args.backend, netns=args.netns)  # fmt: skip
    except ValueError as exc:
        from .commands import _user_error

        raise _user_error(str(exc)) from None
    if args.json:
        emit_json({"schema": "kptui.trace-commands/1", **cmds.to_dict()}, out)
    else:
        out.write(cmds.text())
    return 0


def add_trace_commands_command(sub: Any, add_packet_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("trace-commands", help="print the commands that make the kernel trace a connection",
                       description="Print (never run) the commands to capture the kernel's own trace of a "
                       "connection: a raw-table TRACE rule for it, the monitor, and the command that removes the "
                       "rule again. Run them as root on the node.")  # fmt: skip
    add_packet_options(p)
    p.add_argument("--backend", choices=("nft", "legacy", "nftables"), default="nft",
                   help="iptables-nft (default), iptables-legacy, or native nftables (kube-proxy's nftables mode)")
    p.add_argument("--netns", metavar="NAME", help="prefix the commands with ip netns exec NAME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_trace_commands)
