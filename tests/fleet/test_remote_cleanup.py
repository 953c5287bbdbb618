"""The debug pod is deleted whatever happens: a pod that never gets ready, kubectl debug failing after it created
the pod, a command that fails, a node over its time limit, ctrl-c (SIGINT) or SIGTERM while a command runs and
while the pod is being created, in a single capture and in a fleet capture. Failures say their cause and the
command that retries the node. The stand-in kubectl keeps a file per pod that exists (tests/fleet/standin.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kptui.node.bundle import decode_bundle

from .cluster import Cluster
from .conftest import CONTEXT, IMAGE, NAMESPACE, ROOT, Standin, kptui, standin_config

pytestmark = pytest.mark.kernel
REMOTE = ("--context", CONTEXT, "--namespace", NAMESPACE, "--image", IMAGE)


def configure(standin: Standin, cluster: Cluster, **node_changes: dict[str, Any]) -> None:
    cfg = standin_config(cluster)
    for node, changes in node_changes.items():
        cfg["nodes"][node].update(changes)
    standin.configure(**cfg)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kptui", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))  # fmt: skip


def wait_for(path_glob: str, state: Path, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not list(state.glob(path_glob)):
        assert time.monotonic() < end, f"{path_glob} never appeared"
        time.sleep(0.05)


def test_a_pod_that_never_gets_ready_is_deleted_and_the_cause_said(standin: Standin, cluster: Cluster,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    configure(standin, cluster, a={"wait_fails": True})
    r = kptui("capture", "--kubectl", "node/a", *REMOTE, "-o", str(tmp_path / "a.kptui"), check=False)
    assert r.returncode == 2 and not (tmp_path / "a.kptui").exists()
    assert "was not ready within" in r.stderr and "ErrImagePull" in r.stderr, r.stderr
    assert standin.pods() == [] and standin.problems() == []
    assert any("delete" in e["argv"] for e in standin.log())


def test_kubectl_debug_failing_after_it_created_the_pod(standin: Standin, cluster: Cluster, tmp_path: Path) -> None:
    configure(standin, cluster, b={"debug_fails": True})
    r = kptui("capture", "--kubectl", "node/b", *REMOTE, "-o", str(tmp_path / "b.kptui"), check=False)
    assert r.returncode == 2 and "kubectl debug node/b failed" in r.stderr, r.stderr
    assert standin.pods() == [] and standin.problems() == []


def test_a_failing_command_is_a_failed_part_and_the_capture_goes_on(standin: Standin, cluster: Cluster,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    configure(standin, cluster, a={"exec_fails": ["conntrack"]})
    r = kptui("capture", "--kubectl", "node/a", *REMOTE, "-o", str(tmp_path / "a.kptui"))
    assert r.returncode == 0, r.stderr
    col = decode_bundle((tmp_path / "a.kptui").read_bytes())
    ct = next(a for a in col.artifacts if a.name == "conntrack/conntrack-ipv4.txt")
    assert ct.error is not None and ct.error.startswith("kubectl exec failed: error: unable to upgrade connection")
    assert next(a for a in col.artifacts if a.name == "rules/iptables-nft-save.rules").ok
    assert standin.pods() == []
    out = kptui("summary", str(tmp_path / "a.kptui"), "--json")
    missing = json.loads(out.stdout)["parts"]["missing"]
    assert any(m["part"] == "conntrack" and "kubectl exec failed" in m["why"] for m in missing)


def test_a_node_over_its_time_limit(standin: Standin, cluster: Cluster, tmp_path: Path) -> None:
    configure(standin, cluster, c={"slow": {"iptables-nft-save": 60}})
    t0 = time.monotonic()
    r = kptui("capture", "--kubectl", "node/c", *REMOTE, "--timeout", "10", "-o", str(tmp_path / "c.kptui"),
              check=False)  # fmt: skip
    assert r.returncode == 2 and time.monotonic() - t0 < 30
    assert "timed out after" in r.stderr or "time limit" in r.stderr, r.stderr
    assert standin.pods() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_while_a_command_runs(standin: Standin, cluster: Cluster, tmp_path: Path, sig: int) -> None:
    configure(standin, cluster, a={"slow": {"conntrack": 60}})
    proc = start("capture", "--kubectl", "node/a", *REMOTE, "-o", str(tmp_path / "a.kptui"))
    wait_for("busy-*-conntrack", standin.state)
    assert len(standin.pods()) == 1
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert standin.pods() == [] and "was deleted" in err, err
    assert not (tmp_path / "a.kptui").exists()


def test_interrupted_while_the_pod_is_created(standin: Standin, cluster: Cluster, tmp_path: Path) -> None:
    """kubectl debug is let finish (its pod's name is needed to delete it), then the pod is deleted."""
    configure(standin, cluster, a={"debug_delay": 2})
    proc = start("capture", "--kubectl", "node/a", *REMOTE, "-o", str(tmp_path / "a.kptui"))
    wait_for("busy-a-debug", standin.state)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    log = standin.log()
    assert any("debug" in e["argv"] for e in log) and any("delete" in e["argv"] for e in log)
    assert not any("exec" in e["argv"] for e in log)  # nothing ran after the interrupt
    assert standin.pods() == [], "the pod created while kptui was interrupted was left behind"


def test_a_fleet_capture_with_failures_lists_causes_and_retries(standin: Standin, cluster: Cluster,
                                                               tmp_path: Path) -> None:  # fmt: skip
    configure(standin, cluster, b={"wait_fails": True}, c={"delete_fails": True})
    out = tmp_path / "fleet"
    r = kptui("fleet", "capture", *REMOTE, "-l", "pool=blue", "--parallel", "3", "-o", str(out), check=False)
    assert r.returncode == 1, r.stderr
    index = json.loads((out / "fleet.json").read_text())
    nodes = {e["name"]: e for e in index["nodes"]}
    assert set(nodes) == {"a", "b", "c", "d"}  # -l pool=blue: e is red
    assert nodes["b"]["status"] == "failed" and "ErrImagePull" in nodes["b"]["error"]
    assert nodes["b"]["retry"] == (f"kptui capture --kubectl node/b --context {CONTEXT} --namespace {NAMESPACE} "
                                   f"--image {IMAGE} -o {out / 'b.kptui'}")  # fmt: skip
    assert nodes["a"]["status"] == nodes["c"]["status"] == "ok" and (out / "a.kptui").exists()
    assert "b: " in r.stderr and "retry: kptui capture --kubectl node/b" in r.stderr
    (left,) = standin.pods()  # c's pod: its delete failed, and kptui says how to delete it
    assert left.startswith("node-debugger-c-") and nodes["c"]["cleanup_error"]
    assert f"kubectl --context={CONTEXT} --namespace={NAMESPACE} delete pod/{left}" in r.stderr
    assert standin.problems() == []


def test_a_fleet_capture_interrupted_deletes_every_pod(standin: Standin, cluster: Cluster, tmp_path: Path) -> None:
    configure(standin, cluster, a={"slow": {"conntrack": 60}}, b={"slow": {"conntrack": 60}})
    out = tmp_path / "fleet"
    proc = start("fleet", "capture", *REMOTE, "--parallel", "2", "-o", str(out))
    end = time.monotonic() + 30
    while len(list(standin.state.glob("busy-*-conntrack"))) < 2:
        assert time.monotonic() < end, "the slow commands never began"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert standin.pods() == [], err
    index = json.loads((out / "fleet.json").read_text())
    assert index["interrupted"] is True
    states = {e["name"]: e["status"] for e in index["nodes"]}
    assert states["a"] == states["b"] == "failed" and set(states.values()) <= {"failed", "not run", "ok"}
    assert all(e["retry"] for e in index["nodes"] if e["status"] != "ok")


def test_the_image_s_tools_and_the_checks_before_anything_runs(standin: Standin, cluster: Cluster,
                                                               tmp_path: Path) -> None:  # fmt: skip
    cfg = standin_config(cluster, tools="image")
    standin.configure(**cfg)
    r = kptui("capture", "--kubectl", "node/b", *REMOTE, "--tools", "image", "-o", str(tmp_path / "b.kptui"))
    assert r.returncode == 0, r.stderr
    execs = [e["argv"] for e in standin.log() if "exec" in e["argv"]]
    assert execs and all("chroot" not in a for a in execs) and standin.problems() == []
    assert decode_bundle((tmp_path / "b.kptui").read_bytes()).facts["remote"]["tools"] == "image"
    before = len(standin.log())
    for bad in (["--kubectl", "node/b;reboot"], ["--kubectl", "node/B"], ["--kubectl", "node/b", "--context=-x"],
                ["--kubectl", "node/b", "--image", "a b"], ["--ssh=-oProxyCommand=id"],
                ["--kubectl", "node/b", "--namespace", "$(id)"]):  # fmt: skip
        r = kptui("capture", *bad, "-o", str(tmp_path / "x.kptui"), check=False)
        assert r.returncode == 2 and "kptui: " in r.stderr and "Traceback" not in r.stderr, (bad, r.stderr)
    r = kptui("fleet", "capture", "-l", "env in (a,b)", "-o", str(tmp_path / "f"), check=False)
    assert r.returncode == 2 and "equality-based" in r.stderr
    assert len(standin.log()) == before, "a refused value still reached kubectl or ssh"


def test_ssh_failures_say_their_cause(standin: Standin, cluster: Cluster, tmp_path: Path) -> None:
    cfg = standin_config(cluster)
    cfg["ssh"]["hosts"]["root@node-b"]["password"] = True
    standin.configure(**cfg)
    r = kptui("capture", "--ssh", "root@node-x", "-o", str(tmp_path / "x.kptui"), check=False)
    assert r.returncode == 2 and "ssh could not reach root@node-x: ssh: Could not resolve hostname" in r.stderr
    hosts = tmp_path / "hosts"
    hosts.write_text("root@node-a a\nroot@node-b b  # asks for a password\nroot@node-x x\n")
    r = kptui("fleet", "capture", "--ssh-hosts", str(hosts), "-o", str(tmp_path / "f"), check=False)
    assert r.returncode == 1, r.stderr
    index = {e["name"]: e for e in json.loads((tmp_path / "f" / "fleet.json").read_text())["nodes"]}
    assert index["a"]["status"] == "ok"
    assert "passwordless sudo" in index["b"]["error"] and "Could not resolve hostname" in index["x"]["error"]
    assert index["x"]["retry"] == f"kptui capture --ssh root@node-x -o {tmp_path / 'f' / 'x.kptui'}"
    hosts.write_text("root@node-a a\nroot@node-b a\n")
    r = kptui("fleet", "capture", "--ssh-hosts", str(hosts), "-o", str(tmp_path / "g"), check=False)
    assert r.returncode == 2 and f"{hosts}:2: node a is listed twice" in r.stderr
