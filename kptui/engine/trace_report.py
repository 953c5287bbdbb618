"""A trace as text (``kptui trace``, copy to clipboard) and as JSON-ready data (``--json``, export).

The JSON form is a stable interface documented in the README: keys are only added, never renamed.
"""

from __future__ import annotations

from typing import Any

from .assume import fact_phrase, fact_text
from .trace_model import DROP_MARK, MASQ_ADDRESS_UNKNOWN, MASQ_MARK, Hop, PacketState, Trace, TracePath

__all__ = ["SCHEMA", "entry_mark", "hop_line", "hop_place", "masquerade_address", "path_brief", "path_summary", "path_verdict", "scenario_lines", "scenario_names", "trace_text", "trace_to_dict"]

SCHEMA = "kptui.trace/1"


def _hostport(addr: str, port: int | None) -> str:
    host = f"[{addr}]" if ":" in addr else addr
    return f"{host}:{port}" if port is not None else addr


def entry_mark(path: TracePath) -> int:
    """The mark the packet carried into POSTROUTING (what KUBE-POSTROUTING tests), else its final mark."""
    for hop in path.hops:
        if hop.hook == "POSTROUTING" and hop.before is not None:
            return hop.before.mark
    return path.final.mark


def mark_text(mark: int) -> str:
    names = [n for bit, n in ((MASQ_MARK, "masq"), (DROP_MARK, "drop")) if mark & bit]
    return f"{mark:#x}" + (f" ({'+'.join(names)})" if names else "")


def _ended_at(path: TracePath) -> Hop | None:
    for hop in reversed(path.hops):
        if hop.matched or hop.kind == "policy":
            return hop
    return None


def path_summary(trace: Trace, path: TracePath) -> str:
    """``10.244.1.5:40000 → 10.96.0.10:53/udp ⇒ DNAT 10.244.2.7:53 (p=0.333) · mark 0x4000 · MASQUERADE · ACCEPT``"""
    head = trace.packet.describe() + (f" ⇒ DNAT {path.endpoint}" if path.endpoint else "")
    return " · ".join([head + f" (p={float(path.probability):.3g})", *_rewrites(path), path_verdict(path)])


def path_brief(path: TracePath) -> str:
    """One path for a narrow line, the verdict first (the packet is said once, elsewhere):
    ``ACCEPT (forwarded) · p=0.333 · ⇒ 10.244.2.7:53 · MASQUERADE as 10.0.0.2``; the
    probability of a path that assumed an undecidable match says so: ``p=1 if addrtype dst 10.96.0.10 true``."""
    chance = f"p={float(path.probability):.3g}"
    if path.facts:  # paths that differ only by an undecidable match look alike without it (p=1 each)
        chance += " if " + "; ".join(fact_phrase(*f) for f in path.facts)
    parts = [path_verdict(path), chance]
    if path.endpoint:
        parts.append(f"⇒ {path.endpoint}")
    return " · ".join(parts + _rewrites(path, brief=True))


_DELIVERY = {"local": " (delivered on the node)", "forward": " (forwarded)", "sent": " (sent out)"}


def path_verdict(path: TracePath) -> str:
    """``ACCEPT (forwarded)``, ``ACCEPT (delivered on the node)``, ``ACCEPT (sent out)`` (a packet the node
    sent left it), ``DROP at filter/KUBE-FIREWALL:1``."""
    if path.verdict == "ACCEPT":
        return "ACCEPT" + _DELIVERY.get(path.delivery or "", "")
    end = _ended_at(path)
    if end is not None and end.kind == "routing":
        return f"{path.verdict} at routing"
    where = f" at {end.table}/{end.chain}" + (f":{end.index}" if end and end.index else "") if end else ""
    return f"{path.verdict}{where}"


def _rewrites(path: TracePath, *, brief: bool = False) -> list[str]:
    """The mark the packet reached POSTROUTING with and its source rewrite, if any. ``brief`` (an 80-column
    line) leaves out a mark that is only the masquerade bit when the MASQUERADE it asked for is said next."""
    out = []
    f = path.final
    mark = entry_mark(path)
    if mark and not (brief and f.masquerade and mark == MASQ_MARK):
        out.append(f"mark {mark_text(mark)}")
    if f.masquerade:
        addr = masquerade_address(path)
        out.append(f"MASQUERADE as {addr}" if addr else "MASQUERADE (to an address not known)")
    elif f.snat:
        out.append(f"SNAT {_hostport(f.src, f.sport)}")
    return out


def masquerade_address(path: TracePath) -> str | None:
    """The source MASQUERADE gave the packet, or None: no masquerade, or to an address the trace does not know
    (the packet then kept its source in the simulation: reporting that as the new source would be wrong)."""
    if not path.final.masquerade:
        return None
    for hop in reversed(path.hops):
        if hop.matched and hop.verdict == "MASQUERADE":
            return None if MASQ_ADDRESS_UNKNOWN in (hop.note or "") else path.final.src
    return path.final.src


def hop_place(hop: Hop) -> str:
    """``KUBE-SERVICES:12``, ``INPUT policy``, or ``KUBE-SERVICES:?`` for a rule the dump does not hold (a
    kernel trace's hop located nowhere in the dump)."""
    if hop.kind == "policy":
        return f"{hop.chain} policy"
    if hop.kind == "routing":
        return "decision"
    return f"{hop.chain}:{hop.index if hop.index else '?'}"


def hop_line(hop: Hop) -> str:
    where = f"{hop.hook:<11} {hop.table:<8} {hop_place(hop)}"
    if hop.kind == "policy":
        return f"{where}  → {hop.verdict}"
    if not hop.matched:
        return f"{where}  ✗ {hop.failed or 'no match'}"
    verdict = hop.verdict or ""
    if verdict in ("JUMP", "GOTO") and hop.target:
        verdict += f" {hop.target}"
    changes = hop.changes
    delta = ", ".join(
        f"{k} {mark_text(a) if 'mark' in k else a} → {mark_text(b) if 'mark' in k else b}"
        for k, (a, b) in changes.items() if k not in ("in_iface", "out_iface", "dnat", "snat", "masquerade")
    )  # fmt: skip
    return f"{where}  → {verdict}" + (f"  [{delta}]" if delta else "")


def scenario_names(trace: Trace) -> dict[int, list[str]]:
    """Path index → the letters of the scenarios it belongs to (empty when there is only one scenario)."""
    out: dict[int, list[str]] = {}
    if len(trace.scenarios) > 1:
        for n, sc in enumerate(trace.scenarios):
            for i in sc.paths:
                out.setdefault(i, []).append(_letter(n))
    return out


def _letter(n: int) -> str:
    return chr(ord("A") + n) if n < 26 else f"S{n + 1}"


def scenario_lines(trace: Trace) -> list[str]:
    """The scenarios of a trace with several: what each assumes and which paths happen under it."""
    if len(trace.scenarios) < 2:
        return []
    out = [(f"{len(trace.scenarios)} scenarios: kptui cannot tell which is real (it was not told enough about "
            "the node); in each, the probabilities of its paths sum to 1:")]
    for n, sc in enumerate(trace.scenarios):
        out.append(f"  {_letter(n)}. {sc.label}: {_paths(sc.paths)}{_sum_note(sc)}")
    return out


def _paths(indexes: tuple[int, ...]) -> str:
    """``paths 1-4, 7``: 1-based, runs folded."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in runs)
    return f"path{'s' if len(indexes) > 1 else ''} {text}"


def _sum_note(sc: Any) -> str:
    out = ""
    if sc.alternatives:
        out = (f" (paths that assumed more are alternatives: for one choice of those assumptions, e.g. "
               f"{_paths(sc.example)}, the probabilities sum to 1)")
    if sc.probability != 1:
        out += f" (sum {float(sc.probability):.6g}: branching was cut short)"
    return out


def trace_text(trace: Trace, *, all_hops: bool = False) -> str:
    out: list[str] = []
    groups = scenario_names(trace)
    if groups:
        out += [*scenario_lines(trace), ""]
    for i, path in enumerate(trace.paths, 1):
        tag = f" (scenario {', '.join(groups[i - 1])})" if groups.get(i - 1) else ""
        out.append(f"path {i}{tag}: {path_summary(trace, path)}")
        for note in path.assumptions:
            out.append(f"  assumes: {note}")
        for note in path.notes:
            out.append(f"  note: {note}")
        hops = path.hops if all_hops else path.matched_hops
        for hop in hops:
            out.append(f"  {hop_line(hop)}")
            if hop.rule and hop.matched:
                out.append(f"      {hop.rule}")
            if hop.note and (hop.matched or all_hops):
                out.append(f"      ({hop.note})")
        out.append("")
    for note in trace.notes:
        out.append(f"note: {note}")
    return "\n".join(out).rstrip() + "\n"


def _state(s: PacketState) -> dict[str, Any]:
    return {"src": s.src, "dst": s.dst, "sport": s.sport, "dport": s.dport, "mark": f"{s.mark:#x}",
            "ctstate": s.ctstate + ("+DNAT" if s.dnat else "") + ("+SNAT" if s.snat else ""),
            "in_iface": s.in_iface, "out_iface": s.out_iface}  # fmt: skip


def _hop(h: Hop, with_states: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "hook": h.hook, "table": h.table, "chain": h.chain, "kind": h.kind, "index": h.index, "line": h.line,
        "rule": h.rule, "matched": h.matched, "verdict": h.verdict, "target": h.target, "failed": h.failed,
        "note": h.note, "counter": list(h.counter) if h.counter else None, "family": h.family,
        "handle": h.handle,
    }
    if with_states and h.after is not None and (h.matched or h.kind == "policy"):
        d["packet"] = _state(h.after)
    return d


def trace_to_dict(trace: Trace, *, all_hops: bool = True) -> dict[str, Any]:
    p = trace.packet
    groups = scenario_names(trace)
    return {
        "schema": SCHEMA,
        "packet": {"src": p.src, "dst": p.dst, "proto": p.proto, "sport": p.sport, "dport": p.dport,
                   "origin": p.origin, "in_iface": p.in_iface, "mark": f"{p.mark:#x}", "ctstate": p.ctstate},
        "paths": [
            {
                "probability": float(path.probability),
                "probability_exact": f"{path.probability.numerator}/{path.probability.denominator}",
                "verdict": path.verdict,
                "delivery": path.delivery,
                "endpoint": path.endpoint,
                "masquerade": path.masquerade,
                "masquerade_as": masquerade_address(path),
                "mark": f"{path.final.mark:#x}",
                "postrouting_mark": f"{entry_mark(path):#x}",
                "final": {"src": path.final.src, "dst": path.final.dst, "sport": path.final.sport,
                          "dport": path.final.dport},
                "summary": path_summary(trace, path),
                "assumptions": list(path.assumptions),
                "scenarios": groups.get(i, ["A"]),
                "notes": list(path.notes),
                "hops": [_hop(h, True) for h in (path.hops if all_hops else path.matched_hops)],
            }
            for i, path in enumerate(trace.paths)
        ],
        "scenarios": [
            {"id": _letter(n), "assumptions": [fact_text(*f) for f in sc.facts], "paths": [i + 1 for i in sc.paths],
             "example": [i + 1 for i in sc.example], "probability": float(sc.probability),
             "probability_exact": f"{sc.probability.numerator}/{sc.probability.denominator}"}
            for n, sc in enumerate(trace.scenarios)
        ],
        "notes": list(trace.notes),
    }
