#!/usr/bin/env python3
"""nft parse benchmark: kptui's nft front end (``parse_nft_bytes`` in a fresh interpreter) against ``nft -c -f``
checking the same listing, measured in the same run.

The listing is a kube-proxy nftables-mode node (benchmarks/gen_nft_dump.py: ``--services`` × ``--endpoints``,
what ``nft list ruleset`` prints; nft reads it back as input). The reference runs inside a throwaway network
namespace (root: ``ip netns``; otherwise ``unshare -rn``), never against the host's rules; ``nft -c`` checks the
ruleset with the kernel without committing it.

    sudo python3 benchmarks/bench_nft_parse.py [--services 5000] [--endpoints 10] [--repeat 3] [--input FILE]

Prints wall and CPU seconds and peak RSS of both, and the ratios (target: kptui wall / nft wall ≤ 1). Exit
status 0 when everything ran, 1 when something failed, 2 when the reference cannot run here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import gen_nft_dump  # sibling module: importable when run as a script

SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])
CHILD = """
import json, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from kptui.engine.nft import parse_nft_bytes
data = open(sys.argv[1], "rb").read()
t1 = time.perf_counter(); c1 = time.process_time()
rs = parse_nft_bytes(data, source=sys.argv[1])
t2 = time.perf_counter(); c2 = time.process_time()
print(json.dumps({"import_read": t1 - t0, "parse": t2 - t1, "parse_cpu": c2 - c1, "rules": rs.rule_count,
                  "chains": sum(len(t.chains) for t in rs.tables), "warnings": len(rs.warnings)}))
"""


@dataclass
class Run:
    wall: float
    cpu: float  # user + system of the child
    user: float
    rss_mb: float
    rc: int
    stdout: bytes
    stderr: bytes


def measured(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` and reap it with wait4(): its wall time, CPU time and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_utime, usage.ru_maxrss / 1024.0,
                   proc.returncode, out.read(), err.read())  # fmt: skip


def reference(listing: Path) -> Run | str:
    """``nft -c -f LISTING`` in a network namespace of its own; a reason string when it cannot run."""
    path = os.environ.get("PATH", "") + os.pathsep + SBIN
    nft = shutil.which("nft", path=path)
    if nft is None:
        return "nft is not installed"
    if os.geteuid() == 0:
        ns = f"kptbench-{os.getpid()}"
        ip = shutil.which("ip", path=path) or "ip"
        if subprocess.run([ip, "netns", "add", ns], capture_output=True, check=False).returncode != 0:
            return "cannot create a network namespace"
        try:
            return measured([ip, "netns", "exec", ns, nft, "-c", "-f", str(listing)])
        finally:
            subprocess.run([ip, "netns", "del", ns], capture_output=True, check=False)
    unshare = shutil.which("unshare", path=path)
    if unshare is None:
        return "not root and no unshare(1)"
    run = measured([unshare, "-rn", nft, "-c", "-f", str(listing)])
    if run.rc != 0:
        return f"not root, and nft -c in a user namespace failed: {run.stderr.decode(errors='replace').strip()}"
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="kptui runs (the reference runs once: it is slow)")
    ap.add_argument("--input", type=Path, help="a listing to use instead of generating one")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        listing = args.input or Path(tmp) / "nft-listing.txt"
        if args.input is None:
            with open(listing, "w") as fh:
                gen_nft_dump.write(fh, args.services, args.endpoints)
        size = listing.stat().st_size
        lines = listing.read_bytes().count(b"\n")
        print(f"listing: {lines} lines, {size / 1e6:.1f} MB"
              + ("" if args.input else f" ({args.services} services x {args.endpoints} endpoints)"))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        runs: list[Run] = []
        inner: list[dict[str, float]] = []
        for _ in range(max(1, args.repeat)):
            r = measured([sys.executable, "-c", CHILD, str(listing)], env=env)
            if r.rc != 0:
                print("kptui failed:", r.stderr.decode(errors="replace"), file=sys.stderr)
                return 1
            runs.append(r)
            inner.append(json.loads(r.stdout))
        med = statistics.median(r.wall for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        parse = statistics.median(i["parse"] for i in inner)
        first = inner[0]
        print(f"kptui parse_nft_bytes: wall {med:.2f} s (median of {len(runs)}; parse alone {parse:.2f} s, "
              f"import+read {statistics.median(i['import_read'] for i in inner):.2f} s), CPU {cpu:.2f} s, "
              f"peak RSS {max(r.rss_mb for r in runs):.0f} MB; {first['rules']:.0f} rules, {first['chains']:.0f} "
              f"chains, {first['warnings']:.0f} warnings")  # fmt: skip
        ref = reference(listing)
        if isinstance(ref, str):
            print(f"reference nft -c -f: SKIPPED ({ref})")
            return 2
        if ref.rc != 0:
            print("nft -c -f rejected the listing:", ref.stderr.decode(errors="replace")[:2000], file=sys.stderr)
            return 1
        print(f"reference nft -c -f: wall {ref.wall:.2f} s, CPU {ref.cpu:.2f} s (user {ref.user:.2f} s: nft's own "
              f"parsing; the rest is the kernel checking the ruleset), peak RSS {ref.rss_mb:.0f} MB")  # fmt: skip
        print(f"ratio kptui/nft: wall {med / ref.wall:.3f} (target <= 1), CPU {cpu / ref.cpu:.3f}, "
              f"kptui CPU / nft user CPU {cpu / ref.user:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
