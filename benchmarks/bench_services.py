#!/usr/bin/env python3
"""Service-index benchmark on the 220k-rule dump (no root needed; nothing touches the kernel).

Figures, measured in the same run:
- in-process: building the service index after parsing (median of ``--builds``; target ≤ 0.5 s);
- whole processes, run alternately so that machine noise hits both alike: ``kptui services DUMP --filter X``
  against ``kptui summary DUMP --json`` (target: services within 1.5× of summary), and, for information,
  ``kptui services DUMP --json`` (every service).

    python3 benchmarks/bench_services.py [--services 5000] [--endpoints 10] [--repeat 5] [--builds 5]
                                         [--no-comments] [--filter TEXT]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
import gen_dump
from bench_parse import run_measured, verdict

INDEX_TARGET_S, PROCESS_RATIO_TARGET = 0.5, 1.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per whole-process command")
    ap.add_argument("--builds", type=int, default=5, help="in-process index builds for the median")
    ap.add_argument("--no-comments", action="store_true", help="kube-proxy's large-cluster mode dump")
    ap.add_argument("--filter", default=None, help="the --filter text (default: the middle service's name)")
    args = ap.parse_args(argv)

    from kptui.engine import parse_ruleset_bytes
    from kptui.engine.kube import build_service_index

    with tempfile.TemporaryDirectory(prefix="kptui-bench-") as tmp:
        dump = Path(tmp) / "dump.rules"
        lines, size = gen_dump.write_dump(str(dump), args.services, args.endpoints,
                                          comments=not args.no_comments)  # fmt: skip
        needle = args.filter or f"svc-{args.services // 2}:"
        print(f"dump: {args.services} services × {args.endpoints} endpoints, {lines} lines, "
              f"{size / 1e6:.1f} MB{' (no SEP comments)' if args.no_comments else ''}; --filter {needle}")

        t0 = time.perf_counter()
        rs = parse_ruleset_bytes(dump.read_bytes())
        parse_s = time.perf_counter() - t0
        gc.freeze()  # as the CLI does after loading
        builds = []
        index = None
        for _ in range(args.builds):
            t0 = time.perf_counter()
            index = build_service_index(rs)
            builds.append(time.perf_counter() - t0)
        assert index is not None
        endpoints = sum(len(s.endpoints) for s in index)
        del index
        gc.collect()

        kptui = [sys.executable, "-m", "kptui"]
        commands = {
            "kptui summary --json": [*kptui, "summary", str(dump), "--json"],
            f"kptui services --filter {needle}": [*kptui, "services", str(dump), "--filter", needle],
            "kptui services --json": [*kptui, "services", str(dump), "--json"],
        }
        walls: dict[str, list[float]] = {label: [] for label in commands}
        for i in range(args.repeat + 1):  # round-robin; the first round warms the page cache and .pyc files
            for label, cmd in commands.items():
                r = run_measured(cmd, None, None, REPO)
                if r.rc != 0:
                    print(f"{label} failed (exit {r.rc})", file=sys.stderr)
                    return 1
                if i:
                    walls[label].append(r.wall)
                warm = " (warm-up)" if i == 0 else ""
                print(f"  {label:<36} run {i}{warm}: {r.wall:7.3f} s  {r.rss_mb:7.1f} MB", file=sys.stderr)

    med = {label: statistics.median(w) for label, w in walls.items()}
    summary_s = med["kptui summary --json"]
    filtered_s = med[f"kptui services --filter {needle}"]
    ratio = filtered_s / summary_s
    build_s = statistics.median(builds)
    w = 44
    print()
    print(f"{'parse (in-process)':<{w}}{parse_s:8.3f} s")
    label = f"service index (median of {len(builds)} builds)"
    print(f"{label:<{w}}{build_s:8.3f} s  (min {min(builds):.3f}; {endpoints} endpoints)  "
          f"target ≤ {INDEX_TARGET_S} s: {verdict(build_s <= INDEX_TARGET_S)}")
    for label in commands:
        print(f"{label + ' process':<{w}}{med[label]:8.3f} s  (min {min(walls[label]):.3f})")
    print(f"{'services --filter / summary':<{w}}{ratio:8.2f}×    target ≤ {PROCESS_RATIO_TARGET}×: "
          f"{verdict(ratio <= PROCESS_RATIO_TARGET)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
