"""Live mode against real netfilter, in namespaces these tests create (tools/netlab.py) and delete again.

The node namespace gets the clusterip scenario's kube-proxy rules (samples/scenarios.py: default/web:http
10.96.10.20:80 → 10.244.1.11, 10.244.1.12 (local pods) and 10.244.2.13 (owned by the outside host), kube-dns,
the API server on the node), loaded with iptables-nft-restore. kptui runs as a separate process with
``--netns``, exactly as a user would; the host's own rules are never touched.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.trace_commands import trace_commands
from samples.build_samples import Topology, build_topology
from samples.scenarios import BY_NAME, Scenario
from tools.kubegen import Endpoint, generate
from tools.netlab import Lab, Probe

from ..node_state import FAKE_KUBE_PROXY

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
WEB_IP, WEB_PORT = "10.96.10.20", 80
WEB_RULE = '"default/web:http cluster IP"'


@dataclass
class Node:
    lab: Lab
    topo: Topology
    scenario: Scenario
    rules: str

    @property
    def ns(self) -> str:
        return self.lab.node

    def connect(self, n: int, *, sport: int | None = None) -> list[Any]:
        probes = [Probe("tcp", WEB_IP, WEB_PORT, None, sport, 0.5) for _ in range(n)]
        return self.lab.probe(self.topo.client, probes)

    def load(self, text: str) -> None:
        self.lab.load_rules(text)


@pytest.fixture(scope="module")
def node(live_kernel_ok: None) -> Iterator[Node]:
    sc = BY_NAME["clusterip"]
    with Lab("klive") as lab:
        lab.sysctl(lab.node, "net.ipv4.icmp_ratelimit", "0")
        topo = build_topology(lab, sc)
        rules = generate(sc.services, sc.node, sc.layout).render()
        lab.load_rules(rules)
        yield Node(lab, topo, sc, rules)


def kptui(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "kptui", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    if check:
        assert proc.returncode == 0, f"kptui {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return proc


def test_summary_live_matches_what_iptables_nft_save_prints(node: Node) -> None:
    s = json.loads(kptui("summary", "--live", "--json", "--netns", node.ns).stdout)
    saved = parse_ruleset(node.lab.save_rules(), source="saved")
    assert s["backend"] == "nf_tables" and s["family"] == "ipv4"
    assert s["total_rules"] == saved.rule_count > 50
    assert s["total_chains"] == sum(len(t.chains) for t in saved.tables.values())
    assert {t["name"]: (t["chains"], t["rules"]) for t in s["tables"]} == {
        name: (len(t.chains), t.rule_count) for name, t in saved.tables.items()}
    assert s["capture"]["netns"] == node.ns and s["capture"]["backends"]["legacy"]["rules"] == 0
    n = s["node"]
    assert n["uplink"] == "eth0" and "10.0.0.2" in n["addresses"] and "10.244.1.1" in n["addresses"]
    assert n["pod_cidrs"] == ["10.244.0.0/16"]  # pods routed one by one: only the rules' detector names a CIDR
    assert any("routed one by one" in note for note in n["notes"])
    six = kptui("summary", "--live", "-6", "--json", "--netns", node.ns)
    s6 = json.loads(six.stdout)  # the scenario has no IPv6 rules: an empty ruleset, and it says so
    assert s6["total_rules"] == 0 and s6["capture"]["family"] == "ipv6"
    assert any("no ipv6 iptables rules" in w["message"] for w in s6["warnings"])


def rule_delta(doc: dict[str, Any], table: str, chain: str, needle: str) -> tuple[int, int]:
    for c in doc["chains"]:
        if c["table"] == table and c["chain"] == chain:
            for r in c["rules"]:
                if needle in r["rule"]:
                    return r["packets"], r["bytes"]
    return 0, 0


def test_deltas_between_two_captures_are_exact(node: Node, tmp_path: Path) -> None:
    a, b = tmp_path / "a.kptui", tmp_path / "b.kptui"
    kptui("capture", "-o", str(a), "--netns", node.ns, "--no-conntrack")
    results = node.connect(7)
    assert all(r.ok for r in results), results
    kptui("capture", "-o", str(b), "--netns", node.ns, "--no-conntrack")
    doc = json.loads(kptui("deltas", str(a), str(b), "--json").stdout)
    # nat sees the first packet of a connection only: 7 connections, 7 SYNs of 60 bytes
    assert rule_delta(doc, "nat", "KUBE-SERVICES", WEB_RULE) == (7, 7 * 60)
    seps = sum(r["packets"] for c in doc["chains"] if c["chain"].startswith("KUBE-SEP-") for r in c["rules"]
               if "DNAT" in r["rule"] and ":8080" in r["rule"])  # fmt: skip
    assert seps == 7
    assert rule_delta(doc, "nat", "KUBE-SVC-CDGGSHYLG3RE2FKL", "KUBE-MARK-MASQ") == (0, 0)  # from a pod: no masq
    assert rule_delta(doc, "filter", "FORWARD", '"kubernetes service portals"') == (7, 7 * 60)
    # kptui's own footprint: capture a asked kube-proxy's /proxyMode on 127.0.0.1 once (after reading the rules)
    assert rule_delta(doc, "nat", "KUBE-SERVICES", "nodeports")[0] == 1
    # each connection once (issue 10: it was counted at KUBE-SERVICES, SVC → SEP and the SEP DNAT, 21 packets)
    web = next(s for s in doc["services"] if s["service"] == "default/web:http")
    assert (web["packets"], web["bytes"], web["table"]) == (7, 7 * 60, "nat")
    svc = next(c for c in doc["chains"] if c["chain"] == "KUBE-SVC-CDGGSHYLG3RE2FKL")
    assert (svc["packets"], svc["exact"]) == (7, True)
    assert doc["seconds"] and doc["seconds"] > 0 and doc["vanished"] == [] and doc["appeared"] == []


def test_a_bundle_reopens_with_its_node_context_and_traces_like_the_kernel(node: Node, tmp_path: Path) -> None:
    bundle = tmp_path / "node.kptui"
    kptui("capture", "-o", str(bundle), "--netns", node.ns)
    live = json.loads(kptui("summary", "--live", "--json", "--netns", node.ns).stdout)
    offline = json.loads(kptui("summary", str(bundle), "--json").stdout)
    assert offline["node"] == live["node"] and offline["total_rules"] == live["total_rules"]
    assert offline["capture"]["origin"] == "bundle" and offline["capture"]["format_version"] == 2  # kptui capture writes format 2
    trace = json.loads(kptui("trace", str(bundle), "--src", "10.0.0.1", "--dst", WEB_IP, "--dport", str(WEB_PORT),
                             "--from", "external", "--json").stdout)  # fmt: skip
    remote = [p for p in trace["paths"] if p["endpoint"] == "10.244.2.13:8080"]
    assert remote and all(p["masquerade"] and p["final"]["src"] == "10.0.0.2" for p in remote)
    # the kernel agrees: from outside, the remote endpoint (the outside host itself) sees the node's address
    for _ in range(40):
        r = node.lab.probe(node.topo.outside, [Probe("tcp", WEB_IP, WEB_PORT, "10.0.0.1", None, 0.5)])[0]
        if r.served and r.served[0] == "10.244.2.13":
            assert r.peer is not None and r.peer[0] == "10.0.0.2"
            break
    else:
        pytest.fail("40 connections from outside never reached the remote endpoint")


def test_top_once_shows_the_hot_rule(node: Node) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kptui", "top", "--once", "--interval", "2", "--netns", node.ns],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            node.connect(3)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    rules = out.split("RULE", 1)[1]
    hot = next(line for line in rules.splitlines() if WEB_RULE in line)
    assert hot.split()[0].startswith("+") and int(hot.split()[0][1:]) > 0
    assert f"live (netns {node.ns})" in out and "last read" in out


def test_proxy_mode_is_read_inside_the_namespace(node: Node) -> None:
    server = node.lab.spawn(node.ns, ["python3", "-c", FAKE_KUBE_PROXY], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "READY"
        s = json.loads(kptui("summary", "--live", "--json", "--netns", node.ns).stdout)
        assert s["capture"]["proxy_mode"] == "iptables" and s["capture"]["proxy_mode_error"] is None
    finally:
        node.lab.stop_and_forget(server)
    s = json.loads(kptui("summary", "--live", "--json", "--netns", node.ns).stdout)
    assert s["capture"]["proxy_mode"] is None and "not reachable" in s["capture"]["proxy_mode_error"]


def test_the_printed_trace_commands_work_and_clean_up(node: Node) -> None:
    sport = 45111
    cmds = trace_commands(src=node.topo.sc.net.client_pod_ip, dst=WEB_IP, sport=sport, dport=WEB_PORT,
                          netns=node.ns)  # fmt: skip
    monitor = subprocess.Popen(["stdbuf", "-oL", *cmds.monitor], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(monitor.stdout or ()), daemon=True)
    reader.start()
    try:
        time.sleep(0.3)
        for argv in cmds.insert:
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
        assert node.connect(1, sport=sport)[0].ok
        time.sleep(1.0)
    finally:
        for argv in cmds.remove:
            subprocess.run(argv, check=False, capture_output=True, timeout=30)
        monitor.terminate()
        monitor.wait(timeout=10)
        reader.join(timeout=5)
    text = "".join(lines)
    assert "TRACE:" in text and "nat:KUBE-SERVICES" in text and f"SPORT={sport}" in text, text[-2000:]
    raw = node.lab.save_rules(counters=False)
    assert "kptui-trace" not in raw  # the remove step removed exactly what the insert added


def test_conntrack_live_flags_flows_to_a_removed_endpoint(node: Node) -> None:
    only_first = [dataclasses.replace(s, endpoints=[Endpoint("10.244.1.11", 8080, True)]) if s.name == "web" else s
                  for s in node.scenario.services]  # fmt: skip
    without = [dataclasses.replace(s, endpoints=[Endpoint("10.244.1.12", 8080, True)]) if s.name == "web" else s
               for s in node.scenario.services]  # fmt: skip
    try:
        node.load(generate(only_first, node.scenario.node, node.scenario.layout).render())
        node.lab.flush_conntrack()  # forget the earlier tests' flows (in the lab's node namespace only)
        assert all(r.ok for r in node.connect(3))
        ok = kptui("conntrack", "--netns", node.ns, "--service", "default/web", "--json", check=False)
        assert ok.returncode == 0, ok.stderr
        doc = json.loads(ok.stdout)
        assert doc["stale"] == 0 and any(e["target"] == "10.244.1.11:8080" for e in doc["entries"])
        node.load(generate(without, node.scenario.node, node.scenario.layout).render())
        stale = kptui("conntrack", "--netns", node.ns, "--service", "default/web", "--json", check=False)
        assert stale.returncode == 1, stale.stderr
        doc = json.loads(stale.stdout)
        flagged = [e for e in doc["entries"] if e["status"] == "stale"]
        assert len(flagged) == 3 and all(e["target"] == "10.244.1.11:8080" for e in flagged)
        text = kptui("conntrack", "--netns", node.ns, check=False).stdout
        assert "STALE" in text and "conntrack -D -p tcp --orig-dst 10.96.10.20 --orig-port-dst 80" in text
    finally:
        node.load(node.rules)


def test_the_explorer_reads_the_namespace_and_watch_counts_connections_exactly(node: Node) -> None:
    """The app through Pilot, on the live rules of the test's namespace (the real LiveReader, read-only): the
    rules are iptables-nft-save's, the node context comes from the namespace, and after 4 connections the
    watch refresh shows exactly +4 on the service's KUBE-SERVICES rule since watching started."""
    import asyncio

    from kptui.node.live import LiveReader
    from kptui.ui.app import make_app
    from kptui.ui.hot_rules import hot_rows
    from kptui.ui.main_screen import MainScreen

    saved = node.lab.save_rules(counters=False)
    expected = parse_ruleset(saved)
    reader = LiveReader(node.ns, "ipv4", None)
    app = make_app(reader=reader, watch=0.2, origin=f"live node, network namespace {node.ns}",
                   env={"KPTUI_CLIPBOARD": "osc52"})  # fmt: skip

    async def drive() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(1500):
                if "painted" in app.timings:
                    break
                await pilot.pause(0.02)
            assert app.watcher is not None
            app.watcher.paused = True  # nothing is read while the connections run (a read under way ends)
            for _ in range(1500):
                # settled: no read under way, and the screen shown is the latest read's, mounted and refreshed
                # (a read that was under way at the pause refreshes the screen a moment later)
                screen, last = app.main_screen, app.watcher.state.last
                if (not app.watcher.reading and screen is not None and screen.ready and app.screen is screen
                        and last is not None and screen.ruleset is last.ruleset
                        and screen.builder.value("node_ips")):  # filled after the screen's first refresh
                    break
                await pilot.pause(0.02)
            assert isinstance(screen, MainScreen) and app.ruleset is not None
            assert {t: len(tab.chains) for t, tab in app.ruleset.tables.items()} == {
                t: len(tab.chains) for t, tab in expected.tables.items()}
            assert app.ruleset.rule_count == expected.rule_count
            assert app.node is not None and "10.0.0.2" in app.node.addresses
            assert "10.0.0.2" in screen.builder.value("node_ips").split(", ")  # the namespace's own address
            await asyncio.to_thread(lambda: [r.ok for r in node.connect(4)])
            reads = app.watcher.state.reads
            screen.chains.chain_tree.focus()
            await pilot.press("w")  # resume: the next read comes at once
            for _ in range(1500):
                last = app.watcher.state.last
                if app.watcher.state.reads > reads and last is not None and screen.ruleset is last.ruleset:
                    break
                await pilot.pause(0.02)
            assert app.watcher.state.reads > reads, "the watch never read again"
            # since watching started, not the last interval: on a loaded machine another read can come
            # before this line runs (its interval saw nothing new)
            rows = [r for r in hot_rows(app.watcher, app.insights, since_start=True)
                    if r.loc.chain == "KUBE-SERVICES" and r.loc.table == "nat" and WEB_RULE in r.text]
            assert [r.total for r in rows] == [4]
            await pilot.press("q")

    asyncio.run(drive())
