"""The explorer on kube-proxy's nftables mode, next to iptables mode of as many services, in the same run: opening
(parse, the display ruleset and the insights, behind the loading screen, until the first paint), a trace of the
middle service's ClusterIP requested → shown, and the steps through its hops (key → screen refreshed).

    python benchmarks/bench_ui_nft.py [--services 5000] [--endpoints 10] [--settle 8]

``--settle``: seconds to wait after the first paint (the background indexing after it competes with the steps).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gen_dump
import gen_nft_dump


async def drive(path: Path, ip: str, settle: float) -> dict[str, float]:
    from kptui.engine.packet import NodeContext, Packet
    from kptui.node.sources import open_source
    from kptui.ui.app import make_app

    snap = open_source(str(path), need_rules="any")  # as `kptui FILE` opens it: parsed behind the loading screen
    app = make_app(snapshot=snap, source=path.name, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(160, 48)) as pilot:
        while "painted" not in app.timings:
            await pilot.pause(0.02)
        opened = app.timings["painted"] - app.timings["start"]
        await asyncio.sleep(settle)
        screen = app.main_screen
        assert screen is not None
        node = NodeContext(addresses=(gen_nft_dump.NODE_IP,), pod_cidrs=("10.244.1.0/24",))
        screen.builder.fill(Packet("10.244.1.5", ip, "tcp", dport=80, origin="pod"), node)
        await pilot.pause()
        t0 = time.perf_counter()
        assert screen.builder.request_trace()
        while screen.trace is None:
            await pilot.pause(0.01)
        shown = time.perf_counter() - t0
        assert all(p.endpoint for p in screen.trace.paths), "the trace reached no endpoint: the packet is wrong"
        steps = []
        for _ in range(12):
            t0 = time.perf_counter()
            await pilot.press("n")
            await pilot.pause()
            steps.append(time.perf_counter() - t0)
        steps.sort()
        return {"open": opened, "shown": shown, "step_median": steps[len(steps) // 2], "step_max": steps[-1],
                "paths": len(screen.trace.paths)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--settle", type=float, default=8.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kptui-bench-") as tmp:
        rules, listing = Path(tmp) / "iptables.rules", Path(tmp) / "nftables.nft"
        gen_dump.write_dump(str(rules), args.services, args.endpoints)
        buf = io.StringIO()
        gen_nft_dump.write(buf, args.services, args.endpoints)
        listing.write_text(buf.getvalue())
        ips = re.findall(r"-d (10\.\d+\.\d+\.\d+)/32 -p tcp .*?--dport 80 -j KUBE-SVC", rules.read_text())
        nft_ip = next(s[1] for k, s in enumerate(gen_nft_dump.services(args.services, args.endpoints))
                      if k == args.services // 2)  # fmt: skip
        print(f"{args.services} services × {args.endpoints} endpoints; settle {args.settle} s after the first paint")
        for what, path, ip in (("iptables mode", rules, ips[len(ips) // 2]), ("nftables mode", listing, nft_ip)):
            r = asyncio.run(drive(path, ip, args.settle))
            print(f"{what:<14} open → first paint {r['open']:6.2f} s · trace shown {r['shown']:.3f} s "
                  f"({r['paths']:.0f} paths) · step median {r['step_median'] * 1000:.0f} ms, max "
                  f"{r['step_max'] * 1000:.0f} ms", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
