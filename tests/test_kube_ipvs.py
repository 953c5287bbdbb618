"""kube-proxy's IPVS mode as kptui reads it: mode detection (and the other mode's leftovers), the service ports
from the IPVS table and the ipsets (against the scenario the sample was built from), explanations of every
IPVS-mode chain and rule, the IPVS-mode findings (each with a case that triggers it and one that does not), and
the summary."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from kptui.cli.summary import summary_text
from kptui.engine import parse_ruleset
from kptui.engine.ipvs import IpvsNode, ipvs_context
from kptui.engine.kube.build import service_index_of
from kptui.engine.kube.build_ipvs import build_ipvs_service_index, service_index_for
from kptui.engine.kube.era import detect_layout, layout_to_dict
from kptui.engine.kube.explain import Explainer
from kptui.engine.kube.explain_ipvs import explain_set
from kptui.engine.kube.findings import find_pitfalls
from kptui.engine.kube.report import service_to_dict, services_text
from kptui.engine.summary import summarize
from samples.scenarios import BY_NAME

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RULES = (SAMPLES / "ipvs-mode.rules").read_text()
SETS = (SAMPLES / "ipvs-mode.ipset").read_text()
SAVE = (SAMPLES / "ipvs-mode.ipvsadm").read_text()
IPTABLES_SAMPLE = (SAMPLES / "clusterip.rules").read_text()


def node(**kw: object) -> IpvsNode:
    args: dict[str, object] = {"ipset_text": SETS, "ipvs_text": SAVE, "ipset_source": "ipvs-mode.ipset",
                               "ipvs_source": "ipvs-mode.ipvsadm"}  # fmt: skip
    args.update(kw)
    return ipvs_context(**args)  # type: ignore[arg-type]


RS = parse_ruleset(RULES, source="ipvs-mode.rules")
NODE = node()


# -- mode -----------------------------------------------------------------------------------------------------
def test_the_ipvs_sample_is_ipvs_mode_from_its_rules_alone() -> None:
    layout = detect_layout(RS)
    assert (layout.kube_proxy, layout.mode, layout.mode_source) == (True, "ipvs", "rules")
    assert not layout.ipvs_leftovers and not layout.iptables_leftovers
    assert (layout.local_detector, layout.local_detector_values) == ("cidr", ("10.244.0.0/16",))
    assert layout.localhost_nodeports is False and layout.masquerade_mark == "0x4000" and layout.random_fully
    assert any("KUBE-CLUSTER-IP" in e for e in layout.evidence)


def _with_leftovers() -> str:
    """The IPVS sample plus an iptables-mode service's chains nothing jumps to any more."""
    extra = (":KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]\n:KUBE-SEP-IT2ZTR26TO4XFPTO - [0:0]\n"
             "-A KUBE-SVC-TCOU7JCQXEZGVUNU -j KUBE-SEP-IT2ZTR26TO4XFPTO\n"
             "-A KUBE-SEP-IT2ZTR26TO4XFPTO -p udp -m udp -j DNAT --to-destination 10.244.1.2:53\n")  # fmt: skip
    return RULES.replace(":KUBE-SERVICES - [0:0]\n", ":KUBE-SERVICES - [0:0]\n" + extra, 1)


def test_iptables_mode_chains_on_an_ipvs_node_are_leftovers_not_the_mode() -> None:
    rs = parse_ruleset(_with_leftovers())
    layout = detect_layout(rs)
    assert layout.mode == "ipvs" and layout.iptables_leftovers and not layout.ipvs_leftovers
    assert any("iptables-mode leftovers" in e for e in layout.evidence)
    assert layout_to_dict(layout)["iptables_leftovers"] is True
    (leftover,) = [f for f in find_pitfalls(rs) if f.code == "iptables-mode-leftovers"]
    assert leftover.count == 2
    assert not [f for f in find_pitfalls(RS) if f.code == "iptables-mode-leftovers"]  # none without them
    text = Explainer(rs).chain("nat", "KUBE-SVC-TCOU7JCQXEZGVUNU").text
    assert "left over" in text and "nothing in the IPVS-mode rules jumps to it" in text


def test_ipvs_chains_on_an_iptables_node_stay_leftovers() -> None:
    text = IPTABLES_SAMPLE.replace(":KUBE-SERVICES - [0:0]\n", ":KUBE-SERVICES - [0:0]\n:KUBE-NODE-PORT - [0:0]\n", 1)
    layout = detect_layout(parse_ruleset(text))
    assert layout.mode == "iptables" and layout.ipvs_leftovers and not layout.iptables_leftovers


@pytest.mark.parametrize(("kw", "source"), [({"proxy_mode": "ipvs"}, "proxyMode"), ({}, "ipvs-table"),
                                            ({"ipvs_text": None, "kube_ipvs0": ["10.96.0.1/32"]}, "kube-ipvs0")])
def test_what_the_node_says_decides_the_mode(kw: dict[str, object], source: str) -> None:
    layout = detect_layout(RS, node(**kw))
    assert (layout.mode, layout.mode_source) == ("ipvs", source)
    assert any("the rules agree" in e for e in layout.evidence)


def test_the_node_wins_over_rules_that_say_otherwise_and_says_so() -> None:
    layout = detect_layout(parse_ruleset(IPTABLES_SAMPLE), node(proxy_mode="ipvs"))
    assert layout.mode == "ipvs" and any("rules alone would say iptables" in e for e in layout.evidence)
    assert detect_layout(parse_ruleset(IPTABLES_SAMPLE), ipvs_context()).mode == "iptables"  # nothing said


# -- services -------------------------------------------------------------------------------------------------
def test_services_match_the_scenario_the_sample_was_built_from() -> None:
    sc = BY_NAME["ipvs-mode"]
    index = build_ipvs_service_index(RS, NODE)
    assert len(index) == len(sc.services)
    for spec in sc.services:
        (svc,) = [s for s in index if s.cluster_ip == spec.cluster_ip and s.protocol == spec.proto
                  and s.port == spec.port]  # fmt: skip
        assert svc.mode == "ipvs" and svc.scheduler == "rr" and svc.name is None
        assert svc.node_port == (spec.node_port or None)
        assert list(svc.external_ips) == spec.external_ips and list(svc.load_balancer_ips) == spec.lb_ips
        assert sorted(svc.source_ranges) == sorted(spec.lb_source_ranges)
        assert svc.affinity_timeout == spec.affinity_timeout
        assert sorted(e.address or "" for e in svc.endpoints) == sorted(ep.addr for ep in spec.endpoints)
        assert {e.address: e.local for e in svc.endpoints} == {ep.addr: ep.local for ep in spec.endpoints}
        assert svc.no_endpoints == (not spec.endpoints)
        if spec.externally_accessible:
            assert svc.external_traffic_policy == spec.external_policy
        live = [e for e in svc.endpoints if e.weight]
        assert sum((e.probability or Fraction(0) for e in svc.endpoints), Fraction(0)) == (1 if live else 0)
        assert all(e.probability == Fraction(1, len(live)) for e in live)  # rr: equal shares
        roles = {role for role, _ in svc.virtual_services}
        assert ("nodeport" in roles) == bool(spec.node_port) and ("lb" in roles) == bool(spec.lb_ips)
        if spec.node_port:  # one NodePort virtual service per node address
            assert sum(1 for role, _ in svc.virtual_services if role == "nodeport") == 2


def test_draining_real_servers_get_no_share_and_a_note() -> None:
    index = build_ipvs_service_index(RS, NODE)
    (web,) = index.by_address("10.96.10.20")
    shares = {e.address: (e.weight, e.probability) for e in web.endpoints}
    assert shares == {"10.244.1.11:8080": (1, Fraction(1, 2)), "10.244.1.12:8080": (1, Fraction(1, 2)),
                      "10.244.2.13:8080": (0, Fraction(0))}  # fmt: skip
    assert any("draining" in n for n in web.notes)
    (checkout,) = index.by_address("10.96.30.10")  # eTP Local: the NodePort's virtual services, local only
    assert {e.address: e.local_probability for e in checkout.endpoints} == {
        "10.244.1.31:8080": Fraction(1), "10.244.2.32:8080": Fraction(0)}


def test_json_keeps_every_key_and_adds_the_ipvs_ones() -> None:
    iptables = service_to_dict(service_index_of(parse_ruleset(IPTABLES_SAMPLE)).services[0])
    index = build_ipvs_service_index(RS, NODE)
    d = service_to_dict(index.by_address("10.96.60.10")[0])
    assert set(iptables) == set(d) and set(iptables["endpoints"][0]) == set(d["endpoints"][0])
    assert d["mode"] == "ipvs" and d["scheduler"] == "rr" and d["affinity_timeout"] == 10800
    assert {"role": "cluster", "key": "TCP 10.96.60.10:80"} in d["virtual_services"]
    assert d["endpoints"][0]["weight"] == 1 and d["endpoints"][0]["forward"] == "Masq"
    assert iptables["mode"] == "iptables" and iptables["endpoints"][0]["weight"] is None
    text = services_text(list(index))
    assert "TCP 10.96.10.20:80" in text and "weight 0 Masq" in text and "IPVS mode:" in text


def test_service_index_for_picks_the_ipvs_builder_only_with_a_table_on_an_ipvs_node() -> None:
    assert service_index_for(RS, NODE).services[0].mode == "ipvs"
    assert len(service_index_for(RS, None)) == 0  # the rules alone hold no service port in IPVS mode
    assert service_index_for(parse_ruleset(IPTABLES_SAMPLE), None).services[0].mode == "iptables"


def test_without_ipsets_virtual_services_stand_alone_unnamed() -> None:
    index = build_ipvs_service_index(RS, node(ipset_text=None))
    assert len(index) == len(NODE.table or ())  # no roles without the sets: one service port each
    assert all(s.cluster_ip is None and s.external_traffic_policy is None for s in index)
    assert all(e.local is None for s in index for e in s.endpoints)


# -- explanations ---------------------------------------------------------------------------------------------
def test_every_kube_rule_and_chain_is_explained_in_ipvs_terms() -> None:
    ex = Explainer(RS)
    for table_name, table in RS.tables.items():
        for chain in table:
            c = ex.chain(table_name, chain.name)
            assert c.kind != "kube-chain-unknown", chain.name
            for i in range(1, len(chain.rules) + 1):
                r = ex.rule(table_name, chain.name, i)
                if chain.name.startswith("KUBE-") or (r.kind == "hook-jump"):
                    assert r.kind != "generic" and r.kube, (chain.name, i, r.text)
    assert "IPVS balances it" in ex.rule("nat", "KUBE-SERVICES", 8).text
    assert "(the pod network)" in ex.rule("nat", "KUBE-SERVICES", 3).text
    assert "rejected" in ex.rule("filter", "KUBE-IPVS-FILTER", 6).text
    assert "net.ipv4.vs.conntrack=1" in ex.chain("nat", "KUBE-POSTROUTING").text


def test_sets_are_explained() -> None:
    cip = NODE.ipsets.get("KUBE-CLUSTER-IP") if NODE.ipsets else None
    e = explain_set("KUBE-CLUSTER-IP", cip)
    assert e.kind == "ipvs-set" and "cluster IP" in e.text and "11 members" in e.text
    assert explain_set("KUBE-6-LOOP-BACK").text.startswith("kube-proxy's IPv6 ipset")
    assert explain_set("cali40all-ipam-pools").kube is False


# -- findings -------------------------------------------------------------------------------------------------
def codes(rs: object = RS, **kw: object) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in find_pitfalls(rs, node(**kw)):  # type: ignore[arg-type]
        out.setdefault(f.code, []).append(f.title)
    return out


def test_a_consistent_node_has_only_the_services_without_endpoints() -> None:
    got = codes(sysctls={"net.ipv4.vs.conntrack": "1"}, kube_ipvs0=NODE.vips[:5])
    assert set(got) == {"ipvs-no-real-servers"}  # default/broken: its cluster IP and NodePorts
    assert len(got["ipvs-no-real-servers"]) == 3


def test_set_entries_without_virtual_services() -> None:
    sets = SETS + "add KUBE-CLUSTER-IP 10.96.99.9,tcp:80\nadd KUBE-NODE-PORT-TCP 31999\n"
    got = codes(ipset_text=sets)["ipvs-set-without-virtual-service"]
    assert any("10.96.99.9,tcp:80" in t for t in got) and any("NodePort 31999/tcp" in t for t in got)
    assert "ipvs-set-without-virtual-service" not in codes()


def test_virtual_services_without_sets() -> None:
    extra = SAVE + "-A -t 10.96.99.8:8080 -s rr\n-a -t 10.96.99.8:8080 -r 10.244.1.99:8080 -m -w 1\n-A -f 5 -s rr\n"
    got = codes(ipvs_text=extra)["ipvs-virtual-service-without-set"]
    assert any("TCP 10.96.99.8:8080 is in none" in t for t in got) and any("FWM 5" in t for t in got)
    assert "ipvs-virtual-service-without-set" not in codes()


def test_all_real_servers_draining() -> None:
    drained = SAVE.replace("-a -t 10.96.0.1:443 -r 10.0.0.2:6443 -m -w 1", "-a -t 10.96.0.1:443 -r 10.0.0.2:6443 -m -w 0")
    assert codes(ipvs_text=drained)["ipvs-all-draining"] == ["every real server of TCP 10.96.0.1:443 has weight 0"]
    assert "ipvs-all-draining" not in codes()  # web has one draining real server among live ones


def test_kube_ipvs0_addresses_without_a_service() -> None:
    got = codes(kube_ipvs0=["10.96.0.1/32", "10.96.123.4/32"])["kube-ipvs0-address-without-service"]
    assert got == ["10.96.123.4 is on kube-ipvs0 but no virtual service uses it"]
    sets = SETS + "add KUBE-IPVS-IPS 10.96.123.5\n"  # without the link's addresses: KUBE-IPVS-IPS
    assert codes(ipset_text=sets)["kube-ipvs0-address-without-service"] == [
        "10.96.123.5 is on kube-ipvs0 but no virtual service uses it"]
    assert "kube-ipvs0-address-without-service" not in codes(kube_ipvs0=["10.96.0.1/32"])


def test_vs_conntrack_off_while_masquerading() -> None:
    (f,) = [f for f in find_pitfalls(RS, node(sysctls={"net.ipv4.vs.conntrack": "0"})) if f.code == "ipvs-conntrack-off"]
    assert f.severity == "error" and (f.table, f.chain) == ("nat", "KUBE-POSTROUTING") and f.index == 1
    assert "ipvs-conntrack-off" not in codes(sysctls={"net.ipv4.vs.conntrack": "1"})
    assert "ipvs-conntrack-off" not in codes()  # not known: nothing said
    no_masq = "\n".join(line for line in RULES.splitlines() if "MASQUERADE" not in line) + "\n"
    assert "ipvs-conntrack-off" not in codes(parse_ruleset(no_masq), sysctls={"net.ipv4.vs.conntrack": "0"})


# -- summary --------------------------------------------------------------------------------------------------
def test_summary_says_ipvs_mode_and_what_the_table_holds() -> None:
    s = summarize(RS, node(sysctls={"net.ipv4.vs.conntrack": "1"}))
    assert s["kube"]["mode"] == "ipvs" and s["kube"]["mode_source"] == "ipvs-table"
    v = s["ipvs"]
    assert (v["virtual_services"], v["draining_real_servers"], v["without_real_servers"]) == (24, 1, 3)
    assert (v["ipsets"], v["schedulers"], v["vs_conntrack"]) == (17, ["rr"], True)
    text = summary_text(s)
    assert "kube-proxy: ipvs mode" in text and "IPVS: 24 virtual services" in text
    assert "ipvs" not in summarize(RS)
