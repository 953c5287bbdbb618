"""The network-namespace lab (:mod:`tools.netlab`) for native nftables rulesets.

:class:`NftLab` is a :class:`~tools.netlab.Lab` that also loads ``nft -f`` input into the node (instead of, or
besides, ``iptables-nft-restore``), lists it back (``nft list ruleset`` / ``nft -j list ruleset``), forgets the
elements a ruleset's dynamic sets learnt (kube-proxy's session-affinity sets) and traces with a table of its
own::

    table ip kptrace {
        chain pre { type filter hook prerouting priority raw - 10; policy accept; MATCH meta nftrace set 1 }
        chain out { type filter hook output priority raw - 10; policy accept; MATCH meta nftrace set 1 }
    }

(``ip6`` for IPv6) while ``nft monitor trace`` runs in the node. ``MATCH`` selects the first packets of a
source-port range (``tcp sport A-B tcp flags & (syn | ack) == syn``, or ``udp sport A-B``). The trace table is
deleted again by :meth:`NftLab.nft_trace_stop`, before anything lists the ruleset. Every command runs inside
a lab namespace, as in :mod:`tools.netlab`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from tools.netlab import Lab, LabError
from tools.netlab_util import wait_idle

__all__ = ["TRACE_TABLE", "NftLab", "trace_table"]

TRACE_TABLE = "kptrace"


def trace_table(family: int, proto: str, sports: tuple[int, int]) -> str:
    """``nft -f`` text of the trace table for ``proto`` packets from source ports ``sports`` (inclusive)."""
    fam = "ip6" if family == 6 else "ip"
    lo, hi = sports
    ports = f"{lo}-{hi}" if hi != lo else str(lo)
    match = (f"tcp sport {ports} tcp flags & (syn | ack) == syn" if proto == "tcp" else f"{proto} sport {ports}")
    chains = "\n".join(
        f"\tchain {name} {{\n\t\ttype filter hook {hook} priority raw - 10; policy accept;\n"
        f"\t\t{match} meta nftrace set 1\n\t}}" for name, hook in (("pre", "prerouting"), ("out", "output")))
    return f"table {fam} {TRACE_TABLE} {{\n{chains}\n}}\n"


class NftLab(Lab):
    """A :class:`~tools.netlab.Lab` whose node can hold native nft tables and be traced with ``nft monitor``."""

    def __init__(self, tag: str = "lab", *, node: str = "node") -> None:
        super().__init__(tag, node=node)
        self._nft_trace: tuple[subprocess.Popen[str], Path, IO[str], str] | None = None

    def close(self) -> None:
        if self._nft_trace is not None:
            proc, path, fh, _ = self._nft_trace
            self._nft_trace = None
            self.stop(proc)
            fh.close()
            path.unlink(missing_ok=True)
        super().close()

    # ---- rulesets --------------------------------------------------------------------------------------
    def load_nft(self, text: str, *, ns: str | None = None, check_only: bool = False) -> None:
        """``nft [-c] -f -`` in the node (or ``ns``); ``check_only`` validates without changing anything."""
        self.exec(ns or self.node, ["nft", *(["-c"] if check_only else []), "-f", "-"], input=text)

    def list_ruleset(self, *, ns: str | None = None, json_format: bool = False, table: str | None = None,
                     family: str = "ip") -> str:  # fmt: skip
        """``nft [-j] list ruleset`` (or ``list table FAMILY TABLE``) of the node, verbatim (stdout only: the
        "managed by iptables-nft" warnings go to stderr)."""
        what = ["list", "table", family, table] if table else ["list", "ruleset"]
        return self.exec(ns or self.node, ["nft", *(["-j"] if json_format else []), *what]).stdout

    def ruleset_json(self, *, ns: str | None = None) -> dict[str, Any]:
        """``nft -j list ruleset`` parsed."""
        data: dict[str, Any] = json.loads(self.list_ruleset(ns=ns, json_format=True))
        return data

    def dynamic_sets(self, *, ns: str | None = None) -> list[tuple[str, str, str]]:
        """(family, table, set) of every set with the ``dynamic`` flag (kube-proxy's affinity sets). Read from the
        text listing: ``nft -j`` 1.0.6 leaves ``dynamic`` out of a set's flags."""
        out = []
        fam = table = name = None
        for line in self.list_ruleset(ns=ns).splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "table":
                fam, table, name = words[1], words[2], None
            elif len(words) >= 2 and words[0] == "set":
                name = words[1]
            elif words[:1] in (["chain"], ["map"]):
                name = None
            if name and fam and table and words[:1] == ["flags"] and "dynamic" in " ".join(words[1:]).split(","):
                out.append((fam, table, name))
                name = None
        return out

    def flush_dynamic_sets(self, *, ns: str | None = None) -> list[str]:
        """Forget what the dynamic sets learnt (``nft flush set …``): every try is a first packet again, as
        :meth:`~tools.netlab.Lab.flush_recent` does for ``-m recent``. Returns the set names."""
        names = []
        for fam, table, name in self.dynamic_sets(ns=ns):
            self.exec(ns or self.node, ["nft", "flush", "set", fam, table, name])
            names.append(name)
        return names

    # ---- tracing -------------------------------------------------------------------------------------
    def nft_trace_start(self, proto: str, sports: tuple[int, int], *, family: int = 4) -> None:
        """Load the trace table (see the module docstring) and start ``nft monitor trace`` in the node."""
        if self._nft_trace is not None:
            raise LabError("an nft trace is already running")
        self.load_nft(trace_table(family, proto, sports))
        fd, name = tempfile.mkstemp(prefix=self.prefix, suffix=".nfttrace")
        os.close(fd)
        fh = open(name, "w")  # noqa: SIM115 - closed in nft_trace_stop/close
        proc = self.spawn(self.node, ["stdbuf", "-oL", "nft", "monitor", "trace"], stdout=fh,
                          stderr=subprocess.STDOUT)
        self._nft_trace = (proc, Path(name), fh, "ip6" if family == 6 else "ip")
        time.sleep(0.3)  # let the monitor subscribe before traffic starts

    def nft_trace_wait_idle(self, *, quiet: float = 0.3, timeout: float = 10.0) -> bool:
        """Wait until the monitor has written nothing for ``quiet`` seconds; False if ``timeout`` ran out."""
        if self._nft_trace is None:
            raise LabError("no nft trace is running")
        return wait_idle(self._nft_trace[1], self._nft_trace[2], quiet=quiet, timeout=timeout)

    def nft_trace_stop(self) -> str:
        """Stop the monitor, delete the trace table and return the captured text."""
        if self._nft_trace is None:
            raise LabError("no nft trace is running")
        proc, path, fh, fam = self._nft_trace
        self._nft_trace = None
        time.sleep(0.2)
        self.stop(proc)
        fh.close()
        self.exec(self.node, ["nft", "delete", "table", fam, TRACE_TABLE], check=False)
        text = path.read_text()
        path.unlink(missing_ok=True)
        return text
