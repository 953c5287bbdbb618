"""Reading the live rules again and again (``kptui top``, the explorer's ``--watch``): one :class:`Reading` per
call of a :class:`LiveReader`; the first through :func:`kptui.node.collect.load_live` (which picks the backend,
reads the node context and, when the node has native nft tables — kube-proxy's nftables mode, firewalld —,
the nft ruleset), then only that backend's save command and, if the first read had one, ``nft -j list ruleset``.

A reading's ruleset is :func:`kptui.engine.nft.display.display_ruleset` of both: the iptables tables and the nft
tables side by side, so the counters of both are watched alike (kube-proxy's nftables mode writes no counters:
the deltas then say there are none)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kptui.engine import ParseError, parse_ruleset_bytes
from kptui.engine.nft.display import display_ruleset
from kptui.engine.packet import NodeContext
from kptui.live import runner
from kptui.top import ReadFailed, Reading

from .collect import NFT_RULESET, SAVE_TIMEOUT, load_live, tool
from .errors import LiveError, NodeDataError

if TYPE_CHECKING:
    from kptui.engine.model import Ruleset
    from kptui.engine.nft import NftRuleset

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
        self.proxy_mode: str | None = None
        self._first = backend is None  # a backend given: read only its rules, from the first read on
        self._iptables = True  # the first read found iptables rules to re-read
        self._nft = False  # … and an nft ruleset

    def __call__(self) -> Reading:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if self._first:
            try:
                snap = load_live(netns=self.netns, family=self.family, backend=self.backend)
                ruleset = snap.ruleset if snap.rules is not None else None
                nft = snap.nft_ruleset
            except LiveError as exc:
                raise ReadFailed(str(exc)) from None
            except NodeDataError as exc:
                raise ReadFailed(str(exc)) from None
            except ParseError as exc:
                raise ReadFailed(exc.diagnostic.format(quote=False)) from None
            self._first = False
            self.backend, self.warnings = snap.backend, snap.warnings
            self.node, self.metadata, self.proxy_mode = snap.node, dict(snap.metadata), snap.proxy_mode
            self._iptables, self._nft = ruleset is not None and snap.backend is not None, nft is not None
            cmds = self.metadata.get("commands", ())
            child = sum(c.get("cpu_seconds") or 0.0 for c in cmds)
            save = next((c["seconds"] for c in cmds if c["command"].startswith(tool(self.family, snap.backend or ""))),
                        0.0)  # fmt: skip
            wall = time.perf_counter() - wall0
            return Reading.of(display_ruleset(ruleset, nft), wall, time.process_time() - cpu0 + child, self.source,
                              at=time.monotonic() - wall + save / 2, nft=nft)  # fmt: skip
        parsed: Ruleset | None = None
        nft = None
        child = 0.0
        seconds: list[float] = []
        if self._iptables and self.backend is not None:
            parsed, cpu, secs = self._save(self.backend)
            child += cpu
            seconds.append(secs)
        if self._nft:
            nft, cpu, secs = self._listing()
            child += cpu
            seconds.append(secs)
        # the counters were read at some moment of the reads: the middle is the best estimate for the rates
        sampled = time.monotonic() - sum(seconds) / 2
        reading = Reading.of(display_ruleset(parsed, nft), time.perf_counter() - wall0,
                             time.process_time() - cpu0 + child, self.source, at=sampled, nft=nft)  # fmt: skip
        del parsed
        return reading

    def _save(self, backend: str) -> tuple[Ruleset, float, float]:
        r = runner.run_readonly([tool(self.family, backend), "-c"], netns=self.netns, timeout=SAVE_TIMEOUT)
        if not r.ok:
            raise ReadFailed(r.describe_failure())
        data = r.stdout
        tables = data.count(b"\n*") + data.startswith(b"*")
        if data.count(b"\nCOMMIT\n") + data.startswith(b"COMMIT\n") < tables:
            raise ReadFailed(f"{r.display}: incomplete output (a table without COMMIT)")
        try:
            return parse_ruleset_bytes(data, source=f"{self.source}: {r.display}"), r.cpu_seconds, r.seconds
        except ParseError as exc:
            raise ReadFailed(exc.diagnostic.format(quote=False)) from None

    def _listing(self) -> tuple[NftRuleset, float, float]:
        from kptui.engine.nft import parse_nft_bytes

        r = runner.run_readonly(list(NFT_RULESET), netns=self.netns, timeout=SAVE_TIMEOUT)
        if not r.ok:
            raise ReadFailed(r.describe_failure())
        try:
            return parse_nft_bytes(r.stdout, source=f"{self.source}: {r.display}"), r.cpu_seconds, r.seconds
        except ParseError as exc:
            raise ReadFailed(exc.diagnostic.format(quote=False)) from None
