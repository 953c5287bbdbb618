"""`conntrack -L` parsing, service frontends and endpoints from the rules, stale entries, `kptui conntrack`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kptui.cli import main
from kptui.engine.conntrack import dnat_endpoints, match_entries, parse_conntrack, service_frontends

from .conftest import SAMPLES, parse

CLUSTERIP = parse((SAMPLES / "clusterip.rules").read_text(), "clusterip.rules")
NODEPORT = parse((SAMPLES / "nodeport-cluster.rules").read_text(), "nodeport-cluster.rules")
NOEP = parse((SAMPLES / "no-endpoints.rules").read_text(), "no-endpoints.rules")

LINES = """\
tcp      6 431999 ESTABLISHED src=10.244.1.100 dst=10.96.10.20 sport=20001 dport=80 src=10.244.1.11 dst=10.244.1.100 sport=8080 dport=20001 [ASSURED] mark=0 use=1
udp      17 29 src=10.244.1.100 dst=10.96.0.10 sport=20002 dport=53 [UNREPLIED] src=10.244.9.9 dst=10.244.1.100 sport=53 dport=20002 mark=0 zone=3 use=1
udp      17 175 src=10.244.1.100 dst=10.96.0.10 sport=20003 dport=53 src=10.96.0.10 dst=10.244.1.100 sport=53 dport=20003 [ASSURED] mark=16384 use=1
ipv4     2 tcp      6 119 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=43004 dport=30080 src=10.244.2.22 dst=10.0.0.2 sport=8080 dport=43004 [ASSURED] mark=0 use=1
icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=30 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=30 mark=0 use=1
tcp      6 86399 ESTABLISHED src=fd00::1 dst=fd00:10:96::1 sport=1 dport=443 packets=3 bytes=180 src=fd00:10:244:1::5 dst=fd00::1 sport=6443 dport=1 packets=2 bytes=120 [ASSURED] mark=0 zone-orig=1 use=1
unknown  2 599 src=10.0.0.1 dst=224.0.0.1 [UNREPLIED] src=224.0.0.1 dst=10.0.0.1 mark=0 use=1
sctp     132 431996 ESTABLISHED src=10.0.0.1 dst=10.96.0.50 sport=5000 dport=38412 src=10.244.1.50 dst=10.0.0.1 sport=38412 dport=5000 [ASSURED] mark=0 use=1

this is not an entry
conntrack v1.4.7 (conntrack-tools): 8 flow entries have been shown.
"""


def test_parse_every_kind_of_line() -> None:
    t = parse_conntrack(LINES)
    assert len(t.entries) == 8 and [ln for ln, _ in t.skipped] == [10, 11]
    tcp, udp_stale, udp_plain, np, icmp, v6, igmp, sctp = t.entries
    assert (tcp.proto, tcp.state, tcp.timeout, tcp.flags, tcp.mark) == ("tcp", "ESTABLISHED", 431999,
                                                                       frozenset({"ASSURED"}), 0)  # fmt: skip
    assert tcp.orig.dport == 80 and tcp.reply.src == "10.244.1.11" and tcp.dnat and tcp.target == "10.244.1.11:8080"
    assert udp_stale.flags == frozenset({"UNREPLIED"}) and udp_stale.zone == 3 and udp_stale.state is None
    assert not udp_plain.dnat and udp_plain.mark == 16384
    assert np.family == "ipv4" and np.state == "TIME_WAIT" and np.dnat
    assert icmp.orig.sport is None and not icmp.dnat
    assert v6.family == "ipv6" and v6.zone == 1 and v6.target == "[fd00:10:244:1::5]:6443"
    assert igmp.proto == "2" and igmp.timeout == 599
    assert sctp.proto == "sctp" and sctp.dnat
    assert "⇒ 10.244.1.11:8080" in tcp.describe()


def test_frontends_and_endpoints_from_the_rules() -> None:
    fes = {(f.service, f.kind, f.ip, f.port, f.proto) for f in service_frontends(CLUSTERIP)}
    assert ("default/web:http", "cluster IP", "10.96.10.20", 80, "tcp") in fes
    assert ("kube-system/kube-dns:dns", "cluster IP", "10.96.0.10", 53, "udp") in fes
    eps = dnat_endpoints(CLUSTERIP)
    assert eps[("tcp", "10.244.1.11", 8080)] == ("default/web:http",)
    assert eps[("udp", "10.244.2.3", 53)] == ("kube-system/kube-dns:dns",)
    np = [f for f in service_frontends(NODEPORT) if f.kind == "nodeport"]
    assert {(f.service, f.ip, f.port) for f in np} >= {("shop/frontend:http", None, 30080)}
    broken = [f for f in service_frontends(NOEP) if f.service == "default/broken:http"]
    assert broken and not any(f.has_endpoints for f in broken)


def test_stale_and_healthy_entries() -> None:
    t = parse_conntrack(LINES)
    ms = {m.entry.line: m for m in match_entries(t.entries, CLUSTERIP, node_addresses=["10.0.0.2"])}
    assert ms[1].status == "ok" and ms[1].service == "default/web:http"
    assert ms[2].status == "stale" and "10.244.9.9:53 is no endpoint" in ms[2].reason
    assert ms[3].status == "not-dnat" and ms[3].service == "kube-system/kube-dns:dns"
    assert 4 not in ms and 5 not in ms  # not a service address of these rules


def test_filters_by_service_and_destination() -> None:
    t = parse_conntrack(LINES)
    assert {m.entry.line for m in match_entries(t.entries, CLUSTERIP, service="kube-system/kube-dns")} == {2, 3}
    assert {m.entry.line for m in match_entries(t.entries, CLUSTERIP, service="default/web:http")} == {1}
    assert {m.entry.line for m in match_entries(t.entries, CLUSTERIP, dst=("10.96.0.10", 53))} == {2, 3}


def test_nodeport_entries_match_node_addresses() -> None:
    t = parse_conntrack(LINES)
    (m,) = match_entries(t.entries, NODEPORT, node_addresses=["10.0.0.2"], service="shop/frontend")
    assert m.entry.line == 4 and m.frontend is not None and m.frontend.kind == "nodeport"
    assert m.status in ("ok", "stale")


def test_without_rules_every_dnat_entry_is_listed_as_unknown() -> None:
    ms = match_entries(parse_conntrack(LINES).entries, None)
    assert {m.status for m in ms} == {"unknown"} and 1 in {m.entry.line for m in ms}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    ct = tmp_path / "ct.txt"
    ct.write_text(LINES)
    return ct, SAMPLES / "clusterip.rules"


def test_cli_conntrack(files: tuple[Path, Path]) -> None:
    ct, rules = files
    code, out, _ = run("conntrack", str(ct), "--rules", str(rules))
    assert code == 1  # stale entries found
    assert "STALE" in out and "kube-system/kube-dns:dns" in out
    assert "conntrack -D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --reply-src 10.244.9.9 -w 3" in out
    code, out, _ = run("conntrack", str(ct), "--rules", str(rules), "--service", "default/web", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "kptui.conntrack/1" and doc["stale"] == 0
    assert [e["service"] for e in doc["entries"]] == ["default/web:http"]
    code, out, _ = run("conntrack", str(ct))
    assert code == 0 and "no rules" in out
    code, _, err = run("conntrack", str(ct), "--rules", str(rules), "--service", "nope/none")
    assert code == 2 and "no service 'nope/none'" in err
    code, _, err = run("conntrack", str(ct), "--dst", "10.96.0.10")
    assert code == 2 and "IP:PORT" in err
    code, _, err = run("conntrack", str(rules))
    assert code == 2 and "no conntrack entries" in err


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.rules")), ids=lambda p: p.name)
def test_the_rule_scan_and_the_service_index_agree(path: Path) -> None:
    from kptui.cli.conntrack import index_view

    rs = parse(path.read_text(), path.name)
    view = index_view(rs)
    assert view is not None
    frontends, endpoints = view
    key = lambda f: (f.service, f.ip, f.port, f.proto)
    assert {key(f) for f in frontends} == {key(f) for f in service_frontends(rs)}
    assert set(endpoints) == set(dnat_endpoints(rs))


def test_without_rules_no_entry_is_called_a_service_entry(files: tuple[Path, Path]) -> None:
    """10.13: without rules kptui cannot know services: it does not count 'service entries' and then list them all
    under '(no service)'; it says what it lists (DNATed entries) and that staleness was not checked."""
    ct, _rules = files
    code, out, _ = run("conntrack", str(ct))
    head, *rest = out.splitlines()
    assert code == 0 and "service entr" not in out and "(no service)" not in out
    assert head.endswith("8 entries, no rules: services and endpoints unknown (give --rules DUMP, or a bundle); "
                         "5 DNATed entries, staleness not checked")  # fmt: skip
    assert "(services unknown without rules): 5 entries" in rest
    doc = json.loads(run("conntrack", str(ct), "--json")[1])
    assert doc["rules"] is None and doc["listed"] == 5 and doc["stale"] == 0
    assert {(e["service"], e["status"]) for e in doc["entries"]} == {(None, "unknown")}
