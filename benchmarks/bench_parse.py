#!/usr/bin/env python3
"""Parse benchmark: ``kptui summary DUMP --json`` against ``iptables-legacy-restore --test`` on the same dump.

Run as root (the references run inside a throwaway network namespace, never against the host's rules):

    sudo python3 benchmarks/bench_parse.py [--services 5000] [--endpoints 10] [--repeat 5] [--keep]

Exit status: 0 when everything ran (whether or not the targets are met; kptui missing is reported as
SKIPPED), 1 when something failed to run (a reference tool rejected the dump, kptui crashed), 2 when the
benchmark cannot run here (not root, tools missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import gen_dump  # sibling module: importable when run as a script

RATIO_TARGET, RATIO_AIM, RSS_TARGET_MB = 1.0, 0.5, 300.0
SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])


@dataclass
class Run:
    """One child process: wall seconds, exit status, peak RSS, captured output."""

    wall: float
    rc: int
    rss_mb: float
    stdout: bytes
    stderr: bytes


@dataclass
class Measure:
    """Repeated runs of one command."""

    label: str
    walls: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    skipped: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def best(self) -> float:
        return min(self.walls)


def run_measured(argv: list[str], stdin: Path | None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> Run:
    """Run ``argv`` and reap it with wait4(), which gives that exact child's peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            open(stdin if stdin else os.devnull, "rb") as fin:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=fin, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting
        out.seek(0)
        err.seek(0)
        return Run(wall, proc.returncode, usage.ru_maxrss / 1024.0, out.read(), err.read())


def tail(data: bytes, n: int = 12) -> str:
    """Last lines of a captured stream, indented, for error messages."""
    lines = data.decode(errors="replace").rstrip().splitlines()[-n:]
    return "\n".join("    " + line for line in lines) or "    (no output)"


def which(tool: str) -> str | None:
    """Find a tool on PATH or in the sbin directories (sudo may drop them from PATH)."""
    return shutil.which(tool) or shutil.which(tool, path=SBIN)


class Netns:
    """A throwaway network namespace, deleted on exit whatever happens."""

    def __init__(self, ip: str) -> None:
        self.ip, self.name = ip, f"kptui-bench-{os.getpid()}"

    def __enter__(self) -> Self:
        subprocess.run([self.ip, "netns", "add", self.name], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([self.ip, "netns", "del", self.name], check=False)

    def argv(self, cmd: list[str]) -> list[str]:
        """``cmd`` run inside the namespace (``ip netns exec`` execs it, so wait4 sees the tool itself)."""
        return [self.ip, "netns", "exec", self.name, *cmd]


def measure(label: str, argv: list[str], stdin: Path | None, repeat: int, env: dict[str, str] | None = None,
            cwd: Path | None = None, check_json: bool = False) -> tuple[Measure, Run | None]:
    """One warm-up run (not counted), then ``repeat`` timed runs; returns the failed run if any."""
    m = Measure(label)
    for i in range(repeat + 1):
        r = run_measured(argv, stdin, env, cwd)
        if r.rc != 0:
            return m, r
        if check_json and i == 0:
            json.loads(r.stdout)  # raises ValueError if kptui printed something else
        if i:
            m.walls.append(r.wall)
            m.rss.append(r.rss_mb)
        print(f"  {label:<34} run {i}{' (warm-up)' if i == 0 else ''}: {r.wall:7.3f} s  {r.rss_mb:7.1f} MB",
              file=sys.stderr)
    return m, None


def kptui_available(cmd: list[str], env: dict[str, str]) -> str:
    """Empty string if ``CMD summary --help`` works, else the reason it does not."""
    try:
        r = subprocess.run([*cmd, "summary", "--help"], check=False, capture_output=True, env=env, cwd=REPO,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if r.returncode != 0:
        return f"`{shlex.join(cmd)} summary --help` exited {r.returncode}:\n{tail(r.stderr or r.stdout, 6)}"
    return ""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(dump_info: str, measures: list[Measure], repeat: int) -> dict[str, object]:
    """Print the result table; return the figures as a dict."""
    print(f"\n{dump_info}\n{repeat} timed runs each after one warm-up; wall time of the whole process\n")
    print(f"{'':<36}{'median':>9}{'min':>9}{'peak RSS':>11}")
    res: dict[str, object] = {}
    for m in measures:
        if m.skipped:
            print(f"{m.label:<36}{'SKIPPED':>9}   {m.skipped.strip().splitlines()[-1].strip()}")
            res[m.label] = {"skipped": m.skipped}
            continue
        print(f"{m.label:<36}{m.median:>8.3f}s{m.best:>8.3f}s{max(m.rss):>8.1f} MB")
        res[m.label] = {"median_s": m.median, "min_s": m.best, "runs_s": m.walls, "peak_rss_mb": max(m.rss)}
    ref, kp = measures[0], measures[-1]
    if not kp.skipped:
        ratio, ratio_min = kp.median / ref.median, kp.best / ref.best
        rss = max(kp.rss)
        print(f"\nratio kptui / iptables-legacy-restore: {ratio:.2f} (median), {ratio_min:.2f} (min)"
              f"   target <= {RATIO_TARGET:.1f}, aim {RATIO_AIM:.1f}: {verdict(ratio <= RATIO_TARGET)}"
              f"{' (aim met)' if ratio <= RATIO_AIM else ''}")
        print(f"kptui peak RSS: {rss:.1f} MB   target <= {RSS_TARGET_MB:.0f} MB: "
              f"{verdict(rss <= RSS_TARGET_MB)}")
        res.update(ratio_median=ratio, ratio_min=ratio_min, ratio_pass=ratio <= RATIO_TARGET,
                   rss_pass=rss <= RSS_TARGET_MB)
    else:
        print("\nkptui figures unavailable: ratio and RSS targets not evaluated.")
    return res


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=5000, help="generated service ports (default 5000)")
    ap.add_argument("--endpoints", type=int, default=10, help="endpoints per service (default 10)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per command (default 5)")
    ap.add_argument("--keep", action="store_true", help="write the dump to benchmarks/out/ and keep it")
    ap.add_argument("--no-comments", action="store_true", help="kube-proxy large-cluster mode dump")
    ap.add_argument("--seed", type=int, default=0, help="generator seed")
    ap.add_argument("--dump", type=Path, help="benchmark this existing dump instead of generating one")
    ap.add_argument("--no-nft", action="store_true", help="skip the iptables-nft-restore reference")
    ap.add_argument("--kptui", default=f"{shlex.quote(sys.executable)} -m kptui",
                    help="command that runs kptui (default: this python -m kptui, from the repo)")
    ap.add_argument("--results", type=Path, help="also write the figures as JSON to this file")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error("--repeat must be >= 1")

    if os.geteuid() != 0:
        print("bench_parse.py must run as root: the reference (iptables-legacy-restore --test) runs in a "
              "throwaway network namespace created with `ip netns add`.\n"
              f"  sudo {shlex.quote(sys.executable)} {' '.join(map(shlex.quote, sys.argv))}", file=sys.stderr)
        return 2
    tools = {t: which(t) for t in ("ip", "iptables-legacy-restore", "iptables-nft-restore")}
    if a.no_nft:
        tools.pop("iptables-nft-restore")
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        print(f"missing tools: {', '.join(missing)} (Debian: apt-get install iproute2 iptables)",
              file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="kptui-bench-") as tmp:
        if a.dump:
            dump = a.dump.resolve()
            with open(dump, "rb") as fh:
                lines, size = sum(1 for _ in fh), dump.stat().st_size
            info = f"dump {dump}: {lines:,} lines, {size / 1e6:.1f} MB"
        else:
            outdir = HERE / "out" if a.keep else Path(tmp)
            outdir.mkdir(parents=True, exist_ok=True)
            dump = outdir / f"dump-{a.services}x{a.endpoints}{'-nocomments' if a.no_comments else ''}.txt"
            t0 = time.perf_counter()
            lines, size = gen_dump.write_dump(str(dump), a.services, a.endpoints, seed=a.seed,
                                              comments=not a.no_comments)
            info = (f"generated {a.services} service ports x {a.endpoints} endpoints (+4 system): "
                    f"{lines:,} lines, "
                    f"{size / 1e6:.1f} MB in {time.perf_counter() - t0:.2f} s -> {dump}")
        print(info, file=sys.stderr)

        measures: list[Measure] = []
        failed = False
        with Netns(str(tools["ip"])) as ns:
            refs = [("iptables-legacy-restore --test", "iptables-legacy-restore")]
            if not a.no_nft:
                refs.append(("iptables-nft-restore --test", "iptables-nft-restore"))
            for label, tool in refs:
                m, bad = measure(label, ns.argv([str(tools[tool]), "--test"]), dump, a.repeat)
                if bad:
                    print(f"\n{label} REJECTED the dump (exit {bad.rc}):\n{tail(bad.stderr)}",
                          file=sys.stderr)
                    return 1
                measures.append(m)

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        cmd = shlex.split(a.kptui)
        label = "kptui summary --json"
        why = kptui_available(cmd, env)
        if why:
            print(f"\nkptui is not runnable yet, skipping it: {why}", file=sys.stderr)
            measures.append(Measure(label, skipped=why))
        else:
            try:
                m, bad = measure(label, [*cmd, "summary", str(dump), "--json"], None, a.repeat, env, REPO,
                                 check_json=True)
            except ValueError as exc:
                print(f"\n{label} did not print JSON: {exc}", file=sys.stderr)
                m, bad, failed = Measure(label, skipped="output is not JSON"), None, True
            if bad:
                print(f"\n{label} FAILED (exit {bad.rc}):\n{tail(bad.stderr)}", file=sys.stderr)
                m, failed = Measure(label, skipped=f"failed, exit {bad.rc}"), True
            measures.append(m)

        res = report(info, measures, a.repeat)
        if a.results:
            a.results.write_text(json.dumps({"dump": info, **res}, indent=2) + "\n")
        if a.keep and not a.dump:
            print(f"\ndump kept: {dump}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
