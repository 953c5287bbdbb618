"""The chain tree's filter, plain (regex per rule line) vs from the search index, on one dump.

    python3 benchmarks/gen_dump.py --services 5000 --endpoints 10 -o /tmp/big.rules
    python3 benchmarks/bench_search.py /tmp/big.rules

Prints, per query, the plain and indexed times (best of --repeat), their ratio and whether the answers agree;
then the index build time and the process's RSS growth while building it. Like the app on a big dump, the
long-lived data is moved out of the garbage collector's sight (gc.freeze) before timing.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kptui.engine import parse_ruleset_bytes
from kptui.ui.search import compile_query, run_filter
from kptui.ui.search_index import build_index, filter_indexed
from kptui.ui.services import load_insights

QUERIES = ("10.96.0.10", "KUBE-SEP", "ns-1/svc", "30080", "10.244.0.0/16", "masq")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best(fn: object, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("queries", nargs="*", default=list(QUERIES))
    args = ap.parse_args()
    rs = parse_ruleset_bytes(args.dump.read_bytes(), source=str(args.dump))
    service_of = load_insights(rs).service_of
    for table in rs.tables.values():  # the service names the index asks for, resolved beforehand as the UI does
        for chain in table:
            service_of(None, chain.name)
    gc.freeze()
    before = rss_mib()
    t = time.perf_counter()
    index = build_index(rs, service_of)
    build = time.perf_counter() - t
    grown = rss_mib() - before
    gc.freeze()
    print(f"{rs.rule_count} rules; index built in {build:.2f} s, RSS +{grown:.0f} MiB")
    print(f"{'query':<18}{'rules':>8}{'plain s':>10}{'index s':>10}{'ratio':>8}  same")
    for text in args.queries:
        q = compile_query(text)
        if q is None:
            continue
        plain_s, plain = best(lambda q=q: run_filter(rs, q, service_of), args.repeat)
        fast_s, fast = best(lambda q=q: filter_indexed(index, q), args.repeat)
        agree = (plain.tables, plain.rules) == (fast.tables, fast.rules)  # type: ignore[attr-defined]
        print(f"{text:<18}{plain.rules:>8}{plain_s:>10.3f}{fast_s:>10.4f}{plain_s / fast_s:>8.1f}  {agree}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
