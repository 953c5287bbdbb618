"""Plain-text reports for the CLI. Everything taken from a dump goes through ``printable`` first, so a chain
name or comment can never smuggle terminal escapes into the user's terminal."""

from __future__ import annotations

from typing import Any

from kptui.fmt import human, plural, printable

__all__ = ["summary_text"]

_FAMILY = {"ipv4": "IPv4", "ipv6": "IPv6", None: "family unknown"}
_FORM = {"save": "iptables-save form", "spec": "iptables -S form"}


def summary_text(s: dict[str, Any], *, limit: int = 20) -> str:
    """Render a :func:`kptui.engine.summary.summarize` dict for a terminal."""
    out: list[str] = []
    head = [f"iptables {s['iptables_version']}" if s["iptables_version"] else "iptables version unknown"]
    head.append(f"{s['backend']} backend" if s["backend"] else "backend unknown")
    head += [_FAMILY.get(s["family"], str(s["family"])), _FORM.get(s["form"], s["form"])]
    head.append(plural(s["lines"], "line"))
    out.append(printable(s["source"] or "<stdin>"))
    out.append("  " + ", ".join(head))
    if s["legacy_tables_present"]:
        out.append("  note: iptables-legacy tables are present too (see iptables-legacy-save)")
    out.extend(_input_lines(s))
    if "kube" in s:
        out.extend(_kube_lines(s["kube"]))
    out.append("")
    out.append(f"  {'table':<10} {'chains':>7} {'user':>6} {'rules':>8} {'pkts':>6} {'bytes':>6}")
    for t in s["tables"]:
        name = printable(t["name"] or "(unknown)")
        out.append(
            f"  {name:<10} {t['chains']:>7} {t['user_chains']:>6} {t['rules']:>8}"
            f" {human(t['packets']):>6} {human(t['bytes']):>6}"
        )
    out.append(f"  total: {plural(s['total_rules'], 'rule')} in {plural(s['total_chains'], 'chain')}")
    if s["top_chains"]:
        out.append("")
        out.append("Chains with most rules:")
        width = max(len(_where(c)) for c in s["top_chains"])
        for c in s["top_chains"]:
            out.append(f"  {_where(c):<{width}}  {c['rules']:>7}")
    out.append("")
    dangling = s["dangling_jumps"]
    if dangling:
        out.append(f"Jumps to undeclared chains ({len(dangling)}):")
        for d in dangling[:limit]:
            out.append(f"  {_where(d)}:{d['index']} (line {d['line']}) -> {printable(d['target'])}")
        if len(dangling) > limit:
            out.append(f"  … and {len(dangling) - limit} more (--json lists all)")
    else:
        out.append("Jumps to undeclared chains: none")
    unref = s["unreferenced_chains"]
    if unref:
        shown = ", ".join(_where(c) for c in unref[:limit])
        more = f", … and {len(unref) - limit} more" if len(unref) > limit else ""
        out.append(f"Chains no rule jumps to ({len(unref)}): {shown}{more}")
    else:
        out.append("Chains no rule jumps to: none")
    if s["loops"]:
        out.append(f"Loops ({len(s['loops'])}):")
        for loop in s["loops"]:
            out.append("  " + " -> ".join(_where(c) for c in loop))
    return "\n".join(out)


def _input_lines(s: dict[str, Any]) -> list[str]:
    """What the paste held besides rules, what it lacks, and how -S listings were placed."""
    out: list[str] = []
    kinds: dict[str, list[int]] = {}
    for item in s.get("skipped", ()):
        kinds.setdefault(item["kind"], []).append(item["line"])
    names = {"prompt": "prompt or command line", "elision": "elision mark", "decoration": "pager or Markdown line"}
    for kind, lines in kinds.items():
        shown = ", ".join(map(str, lines[:8])) + (", …" if len(lines) > 8 else "")
        out.append(f"  skipped {plural(len(lines), names.get(kind, kind))} (line{'s' if len(lines) > 1 else ''} "
                   f"{shown})")  # fmt: skip
    for why in s.get("rules_missing", ()):
        out.append(f"  RULES MISSING: {printable(why)}: answers resting on this dump may miss rules")
    for t in s.get("inferred_tables", ()):
        out.append(f"  table {t['table']} inferred: {printable(t['reason'])}")
    unplaced = s.get("unplaced_chains", ())
    if unplaced:
        names_ = ", ".join(printable(c) for c in unplaced[:8]) + (", …" if len(unplaced) > 8 else "")
        out.append(f"  table unknown for {plural(len(unplaced), 'chain')} ({names_}): a trace needs the whole "
                   "iptables-save output")  # fmt: skip
    for o in s.get("other_families", ()):
        out.append(f"  this paste also holds {_FAMILY.get(o['family'], o['family'])} rules "
                   f"({plural(o['total_rules'], 'rule')}; -{str(o['family'])[-1]} reads them)")  # fmt: skip
    return out


def _kube_lines(k: dict[str, Any]) -> list[str]:
    """The ``kube`` section: which kube-proxy wrote the dump, and its node settings."""
    if not k["kube_proxy"]:
        return ["  kube-proxy: none (no KUBE-SERVICES chain)"]
    parts = [f"{k['mode']} mode"]
    if k["era"]:
        parts.append(f"layout {k['era']}")
    if k["local_detector"]:
        values = f" {', '.join(k['local_detector_values'])}" if k["local_detector_values"] else ""
        parts.append(f"local traffic: {k['local_detector']}{values}")
    if k["localhost_nodeports"] is not None:
        parts.append(f"NodePorts on localhost: {'yes' if k['localhost_nodeports'] else 'no'}")
    if k["nodeport_addresses"] is not None:
        parts.append(f"NodePort addresses: {', '.join(k['nodeport_addresses'])}")
    if k["ipvs_leftovers"]:
        parts.append("IPVS leftovers")
    counts = k.get("chains") or {}
    if counts:
        parts.append(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    lines = [printable("  kube-proxy: " + "; ".join(parts))]
    lines += [printable(f"    {e}") for e in k["evidence"]]
    return lines


def _where(d: dict[str, Any]) -> str:
    table = d.get("table")
    return printable(f"{table}/{d['chain']}" if table else d["chain"])
