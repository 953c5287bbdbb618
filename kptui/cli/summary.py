"""``kptui summary FILE|- [--json]`` (or ``--live``): what a dump holds, and for a bundle or the live node what
the snapshot holds besides (node context, host, every part with how it was read).

Everything taken from a dump goes through ``printable`` first, so a chain name or comment can never smuggle
terminal escapes into the user's terminal.
"""

from __future__ import annotations

import argparse
import gc
from typing import TYPE_CHECKING, Any, TextIO

from kptui.fmt import human, plural, printable

from .common import (
    UserError,
    add_source_options,
    emit_json,
    load_snapshot,
    print_snapshot_warnings,
    print_warnings,
)
from .progress import TerminalProgress

if TYPE_CHECKING:
    from kptui.node.snapshot import NodeSnapshot

__all__ = ["add_summary_command", "cmd_summary", "nft_summary_text", "snapshot_report", "snapshot_text",
           "summary_text"]


def cmd_summary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.engine.nft import nft_summary
    from kptui.engine.summary import summarize

    snap = load_snapshot(args, need_rules="any")  # FILE (a dump, an nft listing, a bundle), or the live node
    if not snap.has_rules:
        raise UserError(f"{snap.source}: holds no iptables rules and no nft ruleset")
    if snap.rules is not None:
        shown = TerminalProgress(err, snap.source)  # on a terminal: the lines parsed, as the parse goes
        try:
            ruleset = snap.parse_rules(shown)
        finally:
            shown.clear()
        gc.freeze()  # the rules live until the command ends: the collector need not walk their million objects
        summary = summarize(ruleset)
    else:  # an nft listing alone: the iptables keys are absent, not empty
        summary = {"schema": "kptui.summary/1", "source": snap.source, "form": "nft", "warnings": []}
    nft = snap.nft_ruleset
    if nft is not None:
        summary["nft"] = nft_summary(nft)
        summary["nft"]["kube"] = nft_kube_report(nft)
    if nft is not None or snap.rules is not None:
        summary["kube_modes"] = kube_modes_report(snap.ruleset if snap.rules is not None else None, nft,
                                                  snap.proxy_mode)  # fmt: skip
    if snap.captured:
        summary.update(snapshot_report(snap))
        summary["warnings"] += [{"line": None, "message": w} for w in snap.warnings]
    if args.json:
        emit_json(summary, out)
    else:
        if snap.rules is not None:
            print_warnings(snap.ruleset.warnings, err)
        if nft is not None:
            print_warnings(nft.warnings, err)
        print_snapshot_warnings(snap, err)
        text = [summary_text(summary)] if snap.rules is not None else []
        if nft is not None:
            text.append(nft_summary_text(summary["nft"]))
        text += _modes_lines(summary["kube_modes"])
        print("\n\n".join(text), file=out)
        if snap.captured:
            print("\n" + snapshot_text(snap), file=out)
    return 0


def nft_kube_report(nft: Any) -> dict[str, Any] | None:
    """``nft.kube``: kube-proxy's nftables layout (the ``kube`` keys, ``mode`` "nftables", plus ``tables``,
    ``dnat``, ``service_cidrs``); None without a kube-proxy table."""
    from kptui.engine.kube.era import layout_to_dict
    from kptui.engine.kube.nft_layout import kube_layout_of, kube_tables, nft_layout

    tables = kube_tables(nft)
    if not tables:
        return None
    out = layout_to_dict(kube_layout_of(nft))
    lays = [nft_layout(t) for t in tables]
    out.update({"tables": [f"{t.family} {t.name}" for t in tables], "dnat": lays[0].dnat,
                "service_cidrs": [c for lay in lays for c in lay.service_cidrs]})
    return out


def kube_modes_report(ruleset: Any, nft: Any, proxy_mode: str | None) -> dict[str, Any]:
    """``kube_modes``: the kube-proxy mode in use, the other mode's leftovers, a mixed node."""
    from kptui.engine.kube.nft_mode import kube_modes

    m = kube_modes(ruleset, nft, proxy_mode)
    return {"mode": m.mode, "source": m.source, "mixed": m.mixed,
            "leftovers": [{"mode": lo.mode, "where": lo.where, "chains": lo.chains, "rules": lo.rules,
                           "services": lo.services, "hooked": lo.hooked, "live": lo.live} for lo in m.leftovers],
            "evidence": list(m.evidence)}  # fmt: skip


def _modes_lines(m: dict[str, Any]) -> list[str]:
    if not m["leftovers"]:
        return []
    out = [printable(f"kube-proxy mode: {m['mode'] or 'unknown'}" + (" — MIXED: both modes are live" if m["mixed"]
                                                                       else ""))]  # fmt: skip
    out += [printable(f"  {lo['mode']}-mode rules in {lo['where']}: {lo['chains']} chains, {lo['rules']} rules "
                      f"({'live' if lo['live'] else 'hooked in, no services' if lo['hooked'] else 'left over'})")
            for lo in m["leftovers"]]  # fmt: skip
    return ["\n".join(out)]


def nft_summary_text(d: dict[str, Any], *, limit: int = 12) -> str:
    """Render :func:`kptui.engine.nft.nft_summary`: per table its base chains (hook, type, priority, policy),
    chains, rules and sets/maps with their element counts."""
    tot = d["totals"]
    out = [printable(f"nft ruleset ({d['source'] or '<stdin>'}, {d['form']}, {plural(d['lines'], 'line')}): "
                     f"{plural(tot['tables'], 'table')}, {plural(tot['chains'], 'chain')}, "
                     f"{plural(tot['rules'], 'rule')}, {plural(tot['elements'], 'set element')}")]  # fmt: skip
    if d.get("kube"):
        out.extend(_kube_lines(d["kube"]))
    for t in d["tables"]:
        note = " (managed by iptables-nft: its rules are read from iptables-nft-save when given)" \
            if t["iptables_nft"] else ""
        comment = f' "{t["comment"]}"' if t["comment"] else ""
        out.append(printable(f"  table {t['family']} {t['name']}{comment}: {plural(len(t['chains']), 'chain')}, "
                             f"{plural(t['rules'], 'rule')}, {plural(len(t['sets']), 'set/map', 'sets/maps')}"
                             f"{note}"))  # fmt: skip
        for b in t["base_chains"]:
            prio = b["priority_text"] if b["priority_text"] == str(b["priority"]) else \
                f"{b['priority_text']} ({b['priority']})"
            dev = f" device {', '.join(b['devices'])}" if b["devices"] else ""
            out.append(printable(f"    {b['hook'] or '?':<11} {b['type'] or '?':<6} priority {prio:<16} "
                                 f"policy {b['policy'] or 'accept':<6} {plural(b['rules'], 'rule'):>9}  "
                                 f"{b['name']}{dev}"))  # fmt: skip
        sets = sorted(t["sets"], key=lambda x: -x["elements"])
        for st in sets[:limit]:
            key = " . ".join(st["key_type"])
            data = f" : {' . '.join(st['data_type'])}" if st["data_type"] else ""
            flags = f" [{', '.join(st['flags'])}]" if st["flags"] else ""
            out.append(printable(f"    {st['kind']:<4} {st['name']} ({key}{data}){flags}: "
                                 f"{plural(st['elements'], 'element')}"))  # fmt: skip
        if len(sets) > limit:
            out.append(f"    … and {len(sets) - limit} more sets/maps (--json lists all)")
    return "\n".join(out)


def add_summary_command(sub: Any) -> None:
    p = sub.add_parser(
        "summary",
        help="what a dump holds: backend, family, tables, chains, rules, dangling jumps",
        description="Summarise an iptables-save / ip6tables-save dump (or iptables -S output); for a capture "
        "bundle or the live node also the node context and every part the snapshot holds.",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="the dump or capture bundle to read; '-' reads "
                   "standard input")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON (stable; see docs/json.md)")
    add_source_options(p)
    p.set_defaults(handler=cmd_summary)


# -- the snapshot's part ----------------------------------------------------------------------------------
def snapshot_report(snap: NodeSnapshot) -> dict[str, Any]:
    """Keys added to ``kptui summary --json`` for a live node or a bundle: ``node``, ``capture``, ``parts``."""
    from kptui.node.parts_report import parts_report

    meta = {k: v for k, v in snap.metadata.items() if k != "node"}
    return {"node": dict(snap.metadata.get("node") or {}), "capture": meta, "parts": parts_report(snap)}


_SYSCTL_BRIEF = ("net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet", "net.ipv4.conf.all.rp_filter",
                 "net.ipv6.conf.all.forwarding", "net.bridge.bridge-nf-call-iptables", "net.ipv4.vs.conntrack")  # fmt: skip


def _parts_lines(snap: NodeSnapshot) -> list[str]:
    from kptui.node.parts_report import parts_report

    p = parts_report(snap)
    why = {m["part"]: m["why"] for m in p["missing"]}
    out = []
    nft = p["nft_ruleset"]
    if nft is not None:
        tables = nft["tables"]
        listed = f"{plural(len(tables), 'table')} ({', '.join(tables[:6])}{', …' if len(tables) > 6 else ''})" \
            if tables is not None else "not readable as a listing"
        out.append(f"  nft ruleset: {listed}, {nft['format']}")
    elif "nft-ruleset" in why:
        out.append(f"  nft ruleset: {why['nft-ruleset']}")
    pieces = []
    if p["ipsets"] is not None:
        pieces.append(f"ipsets: {plural(p['ipsets']['sets'] or 0, 'set')}")
    elif "ipset" in why:
        pieces.append(f"ipsets: {why['ipset']}")
    if p["ipvs"] is not None:
        pieces.append(f"IPVS: {plural(p['ipvs']['virtual_services'] or 0, 'virtual service')}")
    elif "ipvs" in why:
        pieces.append(f"IPVS: {why['ipvs']}")
    if p["ip_rules"]:
        pieces.append("policy rules: " + ", ".join(f"{n if n is not None else '?'} ({_FAMILY.get(f, f)})"
                                                   for f, n in p["ip_rules"].items()))  # fmt: skip
    if p["conntrack"]:
        pieces.append("conntrack: " + ", ".join(f"{plural(n, 'entry', 'entries')} ({_FAMILY.get(f, f)})"
                                                for f, n in p["conntrack"].items()))  # fmt: skip
    out += [f"  {piece}" for piece in pieces]
    sysctls = p["sysctls"]
    if sysctls is not None:
        brief = [f"{k.removeprefix('net.')} {sysctls[k]}" for k in _SYSCTL_BRIEF if k in sysctls]
        out.append(f"  sysctls ({len(sysctls)}): {', '.join(brief) or 'none of the usual ones'}")
    elif "sysctl" in why:
        out.append(f"  sysctls: {why['sysctl']}")
    return out


def snapshot_text(snap: NodeSnapshot) -> str:
    m = snap.metadata
    where = "live node" if snap.origin == "live" else "capture bundle"
    if m.get("netns"):
        where += f", network namespace {m['netns']}"
    out = [(f"Node ({where}; host {m.get('hostname')}, kernel {(m.get('kernel') or {}).get('release')}, "
           f"{'read' if snap.origin == 'live' else 'captured'} {m.get('created')}):")]  # fmt: skip
    for b, s in (m.get("backends") or {}).items():
        tool = f"{'ip6tables' if snap.family == 'ipv6' else 'iptables'}-{'nft' if b == 'nf_tables' else 'legacy'}"
        mark = " ← shown" if b == snap.backend else ""
        if s.get("read"):
            out.append(f"  {tool}: {s['rules']} rules" + (", kube-proxy chains" if s.get("kube") else "")
                       + f" (read in {s.get('seconds', 0):.2f} s){mark}")  # fmt: skip
        else:
            out.append(f"  {tool}: {s.get('error')}{mark}")
    mode = m.get("proxy_mode") or f"unknown ({m.get('proxy_mode_error') or 'not asked'})"
    out.append(f"  kube-proxy mode: {mode}")
    n = snap.node
    out.append(f"  addresses: {', '.join(n.addresses) or 'unknown'}")
    out.append(f"  uplink: {n.uplink or 'unknown'} · pod interface: {n.pod_iface or 'unknown'} · pod CIDRs: "
               f"{', '.join(n.pod_cidrs) or 'unknown'}")  # fmt: skip
    out.extend(f"  - {note}" for note in (snap.facts.notes if snap.facts is not None else ()))
    out.extend(_parts_lines(snap))
    return "\n".join(printable(line) for line in out)


# -- the dump's part ----------------------------------------------------------------------------------------
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
    if s.get("ipvs") is not None:
        out.extend(ipvs_lines(s["ipvs"]))
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
    if k.get("iptables_leftovers"):
        parts.append("iptables-mode leftovers")
    counts = k.get("chains") or {}
    if counts:
        parts.append(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    lines = [printable("  kube-proxy: " + "; ".join(parts))]
    lines += [printable(f"    {e}") for e in k["evidence"]]
    return lines


def ipvs_lines(v: dict[str, Any]) -> list[str]:
    """The ``ipvs`` section of a summary (an IPVS-mode node's table, ipsets, kube-ipvs0, vs.conntrack)."""
    def known(x: Any, what: str) -> str:
        return what.format(x) if x is not None else what.format("?") + " (not given)"

    out = [known(v["virtual_services"], "{} virtual services") + (
        f", {v['real_servers']} real servers ({v['draining_real_servers']} draining), "
        f"{v['without_real_servers']} without real servers; schedulers {', '.join(v['schedulers']) or '-'}"
        if v["virtual_services"] is not None else "")]  # fmt: skip
    out.append(known(v["ipsets"], "{} ipsets") + (f" ({v['ipset_members']} members)" if v["ipsets"] is not None
                                                   else ""))  # fmt: skip
    if v["kube_ipvs0"] is not None:
        out.append(f"kube-ipvs0: {len(v['kube_ipvs0'])} addresses")
    if v["vs_conntrack"] is not None:
        out.append(f"net.ipv4.vs.conntrack = {1 if v['vs_conntrack'] else 0}")
    return [printable(f"  IPVS: {line}") for line in out]


def _where(d: dict[str, Any]) -> str:
    table = d.get("table")
    return printable(f"{table}/{d['chain']}" if table else d["chain"])
