"""The snapshot layer: every source becomes one NodeSnapshot, told apart by content (never by file name); parts a
source lacks are absent; a format-1 bundle still opens; format 2 holds the new parts and summary lists them."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from kptui.cli import main
from kptui.live.runner import ALLOWED, CommandResult, SysctlRead
from kptui.node import collect as collect_mod
from kptui.node.bundle import FORMAT_VERSION, decode_bundle, encode_bundle, load_bundle
from kptui.node.parts import Artifact, Collection
from kptui.node.sniff import identify
from kptui.node.sources import open_source, read_source

from .conftest import ROOT, SAMPLES
from .test_bundle import ADDR, RULES, collection

FORMAT1 = ROOT / "tests" / "data" / "format1-capture.kptui"
NFT_JSON = json.dumps({"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
    {"table": {"family": "ip", "name": "kube-proxy", "handle": 1}},
    {"chain": {"family": "ip", "table": "kube-proxy", "name": "nat-prerouting", "handle": 1, "type": "nat",
               "hook": "prerouting", "prio": -100, "policy": "accept"}},
]}).encode()  # fmt: skip
NFT_TEXT = b"""# Warning: table ip filter is managed by iptables-nft, do not touch!

table ip kube-proxy {
\tcomment "rules for kube-proxy"
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
}
"""
CT = b"tcp      6 431999 ESTABLISHED src=10.244.1.100 dst=10.96.10.20 sport=20001 dport=80 src=10.244.9.9 dst=10.244.1.100 sport=8080 dport=20001 [ASSURED] mark=0 use=1\n"
SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2", "net.ipv4.conf.eth0.route_localnet": "1"}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def format2() -> Collection:
    """The test bundle's collection with every part format 2 adds."""
    base = collection()
    more = (
        Artifact("node/ip-rule-ipv4.json", "ip-rule", b'[{"priority":0,"src":"all","table":"local"},'
                 b'{"priority":32766,"src":"all","table":"main"}]', "ipv4", command=("ip", "-j", "-4", "rule", "show"),
                 started=1748865600.5),
        Artifact("node/sysctls.json", "sysctl", json.dumps(SYSCTLS).encode(), command=("read /proc/sys",), seconds=0.001),
        Artifact("nft/ruleset.json", "nft-ruleset", NFT_JSON, command=("nft", "-j", "list", "ruleset"), format="json",
                 seconds=0.02, started=1748865600.6),
        Artifact("ipset/ipset-save.txt", "ipset", b"create KUBE-CLUSTER-IP hash:ip,port family inet\n"
                 b"add KUBE-CLUSTER-IP 10.96.0.1,tcp:443\n", command=("ipset", "save")),
        Artifact("ipvs/ipvsadm-save.txt", "ipvs", b"", command=("ipvsadm", "-S", "-n"), status=None,
                 error="not run: the kernel has no ip_vs module loaded"),
    )  # fmt: skip
    return Collection(base.artifacts + more, base.facts)


# -- recognised by content ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "kind"), [
    (NFT_JSON, "nft-json"), (b'  {\n "nftables": []}', "nft-json"), (NFT_TEXT, "nft-text"), (CT, "conntrack"),
    (RULES, "rules"), (b"-P INPUT ACCEPT\n-A INPUT -j ACCEPT\n", "rules"), (b"", "rules"), (gzip.compress(RULES), "gzip"),
    (b"table: not nft\n", "rules"), (b"# table ip x\n*filter\n", "rules"),
])  # fmt: skip
def test_content_tells_the_kind(data: bytes, kind: str) -> None:
    assert identify(data) == kind


@pytest.mark.parametrize("name", ["ruleset.rules", "dump.json", "x"])
@pytest.mark.parametrize(("data", "fmt"), [(NFT_JSON, "json"), (NFT_TEXT, "text"), (gzip.compress(NFT_JSON), "json")])
def test_an_nft_listing_is_held_raw_read_by_summary_and_trace_and_named_by_the_others(
        tmp_path: Path, name: str, data: bytes, fmt: str) -> None:  # fmt: skip
    path = tmp_path / name
    path.write_bytes(data)
    snap = open_source(str(path), need_rules=False)
    assert snap.nft is not None and snap.nft.format == fmt and snap.nft.data == (gzip.decompress(data)
                                                                                 if data[:2] == b"\x1f\x8b" else data)
    assert snap.rules is None and snap.xtables == () and snap.ipsets is None and snap.sysctls is None
    code, out, err = run("summary", str(path))
    assert code == 0 and "table ip kube-proxy" in out and "nat-prerouting" in out, err
    code, out, err = run("trace", str(path), "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "80")
    assert code == 0 and "kube-proxy nat-prerouting" in out, err
    code, out, err = run("services", str(path))  # kube-proxy's nftables table, without a service yet
    assert code == 0 and out.startswith("no services") and err == "", err
    code, out, err = run("lint", str(path))  # the text form's "jump services" names a chain the listing lacks
    dangling = fmt == "text"
    assert code == (1 if dangling else 0) and ("[dangling-jump]" in out) == dangling and "Traceback" not in err, err
    code, out, err = run("deltas", str(path), str(path))
    assert code == 2 and out == "" and "Traceback" not in err, err
    assert err == (f"kptui: {path}: holds an nft listing and no iptables rules: this command reads iptables "
                   "rules; kptui summary and kptui trace read nft listings too\n")


def test_a_conntrack_table_given_for_rules_is_named(tmp_path: Path) -> None:
    path = tmp_path / "node.rules"
    path.write_bytes(CT)
    code, _, err = run("summary", str(path))
    assert code == 2 and "holds a conntrack table (conntrack -L output), not rules" in err
    code, out, _ = run("conntrack", str(path))  # which reads it
    assert code == 0 and "1 entry" in out


def test_a_bundle_through_standard_input(tmp_path: Path) -> None:
    bundle = encode_bundle(format2(), mtime=1748865600)
    proc = subprocess.run([sys.executable, "-m", "kptui", "summary", "-", "--json"], input=bundle, capture_output=True,
                          cwd=ROOT, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["capture"]["origin"] == "bundle" and doc["source"].startswith("<stdin>: ")
    assert doc["parts"]["nft_ruleset"]["tables"] == ["ip kube-proxy"]


def test_a_file_snapshot_has_only_its_dump(tmp_path: Path) -> None:
    path = tmp_path / "node.kptui"  # a dump with a bundle's name is a dump
    path.write_bytes(gzip.compress(RULES))
    snap = open_source(str(path))
    assert snap.origin == "file" and not snap.captured and snap.rules is not None and snap.rules.data == RULES
    assert snap.ruleset.rule_count == RULES.count(b"-A ") and snap.ruleset.source == str(path)
    absent = (snap.nft, snap.ipsets, snap.ipvs, snap.addresses, snap.sysctls, snap.proxy_mode, snap.facts)
    assert absent == (None,) * 7 and not snap.routes and not snap.ip_rules and not snap.conntrack_tables
    assert snap.node.addresses == () and snap.warnings == ()
    (read,) = snap.provenance
    assert read.part == "rules" and read.name == str(path) and read.command == "" and read.started is not None


# -- format 2 ----------------------------------------------------------------------------------------------
def test_a_format2_bundle_holds_every_part_with_its_provenance() -> None:
    bundle = encode_bundle(format2(), mtime=1748865600)
    col = decode_bundle(bundle)
    assert col.facts["format_version"] == FORMAT_VERSION == 2
    snap = load_bundle(bundle, source="n.kptui")
    assert snap.nft is not None and snap.nft.data == NFT_JSON and snap.nft.format == "json"
    assert snap.ipsets is not None and b"KUBE-CLUSTER-IP" in snap.ipsets.data
    assert snap.ipvs is None  # not run: absent, not an empty table
    assert dict(snap.sysctls or {}) == SYSCTLS
    assert set(snap.ip_rules) == {"ipv4"} and set(snap.routes) == {"ipv4", "ipv6"}
    assert set(snap.conntrack_tables) == {"ipv4"}  # the ipv6 conntrack read failed at capture time
    assert snap.addresses is not None and snap.addresses.data == ADDR
    assert [(x.family, x.backend) for x in snap.xtables] == [("ipv4", "nf_tables"), ("ipv4", "legacy"),
                                                             ("ipv6", "nf_tables")]  # fmt: skip
    runs = {r.name: r for r in snap.provenance}
    assert runs["nft/ruleset.json"].command == "nft -j list ruleset" and runs["nft/ruleset.json"].started == 1748865600.6
    assert runs["nft/ruleset.json"].seconds == 0.02 and runs["nft/ruleset.json"].ok
    missing = {r.name: r.error for r in snap.missing()}
    assert missing["ipvs/ipvsadm-save.txt"].startswith("not run") and "conntrack/conntrack-ipv6.txt" in missing


def test_summary_of_a_format2_bundle_lists_the_new_parts(tmp_path: Path) -> None:
    path = tmp_path / "node.kptui"
    path.write_bytes(encode_bundle(format2(), mtime=1748865600))
    code, out, err = run("summary", str(path), "--json")
    assert code == 0, err
    parts = json.loads(out)["parts"]
    assert parts["nft_ruleset"] == {"format": "json", "bytes": len(NFT_JSON), "tables": ["ip kube-proxy"]}
    assert parts["ipsets"]["sets"] == 1 and parts["ipvs"] is None and parts["sysctls"] == SYSCTLS
    assert parts["ip_rules"] == {"ipv4": 2} and parts["routes"] == {"ipv4": 1, "ipv6": 1}
    assert [x["in_use"] for x in parts["xtables"]] == [True, False, False]
    assert {m["part"] for m in parts["missing"]} == {"ipvs", "conntrack"}
    code, out, _ = run("summary", str(path))
    assert code == 0 and "nft ruleset: 1 table (ip kube-proxy), json" in out and "ipsets: 1 set" in out
    assert "IPVS: not run: the kernel has no ip_vs module loaded" in out and "ipv4.ip_forward 1" in out


def test_a_format1_bundle_still_opens() -> None:
    code, out, err = run("summary", str(FORMAT1), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["capture"]["format_version"] == 1 and doc["capture"]["origin"] == "bundle"
    assert doc["node"]["addresses"][0] == "10.0.0.2" and doc["node"]["uplink"] == "veth-a"
    assert doc["total_rules"] == (SAMPLES / "clusterip.rules").read_bytes().count(b"-A ")
    parts = doc["parts"]
    assert parts["nft_ruleset"] is None and parts["sysctls"] is None and parts["ip_rules"] == {}  # format 1 lacks them
    assert parts["ipsets"] is None and parts["ipvs"] is None and parts["missing"] == []
    code, out, _ = run("trace", str(FORMAT1), "--src", "10.0.0.1", "--dst", "10.96.10.20", "--dport", "80",
                       "--from", "external", "--json")  # fmt: skip
    remote = [p for p in json.loads(out)["paths"] if p["endpoint"] == "10.244.2.13:8080"]
    assert code == 0 and remote and all(p["masquerade_as"] == "10.0.0.2" for p in remote)  # the bundle's node


# -- capture writes format 2 ---------------------------------------------------------------------------------
def fake_runner(calls: list[tuple[str, ...]]) -> Any:
    def run_cmd(argv: Sequence[str], *, netns: str | None = None, timeout: float = 60.0) -> CommandResult:
        logical = tuple(argv)
        assert logical in ALLOWED
        calls.append(logical)
        out = {"iptables-nft-save": RULES, "nft": NFT_JSON if "-j" in argv else b"table ip nat\n",
               "ipset": b"create S hash:ip family inet\n", "ipvsadm": b"-A -t 10.96.0.1:443 -s rr\n",
               "iptables": b"iptables v1.8.9 (nf_tables)\n"}.get(argv[0], b"[]")  # fmt: skip
        return CommandResult(logical, netns, 0, out, "", 0.01, 0.005)

    return run_cmd


def test_capture_writes_format2_with_every_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(collect_mod, "run_readonly", fake_runner(calls))
    monkeypatch.setattr(collect_mod, "legacy_loaded", lambda family: False)
    monkeypatch.setattr(collect_mod, "module_loaded", lambda name: True)
    monkeypatch.setattr(collect_mod, "fetch_proxy_mode", lambda ns: ("iptables", None))
    monkeypatch.setattr(collect_mod, "read_sysctls", lambda ns: SysctlRead(dict(SYSCTLS), 0.001))
    out = tmp_path / "b.kptui"
    code, _, err = run("capture", "-o", str(out))
    assert code == 0, err
    col = decode_bundle(out.read_bytes())
    assert col.facts["format_version"] == 2
    by_name = {a.name: a for a in col.artifacts}
    for name, command in (("nft/ruleset.json", ("nft", "-j", "list", "ruleset")), ("ipset/ipset-save.txt", ("ipset", "save")),
                          ("ipvs/ipvsadm-save.txt", ("ipvsadm", "-S", "-n")),
                          ("node/ip-rule-ipv4.json", ("ip", "-j", "-4", "rule", "show")),
                          ("node/ip-rule-ipv6.json", ("ip", "-j", "-6", "rule", "show"))):  # fmt: skip
        a = by_name[name]
        assert a.command == command and a.ok and a.started is not None and a.seconds == 0.01, name
    assert json.loads(by_name["node/sysctls.json"].data) == SYSCTLS and by_name["node/sysctls.json"].ok
    assert by_name["nft/ruleset.json"].format == "json" and by_name["nft/ruleset.json"].data == NFT_JSON
    legacy = by_name["rules/iptables-legacy-save.rules"]
    assert legacy.error and legacy.error.startswith("not run") and ("iptables-legacy-save", "-c") not in calls
    assert "nft ruleset" in err and "ipsets: 1 set" in err and "IPVS: 1 virtual service" in err


def test_capture_does_not_run_tools_that_would_load_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(collect_mod, "run_readonly", fake_runner(calls))
    monkeypatch.setattr(collect_mod, "module_loaded", lambda name: False)
    monkeypatch.setattr(collect_mod, "fetch_proxy_mode", lambda ns: (None, "not asked"))
    col = collect_mod.collect(families=("ipv4",), extras=True, sysctls=lambda ns: SysctlRead({}, 0.0))
    assert not any(c[0] in ("ipset", "ipvsadm") for c in calls)
    by_kind = {a.kind: a for a in col.artifacts}
    assert by_kind["ipset"].error and "ip_set module" in by_kind["ipset"].error
    assert by_kind["ipvs"].error and "ip_vs module" in by_kind["ipvs"].error


def test_the_snapshot_is_frozen_and_shares_nothing_mutable() -> None:
    snap = load_bundle(encode_bundle(format2()))
    with pytest.raises(AttributeError):
        snap.nft = None  # type: ignore[misc]
    for mapping in (snap.routes, snap.ip_rules, snap.conntrack_tables, snap.sysctls, snap.host, snap.backends):
        assert isinstance(mapping, MappingProxyType)


def test_reading_a_bad_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="is a directory"):
        read_source(str(tmp_path))
    code, _, err = run("summary", str(tmp_path / "gone"))
    assert code == 2 and err.startswith("kptui: cannot read ")


def test_a_bundle_without_usable_rules_still_gives_its_conntrack_and_node(tmp_path: Path) -> None:
    base = collection()
    arts = tuple(a for a in base.artifacts if a.kind != "rules") + (
        Artifact("rules/iptables-nft-save.rules", "rules", b"", "ipv4", "nf_tables", ("iptables-nft-save", "-c"),
                 status=4, stderr="Permission denied"),)  # fmt: skip
    path = tmp_path / "b.kptui"
    path.write_bytes(encode_bundle(Collection(arts, base.facts)))
    snap = open_source(str(path), need_rules=False)
    assert snap.rules is None and snap.conntrack == CT and snap.node.addresses[0] == "10.0.0.2"
    code, out, err = run("conntrack", str(path))
    assert code == 0 and "1 entry" in out and "Traceback" not in err
    code, _, err = run("summary", str(path))
    assert code == 2 and "Traceback" not in err and "no ipv4 rules could be read (nf_tables: exit status 4" in err


def test_the_snapshots_routes_and_sysctls_reach_the_trace(tmp_path: Path) -> None:
    """The snapshot is where traces get their node context from: a bundle's sysctls and routes decide the
    kernel's routing hops (here: forwarding off on the node, so a forwarded connection is dropped at routing)."""
    snap = load_bundle(encode_bundle(format2()))
    assert snap.node.routes == (("default", "eth0"),) and dict(snap.node.sysctls) == SYSCTLS
    assert open_source(str(FORMAT1)).node.sysctls == {}  # format 1 did not capture them: unknown
    col = format2()
    off = tuple(Artifact(a.name, a.kind, b'{"net.ipv4.ip_forward": "0"}', command=a.command) if a.kind == "sysctl"
                else a for a in col.artifacts)  # fmt: skip
    for name, arts, dropped in (("on.kptui", col.artifacts, False), ("off.kptui", off, True)):
        path = tmp_path / name
        path.write_bytes(encode_bundle(Collection(arts, col.facts)))
        code, out, err = run("trace", str(path), "--src", "10.0.0.1", "--dst", "10.96.10.20", "--dport", "80",
                             "--from", "external", "--json")  # fmt: skip
        assert code == 0, err
        paths = json.loads(out)["paths"]
        assert paths and all((p["verdict"] == "DROP" and "at routing" in p["summary"]) is dropped for p in paths)
