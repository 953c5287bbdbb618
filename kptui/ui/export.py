"""A trace as Markdown or JSON for saving (``ctrl+s``), and the one place in the UI that writes a file.

JSON is the stable ``kptui.trace/1`` document (:func:`kptui.engine.trace_report.trace_to_dict`) with what
the trace rests on added: ``dump`` (the rules' source), ``origin`` (where they were read: a live node, a
capture bundle) and ``node`` (the node context: addresses, pod CIDRs, interfaces, …). Markdown is for people:
the same, then per path its summary, assumptions and matched hops as a table, and the text of the rules those
hops matched in a code block (each hop once: the table has the rest). Dump text is made printable and
escaped for Markdown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from kptui.engine.kube.explain_common import hostport
from kptui.engine.packet import NodeContext
from kptui.engine.trace_model import PacketState, Trace
from kptui.engine.trace_report import hop_place, mark_text, path_summary, trace_to_dict
from kptui.fmt import printable

from .packet_state import verdict_text

__all__ = ["NO_NODE_ADDRESS", "Exists", "Writer", "format_for", "no_writer", "node_to_dict", "packet_after",
           "saved_message", "trace_json", "trace_markdown"]


class Writer(Protocol):
    """Writes ``text`` to ``path``; True when that replaced a file. A file already at ``path`` is replaced
    only with ``replace=True``: without it the writer raises FileExistsError and writes nothing, so the save
    dialog can ask first. Any other failure is an OSError whose ``strerror`` says what is wrong (a directory, a
    directory that does not exist). :func:`kptui.cli.explorer.write_text` is the real one."""

    def __call__(self, path: str, text: str, /, *, replace: bool = False) -> bool: ...


@dataclass(frozen=True)
class Exists:
    """What saving to ``path`` gives when a file is there and replacing was not asked for: nothing written."""

    path: str


def saved_message(path: str, fmt: str, *, replaced: bool) -> str:
    """The notification after a save: "Replaced …" when a file was there (the user confirmed it)."""
    what = "JSON" if fmt == "json" else "Markdown"
    if replaced:
        return f"Replaced {printable(path)} with the trace as {what}"
    return f"Saved the trace as {what} to {printable(path)}"


def format_for(path: str) -> str:
    return "json" if path.lower().endswith(".json") else "markdown"


NO_NODE_ADDRESS = ("none given: matches on this node's addresses (addrtype LOCAL, NodePorts, MASQUERADE's "
                   "new source) rest on the assumptions each path lists")  # fmt: skip


def node_to_dict(node: NodeContext) -> dict[str, Any]:
    """The node context a trace used, as JSON (its routes as [destination, device] pairs)."""
    return {"addresses": list(node.addresses), "pod_cidrs": list(node.pod_cidrs),
            "interfaces": {name: list(cidrs) for name, cidrs in node.interfaces.items()}, "uplink": node.uplink,
            "pod_iface": node.pod_iface, "recent": sorted(node.recent), "affinity": node.affinity,
            "ipsets": None if node.ipsets is None else {k: list(v) for k, v in node.ipsets.items()},
            "routes": None if node.routes is None else [list(r) for r in node.routes],
            "sysctls": dict(node.sysctls)}  # fmt: skip


def trace_json(trace: Trace, *, source: str | None = None, origin: str | None = None) -> str:
    """``kptui.trace/1`` with ``dump`` (``source``), ``origin`` and ``node`` added."""
    doc = {**trace_to_dict(trace), "dump": source, "origin": origin, "node": node_to_dict(trace.node)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _plain(text: str) -> str:
    """Markdown table cell text: printable, pipes and backslashes escaped, no backticks."""
    return printable(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def _cell(text: str) -> str:
    """A Markdown table cell in a code span."""
    clean = _plain(text)
    return f"`{clean}`" if clean else ""


def packet_after(state: PacketState) -> str:
    """``10.0.0.1:40000 → [fd00::5]:8080, NEW, mark 0x4000``: both ends with their ports (an IPv6 address in
    brackets, so its port cannot be read as part of it), the conntrack state and the mark."""
    return (f"{hostport(state.src, state.sport)} → {hostport(state.dst, state.dport)}, {state.ctstate}, "
            f"mark {mark_text(state.mark)}")


def _fence(lines: list[str]) -> tuple[str, str]:
    """A code fence longer than any run of backticks inside (dump comments may hold some)."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return ticks + "text", ticks


def trace_markdown(trace: Trace, *, source: str | None = None, origin: str | None = None) -> str:
    p = trace.packet
    out = [f"# kptui trace: {printable(p.describe())}", ""]
    if source:
        out.append(f"- dump: {_cell(source)}")
    if origin:
        out.append(f"- rules from: {_plain(origin)}")
    out.append(f"- from: {p.origin}" + (f", in {_cell(p.in_iface)}" if p.in_iface else "")
               + f", mark {p.mark:#x}, conntrack {p.ctstate}")  # fmt: skip
    node = trace.node
    if node.addresses:
        out.append("- node addresses: " + ", ".join(_cell(a) for a in node.addresses))
    else:
        out.append(f"- node addresses: {NO_NODE_ADDRESS}")
    if node.pod_cidrs:
        out.append("- pod CIDRs: " + ", ".join(_cell(c) for c in node.pod_cidrs))
    for name, cidrs in node.interfaces.items():
        out.append(f"- interface {_cell(name)}: " + (", ".join(_cell(c) for c in cidrs) or "no address")
                   + (" (uplink)" if name == node.uplink else ""))  # fmt: skip
    out.append(f"- paths: {len(trace.paths)}")
    for note in trace.notes:
        out.append(f"- note: {printable(note)}")
    for n, path in enumerate(trace.paths, 1):
        out += ["", f"## Path {n}: {path.verdict}, p={float(path.probability):.4g}", "",
                printable(path_summary(trace, path))]  # fmt: skip
        bullets = [f"- assumes {printable(a)}" for a in path.assumptions]
        bullets += [f"- note: {printable(note)}" for note in path.notes]
        if bullets:
            out += ["", *bullets]
        out += ["", "| # | hook | table | chain | verdict | packet after |", "|---|---|---|---|---|---|"]
        rules: list[str] = []
        for i, hop in enumerate(path.matched_hops, 1):
            state = packet_after(hop.after) if hop.after is not None else ""
            out.append(f"| {i} | {_plain(hop.hook)} | {_plain(hop.table)} | {_cell(hop_place(hop))} "
                       f"| {_cell(verdict_text(hop))} | {_cell(state)} |")  # fmt: skip
            if hop.rule:  # the rule's text, numbered as in the table (policies have none)
                rules.append(f"{i:>3}  {printable(hop.rule)}")
        if rules:
            opening, closing = _fence(rules)
            out += ["", "The rules those hops matched:", "", opening, *rules, closing]
    return "\n".join(out) + "\n"


def no_writer(path: str, text: str, /, *, replace: bool = False) -> bool:
    """The writer of an app started without one (tests, benchmarks): saving says so instead of writing."""
    raise OSError(f"this kptui was started without a file writer (kptui.cli.explorer passes one); {path} not written")
