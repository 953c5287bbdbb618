"""``kptui fleet`` on the five-node capture (tests/fleet/cluster.py): it names the stale node (c), the node in
another mode (d, with its iptables-mode leftovers), the node with another component's rule in front of
kube-proxy's (e), the NodePorts that blackhole per node, the stale conntrack entry; the kubectl and ssh captures
give the same comparison; one packet traced on every node shows where the outcomes part."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Captures, kptui

pytestmark = pytest.mark.kernel


def fleet_json(path: object, *extra: str) -> dict[str, Any]:
    r = kptui("fleet", str(path), "--json", *extra)
    assert r.returncode == 1, r.stderr  # the nodes differ
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def findings(doc: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["code"] == code]


def test_the_comparison_names_the_stale_the_other_mode_and_the_foreign_node(captures: Captures) -> None:
    doc = fleet_json(captures.kubectl)
    assert doc["schema"] == "kptui.fleet/1" and doc["compared"] == ["a", "b", "c", "e"]
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert {n: (v["mode"], v["backend"]) for n, v in nodes.items()} == {
        "a": ("iptables", "nf_tables"), "b": ("iptables", "nf_tables"), "c": ("iptables", "nf_tables"),
        "d": ("nftables", "nft"), "e": ("iptables", "nf_tables")}  # fmt: skip
    assert all(nodes[n]["mode_source"] == "kube-proxy's /proxyMode" for n in nodes)
    assert nodes["c"]["differs"] == 2 and nodes["a"]["sync"] == "in step with the majority"
    assert nodes["d"]["services"] is None and nodes["d"]["services_note"] == "mode nftables (services not compared yet)"
    (stale,) = findings(doc, "stale-node")
    assert stale["nodes"] == ["c"] and stale["severity"] == "error"
    (mode,) = findings(doc, "mode-differs")
    assert mode["nodes"] == ["d"]
    (left,) = findings(doc, "leftovers")
    assert left["nodes"] == ["d"] and "iptables-mode leftovers" in left["detail"]
    (foreign,) = findings(doc, "foreign-in-front")
    assert foreign["nodes"] == ["e"] and "-A FORWARD -p tcp -m tcp --dport 8080 -j DROP" in foreign["detail"]
    assert [f["index"] for f in nodes["e"]["foreign"]] == [1] and nodes["e"]["foreign"][0]["effect"] == "DROP"
    assert all(nodes[n]["foreign"] == [] for n in "abc")
    (ct,) = findings(doc, "stale-conntrack")
    assert ct["nodes"] == ["e"] and nodes["e"]["stale_conntrack"] == 1 and "10.244.8.88:8080" in ct["detail"]


def test_which_service_ports_differ_and_how(captures: Captures) -> None:
    doc = fleet_json(captures.kubectl)
    rows = {r["service"]: r for r in doc["services"]}
    web = rows["default/web:http"]
    (diff,) = web["nodes_differing"]
    assert diff["node"] == "c" and diff["kind"] == "endpoints"
    assert "+10.244.9.99:8080" in diff["what"] and "−10.244.5.15:8080" in diff["what"]
    assert web["endpoints"] == ["10.244.1.11:8080", "10.244.2.12:8080", "10.244.5.15:8080"]
    new = rows["shop/new:http"]
    assert new["nodes_without"] == ["c"] and new["nodes_differing"][0]["kind"] == "missing"
    assert "10.96.80.10:80/tcp" in new["frontends"]
    for same in ("default/kubernetes:https", "shop/frontend:http", "shop/checkout:http", "kube-system/kube-dns:dns"):
        assert rows[same]["nodes_differing"] == [], same


def test_the_nodeports_that_blackhole_per_node(captures: Captures) -> None:
    doc = fleet_json(captures.kubectl)
    rows = {r["service"]: r for r in doc["services"]}
    checkout = rows["shop/checkout:http"]
    assert checkout["external_policy"] == "Local" and checkout["node_port"] == 30090
    assert checkout["local_endpoints"] == {"a": 1, "b": 1, "c": 0, "e": 0}
    assert checkout["blackholes"] == ["c", "e"]
    assert {x["node"]: x["state"] for x in checkout["reach"]} == {"a": "ok", "b": "ok", "c": "drop", "e": "drop"}
    (hole,) = findings(doc, "nodeport-blackhole")
    assert hole["nodes"] == ["c", "e"] and hole["service"] == "shop/checkout:http"
    frontend = {x["node"]: x for x in rows["shop/frontend:http"]["reach"]}
    assert {n: x["state"] for n, x in frontend.items()} == {"a": "ok", "b": "ok", "c": "ok", "e": "drop"}
    assert "DROP at filter/FORWARD:1" in frontend["e"]["detail"] and "traced" in frontend["e"]["detail"]
    (blocked,) = findings(doc, "nodeport-blocked")
    assert blocked["nodes"] == ["e"] and blocked["service"] == "shop/frontend:http"


def test_the_ssh_capture_gives_the_same_comparison(captures: Captures) -> None:
    def essence(doc: dict[str, Any]) -> object:
        for n in doc["nodes"]:
            n.pop("source"), n.pop("captured")
        return doc

    assert essence(fleet_json(captures.ssh)) == essence(fleet_json(captures.kubectl))


def test_the_text_report_and_one_service(captures: Captures) -> None:
    r = kptui("fleet", str(captures.kubectl))
    text = r.stdout
    assert "5 nodes (4 compared), 6 service ports, 2 differ" in text
    assert "c: endpoints +10.244.9.99:8080 −10.244.5.15:8080" in text and "c: missing" in text
    assert "shop/checkout:http  a:1 b:1 c:0 e:0 — NodePort 30090 drops on c, e" in text
    assert "error   stale-node: node c" in text and "mode nftables (services not compared yet)" in text
    one = fleet_json(captures.kubectl, "--service", "default/web")
    assert [s["service"] for s in one["services"]] == ["default/web:http"]
    assert len(one["nodes"]) == 5


def test_one_packet_on_every_node(captures: Captures) -> None:
    r = kptui("fleet", str(captures.kubectl), "--src", "203.0.113.1", "--dst", "node", "--dport", "30080",
              "--from", "external", "--json")  # fmt: skip
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    out = {o["node"]: o for o in doc["outcomes"]}
    for n in "abcd":
        assert out[n]["endpoints"] == ["10.244.1.21:8080", "10.244.2.22:8080"] and out[n]["masquerade"] == "yes", n
        assert out[n]["packet"].startswith("203.0.113.1:40000 → 10.0.0.1")  # each node's own address
    assert out["e"]["endpoints"] == [] and out["e"]["verdicts"] == ["DROP at filter/FORWARD:1"]
    assert doc["differing"] == [{"node": "e", "what": "DROP at filter/FORWARD:1 (the majority reaches 2 endpoints)"}]
    r = kptui("fleet", str(captures.kubectl), "--src", "10.244.1.100", "--dst", "10.96.10.20", "--dport", "80")
    assert "c  to 10.244.1.11:8080, 10.244.2.12:8080, 10.244.9.99:8080" in r.stdout, r.stdout
    assert "c: endpoints +10.244.9.99:8080 −10.244.5.15:8080" in r.stdout
