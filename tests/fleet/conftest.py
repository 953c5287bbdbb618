"""Fixtures of the fleet tests: the stand-in kubectl and ssh on PATH (tests/fleet/standin.py), and the
five-node cluster of tests/fleet/cluster.py in network namespaces these tests create and delete (kernel
tests: the policy of tests/kernel, skipped loudly or, with KPTUI_REQUIRE_KERNEL=1, failed when they cannot run).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.netlab import Lab

from ..kernel_gate import KernelGate
from .cluster import Cluster, build

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


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Standin]:
    """``kubectl`` and ``ssh`` on PATH are the stand-ins, for this process and the kptui it starts."""
    state, bindir = tmp_path / "standin", tmp_path / "bin"
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
    yield s


@pytest.fixture(scope="session")
def fleet_kernel_ok() -> Iterator[None]:
    GATE.require()
    yield


@pytest.fixture(scope="module")
def cluster(fleet_kernel_ok: None) -> Iterator[Cluster]:
    with Lab("fleet") as lab:
        yield build(lab)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if GATE.skipped:
        terminalreporter.write_sep("!", "FLEET KERNEL TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(GATE.skipped[0])
