"""A kernel trace log as the explorer offers it: the packets' walks a user can pick, and the one it opens on.

:func:`kernel_walks` parses the text of an ``xtables-monitor --trace`` / ``nft monitor trace`` capture
(:func:`~kptui.engine.kernel_trace.parse_kernel_trace`), joins each first packet's walk with the parts that carry
other trace ids (:func:`~kptui.engine.kernel_trace.first_packet`: the ``lo`` half of a packet the node sent to
itself) and picks the first packet of the first connection. A log with nothing to replay raises ValueError naming
the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import printable
from .kernel_trace import KernelTrace, KernelTraceLog, first_packet, parse_kernel_trace

__all__ = ["KernelWalks", "kernel_walks", "walk_label"]


@dataclass(frozen=True)
class KernelWalks:
    """The walks of one log, in log order; ``default`` is the one to open on."""

    name: str
    log: KernelTraceLog
    walks: tuple[KernelTrace, ...]
    default: int

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.log.warnings


def _joined(log: KernelTraceLog, i: int, t: KernelTrace) -> KernelTrace:
    f = t.first
    if f is None or f.sport is None or not f.is_first:
        return t
    joined = first_packet(log.traces[i:], f.proto or "udp", f.sport, dport=f.dport, src=f.src, dst=f.dst)
    return joined if joined is not None and joined.ids[0] == t.id else t


def kernel_walks(text: str, name: str) -> KernelWalks:
    """The walks in ``text`` (the log read from ``name``). ValueError ``name: line N: …`` when it holds no trace
    lines, or no walk with a packet line to replay."""
    if not text.strip():
        raise ValueError(f"{name}: the kernel trace log is empty (capture one with the commands of "
                         "kptui trace-commands)")  # fmt: skip
    log = parse_kernel_trace(text)
    if log.format is None or not log.traces:
        where = log.warnings[0] if log.warnings else "line 1: no trace lines"
        raise ValueError(f"{name}: {printable(where)} -- not an xtables-monitor --trace or nft monitor trace log")
    walks: list[KernelTrace] = []
    taken: set[int] = set()  # first lines of traversals already joined onto an earlier walk
    for i, t in enumerate(log.traces):
        if t.line in taken or not t.events:
            continue
        w = _joined(log, i, t)
        taken.update(u.line for u in log.traces[i + 1:] if u.events and u.events[0] in w.events)
        walks.append(w)
    usable = [i for i, w in enumerate(walks) if w.first is not None and w.first.src and w.first.dst]
    if not usable:
        line = log.traces[0].line
        raise ValueError(f"{name}: line {line}: no traversal with a PACKET line (source and destination): "
                         "nothing to replay")  # fmt: skip
    default = next((i for i in usable if (f := walks[i].first) is not None and f.is_first), usable[0])
    return KernelWalks(name, log, tuple(walks), default)


def walk_label(walks: KernelWalks, index: int) -> str:
    """``3. line 41: 10.244.1.100:43000 → 10.96.10.20:80 tcp SYN · ACCEPT (forward)``"""
    w = walks.walks[index]
    f = w.first
    if f is None:
        what = "no packet line"
    else:
        flags = " ".join(sorted(f.flags))
        what = f"{f.src}:{f.sport} → {f.dst}:{f.dport} {f.proto or '?'}" + (f" {flags}" if flags else "")
    end = w.verdict + (f" ({w.delivery})" if w.delivery else "")
    return printable(f"{index + 1}. line {w.line}: {what} · {end}")
