"""The fleet comparison as pure values (kptui/engine/kube/fleet*.py, kptui/engine/trace_fleet.py): majorities and
what has none, missing and extra service ports, endpoint and share differences, unnamed (IPVS) ports matched by
address, modes and their service builders, leftovers, other components' rules in front of kube-proxy's,
NodePort reachability, one packet on every node. Rules come from the kube-proxy generator (tools/kubegen.py)
parsed as restore input; no kernel needed."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.kube.fleet import compare_fleet, service_key
from kptui.engine.kube.fleet_foreign import foreign_in_front
from kptui.engine.kube.fleet_model import FleetNode, NodeParts
from kptui.engine.kube.fleet_node import SERVICE_BUILDERS, fleet_node
from kptui.engine.kube.fleet_report import fleet_text, fleet_to_dict
from kptui.engine.kube.model import ServicePort
from kptui.engine.nft import parse_nft
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.schedule import Netfilter
from kptui.engine.trace_fleet import TraceTarget, trace_fleet
from tests.fleet.cluster import NODE_IP, iptables_rules

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def first(text: str, table: str, rule: str) -> str:
    """``rule`` (``-A CHAIN …``) as the first rule of its chain in ``table`` of restore input ``text``."""
    head, _, rest = text.partition(f"*{table}\n")
    section, commit, tail = rest.partition("COMMIT\n")
    chain = rule.split()[1]
    lines = section.splitlines(keepends=True)
    at = next((i for i, ln in enumerate(lines) if ln.startswith(f"-A {chain} ")), len(lines))
    decl = [] if any(ln.startswith(f":{chain} ") for ln in lines) else [f":{chain} - [0:0]\n"]
    lines[at:at] = [rule + "\n"]
    return head + f"*{table}\n" + "".join(decl + lines) + commit + tail


def parts(node: str, *, stale: bool = False, extra: str = "", **kw: object) -> NodeParts:
    text = iptables_rules(node, stale=stale)
    if extra:
        text = first(text, "filter", extra)
    rs = parse_ruleset(text, source=f"{node}.rules")
    ctx = NodeContext(addresses=(NODE_IP[node],), interfaces={"eth0": (f"{NODE_IP[node]}/24",)}, uplink="eth0",
                      routes=(("10.0.0.0/24", "eth0"), ("default", "eth0")), sysctls={"net.ipv4.ip_forward": "1"})
    return NodeParts(node, f"{node}.kptui", rs, proxy_mode="iptables", backend="nf_tables",
                     addresses=(NODE_IP[node],), netfilter=Netfilter({"ipv4": rs}), context=ctx,
                     **kw)  # type: ignore[arg-type]


def nodes(*specs: NodeParts) -> list[FleetNode]:
    return [fleet_node(p) for p in specs]


def test_the_stale_node_and_what_differs() -> None:
    report = compare_fleet(nodes(parts("a"), parts("b"), parts("c", stale=True), parts("e")))
    assert report.compared == ("a", "b", "c", "e")
    rows = {r.service: r for r in report.services}
    (d,) = rows["default/web:http"].nodes_differing
    assert (d.node, d.kind) == ("c", "endpoints") and "+10.244.9.99:8080" in d.what and "−10.244.5.15:8080" in d.what
    (m,) = rows["shop/new:http"].nodes_differing
    assert (m.node, m.kind) == ("c", "missing") and rows["shop/new:http"].nodes_without == ("c",)
    row = {r.name: r for r in report.nodes}
    assert row["c"].differs == 2 and "1 missing" in row["c"].sync and row["a"].sync == "in step with the majority"
    codes = {f.code: f for f in report.findings}
    assert codes["stale-node"].nodes == ("c",)
    assert codes["nodeport-blackhole"].nodes == ("c", "e") and codes["nodeport-blackhole"].service == "shop/checkout:http"
    checkout = rows["shop/checkout:http"]
    assert dict(checkout.local_endpoints) == {"a": 1, "b": 1, "c": 0, "e": 0} and checkout.blackholes == ("c", "e")


def test_two_nodes_that_disagree_have_no_majority() -> None:
    report = compare_fleet(nodes(parts("a"), parts("c", stale=True)))
    web = report.service("default/web:http")
    assert web is not None and {d.node for d in web.nodes_differing} == {"c"}
    assert web.nodes_differing[0].kind == "no-majority" and "no majority" in web.majority
    new = report.service("shop/new:http")
    assert new is not None and {d.kind for d in new.nodes_differing} == {"no-majority"}
    assert len(new.nodes_differing) == 2  # said of both: neither side is taken
    assert any("a majority of two is no majority" in n for n in report.notes)
    assert not any(f.code == "stale-node" for f in report.findings)
    assert any(f.code == "no-majority" for f in report.findings)


def test_a_service_on_a_minority_of_nodes_is_extra_there() -> None:
    report = compare_fleet(nodes(parts("a", stale=True), parts("b", stale=True), parts("c")))
    new = report.service("shop/new:http")
    assert new is not None and [(d.node, d.kind) for d in new.nodes_differing] == [("c", "extra")]
    assert "only on 1 of 3 nodes (c)" in new.nodes_differing[0].what


def test_shares_and_settings_differences() -> None:
    base = [fleet_node(parts(n)) for n in ("a", "b", "e")]
    odd = base[2]
    assert odd.services is not None
    services = []
    for sp in odd.services:
        if sp.name == "default/web:http":
            eps = tuple(dataclasses.replace(e, probability=Fraction(1, 2) if i == 0 else Fraction(1, 4))
                        for i, e in enumerate(sp.endpoints))  # fmt: skip
            sp = dataclasses.replace(sp, endpoints=eps)
        if sp.name == "shop/frontend:http":
            sp = dataclasses.replace(sp, node_port=31080)
        services.append(sp)
    report = compare_fleet([base[0], base[1], dataclasses.replace(odd, services=tuple(services))])
    web = report.service("default/web:http")
    assert web is not None and web.nodes_differing[0].kind == "shares"
    assert "10.244.1.11:8080 50.0 % (33.3 %)" in web.nodes_differing[0].what
    front = report.service("shop/frontend:http")
    assert front is not None and "NodePort 31080 (the majority: 30080)" in front.nodes_differing[0].what
    reach = {r.node: r for r in front.reach}
    assert reach["e"].state == "absent" and reach["a"].state == "ok"


def test_an_unnamed_port_joins_the_named_one_by_its_address() -> None:
    a, b, e = (fleet_node(parts(n)) for n in ("a", "b", "e"))
    assert e.services is not None
    unnamed = tuple(dataclasses.replace(sp, name=None, name_source=None) for sp in e.services)  # as IPVS gives them
    report = compare_fleet([a, b, dataclasses.replace(e, services=unnamed)])
    web = report.service("default/web:http")
    assert web is not None and web.nodes_with == ("a", "b", "e") and not web.differs
    sp = unnamed[0]
    assert service_key(sp) == f"{sp.protocol} {sp.cluster_ip}:{sp.port}"


def test_modes_builders_and_leftovers() -> None:
    nft = parse_nft((SAMPLES / "nft-clusterip.nft").read_text(), source="nft-clusterip.nft")
    leftover = parse_ruleset(iptables_rules("d", stale=True), source="d.rules")
    d = NodeParts("d", "d.kptui", leftover, nft, proxy_mode="nftables")
    node = fleet_node(d)
    assert node.mode == "nftables" and node.services is None
    assert node.services_note == "mode nftables (services not compared yet)"
    assert node.leftovers and node.leftovers[0].startswith("iptables-mode leftovers: 5 KUBE-SVC")
    # a builder for the mode plugs in: the node is then compared like any other
    builders = {**SERVICE_BUILDERS, "nftables": lambda p: fleet_node(parts("d")).services or ()}
    plugged = fleet_node(d, builders)
    assert plugged.compared and plugged.services
    # no /proxyMode and rules of two modes: the mode is not guessed
    unsure = fleet_node(dataclasses.replace(d, proxy_mode=None))
    assert unsure.mode is None and "several modes" in (unsure.mode_note or "") and not unsure.compared
    # only one mode's rules: the rules tell
    assert fleet_node(NodeParts("d", "", None, nft)).mode == "nftables"
    assert fleet_node(NodeParts("x", "", None, None)).mode_note == "no kube-proxy rules on the node"
    failed = fleet_node(NodeParts("f", "", error="kubectl debug node/f failed: forbidden"))
    report = compare_fleet([failed, node, *nodes(parts("a"), parts("b"))])
    codes = {(f.code, f.nodes) for f in report.findings}
    assert ("capture-failed", ("f",)) in codes and ("services-not-compared", ("d",)) in codes
    assert ("leftovers", ("d",)) in codes and ("mode-differs", ("d",)) in codes
    assert not any(c == "backend-differs" for c, _ in codes)  # another mode has its own backend


def test_ipvs_mode_nodes_are_compared_through_the_ipvs_builder() -> None:
    rs = parse_ruleset((SAMPLES / "ipvs-mode.rules").read_text(), source="ipvs-mode.rules")
    p = NodeParts("v", "", rs, ipvs=(SAMPLES / "ipvs-mode.ipvsadm").read_text(),
                  ipsets=(SAMPLES / "ipvs-mode.ipset").read_text())  # fmt: skip
    node = fleet_node(p)
    assert node.mode == "ipvs" and node.compared and node.services
    assert all(sp.name is None for sp in node.services)
    without = fleet_node(dataclasses.replace(p, ipvs=None, proxy_mode="ipvs"))
    assert without.services is None and "IPVS table was not captured" in (without.services_note or "")


def test_rules_of_other_components_in_front_of_kube_proxy() -> None:
    text = iptables_rules("a")
    text = first(text, "filter", "-A INPUT -s 192.0.2.0/24 -j DROP")
    text = first(text, "filter", "-A INPUT -p tcp -m tcp --dport 22 -j LOG")
    text = first(text, "filter", "-A FORWARD -j CILIUM_FORWARD")
    text = first(text, "nat", "-A PREROUTING -p tcp -m tcp --dport 30080 -j ACCEPT")
    text += ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -j NOTRACK\n"
             "-A PREROUTING -j TRACE\nCOMMIT\n")
    rs = parse_ruleset(text.replace(":FORWARD ACCEPT [0:0]\n", ":FORWARD ACCEPT [0:0]\n:CILIUM_FORWARD - [0:0]\n"),
                       source="a.rules")
    found = {(f.where, f.effect) for f in foreign_in_front(rs, None, "iptables")}
    assert ("filter INPUT", "DROP") in found and ("filter FORWARD", "jump CILIUM_FORWARD") in found
    assert ("nat PREROUTING", "ACCEPT") in found and ("raw PREROUTING", "NOTRACK") in found
    assert not any(e in ("LOG", "TRACE") for _, e in found)  # logging changes nothing
    # the LOG rule sits after kube-proxy's jumps: not in front anyway; nor are kube-proxy's own rules
    assert all(not f.rule.startswith("-A KUBE-") for f in foreign_in_front(rs, None, "iptables"))
    nft = parse_nft("table inet fw {\n\tchain in {\n\t\ttype filter hook input priority -10; policy drop;\n"
                    "\t\ttcp dport 22 accept\n\t\tcounter packets 0 bytes 0\n\t}\n\tchain late {\n"
                    "\t\ttype filter hook input priority 10; policy accept;\n\t\tdrop\n\t}\n}\n",
                    source="fw.nft")  # fmt: skip
    nf = foreign_in_front(None, nft, "iptables")
    assert [(f.index, f.effect) for f in nf] == [(None, "policy drop"), (1, "accept")]  # priority 10 runs after
    assert "priority -10" in nf[0].where


def test_the_report_as_text_and_json() -> None:
    report = compare_fleet(nodes(parts("a"), parts("b"), parts("c", stale=True)))
    doc = fleet_to_dict(report)
    assert doc["schema"] == "kptui.fleet/1"
    assert set(doc["nodes"][0]) >= {"name", "mode", "backend", "era", "services", "error"}
    assert set(doc["services"][0]) >= {"service", "frontends", "nodes_differing"}
    assert all(set(d) == {"node", "kind", "what"} for s in doc["services"] for d in s["nodes_differing"])
    text = fleet_text(report)
    assert "c: endpoints +10.244.9.99:8080" in text and "SERVICE PORTS THAT DIFFER" in text
    assert "default/kubernetes:https" not in text.split("SERVICE PORTS THAT DIFFER")[1].split("\n\n")[0]
    assert "default/kubernetes:https" in fleet_text(report, all_services=True)
    one = compare_fleet(nodes(parts("a"), parts("b"), parts("c", stale=True)), service="default/web")
    assert [r.service for r in one.services] == ["default/web:http"]


def test_one_packet_on_every_node_and_who_differs() -> None:
    ps = [parts("a"), parts("b"), parts("c", stale=True),
          parts("e", extra="-A FORWARD -p tcp -m tcp --dport 8080 -j DROP")]  # fmt: skip
    targets = [TraceTarget(p.name, p.netfilter, p.context) for p in ps] + [TraceTarget("f", None, None, "failed")]
    result = trace_fleet(targets, lambda t: Packet("203.0.113.1", "10.96.10.20", "tcp", None, 80, "external"))
    out = {o.node: o for o in result.outcomes}
    assert out["a"].endpoints == ("10.244.1.11:8080", "10.244.2.12:8080", "10.244.5.15:8080")
    assert out["a"].masquerade == "yes" and out["a"].through == 1
    assert out["e"].endpoints == () and out["e"].verdicts == ("DROP at filter/FORWARD:1",)
    assert out["f"].error == "failed"
    diffs = dict(result.differing)
    assert set(diffs) == {"c", "e", "f"} and "+10.244.9.99:8080" in diffs["c"] and "−10.244.5.15:8080" in diffs["c"]
    assert "(on 2 of 4 nodes)" not in result.majority and "no majority" in result.majority  # a, b of 4 traced


@pytest.mark.parametrize("node", ["a", "b", "c", "e"])
def test_reachability_agrees_with_the_trace(node: str) -> None:
    """Where the reach comes from kube-proxy's rules (no foreign rules), a trace of the NodePort says the same."""
    p = parts(node, stale=node == "c")
    n = fleet_node(p)
    report = compare_fleet([n, *nodes(parts("a"), parts("b"))])
    for row in report.services:
        for r in row.reach:
            if r.node != node:
                continue
            sp = row.entries.get(node)
            assert sp is not None and sp.node_port is not None
            result = trace_fleet([TraceTarget(node, p.netfilter, p.context)],
                                 lambda t, sp=sp: Packet("203.0.113.1", NODE_IP[node], "tcp", None, sp.node_port,
                                                         "external"))  # fmt: skip
            traced = result.outcomes[0]
            assert (traced.through == 1) == (r.state == "ok"), (row.service, r, traced.outcome)


def test_a_node_only_is_compared_with_its_own_mode_s_builder() -> None:
    sp: ServicePort = next(iter(fleet_node(parts("a")).services or ()))
    assert sp.name  # sanity: the generator's rules carry names


def test_the_nodes_by_services_table_and_its_filter() -> None:
    from kptui.engine.kube.fleet_matrix import fleet_matrix

    d = fleet_node(NodeParts("d", "", None, parse_nft((SAMPLES / "nft-clusterip.nft").read_text()),
                             proxy_mode="nftables"))  # fmt: skip
    report = compare_fleet([*nodes(parts("a"), parts("b"), parts("c", stale=True), parts("e")), d])
    m = fleet_matrix(report)
    assert m.nodes == ("a", "b", "c", "e", "d")
    assert m.headers[2] == "iptables · 2 ≠" and m.headers[4] == "nftables"
    rows = {r.service: r for r in m.rows}
    web = dict(zip(m.nodes, rows["default/web:http"].cells, strict=True))
    assert web["a"].state == "same" and web["a"].text == "=" and not web["a"].differs
    assert web["c"].state == "endpoints" and web["c"].text == "≠ endpoints" and "+10.244.9.99:8080" in web["c"].detail
    assert web["d"].state == "not-compared" and web["d"].text == "·" and "services not compared yet" in web["d"].detail
    new = dict(zip(m.nodes, rows["shop/new:http"].cells, strict=True))
    assert new["c"].text == "missing"
    checkout = dict(zip(m.nodes, rows["shop/checkout:http"].cells, strict=True))
    assert checkout["c"].text == "= · drops" and checkout["c"].blackhole and checkout["a"].text == "="
    assert [r.service for r in m.filtered("30090").rows] == ["shop/checkout:http"]
    assert [r.service for r in m.filtered("10.244.9.0/24").rows] == ["default/web:http"]
    assert {r.service for r in m.filtered("10.96.80.10").rows} == {"shop/new:http"}
    assert {r.service for r in m.filtered("shop/").rows} == {"shop/new:http", "shop/checkout:http", "shop/frontend:http"}
    assert {r.service for r in m.filtered("", differing_only=True).rows} == {"default/web:http", "shop/new:http",
                                                                             "shop/checkout:http"}
