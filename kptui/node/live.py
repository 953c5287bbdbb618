"""Reading the live rules again and again (``kptui top``, the explorer's ``--watch``): one :class:`Reading` per
call of a :class:`LiveReader`; the first through :func:`kptui.node.collect.load_live` (which picks the backend
and reads the node context), then only that backend's save command."""

from __future__ import annotations

import time
from typing import Any

from kptui.engine import ParseError, parse_ruleset_bytes
from kptui.engine.packet import NodeContext
from kptui.live import runner
from kptui.top import ReadFailed, Reading

from .collect import SAVE_TIMEOUT, load_live, tool
from .errors import LiveError

__all__ = ["LiveReader"]


class LiveReader:
    """One read of the live rules per call (raises :class:`kptui.top.ReadFailed` with a message)."""

    def __init__(self, netns: str | None, family: str, backend: str | None) -> None:
        self.netns, self.family, self.backend = netns, family, backend
        self.source = f"live (netns {netns})" if netns else "live"
        self.warnings: tuple[str, ...] = ()
        # the first read's node context and metadata (not its snapshot: that would pin the first ruleset)
        self.node: NodeContext | None = None
        self.metadata: dict[str, Any] = {}

    def __call__(self) -> Reading:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if self.backend is None:
            try:
                snap = load_live(netns=self.netns, family=self.family)
                ruleset = snap.ruleset
                self.backend, self.warnings = snap.backend, snap.warnings
                self.node, self.metadata = snap.node, dict(snap.metadata)
            except LiveError as exc:
                raise ReadFailed(str(exc)) from None
            except ParseError as exc:
                raise ReadFailed(exc.diagnostic.format(quote=False)) from None
            cmds = self.metadata.get("commands", ())
            child = sum(c.get("cpu_seconds") or 0.0 for c in cmds)
            save = next((c["seconds"] for c in cmds if c["command"].startswith(tool(self.family, snap.backend or ""))),
                        0.0)  # fmt: skip
            wall = time.perf_counter() - wall0
            return Reading.of(ruleset, wall, time.process_time() - cpu0 + child, self.source,
                              at=time.monotonic() - wall + save / 2)  # fmt: skip
        r = runner.run_readonly([tool(self.family, self.backend), "-c"], netns=self.netns, timeout=SAVE_TIMEOUT)
        # the counters were read at some moment of the save: its middle is the best estimate for the rates
        sampled = time.monotonic() - r.seconds / 2
        if not r.ok:
            raise ReadFailed(r.describe_failure())
        data = r.stdout
        tables = data.count(b"\n*") + data.startswith(b"*")
        if data.count(b"\nCOMMIT\n") + data.startswith(b"COMMIT\n") < tables:
            raise ReadFailed(f"{r.display}: incomplete output (a table without COMMIT)")
        try:
            parsed = parse_ruleset_bytes(data, source=f"{self.source}: {r.display}")
        except ParseError as exc:
            raise ReadFailed(exc.diagnostic.format(quote=False)) from None
        reading = Reading.of(parsed, time.perf_counter() - wall0, time.process_time() - cpu0 + r.cpu_seconds,
                             self.source, at=sampled)  # fmt: skip
        del parsed
        return reading
