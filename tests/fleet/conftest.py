"""Fixtures of the fleet tests: the stand-in kubectl and ssh on PATH (tests/fleet/standin.py), and the
five-node cluster of tests/fleet/cluster.py in network namespaces these tests create and delete (kernel
tests: the policy of tests/kernel, skipped loudly or, with KPTUI_REQUIRE_KERNEL=1, failed when they cannot run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.netlab import Lab

from ..kernel_gate import KernelGate
from .cluster import Cluster, build, node_state

HERE = Path(__file__).resolve().parent
IMAGE = "registry.example/tools/netshoot:v1"

GATE = KernelGate(
    "FLEET KERNEL TESTS",
    "They check remote captures (stand-in kubectl and ssh) and the fleet comparison against real netfilter",
    ("ip", "iptables-nft", "iptables-nft-restore", "iptables-nft-save", "nft", "conntrack", "python3", "curl"),
    ("iptables-nft-save",),
    "fleetprobe",
)


@dataclass
class Standin:
    """The stand-ins' state directory, and what the tests read back from it."""

    state: Path
    bin: Path

    def configure(self, **config: Any) -> None:
        base = {"context": None, "namespace": None, "image": IMAGE, "tools": "host", "nodes": {},
                "ssh": {"sudo": True, "hosts": {}}}  # fmt: skip
        (self.state / "config.json").write_text(json.dumps({**base, **config}))

    def log(self) -> list[dict[str, Any]]:
        path = self.state / "log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def problems(self) -> list[str]:
        return [f"{e['prog']} {e['argv']}: {e['problem']}" for e in self.log() if e["problem"]]

    def pods(self) -> list[str]:
        return sorted(p.stem for p in (self.state / "pods").glob("*.json"))


def make_standin(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Standin:
    """``kubectl`` and ``ssh`` on PATH are the stand-ins, for this process and the kptui it starts."""
    state, bindir = tmp / "standin", tmp / "bin"
    (state / "pods").mkdir(parents=True)
    bindir.mkdir()
    for prog in ("kubectl", "ssh"):
        script = bindir / prog
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(HERE.parents[1])!r})\n"
                          f"from tests.fleet.standin import main\nsys.exit(main({prog!r}, sys.argv[1:]))\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    monkeypatch.setenv("KPTUI_STANDIN", str(state))
    s = Standin(state, bindir)
    s.configure()
    return s


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Standin]:
    yield make_standin(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def fleet_kernel_ok() -> Iterator[None]:
    GATE.require()
    yield


@pytest.fixture(scope="session")
def cluster(fleet_kernel_ok: None) -> Iterator[Cluster]:
    with Lab("fleet") as lab:
        yield build(lab)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if GATE.skipped:
        terminalreporter.write_sep("!", "FLEET KERNEL TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(GATE.skipped[0])


CONTEXT, NAMESPACE = "kind-test", "kptui-debug"
ROOT = HERE.parents[1]


def kptui(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """kptui as a separate process, as a user runs it (with the stand-ins on PATH)."""
    proc = subprocess.run([sys.executable, "-m", "kptui", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False, env=dict(os.environ))  # fmt: skip
    if check:
        assert proc.returncode in (0, 1), f"kptui {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return proc


@dataclass
class Captures:
    """The five nodes captured three ways: fleet capture through the stand-in kubectl, through the stand-in ssh,
    and kptui capture --netns on this machine; the nodes' state before and after; how long each took."""

    kubectl: Path
    ssh: Path
    local: Path
    before: dict[str, dict[str, str]]
    after: dict[str, dict[str, str]]
    seconds: dict[str, float]
    log: list[dict[str, Any]]
    pods_left: list[str]
    stderr: dict[str, str]


def standin_config(cluster: Cluster, **extra: Any) -> dict[str, Any]:
    return {"context": CONTEXT, "namespace": NAMESPACE, "image": IMAGE, "tools": "host",
            "nodes": {n: {"netns": ns, "labels": {"pool": "blue" if n != "e" else "red"}}
                      for n, ns in cluster.netns.items()},
            "ssh": {"sudo": True, "hosts": {f"root@node-{n}": {"netns": ns} for n, ns in cluster.netns.items()}},
            **extra}  # fmt: skip


@pytest.fixture(scope="session")
def captures(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Captures]:
    tmp = tmp_path_factory.mktemp("fleet")
    with pytest.MonkeyPatch.context() as mp:
        s = make_standin(tmp, mp)
        s.configure(**standin_config(cluster))
        before = {n: node_state(cluster.lab, ns) for n, ns in cluster.netns.items()}
        seconds, stderr = {}, {}
        t0 = time.perf_counter()
        r = kptui("fleet", "capture", "--context", CONTEXT, "--namespace", NAMESPACE, "--image", IMAGE,
                  "--parallel", "5", "-o", str(tmp / "kubectl"))  # fmt: skip
        seconds["kubectl"], stderr["kubectl"] = time.perf_counter() - t0, r.stderr
        hosts = tmp / "hosts.txt"
        hosts.write_text("# the fleet over ssh\n" + "".join(f"root@node-{n} {n}\n" for n in cluster.netns))
        t0 = time.perf_counter()
        r = kptui("fleet", "capture", "--ssh-hosts", str(hosts), "--parallel", "5", "-o", str(tmp / "ssh"))
        seconds["ssh"], stderr["ssh"] = time.perf_counter() - t0, r.stderr
        (tmp / "local").mkdir()
        t0 = time.perf_counter()
        for n, ns in cluster.netns.items():
            kptui("capture", "--netns", ns, "-o", str(tmp / "local" / f"{n}.kptui"))
        seconds["local"] = time.perf_counter() - t0
        after = {n: node_state(cluster.lab, ns) for n, ns in cluster.netns.items()}
        result = Captures(tmp / "kubectl", tmp / "ssh", tmp / "local", before, after, seconds, s.log(), s.pods(),
                          stderr)  # fmt: skip
    yield result  # PATH and the stand-ins' state are the session's own again
