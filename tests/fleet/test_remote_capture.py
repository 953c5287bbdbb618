"""A fleet capture through the stand-in kubectl and ssh (which check every argument kptui passes and run the
commands in the namespace playing the node) gives the bundles a local capture of the same node gives; it only
reads; every debug pod is gone afterwards; the manifest says how each part was obtained."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from kptui.node.bundle import decode_bundle
from kptui.node.parts import Collection

from .cluster import NODES
from .conftest import CONTEXT, IMAGE, NAMESPACE, Captures
from .readonly import READ_ONLY

pytestmark = pytest.mark.kernel


def _zero_counters(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: ({"packets": 0, "bytes": 0} if k == "counter" and isinstance(v, dict) else _zero_counters(v))
                for k, v in doc.items()}  # fmt: skip
    if isinstance(doc, list):
        return [_zero_counters(v) for v in doc]
    return doc


def normal(name: str, data: bytes) -> object:
    """A member without what changes from one read to the next: dates and counters in dumps and in the nft
    ruleset, conntrack timeouts, and the capture's own /proxyMode connections in the conntrack table."""
    text = data.decode()
    if name.startswith("rules/"):
        lines = [ln for ln in text.splitlines() if not ln.startswith("# ")]
        return [re.sub(r"^\[\d+:\d+\] ", "", re.sub(r"^(:\S+ \S+) \[\d+:\d+\]", r"\1", ln)) for ln in lines]
    if name == "nft/ruleset.json":
        return _zero_counters(json.loads(text))
    if name.startswith("conntrack/"):
        return sorted(re.sub(r"^(\S+ +\d+) \d+", r"\1 0", ln) for ln in text.splitlines() if "dport=10249" not in ln)
    return data


def bundle(path: Path) -> Collection:
    return decode_bundle(path.read_bytes(), source=str(path))


@pytest.mark.parametrize("node", NODES)
def test_remote_bundles_equal_the_local_capture(captures: Captures, node: str) -> None:
    local = bundle(captures.local / f"{node}.kptui")
    for how in ("kubectl", "ssh"):
        remote = bundle(getattr(captures, how) / f"{node}.kptui")
        assert [a.name for a in remote.artifacts] == [a.name for a in local.artifacts], how
        for r, l in zip(remote.artifacts, local.artifacts, strict=True):
            assert (r.kind, r.family, r.backend, r.status, r.error) == (l.kind, l.family, l.backend, l.status,
                                                                        l.error), (how, r.name)  # fmt: skip
            # the same command, except the sysctls: read in-process here, by a grep over /proc/sys there
            assert r.command == l.command or r.kind == "sysctl" and r.command[0] == "grep", (how, r.name)
            assert normal(r.name, r.data) == normal(l.name, l.data), (how, r.name)
        for key in ("hostname", "kernel", "proxy_mode", "iptables_version", "format_version"):
            assert remote.facts[key] == local.facts[key], (how, key)
        assert remote.facts["node_name"] == node and remote.facts["netns"] is None
    assert bundle(captures.kubectl / f"{node}.kptui").facts["proxy_mode"] == ("nftables" if node == "d" else "iptables")


def test_the_remote_captures_only_read(captures: Captures) -> None:
    for node in NODES:
        assert captures.after[node] == captures.before[node], f"a capture changed node {node}"
    problems = [e for e in captures.log if e["problem"]]
    assert problems == [], problems  # every argument list was the contract's
    assert captures.pods_left == [], "debug pods left behind"
    run: set[tuple[str, ...]] = set()
    for e in captures.log:
        argv = e["argv"]
        if e["prog"] == "kubectl" and "exec" in argv:
            run.add(tuple(argv[argv.index("--") + 3:]))  # after -- chroot /host
        elif e["prog"] == "ssh":
            run.add(tuple(argv[-1].replace("'", "").split()[2:]))
    assert run <= READ_ONLY and ("iptables-nft-save", "-c") in run and ("nft", "-j", "list", "ruleset") in run
    creates = [e["argv"] for e in captures.log if e["prog"] == "kubectl" and "debug" in e["argv"]]
    deletes = [e["argv"] for e in captures.log if e["prog"] == "kubectl" and "delete" in e["argv"]]
    assert len(creates) == len(deletes) == len(NODES)
    assert all(a[:2] == [f"--context={CONTEXT}", f"--namespace={NAMESPACE}"] for a in creates + deletes)


def test_the_manifest_says_how_each_part_was_obtained(captures: Captures) -> None:
    col = bundle(captures.kubectl / "a.kptui")
    remote = col.facts["remote"]
    assert remote["transport"] == "kubectl" and remote["node"] == "a" and remote["image"] == IMAGE
    assert remote["pod"].startswith("node-debugger-a-") and remote["tools"] == "host"
    steps = {s["step"]: s for s in remote["steps"]}
    assert steps["create"]["status"] == 0 and steps["wait"]["status"] == 0 and steps["delete"]["status"] == 0
    rules = next(a for a in col.artifacts if a.name == "rules/iptables-nft-save.rules")
    assert list(rules.via) == ["kubectl", f"--context={CONTEXT}", f"--namespace={NAMESPACE}", "exec", remote["pod"],
                               "--container=kptui", "--", "chroot", "/host", "iptables-nft-save", "-c"]
    sysctl = next(a for a in col.artifacts if a.kind == "sysctl")
    grep = next(c for c in READ_ONLY if c[0] == "grep")
    assert sysctl.command == grep and sysctl.via[-len(grep) - 2:] == ("chroot", "/host", *grep)
    reads = {tuple(r["command"]): r for r in remote["reads"]}  # what a local capture reads in-process
    assert set(reads) == {c for c in READ_ONLY if c[0] in ("uname", "ls", "grep", "curl")}
    assert all(r["status"] in (0, 2) and r["via"][:4] == ["kubectl", f"--context={CONTEXT}",
                                                          f"--namespace={NAMESPACE}", "exec"] for r in reads.values())
    ssh = bundle(captures.ssh / "e.kptui")
    assert ssh.facts["remote"]["transport"] == "ssh" and ssh.facts["remote"]["target"] == "root@node-e"
    nft = next(a for a in ssh.artifacts if a.name == "nft/ruleset.json")
    assert nft.via[-2:] == ("root@node-e", "sudo -n nft -j list ruleset")
    local = bundle(captures.local / "a.kptui")
    assert all(a.via == () for a in local.artifacts) and "remote" not in local.facts


def test_the_fleet_index_and_the_files(captures: Captures) -> None:
    for how in ("kubectl", "ssh"):
        index = json.loads((getattr(captures, how) / "fleet.json").read_text())
        assert index["format"] == "kptui-fleet" and index["transport"] == how and not index["interrupted"]
        assert [e["name"] for e in index["nodes"]] == list(NODES)
        for e in index["nodes"]:
            assert e["status"] == "ok" and e["error"] is None, e
            path = getattr(captures, how) / e["file"]
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "5 of 5 nodes captured" in captures.stderr[how]
    t = captures.seconds
    print(f"\nFLEET CAPTURE of 5 nodes (stand-ins, --parallel 5): kubectl {t['kubectl']:.1f} s, ssh {t['ssh']:.1f} s; "
          f"5 local captures one after the other {t['local']:.1f} s ({t['local'] / 5:.2f} s per node)")
