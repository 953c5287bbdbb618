#!/usr/bin/env python3
"""Fleet comparison benchmark (no root needed; nothing touches the kernel).

N capture bundles of one cluster (gen_dump.py's rules, S services × E endpoints per node; one node in ten with
one endpoint fewer per service, so it differs in every service port), measured in the same run:

- in-process, per node: reading and parsing its bundle (the reference), its service index, the per-node
  analysis (mode, leftovers, rules in front, conntrack); then the comparison of all N (target: the comparison
  takes at most one node's parse);
- the explorer's fleet screen on the N nodes (Pilot, in-process): until its table is filled, and a filter
  applied and cleared (targets: the screen up within three nodes' parses — under a third of reading ten —, a filter within 0.1 s);
- the whole ``kptui fleet DIR --json`` process against ``kptui summary`` of one bundle (for information).

    python3 benchmarks/bench_fleet.py [--nodes 10] [--services 1000] [--endpoints 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
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


def write_bundles(folder: Path, nodes: int, services: int, endpoints: int) -> int:
    from kptui.node.bundle import encode_bundle
    from kptui.node.parts import Artifact, Collection

    size = 0
    texts: dict[int, bytes] = {}
    for i in range(nodes):
        eps = endpoints - 1 if i % 10 == 9 and endpoints > 1 else endpoints
        if eps not in texts:
            texts[eps] = ("\n".join(gen_dump.generate_lines(services, eps)) + "\n").encode()
        data = texts[eps]
        art = Artifact("rules/iptables-nft-save.rules", "rules", data, "ipv4", "nf_tables",
                       ("iptables-nft-save", "-c"))  # fmt: skip
        facts = {"node_name": f"node-{i:03d}", "proxy_mode": "iptables", "created_unix": 1.7e9, "hostname": f"n{i}"}
        blob = encode_bundle(Collection((art,), facts, origin="live"))
        (folder / f"node-{i:03d}.kptui").write_bytes(blob)
        size = len(data)
    return size


async def measure_screen(parts: tuple[object, ...], source: str) -> tuple[float, float, float]:
    """The fleet screen (make_app, as ``kptui DIR`` builds it): seconds until its table is filled (the comparison
    included), then one filter applied and cleared."""
    from kptui.ui.app import make_app
    from kptui.ui.fleet_screen import FleetScreen
    from kptui.ui.fleet_source import fleet_source

    t0 = time.perf_counter()
    app = make_app(fleet=fleet_source(parts, source), env={"KPTUI_CLIPBOARD": "osc52"})  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        while not (isinstance(app.screen, FleetScreen) and app.screen.matrix.table.row_count):
            await pilot.pause(0.005)
        up = time.perf_counter() - t0
        pane = app.screen.matrix
        t0 = time.perf_counter()
        pane.apply("svc-1")
        filtered = time.perf_counter() - t0
        t0 = time.perf_counter()
        pane.apply("")
        return up, filtered, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each whole process")
    args = ap.parse_args(argv)

    from kptui.engine.kube.build import service_index_of
    from kptui.engine.kube.fleet import compare_fleet
    from kptui.engine.kube.fleet_node import fleet_node
    from kptui.node.fleet import fleet_entries, load_parts

    with tempfile.TemporaryDirectory(prefix="kptui-bench-fleet-") as tmp:
        folder = Path(tmp)
        size = write_bundles(folder, args.nodes, args.services, args.endpoints)
        print(f"{args.nodes} nodes × {args.services} services × {args.endpoints} endpoints ({size / 1e6:.1f} MB of "
              f"rules per node)")  # fmt: skip
        entries = fleet_entries([str(folder)])
        parse, index, node_s = [], [], []
        nodes = []
        for e in entries:
            t0 = time.perf_counter()
            parts = load_parts(e)
            assert parts.ruleset is not None
            t1 = time.perf_counter()
            service_index_of(parts.ruleset)
            t2 = time.perf_counter()
            nodes.append(fleet_node(parts))
            t3 = time.perf_counter()
            parse.append(t1 - t0)
            index.append(t2 - t1)
            node_s.append(t3 - t2)
        gc.freeze()  # as kptui fleet does once the nodes are read
        t0 = time.perf_counter()
        report = compare_fleet(nodes)
        compare_s = time.perf_counter() - t0
        differ = sum(1 for r in report.services if r.differs)
        parse_med = statistics.median(parse)

        parts_all = tuple(n.parts for n in nodes if n.parts is not None)
        screen_up, filter_s, cleared_s = asyncio.run(measure_screen(parts_all, str(folder)))

        kptui = [sys.executable, "-m", "kptui"]
        commands = {"kptui summary (one bundle)": [*kptui, "summary", str(folder / "node-000.kptui"), "--json"],
                    f"kptui fleet DIR --json ({args.nodes} nodes)": [*kptui, "fleet", str(folder), "--json"]}
        walls: dict[str, list[float]] = {label: [] for label in commands}
        for i in range(args.repeat + 1):
            for label, cmd in commands.items():
                r = run_measured(cmd, None, None, REPO)
                if r.rc not in (0, 1):
                    print(f"{label} failed (exit {r.rc})", file=sys.stderr)
                    return 1
                if i:
                    walls[label].append(r.wall)

    w = 48
    print(f"{'read + parse one bundle (median)':<{w}}{parse_med:8.3f} s")
    print(f"{'service index per node (median)':<{w}}{statistics.median(index):8.3f} s")
    print(f"{'per-node analysis (median, index built)':<{w}}{statistics.median(node_s):8.3f} s")
    print(f"{'comparison of all nodes':<{w}}{compare_s:8.3f} s  ({len(report.services)} service ports, {differ} "
          f"differ)  target ≤ one parse: {verdict(compare_s <= parse_med)}")
    print(f"{'fleet screen up (compared, table filled)':<{w}}{screen_up:8.3f} s  target ≤ 3 parses: "
          f"{verdict(screen_up <= 3 * parse_med)}")  # fmt: skip
    print(f"{'fleet screen filter svc-1 / cleared':<{w}}{filter_s:8.3f} s / {cleared_s:.3f} s  target ≤ 0.1 s: "
          f"{verdict(max(filter_s, cleared_s) <= 0.1)}")  # fmt: skip
    for label, values in walls.items():
        print(f"{label + ' process':<{w}}{statistics.median(values):8.3f} s  (min {min(values):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
