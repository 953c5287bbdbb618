"""The explorer's IPVS pieces, as data: tree sections and their lazy children, detail texts, presets."""

from __future__ import annotations

from pathlib import Path

from kptui.engine import parse_ruleset
from kptui.engine.ipvs import ipvs_context
from kptui.engine.ipvs.present import (
    node_addresses,
    presets,
    service_detail,
    set_detail,
    tree_children,
    tree_sections,
)
from kptui.engine.packet import Packet

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
NODE = ipvs_context((SAMPLES / "ipvs-mode.ipset").read_text(), (SAMPLES / "ipvs-mode.ipvsadm").read_text(),
                    ipset_source="ipvs-mode.ipset", ipvs_source="ipvs-mode.ipvsadm")  # fmt: skip
RS = parse_ruleset((SAMPLES / "ipvs-mode.rules").read_text())


def test_tree_sections_and_lazy_children() -> None:
    sets, ipvs = tree_sections(NODE)
    assert (sets.label, ipvs.label) == ("ipsets (17)", "IPVS virtual services (24)") and sets.expandable
    names = tree_children(NODE, sets)
    cip = next(e for e in names if e.key == "KUBE-CLUSTER-IP")
    assert cip.label == "KUBE-CLUSTER-IP  hash:ip,port  11 members" and cip.expandable
    empty = next(e for e in names if e.key == "KUBE-EXTERNAL-IP-LOCAL")
    assert not empty.expandable and tree_children(NODE, empty) == []
    assert "10.96.0.1,tcp:443" in [e.label for e in tree_children(NODE, cip)]
    services = tree_children(NODE, ipvs)
    web = next(e for e in services if e.key == "TCP 10.96.10.20:80")
    assert web.label == "TCP 10.96.10.20:80  rr  3 real servers"
    assert [e.label for e in tree_children(NODE, web)] == [
        "-> 10.244.1.11:8080 Masq weight 1 (share 1/2)", "-> 10.244.1.12:8080 Masq weight 1 (share 1/2)",
        "-> 10.244.2.13:8080 Masq weight 0 (draining)"]
    cart = next(e for e in services if e.key == "TCP 10.96.60.10:80")
    assert "persistent 10800" in cart.label
    assert tree_sections(ipvs_context()) == []


def test_set_detail_names_the_rules_that_match_it() -> None:
    text = set_detail(NODE, "KUBE-CLUSTER-IP", RS)
    assert text.startswith("kube-proxy's ipset KUBE-CLUSTER-IP (hash:ip,port): every service's cluster IP")
    assert "matched by 3 rules:" in text and "nat/KUBE-SERVICES:3" in text and "filter/KUBE-IPVS-FILTER:2" in text
    assert "members (11):" in text and "  10.96.0.1,tcp:443" in text
    assert "not in the ipsets given" in set_detail(NODE, "NOPE")


def test_service_detail() -> None:
    text = service_detail(NODE, "TCP 10.96.10.20:80")
    assert "line " in text and "ipvs-mode.ipvsadm" in text
    assert "10.244.2.13:8080  Masq  weight 0  draining" in text and "share 1/2" in text
    assert "Not checked against a kernel here" in text
    assert "ICMP port unreachable" in service_detail(NODE, "TCP 10.96.40.10:80")
    assert "persistent 10800 s" in service_detail(NODE, "TCP 10.96.60.10:80")


def test_presets_make_valid_packets() -> None:
    assert node_addresses(NODE) == ["10.0.0.2", "10.244.1.1"]
    got = presets(NODE, "TCP 10.96.10.20:80", pod_source="10.244.1.5")
    assert [p.label for p in got] == ["pod → TCP 10.96.10.20:80", "outside → TCP 10.96.10.20:80",
                                      "node → TCP 10.96.10.20:80"]  # fmt: skip
    for p in got:
        f = p.fields
        Packet(f["src"], f["dst"], f["proto"], dport=int(f["dport"]), origin=f["origin"])  # validates
    assert got[2].fields["src"] == "10.96.10.20"  # the node's own connection leaves from the local address
    assert presets(NODE, "TCP 9.9.9.9:1") == []
