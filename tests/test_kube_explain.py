"""Plain-language explanations: every kind of kube-proxy rule on the real-kernel samples (1.25+ and the 1.22
layout), hand-built older and newer layouts, neutral words for foreign chains, untrusted text kept printable."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset, parse_ruleset_bytes
from kptui.engine.errors import printable
from kptui.engine.kube import Explainer, Explanation, explain_chain, explain_rule, service_index_of
from kptui.engine.kube.explain_common import one_in, pct
from kptui.engine.matches import probability_of

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def load(name: str) -> Ruleset:
    return parse_ruleset_bytes((SAMPLES / f"{name}.rules").read_bytes(), source=f"{name}.rules")


def text(name: str) -> str:
    return (SAMPLES / f"{name}.rules").read_text()


@pytest.fixture(scope="module")
def mixed() -> Explainer:
    return Explainer(load("mixed-all"))


@pytest.fixture(scope="module")
def legacy() -> Explainer:
    return Explainer(load("kube-1.22-legacy"))


def rule_of(ex: Explainer, table: str, chain: str, needle: str) -> Explanation:
    """The explanation of the first rule of ``chain`` whose raw text contains ``needle``."""
    ch = ex.ruleset.chain(table, chain)
    assert ch is not None, chain
    for r in ch.rules:
        if needle in r.raw:
            return ex.rule(table, chain, r.index)
    raise AssertionError(f"no rule with {needle!r} in {chain}")


# -- nat, 1.25+ ------------------------------------------------------------------------------------------------
def test_cluster_ip_portal(mixed: Explainer) -> None:
    e = rule_of(mixed, "nat", "KUBE-SERVICES", "kube-dns:dns cluster IP")
    assert e.text == ("sends traffic for ClusterIP 10.96.0.10:53/udp (kube-system/kube-dns:dns) to its service "
                      "chain KUBE-SVC-TCOU7JCQXEZGVUNU")  # fmt: skip
    assert (e.kind, e.kube, e.service) == ("service-portal", True, "kube-system/kube-dns:dns")


def test_svl_portal_lb_portal_fw_portal_external_ip(mixed: Explainer) -> None:
    svl = rule_of(mixed, "nat", "KUBE-SERVICES", "node-local-cache cluster IP")
    assert "node-local service chain KUBE-SVL-LDGSPSX5OJRPR3FH (internalTrafficPolicy Local" in svl.text
    lb = rule_of(mixed, "nat", "KUBE-SERVICES", "frontend:http loadbalancer IP")
    assert lb.text.startswith("sends traffic for load-balancer IP 192.0.2.20:80/tcp (shop/frontend:http) to its "
                              "external-traffic chain KUBE-EXT-PY4JZH2ITZYEO4CN (externalTrafficPolicy Cluster)")
    fw = rule_of(mixed, "nat", "KUBE-SERVICES", "payments:https loadbalancer IP")
    assert "firewall chain KUBE-FW-BTVQPHN42D4J3FOU, which admits only the loadBalancerSourceRanges " \
           "203.0.113.0/24, 10.0.0.0/24" in fw.text  # fmt: skip
    ext = rule_of(mixed, "nat", "KUBE-SERVICES", "legacy-ext external IP")
    assert ext.text.startswith("sends traffic for external IP 198.51.100.70:80/tcp (default/legacy-ext)")


def test_last_rule_of_kube_services(mixed: Explainer) -> None:
    e = rule_of(mixed, "nat", "KUBE-SERVICES", "NOTE: this must be the last rule")
    assert e.kind == "nodeports-jump"
    assert "addressed to one of this node's own addresses to KUBE-NODEPORTS" in e.text
    assert "must stay the last rule" in e.text


def test_cluster_ip_masquerade_names_the_pod_cidr(mixed: Explainer) -> None:
    e = rule_of(mixed, "nat", "KUBE-SVC-CDGGSHYLG3RE2FKL", "KUBE-MARK-MASQ")
    assert e.text.startswith("marks the packet for masquerade (0x4000) because it does not come from the pod CIDR "
                             "10.244.0.0/16")  # fmt: skip
    assert e.service == "default/web:http"


@pytest.mark.parametrize(("index", "expected"), [
    (2, "sends 1 in 3 of the remaining connections to endpoint 10.244.1.11:8080 — effective share 33.3 %"),
    (3, "sends 1 in 2 of the remaining connections to endpoint 10.244.1.12:8080 — effective share 33.3 %"),
    (4, ("sends every remaining connection (the last of the cascade) to endpoint 10.244.2.13:8080 — effective "
         "share 33.3 %")),
])  # fmt: skip
def test_endpoint_cascade_with_exact_shares(mixed: Explainer, index: int, expected: str) -> None:
    e = mixed.rule("nat", "KUBE-SVC-CDGGSHYLG3RE2FKL", index)
    assert (e.text, e.kind) == (expected, "endpoint-choice")


def test_locality_and_single_endpoint(mixed: Explainer) -> None:
    local = mixed.rule("nat", "KUBE-SVC-FAXFPGMJVQWLKPGL", 2)
    assert "endpoint 10.244.1.31:8080 (on this node)" in local.text
    only = mixed.rule("nat", "KUBE-SVC-NPX46M4PTMTKRN6Y", 2)
    assert "its only endpoint here — effective share 100 %" in only.text
    svl = mixed.rule("nat", "KUBE-SVL-FAXFPGMJVQWLKPGL", 1)
    assert svl.text.endswith("of the traffic this node-local chain gets")


def test_affinity_lookup_and_recent_set(mixed: Explainer) -> None:
    e = mixed.rule("nat", "KUBE-SVC-I5LIAMPLWKMBJ54B", 2)
    assert e.kind == "affinity-lookup"
    assert "within the last 10800 s" in e.text and "same endpoint 10.244.1.61:8080" in e.text
    dnat = rule_of(mixed, "nat", "KUBE-SEP-A6OETC7JIV54T2T7", "DNAT")
    assert dnat.text.startswith("DNATs to 10.244.1.61:8080")
    assert "recent list KUBE-SEP-A6OETC7JIV54T2T7" in dnat.text and "for 10800 s (session affinity)" in dnat.text


def test_sep_rules(mixed: Explainer) -> None:
    dnat = mixed.rule("nat", "KUBE-SEP-2ATXUOYIKDUXCR7P", 2)
    assert dnat.text == "DNATs to 10.244.1.21:8080, the endpoint of shop/frontend:http"
    hairpin = mixed.rule("nat", "KUBE-SEP-2ATXUOYIKDUXCR7P", 1)
    assert hairpin.kind == "hairpin-masquerade" and "(10.244.1.21)" in hairpin.text


def test_ext_chains_cluster_and_local(mixed: Explainer) -> None:
    masq = mixed.rule("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN", 1)
    assert masq.kind == "external-masquerade" and "externalTrafficPolicy Cluster" in masq.text
    assert mixed.rule("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN", 2).kind == "external-to-service"
    kinds = [mixed.rule("nat", "KUBE-EXT-FAXFPGMJVQWLKPGL", i).kind for i in range(1, 5)]
    assert kinds == ["pod-source-to-service", "local-source-masquerade", "local-source-to-service", "external-to-local"]
    assert "keeps the client's source address" in mixed.rule("nat", "KUBE-EXT-FAXFPGMJVQWLKPGL", 4).text
    blackhole = mixed.chain("nat", "KUBE-EXT-2Q4INF73LZQHRC4T")
    assert "falls through un-NATed and filter KUBE-EXTERNAL-SERVICES drops it" in blackhole.text


def test_fw_chain_1_25(mixed: Explainer) -> None:
    allow = mixed.rule("nat", "KUBE-FW-BTVQPHN42D4J3FOU", 1)
    assert allow.text.startswith("admits traffic from 203.0.113.0/24 (a loadBalancerSourceRanges entry)")
    itself = mixed.rule("nat", "KUBE-FW-BTVQPHN42D4J3FOU", 3)
    assert "from the load-balancer IP itself (192.0.2.50" in itself.text
    last = mixed.rule("nat", "KUBE-FW-BTVQPHN42D4J3FOU", 4)
    assert last.kind == "source-range-fallthrough" and "filter KUBE-PROXY-FIREWALL drops it" in last.text


def test_nodeports_marks_and_postrouting(mixed: Explainer) -> None:
    np = mixed.rule("nat", "KUBE-NODEPORTS", 1)
    assert np.text.startswith("sends traffic to NodePort 30080/tcp on this node's addresses (shop/frontend:http)")
    assert mixed.rule("nat", "KUBE-MARK-MASQ", 1).kind == "mark-masq"
    kinds = [mixed.rule("nat", "KUBE-POSTROUTING", i).kind for i in (1, 2, 3)]
    assert kinds == ["postrouting-return", "postrouting-clear-mark", "masquerade"]
    assert "clears the masquerade bit 0x4000" in mixed.rule("nat", "KUBE-POSTROUTING", 2).text


def test_hooks_from_builtin_chains(mixed: Explainer) -> None:
    pre = mixed.rule("nat", "PREROUTING", 1)
    assert pre.kind == "hook-jump" and "nat sees only first packets" in pre.text
    fw = mixed.rule("filter", "INPUT", 1)
    assert fw.text.startswith("sends new connections addressed to this node to KUBE-PROXY-FIREWALL")


# -- filter -----------------------------------------------------------------------------------------------------
def test_filter_rules(mixed: Explainer) -> None:
    reject = mixed.rule("filter", "KUBE-SERVICES", 1)
    assert reject.text.startswith("rejects traffic to ClusterIP 10.96.40.10:80/tcp (icmp-port-unreachable): "
                                  "default/broken:http has no endpoints")  # fmt: skip
    assert reject.service == "default/broken:http"
    drop = mixed.rule("filter", "KUBE-EXTERNAL-SERVICES", 1)
    assert drop.kind == "no-local-endpoints-drop" and "NodePort 30091/tcp" in drop.text
    assert mixed.rule("filter", "KUBE-EXTERNAL-SERVICES", 2).kind == "no-endpoints-reject"
    assert "health-check node port 32090/tcp" in mixed.rule("filter", "KUBE-NODEPORTS", 1).text
    pf = mixed.rule("filter", "KUBE-PROXY-FIREWALL", 1)
    assert pf.kind == "source-range-drop" and "192.0.2.50:443/tcp" in pf.text
    kinds = [mixed.rule("filter", "KUBE-FORWARD", i).kind for i in (1, 2, 3)]
    assert kinds == ["ctstate-invalid-drop", "forward-accept-marked", "forward-accept-established"]
    assert mixed.rule("filter", "KUBE-FIREWALL", 1).kind == "localnet-guard"


# -- the 1.22 layout ------------------------------------------------------------------------------------------
def test_1_22_layout(legacy: Explainer) -> None:
    assert legacy.rule("nat", "KUBE-MARK-DROP", 1).text.startswith("sets the drop bit 0x8000")
    marked = rule_of(legacy, "filter", "KUBE-FIREWALL", "0x8000/0x8000")
    assert marked.kind == "marked-drop" and "marked 0x8000 by KUBE-MARK-DROP" in marked.text
    xlb = legacy.rule("nat", "KUBE-XLB-2Q4INF73LZQHRC4T", 4)
    assert xlb.kind == "no-local-endpoints-mark-drop" and "shop/legacy-api has externalTrafficPolicy Local" in xlb.text
    assert legacy.rule("nat", "KUBE-XLB-2Q4INF73LZQHRC4T", 1).kind == "pod-source-to-service"
    assert legacy.rule("nat", "KUBE-XLB-FAXFPGMJVQWLKPGL", 4).kind == "endpoint-choice"
    assert legacy.rule("nat", "KUBE-FW-BTVQPHN42D4J3FOU", 5).kind == "source-range-mark-drop"
    assert legacy.rule("nat", "KUBE-NODEPORTS", 1).kind == "nodeport-masquerade"
    assert legacy.rule("nat", "KUBE-NODEPORTS", 3).kind == "nodeport-localhost-masquerade"
    straight = legacy.rule("nat", "KUBE-NODEPORTS", 2)
    assert "kube-proxy 1.23 and older go straight to the service chain" in straight.text
    assert "packets marked 0x8000" in legacy.rule("filter", "INPUT", 3).text
    # the same filter jump, 1.25+: no mark-drop any more
    assert "0x8000" not in Explainer(load("mixed-all")).rule("filter", "INPUT", 4).text
    assert "kube-proxy 1.23 and older" in legacy.chain("nat", "KUBE-XLB-2Q4INF73LZQHRC4T").text


LEGACY_120 = """*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SEP-Z6M7ZHWCTBNMPLD7 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SVC-TCOU7JCQXEZGVUNU -j KUBE-SEP-Z6M7ZHWCTBNMPLD7
-A KUBE-SEP-Z6M7ZHWCTBNMPLD7 -p udp -m udp -j DNAT --to-destination 10.244.1.2:53
COMMIT
"""


def test_1_20_masquerade_rules_in_kube_services() -> None:
    rs = parse_ruleset(LEGACY_120)
    assert service_index_of(rs).layout.era == "<=1.20"
    e = explain_rule(rs, None, "nat", "KUBE-SERVICES", 1)
    assert e.kind == "masquerade-legacy"
    assert e.text.startswith("marks traffic to ClusterIP 10.96.0.10:53/udp (kube-system/kube-dns:dns) for masquerade "
                             "(0x4000) because it does not come from the pod CIDR 10.244.0.0/16")  # fmt: skip
    assert "kube-proxy 1.20 and older also keep the masquerade rules here" in explain_chain(rs, None, "nat",
                                                                                            "KUBE-SERVICES").text


def test_1_31_nfacct_rules() -> None:
    nfacct = ('-A KUBE-NODEPORTS -d 127.0.0.0/8 -p tcp -m comment --comment "shop/frontend:http" -m tcp --dport 30080 '
              "-m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-PY4JZH2ITZYEO4CN\n")  # fmt: skip
    t = text("nodeport-cluster").replace("-A KUBE-NODEPORTS ", nfacct + "-A KUBE-NODEPORTS ", 1)
    t = t.replace("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
                  "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts "
                  "-j DROP")  # fmt: skip
    ex = Explainer(parse_ruleset(t))
    local = rule_of(ex, "nat", "KUBE-NODEPORTS", "127.0.0.0/8")
    assert "addressed to localhost (127.0.0.0/8)" in local.text
    assert "counting it in the nfacct counter localhost_nps_accepted_pkts" in local.text
    invalid = rule_of(ex, "filter", "KUBE-FORWARD", "INVALID")
    assert invalid.kind == "ctstate-invalid-drop" and "ct_state_invalid_dropped_pkts" in invalid.text


def test_masquerade_all_and_random_fully() -> None:
    ex = Explainer(load("no-endpoints"))
    masq = next(ex.rule("nat", c, 1) for c in ex.ruleset.tables["nat"].chains if c.startswith("KUBE-SVC-"))
    assert masq.kind == "cluster-ip-masquerade" and "masqueradeAll" in masq.text
    last = ex.rule("nat", "KUBE-POSTROUTING", 3)
    assert "fully random source ports (--random-fully)" in last.text


# -- chains -------------------------------------------------------------------------------------------------------
def test_chain_explanations(mixed: Explainer) -> None:
    svc = mixed.chain("nat", "KUBE-SVC-CDGGSHYLG3RE2FKL")
    assert svc.text.startswith("the service chain of default/web:http (ClusterIP 10.96.10.20:80/tcp): it picks one of "
                               "3 endpoints at random")  # fmt: skip
    assert "session affinity" in mixed.chain("nat", "KUBE-SVC-I5LIAMPLWKMBJ54B").text
    assert "walked rule by rule (18 rules)" in mixed.chain("nat", "KUBE-SERVICES").text
    assert mixed.chain("filter", "KUBE-SERVICES").text.startswith("rejects new connections")
    assert "canary" in mixed.chain("nat", "KUBE-PROXY-CANARY").text
    assert mixed.chain("nat", "PREROUTING").kind == "builtin-chain"
    assert mixed.chain("nat", "KUBE-SEP-2ATXUOYIKDUXCR7P").text.startswith("the endpoint chain of 10.244.1.21:8080")


# -- foreign chains: neutral words only ------------------------------------------------------------------------
def test_foreign_chains_are_explained_neutrally() -> None:
    ex = Explainer(load("foreign-chains"))
    rs = ex.ruleset
    checked = 0
    for tname, table in rs.tables.items():
        for chain in table:
            if chain.name.startswith("KUBE-"):
                continue
            for r in chain.rules:
                e = ex.rule(tname, chain.name, r.index)
                if chain.builtin and (r.target_name or "").startswith("KUBE-"):
                    assert e.kube
                    continue
                checked += 1
                assert (e.kind, e.kube, e.service) == ("generic", False, None), r.raw
                assert "kube" not in e.text.lower() and "service" not in e.text.lower(), e.text
    assert checked > 50
    docker = rule_of(ex, "filter", "DOCKER", "--dport 80")
    assert docker.text == "accepts tcp packets to 172.17.0.2 port 80 not arriving on docker0 leaving by docker0"
    dnat = rule_of(ex, "nat", "DOCKER", "DNAT")
    assert dnat.text == ("DNATs tcp packets to port 8080 not arriving on docker0: their destination becomes "
                         "172.17.0.2:80")  # fmt: skip
    assert "Docker" in ex.chain("filter", "DOCKER").text and not ex.chain("filter", "DOCKER").kube
    assert "Calico" in ex.chain("filter", "cali-FORWARD").text


def test_generic_words() -> None:
    rs = parse_ruleset("*filter\n:INPUT ACCEPT [0:0]\n:MINE - [0:0]\n"
                       "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 80 -j ACCEPT\n"
                       "-A INPUT -p udp -m set --match-set blocked src -j DROP\n"
                       "-A INPUT -m mark --mark 0x1/0x1 -g MINE\n"
                       "-A INPUT -m frob --wibble 3 -j MARK --set-xmark 0x2/0x0\n"
                       "-A INPUT -j RETURN\n-A MINE\nCOMMIT\n")  # fmt: skip
    ex = Explainer(rs)
    assert ex.rule("filter", "INPUT", 1).text == "accepts tcp packets to port 80 from 10.0.0.0/8"
    assert ex.rule("filter", "INPUT", 2).text == "drops udp packets whose source address is in ipset blocked"
    assert "with goto" in ex.rule("filter", "INPUT", 3).text
    frob = ex.rule("filter", "INPUT", 4).text
    assert frob.startswith("flips bits 0x2 of the packet mark (XOR)") and "-m frob, which kptui does not describe" in frob
    assert "policy decides" in ex.rule("filter", "INPUT", 5).text
    assert ex.rule("filter", "MINE", 1).text.startswith("counts all packets; it has no target")
    assert ex.chain("filter", "MINE").kind == "foreign-chain"


def test_missing_chain_or_rule() -> None:
    rs = load("clusterip")
    with pytest.raises(LookupError, match="no chain NOPE in table nat"):
        explain_rule(rs, None, "nat", "NOPE", 1)
    with pytest.raises(LookupError, match="there is no rule 99"):
        explain_rule(rs, service_index_of(rs), "nat", "KUBE-SERVICES", 99)
    with pytest.raises(LookupError, match="there is no rule 0"):
        explain_rule(rs, None, "nat", "KUBE-SERVICES", 0)


def test_untrusted_text_stays_printable() -> None:
    hostile = text("mixed-all").replace('"default/broken:http has no endpoints"',
                                        '"default/\\x1b[31m[b]x[/b]\x1b]0;pwn\x07 has no endpoints"')  # fmt: skip
    ex = Explainer(parse_ruleset(hostile))
    e = ex.rule("filter", "KUBE-SERVICES", 1)
    assert e.kind == "no-endpoints-reject" and "\x1b" in e.text  # the engine keeps the text as it is …
    shown = printable(e.text)
    assert "\x1b" not in shown and "\x07" not in shown and "\\x1b]0;pwn\\x07" in shown  # … callers escape it


def test_share_words() -> None:
    assert one_in(probability_of("0.33333333349")) == "1 in 3"
    assert one_in(probability_of("0.20000000019")) == "1 in 5"
    assert one_in(probability_of("0.33332999982")) == "about 1 in 3"  # the 5-decimal writers of old
    assert one_in(Fraction(2, 5)) == "40.0 %"
    assert (pct(Fraction(1, 3)), pct(Fraction(1)), pct(Fraction(0))) == ("33.3 %", "100 %", "0 %")
