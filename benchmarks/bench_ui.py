#!/usr/bin/env python3
"""UI benchmark on the 220k-rule dump, driven headless by Textual's Pilot (no terminal needed).

Figures (targets in brackets; printed, never asserted):
- parse: the dump parsed in the app's loading thread (what the loading screen covers);
- first paint after the parse: from the parsed ruleset to the main screen's first refresh   [≤ 1.5 s];
- expanding nat/KUBE-SERVICES (5000+ rules) in the chain tree, until it is drawn (the end of the screen
  refresh that shows it)                                                                     [≤ 0.3 s];
- a step redraw in the trace view (key n: hop list, tree cursor, detail, packet state, repaint), over every
  hop of an all-hops trace through KUBE-SERVICES: wall time from the key to the end of the screen refresh
  that shows the step, and the CPU time the step costs                                       [≤ 50 ms];
- the search index: when it is ready after the first paint (built in the background, giving way to the UI;
  a filter that needs it sooner hurries it);
- the filter: a query over every rule, until the filtered tree is drawn;
- peak RSS of the process                                                                    [≤ 400 MB];
- watch mode (``--watch``; a separate app whose reader returns the dump again with counters raised): a
  refresh with nat/KUBE-SERVICES expanded, from the read handed to the UI thread to the end of the screen
  refresh that shows the new counters, and a trace step after it (``--no-watch`` skips this part).

    python3 benchmarks/bench_ui.py [--services 5000] [--endpoints 10] [--size 160x48] [--dump FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
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

TARGETS = {"paint": 1.5, "expand": 0.3, "step": 0.050, "rss": 400}


def middle_service(path: Path) -> tuple[str, int, str]:
    rx = re.compile(r"-A KUBE-SERVICES -d (\S+)/32 -p (\w+) .* --dport (\d+) -j KUBE-SVC-")
    found = [m for line in path.read_text().splitlines() if (m := rx.search(line))]
    m = found[len(found) // 2]
    return m.group(1), int(m.group(3)), m.group(2)


async def drawn(screen: object) -> float:
    """When the screen's next refresh ends (a callback after it): "until it is drawn". Not Pilot's pause(),
    which waits for the whole process to go idle (up to 1 s) and so counts background work too."""
    done: list[float] = []
    screen.call_after_refresh(lambda: done.append(time.perf_counter()))  # type: ignore[attr-defined]
    while not done:
        await asyncio.sleep(0.002)
    return done[0]


async def drive(dump: Path, size: tuple[int, int], steps: int = 0) -> dict[str, float | int]:
    from kptui.engine.packet import NodeContext, Packet
    from kptui.ui.app import make_app
    from kptui.ui.locs import Loc

    out: dict[str, float | int] = {}
    data = dump.read_bytes()
    app = make_app(data=data, source=dump.name)
    async with app.run_test(size=size) as pilot:
        while "painted" not in app.timings:
            await pilot.pause(0.02)
        out["parse"] = app.timings["parsed"] - app.timings["start"]
        out["paint"] = app.timings["painted"] - app.timings["parsed"]
        screen = app.main_screen
        assert screen is not None
        tree = screen.chains
        indexed: float | None = None

        async def watch_index() -> None:  # the search index is built in the background after the first paint
            nonlocal indexed
            while not tree.search.ready:
                await asyncio.sleep(0.01)
            indexed = time.perf_counter()

        watcher = asyncio.ensure_future(watch_index())
        n_rules = len(app.ruleset.chain("nat", "KUBE-SERVICES").rules)  # type: ignore[union-attr]
        out["kube_services_rules"] = n_rules
        tree.reveal(Loc("nat", "KUBE-POSTROUTING"))
        await pilot.pause()
        t0 = time.perf_counter()
        tree.reveal(Loc("nat", "KUBE-SERVICES", 1))
        out["expand"] = await drawn(screen) - t0

        ip, port, proto = middle_service(dump)
        packet = Packet("10.244.1.5", ip, proto, None, port, "pod")
        node = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.0.0/16",))
        t0 = time.perf_counter()
        screen.all_hops = True
        screen.builder.fill(packet, node)
        screen.builder.request_trace()
        while screen.trace is None or screen.trace_view.hops.hop is None:
            await asyncio.sleep(0.002)
        out["trace_shown"] = await drawn(screen) - t0
        hops = screen.trace_view.hops
        out["hops"] = len(hops.rows)
        # The wall time of a step: from the key to the end of the first screen refresh (compositor update)
        # that follows the screen's handling of the step. Both are recorded by wrappers; Pilot's own idle wait
        # is excluded.
        from textual.screen import Screen

        handled: list[float] = []
        refreshed: list[float] = []
        handler = type(screen).on_step_changed
        compositor_refresh = Screen._compositor_refresh

        def timed(self: object, message: object) -> None:
            handler(self, message)  # type: ignore[arg-type]
            handled.append(time.perf_counter())

        def timed_refresh(self: Screen) -> None:
            compositor_refresh(self)
            refreshed.append(time.perf_counter())

        type(screen).on_step_changed = timed  # type: ignore[method-assign]
        Screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(min(len(hops.rows) - 1, steps or len(hops.rows))):
            c0, t0 = time.thread_time(), time.perf_counter()  # this thread runs the app: its CPU only
            await pilot.press("n")  # a real key event; Pilot returns once it is handled and the app is idle
            while not handled or handled[-1] < t0 or not refreshed or refreshed[-1] < handled[-1]:
                await asyncio.sleep(0.001)  # the refresh showing the step may still be on its way
            cpu.append(time.thread_time() - c0)
            wall.append(min(t for t in refreshed if t > handled[-1]) - t0)
        type(screen).on_step_changed = handler  # type: ignore[method-assign]
        Screen._compositor_refresh = compositor_refresh  # type: ignore[method-assign]
        for name, xs in (("cpu", cpu), ("wall", wall)):
            xs.sort()
            out[f"step_{name}_median"] = statistics.median(xs)
            out[f"step_{name}_p99"] = xs[max(0, int(len(xs) * 0.99) - 1)]
            out[f"step_{name}_max"] = xs[-1]

        out["rss_before_filter_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["index_ready_at_filter"] = tree.search.ready
        t0 = time.perf_counter()
        tree.apply_filter("svc-4242", background=True)  # waits for the search index if not built yet
        while tree.result is None:
            await asyncio.sleep(0.002)
        out["filter"] = await drawn(screen) - t0
        await watcher  # the filter needed the index: it is ready now
        if indexed is not None:
            out["indexed_after_paint"] = indexed - app.timings["painted"]
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


class BumpingReader:
    """The live reader of a watch: the dump again on every read, the counters of some KUBE-SERVICES rules
    raised each time (so the tree's +N markers change), parsed in the app's reading thread. From the fourth
    read on, every read also adds a rule near the top of nat KUBE-SERVICES (open in the tree): the rules
    changed, so the tree fills that chain again rather than relabelling what moved."""

    def __init__(self, dump: Path) -> None:
        self.lines = dump.read_text().splitlines(keepends=True)
        nat = self.lines.index("*nat\n")
        self.hot = [i for i, line in enumerate(self.lines) if i > nat and "-A KUBE-SERVICES " in line][:50:5]
        self.reads = 0
        self.gate = asyncio.Event()
        self.node = None
        self.warnings: tuple[str, ...] = ()
        import threading

        self.allowed = threading.Semaphore(1)  # one read at a time, when the benchmark lets one through

    def __call__(self) -> object:
        from kptui.engine import parse_ruleset
        from kptui.top import Reading

        self.allowed.acquire()
        self.reads += 1
        lines = list(self.lines)
        for i in self.hot:
            m = re.match(r"\[(\d+):(\d+)\] ", lines[i])
            assert m is not None
            n = int(m.group(1)) + 7 * self.reads
            lines[i] = f"[{n}:{n * 60}] " + lines[i][m.end():]
        for k in range(max(0, self.reads - 3)):  # one more new rule per read after the third
            lines.insert(self.hot[0], f"[0:0] -A KUBE-SERVICES -d 10.99.{k // 250}.{k % 250 + 1}/32 -p tcp -m tcp "
                                      "--dport 80 -j KUBE-MARK-MASQ\n")
        return Reading.of(parse_ruleset("".join(lines), source="bench (live)"), 0.001, 0.001, "bench (live)")


async def drive_watch(dump: Path, size: tuple[int, int], refreshes: int = 6) -> dict[str, float | int]:
    """Watch refreshes on the big dump with nat/KUBE-SERVICES expanded and the cursor in it: from the read
    handed to the UI thread to the end of the refresh that shows it, then a trace step. The first three after
    the first read change counters only, the next three add a rule too (BumpingReader)."""
    from kptui.engine.packet import NodeContext, Packet
    from kptui.ui.app import make_app
    from kptui.ui.locs import Loc

    out: dict[str, float | int] = {}
    reader = BumpingReader(dump)
    app = make_app(reader=reader, watch=0.05, origin="bench")  # type: ignore[arg-type]
    arrived: list[tuple[float, object]] = []
    live_read = app.live_read

    def timed_read(reading: object, *rest: object) -> None:
        arrived.append((time.perf_counter(), reading))
        live_read(reading, *rest)  # type: ignore[arg-type]

    app.live_read = timed_read  # type: ignore[method-assign]

    def shown(reading: object) -> bool:
        screen = app.main_screen
        return (screen is not None and screen.ready and app.screen is screen
                and screen.ruleset is reading.ruleset)  # type: ignore[attr-defined]

    async with app.run_test(size=size) as pilot:
        while not arrived or not shown(arrived[-1][1]):
            await pilot.pause(0.02)
        screen = app.main_screen
        assert screen is not None
        ip, port, proto = middle_service(dump)
        screen.builder.fill(Packet("10.244.1.5", ip, proto, None, port, "pod"),
                            NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.0.0/16",)))
        screen.builder.request_trace()
        while screen.trace is None or screen.trace_view.hops.hop is None:
            await asyncio.sleep(0.005)
        walls: list[float] = []
        steps: list[float] = []
        for _ in range(refreshes):
            screen = app.main_screen
            assert screen is not None
            screen.chains.reveal(Loc("nat", "KUBE-SERVICES", 40), expand=True)
            await drawn(screen)
            before = len(arrived)
            reader.allowed.release()  # the next read (due at once: the interval is tiny)
            while len(arrived) == before:
                await asyncio.sleep(0.002)
            t0, reading = arrived[-1]
            while not shown(reading):
                await asyncio.sleep(0.002)
            screen = app.main_screen
            assert screen is not None
            walls.append(await drawn(screen) - t0)
            while screen.trace is None or screen.trace_view.hops.hop is None:
                await asyncio.sleep(0.005)
            await drawn(screen)
            screen.trace_view.focus_hops()
            t1 = time.perf_counter()
            await pilot.press("n")
            steps.append(await drawn(screen) - t1)
        half = len(walls) // 2
        out["watch_refresh_median"] = statistics.median(walls[:half])
        out["watch_refresh_max"] = max(walls[:half])
        out["watch_changed_median"] = statistics.median(walls[half:])
        out["watch_changed_max"] = max(walls[half:])
        out["watch_step_median"] = statistics.median(steps)
        out["watch_refreshes"] = half
        assert app.watcher is not None
        app.watcher.paused = True
        if app.watcher.reading:  # a read waits at the semaphore: let it end before the app does
            before = len(arrived)
            reader.allowed.release()
            while len(arrived) == before:
                await asyncio.sleep(0.01)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--size", default="160x48", help="terminal size, WxH")
    ap.add_argument("--dump", type=Path, help="use this dump instead of generating one")
    ap.add_argument("--steps", type=int, default=0, help="time only the first N steps (default: every hop)")
    ap.add_argument("--no-watch", action="store_true", help="skip the watch-mode refresh figures")
    args = ap.parse_args(argv)
    w, _, h = args.size.partition("x")
    with tempfile.TemporaryDirectory(prefix="kptui-bench-") as tmp:
        dump = args.dump
        if dump is None:
            dump = Path(tmp) / "dump.rules"
            lines, nbytes = gen_dump.write_dump(str(dump), args.services, args.endpoints)
            print(f"dump: {args.services} services × {args.endpoints} endpoints, {lines} lines, {nbytes / 1e6:.1f} MB")
        r = asyncio.run(drive(dump, (int(w), int(h)), args.steps))
        report(r)
        if not args.no_watch:
            try:
                watch = asyncio.run(drive_watch(dump, (int(w), int(h))))
            except Exception as exc:  # noqa: BLE001 - a figure that could not be taken is reported, not hidden
                print(f"watch refresh                       FAILED: {type(exc).__name__}: {exc}")
                return 1
            print(f"watch refresh, KUBE-SERVICES open   median {watch['watch_refresh_median']:.3f} s, max "
                  f"{watch['watch_refresh_max']:.3f} s over {watch['watch_refreshes']} reads (read handed over "
                  "→ shown), counters moved")
            print(f"  … and a rule added each read      median {watch['watch_changed_median']:.3f} s, max "
                  f"{watch['watch_changed_max']:.3f} s over {watch['watch_refreshes']} reads")
            print(f"trace step after a watch refresh    median {watch['watch_step_median'] * 1000:.1f} ms")
    return 0


def report(r: dict[str, float | int]) -> None:
    ok = {True: "ok", False: "OVER"}
    print(f"parse (loading thread)              {r['parse']:.2f} s")
    print(f"first paint after the parse         {r['paint']:.3f} s   (target ≤ {TARGETS['paint']} s: "
          f"{ok[r['paint'] <= TARGETS['paint']]})")
    print(f"expand KUBE-SERVICES ({r['kube_services_rules']} rules)    {r['expand']:.3f} s   "
          f"(target ≤ {TARGETS['expand']} s: {ok[r['expand'] <= TARGETS['expand']]})")
    print(f"trace requested → shown             {r['trace_shown']:.3f} s   ({r['hops']} hops, all-hops view)")
    for name, what in (("cpu", "work (CPU time)"), ("wall", "key → screen refreshed")):
        print(f"step redraw, {what:<30} median {r[f'step_{name}_median'] * 1000:.1f} ms, p99 "
              f"{r[f'step_{name}_p99'] * 1000:.1f} ms, max {r[f'step_{name}_max'] * 1000:.1f} ms")
    print(f"  (target ≤ {TARGETS['step'] * 1000:.0f} ms per step: "
          f"{ok[r['step_wall_p99'] <= TARGETS['step']]} at p99)")
    if "indexed_after_paint" in r:
        print(f"search index ready                  {r['indexed_after_paint']:.1f} s after the first paint "
              "(built in the background, giving way to the UI)")
    print(f"filter 'svc-4242' over every rule   {r['filter']:.3f} s   "
          f"({'index built before' if r['index_ready_at_filter'] else 'includes finishing the index'})")
    print(f"peak RSS before the first filter    {r['rss_before_filter_mb']:.0f} MB")
    print(f"peak RSS                            {r['rss_mb']:.0f} MB   (target ≤ {TARGETS['rss']} MB: "
          f"{ok[r['rss_mb'] <= TARGETS['rss']]})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
