"""Live mode on a node in kube-proxy's nftables mode, in namespaces these tests create and delete (tools/netlab_nft.py).

The node namespace gets the nft-nodeport-local scenario's kube-proxy nftables ruleset (tools/kubegen_nft.py, ``nft
-f``) and no iptables rules at all. kptui reads it as a user would (``--netns``, a separate process) or through
:func:`kptui.node.collect.load_live`; what it reads must be what ``nft list ruleset`` shows, its services those of the
listing, and nothing may change on the node. A counter rule of a table of the test's own shows ``top`` watching nft
counters; kube-proxy's own rules have none, and ``top`` says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kptui.engine.kube.nft_build import build_nft_service_index
from kptui.engine.kube.report import service_to_dict
from kptui.engine.nft import parse_nft
from kptui.node.collect import load_live
from kptui.node.live import LiveReader
from samples.build_samples import Topology, build_topology
from samples.scenarios import NFT_BY_NAME
from tools.kubegen_nft import generate_nft
from tools.netlab import Probe
from tools.netlab_nft import NftLab

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = ("10.96.30.10", 80)
COUNTING = "table inet kptcount {\n\tchain in {\n\t\ttype filter hook input priority 10; policy accept;\n" \
           "\t\ttcp dport 7999 counter\n\t}\n}\n"  # fmt: skip


@dataclass
class Node:
    lab: NftLab
    topo: Topology

    @property
    def ns(self) -> str:
        return self.lab.node


@pytest.fixture(scope="module")
def node(live_kernel_ok: None) -> Iterator[Node]:
    sc = NFT_BY_NAME["nft-nodeport-local"]
    with NftLab("klnft") as lab:
        lab.sysctl(lab.node, "net.ipv4.icmp_ratelimit", "0")
        topo = build_topology(lab, sc)
        lab.load_nft(generate_nft(sc.services, sc.node).render())
        yield Node(lab, topo)


def kptui(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "kptui", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    assert proc.returncode == 0, f"kptui {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return proc


def lineless(rs: object) -> list[dict[str, object]]:
    """The services of a listing, blocking rules without their line (a JSON listing has none)."""
    out = [service_to_dict(s) for s in build_nft_service_index(rs)]  # type: ignore[arg-type]
    for s in out:
        for b in s["blocking_rules"]:  # type: ignore[attr-defined]
            b["line"] = None
    return out


def test_load_live_reads_the_nft_ruleset_read_only(node: Node) -> None:
    before = node.lab.list_ruleset()
    snap = load_live(netns=node.ns)
    nft = snap.nft_ruleset
    assert nft is not None and nft.form == "json" and nft.table("ip", "kube-proxy") is not None
    assert snap.ruleset.rule_count == 0  # iptables-nft-save ran and found nothing: an nftables-mode node
    listed = parse_nft(before)
    assert lineless(nft) == lineless(listed) and len(lineless(nft)) == 2
    assert node.lab.list_ruleset() == before  # read-only
    assert any(r.command == "nft -j list ruleset" and r.ok for r in snap.provenance)


def test_summary_and_trace_live(node: Node) -> None:
    s = json.loads(kptui("summary", "--live", "--json", "--netns", node.ns).stdout)
    assert s["kube_modes"]["mode"] == "nftables" and s["nft"]["kube"]["era"] == "1.33+"
    assert s["parts"]["nft_ruleset"]["tables"] == ["ip kube-proxy"]
    t = json.loads(kptui("trace", "--live", "--netns", node.ns, "--src", "10.244.1.100", "--dst", CHECKOUT[0],
                         "--dport", str(CHECKOUT[1]), "--json").stdout)  # fmt: skip
    assert {p["endpoint"] for p in t["paths"]} == {"10.244.1.31:8080", "10.244.2.32:8080"}
    assert sum(p["probability"] for p in t["paths"]) == pytest.approx(1.0)


def test_top_says_there_are_no_counters_and_watches_the_ones_there_are(node: Node) -> None:
    reader = LiveReader(node.ns, "ipv4", None)
    first = reader()
    assert first.nft is not None and "ip kube-proxy" in first.ruleset.tables and not first.snapshot.has_counters
    node.lab.load_nft(COUNTING)
    try:
        reader = LiveReader(node.ns, "ipv4", None)
        a = reader()
        assert "inet kptcount" in a.ruleset.tables and a.snapshot.has_counters
        for _ in range(3):
            node.lab.probe(node.topo.outside, [Probe("tcp", "10.0.0.2", 7999, None, None, 0.3)])
        b = reader()
        from kptui.engine.counters import diff_counters

        d = diff_counters(a.snapshot, b.snapshot, 1.0)
        moved = [x for x in d.rules if x.key.table == "inet kptcount"]
        assert moved and moved[0].packets >= 3, d.rules
        proc = subprocess.Popen([sys.executable, "-m", "kptui", "top", "--once", "--interval", "1", "--netns", node.ns],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            node.lab.probe(node.topo.outside, [Probe("tcp", "10.0.0.2", 7999, None, None, 0.2)])
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "nftables" in out.splitlines()[0] and "inet kptcount/in" in out
    finally:
        node.lab.exec(node.ns, ["nft", "delete", "table", "inet", "kptcount"])
    out = kptui("top", "--once", "--interval", "0.5", "--netns", node.ns).stdout
    assert "kube-proxy's nftables mode writes none" in out and "neither snapshot has rule counters" in out
