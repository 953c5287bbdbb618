"""The packet as one hop leaves it, set against the packet it arrived as: what this hop changed stands out.

Mark bits are named (0x4000 masq, 0x8000 drop), rewrites show ``old → new``, the connection's virtual
DNAT/SNAT states are part of the conntrack state, and the hop's counter goes up by one when the rule matched.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.style import Style
from rich.text import Text

from kptui.engine.trace_model import Hop, PacketState, Trace, TracePath
from kptui.engine.trace_report import hop_place, mark_text
from kptui.fmt import human, printable

from .hop_list import HOOKS

__all__ = ["STATE_STYLES", "state_text"]

STATE_STYLES = ("label", "changed", "verdict", "miss", "heading")


def _hostport(addr: str, port: int | None) -> str:
    host = f"[{addr}]" if ":" in addr else addr
    return host if port is None else f"{host}:{port}"


def _ct(s: PacketState) -> str:
    return s.ctstate + ("+DNAT" if s.dnat else "") + ("+SNAT" if s.snat else "")


def _iface(name: str | None) -> str:
    """An interface: ``-`` known to be none (a packet the node sends has no input interface), ``?`` unknown."""
    return "?" if name is None else name or "-"


def _fields(s: PacketState) -> dict[str, str]:
    return {
        "src": _hostport(s.src, s.sport),
        "dst": _hostport(s.dst, s.dport),
        "mark": mark_text(s.mark),
        "ctstate": _ct(s),
        "iface": f"in {_iface(s.in_iface)} · out {_iface(s.out_iface)}",
    }


def verdict_text(hop: Hop) -> str:
    if hop.kind == "policy":
        return f"policy {hop.verdict}"
    if not hop.matched:
        return f"no match: {hop.failed or 'a match failed'}"
    verdict = hop.verdict or ""
    if verdict in ("JUMP", "GOTO") and hop.target:
        return f"{verdict} {hop.target}"
    if hop.target and hop.target != verdict and verdict == "CONTINUE":
        return f"{hop.target} (continue)"
    return verdict


def state_text(trace: Trace, path: TracePath, position: int, total: int, hop: Hop,
               styles: Mapping[str, Style]) -> Text:  # fmt: skip
    """The state panel for ``hop`` (the ``position``-th of ``total`` visible hops): where, the verdict, the
    fields this hop changed, its counter and note first (so a short terminal shows them), then the rest."""
    t = Text(end="")
    t.append(f"{position + 1}/{total} ", styles["label"])
    t.append(printable(f"{HOOKS.get(hop.hook, hop.hook)} {hop.table} {hop_place(hop)}") + "\n", styles["heading"])
    t.append(printable(verdict_text(hop)) + "\n", styles["verdict"] if hop.matched or hop.kind == "policy"
             else styles["miss"])  # fmt: skip
    after = hop.after or hop.before
    before = hop.before or after
    old = new = {}
    if after is not None and before is not None:
        old, new = _fields(before), _fields(after)
    unchanged = [k for k in new if old[k] == new[k]]
    for name in (k for k in new if old[k] != new[k]):
        t.append(f"{name:<8}", styles["label"])
        t.append(printable(f"{old[name]} → {new[name]}") + "\n", styles["changed"])
    _counter(t, trace, hop, styles)
    if hop.note:
        t.append("note    ", styles["label"])
        t.append(printable(hop.note) + "\n")
    for name in unchanged:
        t.append(f"{name:<8}", styles["label"])
        t.append(printable(new[name]) + "\n")
    for a in path.assumptions:
        t.append("assumes ", styles["label"])
        t.append(printable(a) + "\n")
    if len(trace.scenarios) > 1:
        index = trace.paths.index(path)
        for n, sc in enumerate(trace.scenarios):
            if index in sc.paths:
                t.append("scenario", styles["label"])
                t.append(printable(f" {chr(ord('A') + n) if n < 26 else n + 1}: {sc.label} (its paths sum to 1)")
                         + "\n")  # fmt: skip
    return t


_XT_TABLES = frozenset(("raw", "mangle", "nat", "filter", "security"))


def _counter(t: Text, trace: Trace, hop: Hop, styles: Mapping[str, Style]) -> None:
    """The counter this hop increments, going up by one (a rule that did not match leaves it)."""
    t.append("counter ", styles["label"])
    if hop.counter is None:  # an nft rule (its table is none of iptables'): counted only with a counter statement
        t.append("not in the dump\n" if hop.table in _XT_TABLES else "none (an IPVS step)\n" if hop.table == "ipvs"
                 else "none (no counter statement in the listing)\n")  # fmt: skip
        return
    pk, by = hop.counter
    if hop.matched or hop.kind == "policy":
        t.append(f"{human(pk)} → ", styles["label"])
        t.append(f"{human(pk + 1)} pkts", styles["changed"])
        length = trace.packet.length
        t.append(f", {human(by)} → {human(by + length)} bytes\n" if length else f", {human(by)} bytes + this packet\n")
    else:
        t.append(f"{human(pk)} pkts (unchanged: no match)\n")
