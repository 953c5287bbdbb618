#!/usr/bin/env python3
"""Scale benchmark (issue 16): the largest clusters, every target printed with its figure, side by side in one run.

Two generated dumps: 30,000 service ports × 5 endpoints (≈ 710k lines, 82 MB: "big") and 5000 × 10 (≈ 220k lines,
25 MB: "mid"). Measured, each in a process of its own (so its peak RSS is its own):

- the reference, ``iptables-legacy-restore --test`` on each dump (the mid dump's target is a ratio to it; on the big
  dump it tells this machine's speed, so that figures of two machines compare), inside a network namespace this script
  creates and deletes (never against the host's tables);
- ``kptui summary DUMP --json`` on both dumps (the whole process: start-up, read, parse, analysis, output);
- the explorer, headless (Textual's Pilot), on both dumps, as a new user would use it: the first paint (from the
  process's start: interpreter, imports, reading the file, parsing, the first screen), the first filter answer
  (``/`` and a query typed at once, right after the first paint: from the first keystroke until the filtered
  tree is drawn), a trace step (key ``n`` to the end of the screen refresh showing the hop, over every hop of the
  matched view and the first ``--steps`` hops of the all-hops view), and the process's peak RSS.

Targets (issue 16; printed PASS/MISS, never asserted):

  big:  explorer first paint ≤ 4 s · first filter answer ≤ 2 s after the first keystroke · peak RSS ≤ 500 MB ·
        a trace step ≤ 50 ms (p99) · kptui summary ≤ 3 s
  mid:  kptui summary ≤ 0.5 × iptables-legacy-restore --test · explorer peak RSS ≤ 300 MB

``--before REF`` also measures the code of git revision REF (``git archive`` into a temporary directory), each
measurement of it next to the same measurement of this checkout, and prints a before/after table. The machine
may be busy with other jobs: the load average is printed with the figures.

    sudo python3 benchmarks/bench_scale.py [--before main] [--repeat 3] [--keep] [--only big|mid]

Exit status: 0 everything ran (targets met or not), 1 something failed to run, 2 cannot run here (no root for
the reference: rerun with sudo, or ``--no-reference``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import bench_parse  # sibling modules: importable when run as a script
import gen_dump

DUMPS = {"big": (30000, 5), "mid": (5000, 10)}
TARGETS = {
    ("big", "paint"): 4.0, ("big", "filter"): 2.0, ("big", "rss"): 500.0, ("big", "step"): 0.050,
    ("big", "summary"): 3.0, ("mid", "ratio"): 0.5, ("mid", "rss"): 300.0,
}  # fmt: skip
QUERY = "svc-4242"  # a service's name: the rules and chains of ns-42/svc-4242 (and of svc-42420… where they exist)
KEY_GAP = 0.02  # seconds between typed keys: faster than anyone types, well under the filter's typing pause


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# -- the explorer, in a child process ------------------------------------------------------------------
def ui_child(dump: Path, spawned: float, steps: int, size: tuple[int, int]) -> dict[str, object]:
    """Run in the child (``--ui-child``): drive the explorer like a new user and return the figures."""
    import asyncio

    return asyncio.run(_drive(dump, spawned, steps, size))


async def _drawn(screen: object) -> float:
    """perf_counter() at the end of the screen's next refresh (not Pilot's idle wait, which counts background work)."""
    import asyncio

    done: list[float] = []
    screen.call_after_refresh(lambda: done.append(time.perf_counter()))  # type: ignore[attr-defined]
    while not done:
        await asyncio.sleep(0.002)
    return done[0]


async def _drive(dump: Path, spawned: float, steps: int, size: tuple[int, int]) -> dict[str, object]:
    import asyncio
    import re

    from textual import events

    wall0, perf0 = time.time(), time.perf_counter()

    def since_spawn(perf: float) -> float:
        return wall0 + (perf - perf0) - spawned

    from kptui.engine.packet import NodeContext, Packet
    from kptui.ui.app import make_app

    out: dict[str, object] = {"imported": since_spawn(time.perf_counter())}
    data = dump.read_bytes()
    app = make_app(data=data, source=dump.name)
    del data
    async with app.run_test(size=size) as pilot:
        while "painted" not in app.timings:
            await asyncio.sleep(0.005)
        out["paint"] = since_spawn(app.timings["painted"])
        if "parsed" in app.timings:
            out["parsed"] = since_spawn(app.timings["parsed"])
        screen = app.main_screen
        assert screen is not None
        tree = screen.chains
        # The first filter, right after the first paint: "/" and the query typed at once (KEY_GAP apart).
        driver = app._driver  # Pilot's own way in for keys (App._press_keys), without its wait for idle
        assert driver is not None
        t_key = time.perf_counter()
        driver.send_message(events.Key("slash", "/"))
        box = tree.query_one("#tree-filter")
        while app.focused is not box:  # keys typed before the filter box has the focus would go to the tree
            await asyncio.sleep(0.001)
        for key, char in ((c if c.isalnum() else "minus", c) for c in QUERY):
            await asyncio.sleep(KEY_GAP)
            driver.send_message(events.Key(key, char))
        await asyncio.sleep(KEY_GAP)
        t_last = time.perf_counter() - KEY_GAP
        while tree.result is None or tree.result.query.text != QUERY:
            await asyncio.sleep(0.002)
        t_done = await _drawn(screen)
        out["filter"], out["filter_after_last_key"] = t_done - t_key, t_done - t_last
        out["filter_rules"], out["filter_chains"] = tree.result.rules, tree.result.chains
        # A second filter: an address (the cluster IP of a service in the middle of KUBE-SERVICES).
        rx = re.compile(r"-A KUBE-SERVICES -d (\S+)/32 -p (\w+) .* --dport (\d+) -j KUBE-SVC-")
        kube_services = app.ruleset.chain("nat", "KUBE-SERVICES")  # type: ignore[union-attr]
        found = [m for rule in kube_services.rules if (m := rx.search(rule.raw))]
        ip, proto, port = found[len(found) // 2].group(1, 2, 3)
        t0 = time.perf_counter()
        tree.apply_filter(ip, background=True)
        while tree.result is None or tree.result.query.text != ip:
            await asyncio.sleep(0.002)
        out["filter_address"] = await _drawn(screen) - t0
        await pilot.press("escape")  # clear the filter
        # A trace to that service from a pod, matched hops (the default view), then every hop.
        packet = Packet("10.244.1.5", ip, proto, None, int(port), "pod")
        node = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.0.0/16",))
        t0 = time.perf_counter()
        screen.builder.fill(packet, node)
        screen.builder.request_trace()
        while screen.trace is None or screen.trace_view.hops.hop is None:
            await asyncio.sleep(0.002)
        out["trace_shown"] = await _drawn(screen) - t0
        out["matched"] = await _steps(pilot, screen, 0)
        await pilot.press("a")  # every rule evaluated
        await pilot.press("home")
        out["all"] = await _steps(pilot, screen, steps)
    return out


async def _steps(pilot: object, screen: object, limit: int) -> dict[str, float]:
    """Press ``n`` through the hops (every one, or the first ``limit``): wall time from the key to the end of the
    screen refresh that follows the screen's handling of the step."""
    import asyncio

    from textual.screen import Screen

    hops = screen.trace_view.hops  # type: ignore[attr-defined]
    handled: list[float] = []
    refreshed: list[float] = []
    cls = type(screen)
    handler = cls.on_step_changed
    compositor_refresh = Screen._compositor_refresh

    def timed(self: object, message: object) -> None:
        handler(self, message)
        handled.append(time.perf_counter())

    def timed_refresh(self: Screen[object]) -> None:
        compositor_refresh(self)
        refreshed.append(time.perf_counter())

    cls.on_step_changed = timed  # type: ignore[method-assign]
    Screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
    wall: list[float] = []
    try:
        n = len(hops.rows) - 1
        for _ in range(min(n, limit) if limit else n):
            t0 = time.perf_counter()
            await pilot.press("n")  # type: ignore[attr-defined]
            while not handled or handled[-1] < t0 or not refreshed or refreshed[-1] < handled[-1]:
                await asyncio.sleep(0.001)
            wall.append(min(t for t in refreshed if t > handled[-1]) - t0)
    finally:
        cls.on_step_changed = handler  # type: ignore[method-assign]
        Screen._compositor_refresh = compositor_refresh  # type: ignore[method-assign]
    if not wall:
        return {"n": 0}
    xs = sorted(wall)
    return {"n": len(xs), "median": statistics.median(xs), "p99": xs[max(0, int(len(xs) * 0.99) - 1)],
            "max": xs[-1], "first": wall[0]}  # fmt: skip


# -- the parent ------------------------------------------------------------------------------------------
@dataclass
class Code:
    """One version of kptui: a directory holding the ``kptui`` package."""

    label: str
    root: Path

    def compile(self) -> None:
        """Byte-compile the package first, as ``pip install`` does: a user's kptui does not compile its modules on
        each start (with PYTHONDONTWRITEBYTECODE set, as here, every run would pay about 0.3 s for it)."""
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(self.root / "kptui")], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.root), env.get("PYTHONPATH", "")) if p)
        env.pop("TERM_PROGRAM", None)
        return env


@dataclass
class Figures:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def get(self, key: str) -> float | None:
        xs = self.values.get(key)
        return statistics.median(xs) if xs else None


def run_ui(code: Code, dump: Path, steps: int, size: str) -> tuple[dict[str, object], float]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--ui-child", str(dump), "--spawned", repr(time.time()),
            "--steps", str(steps), "--size", size]  # fmt: skip
    r = bench_parse.run_measured(argv, None, code.env(), code.root)
    if r.rc != 0:
        raise RuntimeError(f"the explorer ({code.label}) failed on {dump.name} (exit {r.rc}):\n{bench_parse.tail(r.stderr)}")
    return json.loads(r.stdout.decode().strip().splitlines()[-1]), r.rss_mb


def run_summary(code: Code, dump: Path) -> tuple[float, float, bytes]:
    r = bench_parse.run_measured([sys.executable, "-m", "kptui", "summary", str(dump), "--json"], None, code.env(),
                                 code.root)  # fmt: skip
    if r.rc != 0:
        raise RuntimeError(f"kptui summary ({code.label}) failed on {dump.name} (exit {r.rc}):\n"
                           f"{bench_parse.tail(r.stderr)}")  # fmt: skip
    json.loads(r.stdout)
    return r.wall, r.rss_mb, r.stdout


def checkout(ref: str, into: Path) -> Path:
    """The code of git revision ``ref``, exported into ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "kptui"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def measure_all(codes: list[Code], dumps: dict[str, Path], a: argparse.Namespace) -> dict[str, Figures]:
    figures = {c.label: Figures() for c in codes}
    loads: list[str] = []
    ns_ctx = None
    if not a.no_reference:
        ip = bench_parse.which("ip")
        tool = bench_parse.which("iptables-legacy-restore")
        if ip is None or tool is None:
            raise RuntimeError("missing tools: ip, iptables-legacy-restore (apt-get install iproute2 iptables)")
        ns_ctx = bench_parse.Netns(ip)
        ns_ctx.name = f"kptui-scale-{os.getpid()}"
    try:
        if ns_ctx is not None:
            ns_ctx.__enter__()
        for rep in range(a.repeat):
            loads.append(load_average())
            print(f"round {rep + 1}/{a.repeat}: load average {loads[-1]}", file=sys.stderr)
            for name, dump in dumps.items():
                if ns_ctx is not None:  # the reference on each dump: the mid target, and this machine's speed
                    tool = str(bench_parse.which("iptables-legacy-restore"))
                    r = bench_parse.run_measured(ns_ctx.argv([tool, "--test"]), dump)
                    if r.rc != 0:
                        raise RuntimeError(f"iptables-legacy-restore --test rejected the dump:\n{bench_parse.tail(r.stderr)}")
                    for c in codes:
                        figures[c.label].add(f"{name}.reference", r.wall)
                    print(f"  {name:<4} iptables-legacy-restore --test   {r.wall:7.2f} s {r.rss_mb:6.0f} MB", file=sys.stderr)
                summaries: dict[str, bytes] = {}
                for c in codes:
                    wall, rss, out = run_summary(c, dump)
                    summaries[c.label] = out
                    figures[c.label].add(f"{name}.summary", wall)
                    figures[c.label].add(f"{name}.summary_rss", rss)
                    print(f"  {name:<4} {c.label:<6} kptui summary        {wall:7.2f} s {rss:6.0f} MB", file=sys.stderr)
                if len(codes) > 1 and len({_comparable(o) for o in summaries.values()}) > 1:
                    print(f"  {name}: the summaries of {' and '.join(summaries)} DIFFER", file=sys.stderr)
                if a.no_ui:
                    continue
                for c in codes:
                    got, rss = run_ui(c, dump, a.steps, a.size)
                    f = figures[c.label]
                    f.add(f"{name}.rss", rss)
                    for key in ("paint", "parsed", "filter", "filter_after_last_key", "filter_address", "trace_shown"):
                        if key in got:
                            f.add(f"{name}.{key}", float(got[key]))  # type: ignore[arg-type]
                    for view in ("matched", "all"):
                        for stat, value in got[view].items():  # type: ignore[attr-defined]
                            f.add(f"{name}.step_{view}_{stat}", value)
                    print(f"  {name:<4} {c.label:<6} explorer: paint {got['paint']:.2f} s, filter {got['filter']:.2f} s"
                          f" ({got['filter_rules']} rules), step p99 {got['all'].get('p99', 0) * 1000:.0f} ms"
                          f" (max {got['all'].get('max', 0) * 1000:.0f}), {rss:.0f} MB", file=sys.stderr)  # type: ignore[union-attr]
    finally:
        if ns_ctx is not None:
            ns_ctx.__exit__(None, None, None)
    for f in figures.values():
        f.values["load"] = [float(x.split()[0]) for x in loads if x != "?"]
    return figures


def _comparable(summary_json: bytes) -> str:
    d = json.loads(summary_json)
    d.pop("source", None)
    return json.dumps(d, sort_keys=True)


ROWS = [  # (label, key, unit, target key, how the figure is judged)
    ("big: explorer first paint (from process start)", "big.paint", "s", ("big", "paint")),
    ("big:   of which parsed (from process start)", "big.parsed", "s", None),
    ("big: first filter answer after the first keystroke", "big.filter", "s", ("big", "filter")),
    ("big:   after the last keystroke", "big.filter_after_last_key", "s", None),
    ("big: address filter (index built)", "big.filter_address", "s", None),
    ("big: trace requested → shown", "big.trace_shown", "s", None),
    ("big: trace step, matched hops, max", "big.step_matched_max", "ms", None),
    ("big: trace step, all hops, median", "big.step_all_median", "ms", None),
    ("big: trace step, all hops, p99", "big.step_all_p99", "ms", ("big", "step")),
    ("big: trace step, all hops, max", "big.step_all_max", "ms", None),
    ("big: explorer peak RSS", "big.rss", "MB", ("big", "rss")),
    ("big: kptui summary", "big.summary", "s", ("big", "summary")),
    ("big: kptui summary peak RSS", "big.summary_rss", "MB", None),
    ("big: iptables-legacy-restore --test (this machine's speed)", "big.reference", "s", None),
    ("big: kptui summary / iptables-legacy-restore", "big.ratio", "×", None),
    ("mid: iptables-legacy-restore --test", "mid.reference", "s", None),
    ("mid: kptui summary", "mid.summary", "s", None),
    ("mid: kptui summary / iptables-legacy-restore", "mid.ratio", "×", ("mid", "ratio")),
    ("mid: explorer first paint (from process start)", "mid.paint", "s", None),
    ("mid: first filter answer after the first keystroke", "mid.filter", "s", None),
    ("mid: trace step, all hops, p99", "mid.step_all_p99", "ms", None),
    ("mid: explorer peak RSS", "mid.rss", "MB", ("mid", "rss")),
]


def value_of(f: Figures, key: str) -> float | None:
    if key.endswith(".ratio"):
        name = key.partition(".")[0]
        s, r = f.values.get(f"{name}.summary"), f.values.get(f"{name}.reference")
        if not s or not r:
            return None
        return statistics.median(a / b for a, b in zip(s, r, strict=False))  # each round's own ratio
    return f.get(key)


def show(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    return f"{v * 1000:.0f} ms" if unit == "ms" else f"{v:.2f} {unit}" if unit != "MB" else f"{v:.0f} MB"


def report(codes: list[Code], figures: dict[str, Figures], info: list[str]) -> dict[str, object]:
    print("\n" + "\n".join(info))
    loads = figures[codes[0].label].values.get("load") or []
    print(f"load average (1 min) at each round: {', '.join(f'{x:.2f}' for x in loads) or '?'} on {os.cpu_count()} CPUs"
          " (other jobs share this machine; the figures of one round were measured side by side)\n")
    head = f"{'figure':<52}" + "".join(f"{c.label:>12}" for c in codes) + f"{'target':>12}  verdict"
    print(head)
    print("-" * len(head))
    out: dict[str, object] = {}
    last = codes[-1]
    for label, key, unit, tkey in ROWS:
        vals = [value_of(figures[c.label], key) for c in codes]
        if all(v is None for v in vals):
            continue
        target = TARGETS.get(tkey) if tkey else None
        verdict = ""
        if target is not None and vals[-1] is not None:
            verdict = "PASS" if vals[-1] <= target else "MISS"
        tshow = ("≤ " + show(target, unit)) if target is not None else ""
        print(f"{label:<52}" + "".join(f"{show(v, unit):>12}" for v in vals) + f"{tshow:>12}  {verdict}")
        out[key] = {c.label: v for c, v in zip(codes, vals, strict=True)} | ({"target": target, "verdict": verdict}
                                                                               if target is not None else {})
    print(f"\nverdicts are for '{last.label}'; figures are medians over the rounds")
    return out


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", metavar="REF", help="also measure git revision REF (e.g. main), side by side")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (default 1; figures are medians over them)")
    ap.add_argument("--steps", type=int, default=300, help="hops of the all-hops view to step through")
    ap.add_argument("--size", default="160x48", help="terminal size, WxH")
    ap.add_argument("--only", choices=sorted(DUMPS), action="append", help="only this dump (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the generated dumps in benchmarks/out/")
    ap.add_argument("--dumps", type=Path, help="reuse the dumps in this directory (scale-big.rules, scale-mid.rules)")
    ap.add_argument("--no-reference", action="store_true", help="skip iptables-legacy-restore (no root needed)")
    ap.add_argument("--no-ui", action="store_true", help="skip the explorer")
    ap.add_argument("--results", type=Path, help="also write the figures as JSON to this file")
    ap.add_argument("--ui-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)  # killed: the namespace and the temporary files still go
    if a.ui_child is not None:
        w, _, h = a.size.partition("x")
        got = ui_child(a.ui_child, a.spawned or time.time(), a.steps, (int(w), int(h)))
        print(json.dumps(got))
        return 0
    if not a.no_reference and os.geteuid() != 0:
        print("bench_scale.py runs the reference (iptables-legacy-restore --test) in a network namespace it creates: "
              f"run it as root, or pass --no-reference.\n  sudo {shlex.join([sys.executable, *sys.argv])}",
              file=sys.stderr)  # fmt: skip
        return 2
    with tempfile.TemporaryDirectory(prefix="kptui-scale-") as tmp:
        codes: list[Code] = []
        if a.before:
            codes.append(Code("before", checkout(a.before, Path(tmp) / "before")))
        codes.append(Code("after" if a.before else "this", REPO))
        for c in codes:
            c.compile()
        folder = (a.dumps or (HERE / "out" if a.keep else Path(tmp))).resolve()  # each kptui runs in its own dir
        folder.mkdir(parents=True, exist_ok=True)
        dumps: dict[str, Path] = {}
        info = [f"kptui {' vs '.join(c.label + ' = ' + (a.before if c.label == 'before' else str(c.root)) for c in codes)}"]
        for name in a.only or sorted(DUMPS):
            services, endpoints = DUMPS[name]
            path = folder / f"scale-{name}.rules"
            if not path.exists():
                gen_dump.write_dump(str(path), services, endpoints)
            with open(path, "rb") as fh:
                lines = sum(1 for _ in fh)
            dumps[name] = path
            info.append(f"{name}: {services} services × {endpoints} endpoints, {lines:,} lines, "
                        f"{path.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        try:
            figures = measure_all(codes, dumps, a)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        res = report(codes, figures, info)
        if a.results:
            a.results.write_text(json.dumps({"info": info, "figures": res,
                                             "raw": {k: v.values for k, v in figures.items()}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
