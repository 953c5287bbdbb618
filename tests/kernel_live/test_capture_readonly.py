"""A capture changes nothing on the node, and holds what the node has: proven in a network namespace these tests
create (tools/netlab.py) holding iptables rules (iptables-nft), an nft table of its own, ipsets, and sysctls set
inside the namespace only (never on the host). ``nft list ruleset``, ``ipset save``, ``iptables-nft-save`` and
the sysctls are compared before and after ``kptui capture`` (run as a separate process, as a user would).
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kptui.node.bundle import decode_bundle
from samples.build_samples import build_topology
from samples.scenarios import BY_NAME
from tools.kubegen import generate
from tools.netlab import Lab

from ..node_state import READ_SYSCTLS, undated

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
NFT_TABLE = """table inet kptcapture {
    set allowed {
        type ipv4_addr
        elements = { 192.0.2.1, 192.0.2.2 }
    }
    chain input {
        type filter hook input priority 10; policy accept;
        ip saddr @allowed counter accept
    }
}
"""
IPSETS = """create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-CLUSTER-IP 10.96.10.20,tcp:80
add KUBE-CLUSTER-IP 10.96.0.10,udp:53
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add KUBE-LOOP-BACK 10.244.1.11,tcp:8080,10.244.1.11
"""
# Set inside the node namespace only (net.* sysctls are per network namespace).
SYSCTLS = {"net.ipv4.conf.all.rp_filter": "2", "net.ipv4.conf.eth0.rp_filter": "1",
           "net.ipv4.conf.eth0.route_localnet": "1", "net.ipv6.conf.all.forwarding": "0"}  # fmt: skip


def kptui(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "kptui", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, f"kptui {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return proc


def state(lab: Lab) -> dict[str, str]:
    """What a capture must not change: tables, chains, rules, sets and their elements, ipsets, sysctls. Counter
    values are left out (``nft -s``, ``-save`` without ``-c``): the capture's one request, kube-proxy's
    /proxyMode on 127.0.0.1:10249, is a packet through the namespace's own rules and counts there."""
    ns = lab.node
    return {
        "nft list ruleset": lab.exec(ns, ["nft", "-s", "list", "ruleset"]).stdout,
        "ipset save": lab.exec(ns, ["ipset", "save"]).stdout,
        "iptables-nft-save": undated(lab.save_rules(counters=False)),
        "ip6tables-nft-save": undated(lab.save_rules(counters=False, family=6)),
        "sysctls": lab.exec(ns, ["python3", "-c", READ_SYSCTLS]).stdout,
    }


@pytest.fixture(scope="module")
def lab(live_kernel_ok: None) -> Iterator[Lab]:
    sc = BY_NAME["clusterip"]
    with Lab("kcapture") as lab:
        build_topology(lab, sc)  # the node's eth0 (uplink), pod veths, routes
        lab.load_rules(generate(sc.services, sc.node, sc.layout).render())
        lab.exec(lab.node, ["nft", "-f", "-"], input=NFT_TABLE)
        lab.load_ipsets(IPSETS)
        for key, value in SYSCTLS.items():
            lab.sysctl(lab.node, key, value)
        yield lab


def test_a_capture_changes_nothing_and_holds_every_part(lab: Lab, tmp_path: Path) -> None:
    before = state(lab)
    assert "table inet kptcapture" in before["nft list ruleset"] and "KUBE-LOOP-BACK" in before["ipset save"]
    out = tmp_path / "node.kptui"
    kptui("capture", "--netns", lab.node, "-o", str(out))
    after = state(lab)
    for what in before:
        assert after[what] == before[what], f"{what} changed by kptui capture"

    col = decode_bundle(out.read_bytes())
    assert col.facts["format_version"] == 2 and col.facts["netns"] == lab.node
    arts = {a.name: a for a in col.artifacts}
    nft = arts["nft/ruleset.json"]
    assert nft.ok and nft.command == ("nft", "-j", "list", "ruleset") and nft.format == "json"
    tables = [i["table"]["name"] for i in json.loads(nft.data)["nftables"] if "table" in i]
    assert "kptcapture" in tables and "nat" in tables  # the whole ruleset, iptables-nft's tables included
    ipset = arts["ipset/ipset-save.txt"]
    assert ipset.ok and ipset.data.decode() == before["ipset save"]
    sysctls = json.loads(arts["node/sysctls.json"].data)
    independent = json.loads(before["sysctls"])
    assert sysctls == independent  # kptui's reader and a separate one, both inside the namespace, agree
    for key, value in SYSCTLS.items():
        assert sysctls[key] == value, key
    assert sysctls["net.ipv4.ip_forward"] == "1"  # the lab's node forwards
    rules = arts["rules/iptables-nft-save.rules"]
    assert rules.ok and rules.data.count(b"-A ") == before["iptables-nft-save"].count("-A ")
    for name in ("node/ip-rule-ipv4.json", "node/ip-rule-ipv6.json"):
        assert arts[name].ok and any(r.get("table") == "main" for r in json.loads(arts[name].data)), name
    ipvs = arts["ipvs/ipvsadm-save.txt"]
    assert ipvs.ok or (ipvs.error or "").startswith(("not run", "ipvsadm is not installed")), ipvs.error
    for a in col.artifacts:  # every part with its command, start time and duration
        assert a.command and a.started is not None and a.seconds >= 0, a.name
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(out.read_bytes()))) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    entry = next(e for e in manifest["artifacts"] if e["name"] == "nft/ruleset.json")
    assert entry["command"] == ["nft", "-j", "list", "ruleset"] and entry["status"] == 0 and "started" in entry


def test_summary_of_the_capture_and_of_the_live_namespace_list_the_parts(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "node.kptui"
    kptui("capture", "--netns", lab.node, "-o", str(out))
    parts = json.loads(kptui("summary", str(out), "--json").stdout)["parts"]
    assert "inet kptcapture" in parts["nft_ruleset"]["tables"] and parts["ipsets"]["sets"] == 2
    assert parts["sysctls"]["net.ipv4.conf.eth0.route_localnet"] == "1"
    live = json.loads(kptui("summary", "--live", "--netns", lab.node, "--json").stdout)["parts"]
    assert live["sysctls"] == parts["sysctls"]  # the live read reads the sysctls too (no command: /proc/sys)
    text = kptui("summary", str(out)).stdout
    assert "nft ruleset:" in text and "kptcapture" in text and "ipsets: 2 sets" in text
