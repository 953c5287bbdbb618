#!/usr/bin/env python3
"""Trace benchmark on the 220k-rule dump (no root needed; nothing touches the kernel).

Figures, measured in the same run:
- in-process: an all-paths trace to a service in the middle of KUBE-SERVICES — first trace (builds the
  chain prefilters) and the median of the following ones (target: median ≤ 10 ms);
- whole processes: ``kptui trace … --json`` against ``kptui summary … --json`` on the same file
  (target: trace within 1.5× of summary);
- nftables mode (issue 12): the same all-paths trace on the nft listing of the same number of services
  (benchmarks/gen_nft_dump.py), first and median (target: median ≤ 10 ms, and no slower than iptables mode's
  median measured above: nft mode dispatches through verdict maps).

    python3 benchmarks/bench_trace.py [--services 5000] [--endpoints 10] [--repeat 5] [--traces 50]
"""

from __future__ import annotations

import argparse
import re
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
import gen_nft_dump
from bench_parse import measure

MEDIAN_TARGET_MS, PROCESS_RATIO_TARGET = 10.0, 1.5


def middle_service(path: Path) -> tuple[str, int, str]:
    """(cluster IP, port, protocol) of the KUBE-SERVICES rule halfway down the chain."""
    rx = re.compile(r"-A KUBE-SERVICES -d (\S+)/32 -p (\w+) .* --dport (\d+) -j KUBE-SVC-")
    found = [m for line in path.read_text().splitlines() if (m := rx.search(line))]
    m = found[len(found) // 2]
    return m.group(1), int(m.group(3)), m.group(2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per whole-process command")
    ap.add_argument("--traces", type=int, default=50, help="in-process traces for the median")
    ap.add_argument("--no-nft", action="store_true", help="skip the nftables-mode trace")
    args = ap.parse_args(argv)

    from kptui.engine import parse_ruleset_bytes
    from kptui.engine.packet import NodeContext, Packet
    from kptui.engine.trace import trace

    with tempfile.TemporaryDirectory(prefix="kptui-bench-") as tmp:
        dump = Path(tmp) / "dump.rules"
        lines, size = gen_dump.write_dump(str(dump), args.services, args.endpoints)
        ip, port, proto = middle_service(dump)
        print(f"dump: {args.services} services × {args.endpoints} endpoints, {lines} lines, "
              f"{size / 1e6:.1f} MB; tracing pod 10.244.1.5 → {ip}:{port}/{proto}")  # fmt: skip

        t0 = time.perf_counter()
        rs = parse_ruleset_bytes(dump.read_bytes())
        parse_s = time.perf_counter() - t0
        packet = Packet("10.244.1.5", ip, proto, dport=port, origin="pod")
        node = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.1.0/24",))
        times = []
        result = None
        for _ in range(args.traces + 1):
            t0 = time.perf_counter()
            result = trace(rs, packet, node)
            times.append(time.perf_counter() - t0)
        assert result is not None
        first_ms, median_ms = times[0] * 1000, statistics.median(times[1:]) * 1000
        hops = sum(len(p.hops) for p in result.paths)

        py = sys.executable
        summary, failed = measure("kptui summary --json", [py, "-m", "kptui", "summary", str(dump), "--json"],
                                  None, args.repeat, cwd=REPO)  # fmt: skip
        tr_cmd = [py, "-m", "kptui", "trace", str(dump), "--src", "10.244.1.5", "--dst", ip, "--dport",
                  str(port), "--proto", proto, "--node-ip", "10.0.0.2", "--json"]  # fmt: skip
        tracem, failed2 = measure("kptui trace --json", tr_cmd, None, args.repeat, cwd=REPO)
        if failed or failed2:
            print("a kptui command failed", file=sys.stderr)
            return 1

    nft = None if args.no_nft else nft_trace(args.services, args.endpoints, args.traces)
    ratio = tracem.median / summary.median
    ok = "PASS" if median_ms <= MEDIAN_TARGET_MS else "MISS"
    ok2 = "PASS" if ratio <= PROCESS_RATIO_TARGET else "MISS"
    print()
    print(f"parse (in-process)            {parse_s:8.3f} s")
    print(f"trace, first (builds indexes) {first_ms:8.2f} ms  ({len(result.paths)} paths, {hops} hops)")
    print(f"trace, median of {args.traces:<4}         {median_ms:8.2f} ms   target ≤ {MEDIAN_TARGET_MS} ms: {ok}")
    print(f"kptui summary --json process  {summary.median:8.3f} s  (min {summary.best:.3f})")
    print(f"kptui trace --json process    {tracem.median:8.3f} s  (min {tracem.best:.3f})")
    print(f"trace / summary               {ratio:8.2f}×   target ≤ {PROCESS_RATIO_TARGET}×: {ok2}")
    if nft is not None:
        nft_first, nft_median, nft_paths, nft_hops, nft_parse = nft
        ok3 = "PASS" if nft_median <= MEDIAN_TARGET_MS and nft_median <= median_ms else "MISS"
        print(f"nft listing parse (in-process){nft_parse:8.3f} s")
        print(f"nft trace, first              {nft_first:8.2f} ms  ({nft_paths} paths, {nft_hops} hops)")
        print(f"nft trace, median of {args.traces:<4}     {nft_median:8.2f} ms   target ≤ {MEDIAN_TARGET_MS} ms "
              f"and ≤ iptables mode's {median_ms:.2f} ms ({nft_median / median_ms:.2f}×): {ok3}")  # fmt: skip
    return 0


def nft_trace(services: int, endpoints: int, traces: int) -> tuple[float, float, int, int, float]:
    """(first ms, median ms, paths, hops, parse s) of an all-paths trace to the middle service of a
    kube-proxy nftables-mode listing of ``services`` × ``endpoints``."""
    import io

    from kptui.engine.nft import parse_nft
    from kptui.engine.packet import NodeContext, Packet
    from kptui.engine.schedule import Netfilter
    from kptui.engine.trace import trace

    buf = io.StringIO()
    gen_nft_dump.write(buf, services, endpoints)
    text = buf.getvalue()
    ip = next(s[1] for n, s in enumerate(gen_nft_dump.services(services, endpoints)) if n == services // 2)
    t0 = time.perf_counter()
    ruleset = parse_nft(text, source="nft-bench")
    parse_s = time.perf_counter() - t0
    netfilter = Netfilter({}, ruleset, None)
    packet = Packet("10.244.1.5", ip, "tcp", dport=80, origin="pod")
    node = NodeContext(addresses=(gen_nft_dump.NODE_IP,), pod_cidrs=("10.244.1.0/24",))
    times = []
    result = None
    for _ in range(traces + 1):
        t0 = time.perf_counter()
        result = trace(netfilter, packet, node)
        times.append(time.perf_counter() - t0)
    assert result is not None and result.paths
    endpoints_hit = {p.endpoint for p in result.paths}
    assert None not in endpoints_hit, "the nft trace reached no endpoint: the benchmark's packet is wrong"
    hops = sum(len(p.hops) for p in result.paths)
    return times[0] * 1000, statistics.median(times[1:]) * 1000, len(result.paths), hops, parse_s


if __name__ == "__main__":
    raise SystemExit(main())
