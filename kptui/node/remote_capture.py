"""Capture nodes afar: :func:`capture_node` reads one node through a :class:`~kptui.live.remote.RemoteNode`
(the same commands as a local capture, :func:`kptui.node.collect.collect`) and :func:`capture_all` reads many,
N at a time, each within its own time limit.

Cleanup is the point of the structure: a node is opened, read and closed in one worker thread, the close
(deleting the debug pod) in a ``finally``; the calling thread only waits. On a ctrl-c (KeyboardInterrupt in
the calling thread) every node is cancelled: running commands are killed, a debug pod being created is let
finish so its name is known, nodes not started never start, and the calling thread waits for every close
before it re-raises. Further ctrl-c's while it waits are reported, not obeyed (the pods must go).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from kptui.live.remote import KubectlNode, RemoteError, RemoteNode

from .collect import collect
from .parts import Collection

__all__ = ["CaptureRun", "NodeCapture", "capture_all", "capture_node"]

NODE_TIMEOUT = 300.0  # seconds a node may take, from the creation of its pod to the last command


@dataclass
class NodeCapture:
    """What became of one node: its collection (None when it failed), why it failed, how long it took, and
    whether its debug pod (if any) was deleted."""

    name: str
    collection: Collection | None = None
    error: str | None = None
    seconds: float = 0.0
    pod: str | None = None
    cleanup_error: str | None = None  # the debug pod could not be deleted: the command to delete it by hand
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.collection is not None and self.error is None


def _rules_error(col: Collection) -> str | None:
    rules = [a for a in col.artifacts if a.kind == "rules"]
    nft = [a for a in col.artifacts if a.kind == "nft-ruleset" and a.ok]
    if any(a.ok for a in rules) or nft:
        return None
    why = "; ".join(f"{' '.join(a.command)}: {a.error or a.stderr.strip()[-200:] or f'exit status {a.status}'}"
                    for a in rules[:2])  # fmt: skip
    return f"no rules could be read ({why})"


def capture_node(node: RemoteNode, *, timeout: float = NODE_TIMEOUT, conntrack: bool = True) -> NodeCapture:
    """Open ``node``, read everything a capture holds, close it (always). Never raises for what the node does:
    a failure is :attr:`NodeCapture.error`."""
    start = time.monotonic()
    node.deadline = start + timeout
    out = NodeCapture(node.name)
    col: Collection | None = None
    try:
        node.open()
        col = collect(access=node, families=("ipv4", "ipv6"), conntrack=conntrack, extras=True,
                      source=f"node {node.name} ({node.transport})")  # fmt: skip
    except RemoteError as exc:
        out.error = str(exc)
    finally:
        node.close()
    if isinstance(node, KubectlNode):
        out.pod, out.cleanup_error = node.pod, node.delete_error
    out.seconds = time.monotonic() - start
    if node.spawner.cancelled and out.error is None:
        out.error = "interrupted"
    if col is not None and out.error is None:
        facts = {**col.facts, "node_name": node.name, "remote": node.describe()}
        out.collection = Collection(col.artifacts, facts, origin="live", source=col.source)
        out.error = _rules_error(col)
    out.facts = node.describe()
    return out


@dataclass
class CaptureRun:
    """The state of :func:`capture_all`, for a progress display: totals, and which nodes are running."""

    total: int
    done: list[NodeCapture] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.done if not c.ok)


def capture_all(nodes: Sequence[RemoteNode], *, parallel: int = 4, timeout: float = NODE_TIMEOUT,
                conntrack: bool = True, progress: Callable[[CaptureRun], None] | None = None,
                on_done: Callable[[NodeCapture], None] | None = None,
                on_interrupt: Callable[[CaptureRun, int], None] | None = None) -> CaptureRun:  # fmt: skip
    """Capture every node, ``parallel`` at a time. From this thread: ``on_done`` for each node as it finishes
    (in that order), ``progress`` a few times a second. On KeyboardInterrupt: cancel all, wait for their cleanup
    (``on_interrupt`` is told of each further ctrl-c), hand every finished node to ``on_done``, then raise
    KeyboardInterrupt; :attr:`CaptureRun.done` holds what finished."""
    run = CaptureRun(len(nodes))
    handed = 0

    def hand_over() -> None:
        nonlocal handed
        with run.lock:
            fresh = run.done[handed:]
            handed = len(run.done)
        for c in fresh:
            if on_done is not None:
                on_done(c)

    def work(node: RemoteNode) -> NodeCapture:
        with run.lock:
            run.running.append(node.name)
        try:
            result = capture_node(node, timeout=timeout, conntrack=conntrack)
        finally:
            with run.lock:
                run.running.remove(node.name)
        with run.lock:
            run.done.append(result)
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="kptui-capture")
    futures: list[Future[NodeCapture]] = [pool.submit(work, n) for n in nodes]
    try:
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            hand_over()
            if progress is not None:
                progress(run)
    except KeyboardInterrupt:
        run.interrupted = True
        for f in futures:
            f.cancel()
        for n in nodes:
            n.cancel()
        presses = 0
        while True:
            try:
                wait([f for f in futures if not f.cancelled()])
                break
            except KeyboardInterrupt:
                presses += 1
                if on_interrupt is not None:
                    on_interrupt(run, presses)
        pool.shutdown(wait=True)
        hand_over()
        raise
    pool.shutdown(wait=True)
    hand_over()
    for f in futures:  # a bug in a worker is a bug: let it show
        f.result()
    return run
