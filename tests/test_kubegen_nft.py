"""tools/kubegen_nft.py: kube-proxy's nftables-mode ruleset from the iptables generator's model.

Checked against kube-proxy's own expectations (tests/golden/kube-proxy-nft-1.33-overall.nft is its
TestOverallNFTablesRules, compared the way its test compares: sorted by object type and name, rules in order
within a chain), the hash test vectors of REFERENCE §4.1, the 1.31 revision's differences, and -- with root and
nf_tables -- ``nft -c -f`` on every generated ruleset inside a network namespace this test creates.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from samples.scenarios import NFT_SCENARIOS, SCENARIOS
from tools.kubegen import Endpoint as E
from tools.kubegen import NodeConfig, ServicePort
from tools.kubegen_nft import LAYOUTS, chain_base, endpoint_chain_base, generate_nft, hash8, main
from tools.nft_foreign import firewalld_table, guard_table, mixed_node

from .kernel_gate import KernelGate, nft_check, scratch_netns

GOLDEN = Path(__file__).resolve().parent / "golden" / "kube-proxy-nft-1.33-overall.nft"
ORDER = {"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}
GATE = KernelGate("NFT CHECK TESTS", "They check that nft accepts every generated ruleset", ("ip", "nft"),
                  ("nft", "list", "ruleset"), "nftcheck")  # fmt: skip


def sort_transaction(text: str) -> list[str]:
    """kube-proxy's sortNFTablesTransaction: drop blank and comment lines, sort by object type then name; rules
    keep their relative order within a chain, everything else sorts by the whole line."""
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    keyed = []
    for n, line in enumerate(lines):
        w = line.split(" ")
        keyed.append(((-ORDER.get(w[1], 0), w[4], n if w[1] == "rule" else 0, "" if w[1] == "rule" else line), line))
    return [line for _, line in sorted(keyed)]


def overall_services() -> tuple[list[ServicePort], NodeConfig]:
    """TestOverallNFTablesRules' services in tools.kubegen's model (only endpoints with NodeName are local)."""
    svcs = [
        ServicePort("ns1", "svc1", "172.30.0.41", 80, port_name="p80", endpoints=[E("10.180.0.1", 80)]),
        ServicePort("ns2", "svc2", "172.30.0.42", 80, port_name="p80", node_port=3001, lb_ips=["1.2.3.4"],
                    external_ips=["192.168.99.22"], external_policy="Local", health_check_node_port=30000,
                    endpoints=[E("10.180.0.2", 80)]),
        ServicePort("ns3", "svc3", "172.30.0.43", 80, port_name="p80", node_port=3003, endpoints=[E("10.180.0.3", 80)]),
        ServicePort("ns4", "svc4", "172.30.0.44", 80, port_name="p80", external_ips=["192.168.99.33"],
                    endpoints=[E("10.180.0.4", 80), E("10.180.0.5", 80, True)]),
        ServicePort("ns5", "svc5", "172.30.0.45", 80, port_name="p80", node_port=3002, lb_ips=["5.6.7.8"],
                    lb_source_ranges=[" 203.0.113.0/25"], affinity_timeout=10800, health_check_node_port=30000,
                    endpoints=[E("10.180.0.3", 80)]),
        ServicePort("ns6", "svc6", "172.30.0.46", 80, port_name="p80"),
    ]
    node = NodeConfig(cluster_cidr="10.0.0.0/8", node_ip="192.168.0.2", service_cidrs=("172.30.0.0/16",))
    return svcs, node


@pytest.mark.parametrize(("name", "want"), [
    ("ns1/svc1/tcp/p80", "ULMVA6XW"), ("ns1/svc1/tcp/p80__10.180.0.1/80", "5OJB2KTY"),
    ("default/kubernetes/tcp/https", "2QRHZV4L"),
    # more of kube-proxy's test expectations
    ("ns2/svc2/tcp/p80", "42NFTM6N"), ("ns5/svc5/tcp/p80__10.180.0.3/80", "GTK6MW7G"),
    ("ns2/svc2/tcp/p8080__10.0.2.1/8080", "7RVP4LUQ")])  # fmt: skip
def test_hash_vectors(name: str, want: str) -> None:
    assert hash8(name) == want
    assert chain_base(name) == f"{want}-{name}"


def test_chain_names_of_service_and_endpoint() -> None:
    svc = ServicePort("ns1", "svc1", "172.30.0.41", 80, port_name="p80")
    ep6 = E("fd00:10:180::2:1", 80)
    from tools.kubegen_nft import service_chain_base
    assert service_chain_base(svc) == "ULMVA6XW-ns1/svc1/tcp/p80"
    assert endpoint_chain_base(svc, E("10.180.0.1", 80)) == "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    assert endpoint_chain_base(svc, ep6).endswith("-ns1/svc1/tcp/p80__fd00.10.180..2.1/80"), "IPv6 colons as dots"
    unnamed = ServicePort("ns", "web", "10.96.0.5", 80)
    assert service_chain_base(unnamed).endswith("-ns/web/tcp/"), "an unnamed port leaves the last part empty"
    long = chain_base("n" * 300)
    assert len(long) == 240 and long.endswith("...")


def test_golden_overall_ruleset_is_kube_proxys_own_expectation() -> None:
    svcs, node = overall_services()
    got = sort_transaction(generate_nft(svcs, node, masq_mark="0x4000").render())
    want = sort_transaction(GOLDEN.read_text())
    assert got == want


def test_the_real_mark_is_written_as_kube_proxy_formats_it() -> None:
    svcs, node = overall_services()
    text = generate_nft(svcs, node).render()
    assert "add rule ip kube-proxy mark-for-masquerade mark set mark or 0x004000" in text
    assert "0x4000 " not in text


def test_rules_reference_only_what_was_added_before() -> None:
    """The script is valid ``nft -f`` input in order: every set, map and chain a line names exists by then."""
    for sc in SCENARIOS + NFT_SCENARIOS:
        for layout in LAYOUTS:
            defined: set[str] = set()
            for line in generate_nft(sc.services, sc.node, layout).render().splitlines():
                words = line.split()
                if words[1] in ("chain", "set", "map"):
                    defined.add(words[4])
                    continue
                if words[1] in ("rule", "element"):
                    assert words[4] in defined, line
                for ref in re.findall(r"@(\S+)", line) + re.findall(r"(?:jump|goto) (\S+?)[ ,}]", line + " "):
                    assert ref in defined, f"{sc.name} {layout}: {ref} used before it exists: {line}"


def test_layout_131_differs_where_the_revision_did() -> None:
    svcs, node = overall_services()
    text = generate_nft(svcs, node, "1.31", masq_mark="0x4000").render()
    for line in ("add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }",
                 "add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }",
                 "add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }",
                 "add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check",
                 "add rule ip kube-proxy filter-output ct state new jump firewall-check",
                 ("add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 "
                  "ip saddr != 10.0.0.0/8 jump mark-for-masquerade")):  # fmt: skip
        assert line in text.splitlines()
    assert "pre-dnat" not in text
    with pytest.raises(ValueError, match="unknown nftables layout"):
        generate_nft(svcs, node, "1.99")


def test_node_variants() -> None:
    svc = ServicePort("ns", "web", "10.96.0.5", 80, port_name="http", node_port=30080, endpoints=[E("10.244.1.5", 8080)])
    all_ = generate_nft([svc], NodeConfig(nodeport_addresses="all", masquerade_all=True)).render()
    assert "nodeport-ips" not in all_
    assert ("add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
            "vmap @service-nodeports") in all_
    assert ("add rule ip kube-proxy nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport "
            "vmap @no-endpoint-nodeports") in all_
    assert "ip daddr 10.96.0.5 jump mark-for-masquerade" in all_, "masquerade-all: no source condition"
    none = generate_nft([svc], NodeConfig(cluster_cidr=None, service_cidrs=())).render()
    assert "saddr != " not in none and "unallocated" not in none, "no local-traffic detector, no ServiceCIDRs"


def test_ipv6_table() -> None:
    sc = next(s for s in NFT_SCENARIOS if s.name == "nft-ipv6")
    text = generate_nft(sc.services, sc.node).render()
    assert text.startswith("add table ip6 kube-proxy")
    assert "add set ip6 kube-proxy cluster-ips { type ipv6_addr ;" in text
    assert "meta l4proto tcp dnat to [fd00:10:244:1::11]:8080" in text
    assert "ip6 daddr { fd00:10:96::/112 } drop" in text and "10.96.0.0" not in text
    assert "ip6 saddr != fd00:10:244::/56 jump mark-for-masquerade" in text
    assert generate_nft(SCENARIOS[0].services, sc.node).lines[-1].startswith("add rule ip6 kube-proxy services"), (
        "IPv4 services are left out of the IPv6 table")


def test_elements_once_per_key_and_no_rules_for_health_check_ports() -> None:
    sc = next(s for s in SCENARIOS if s.name == "clusterip")
    text = generate_nft(sc.services, sc.node).render()
    assert text.count("add element ip kube-proxy cluster-ips { 10.96.0.10 }") == 1, "three kube-dns ports, one IP"
    local = next(s for s in SCENARIOS if s.name == "nodeport-local")
    assert "32090" not in generate_nft(local.services, local.node).render()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"node": {"service_cidrs": ["10.96.0.0/12"]}, "services": [{"namespace": "ns1", '
                    '"name": "svc1", "cluster_ip": "10.96.0.41", "port": 80, "port_name": "p80", '
                    '"endpoints": [["10.244.1.1", 80, true]]}]}')  # fmt: skip
    assert main([str(spec), "--layout", "1.31"]) == 0
    out = capsys.readouterr().out
    assert "service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 10.96.0.41 tcp dport 80" in out


# -- nft -c -f, in a namespace of this test's own ----------------------------------------------------------------
def _all_rulesets() -> Iterator[tuple[str, str]]:
    for sc, layout in itertools.product(SCENARIOS + NFT_SCENARIOS, LAYOUTS):
        yield f"{sc.name}/{layout}", generate_nft(sc.services, sc.node, layout).render()
        yield f"{sc.name}/{layout}/all", generate_nft(sc.services, replace(sc.node, nodeport_addresses="all",
                                                                            masquerade_all=True), layout).render()
    svcs, node = overall_services()
    yield "overall", generate_nft(svcs, node).render()
    yield "firewalld", firewalld_table()
    yield "guard4", guard_table(4, tagged=("10.96.20.10", 80), blocked=("10.244.2.22", 8080),
                                forward_to=("10.244.1.21", 8080), node_ip="10.0.0.2", pod_cidr="10.244.0.0/16")
    yield "guard6", guard_table(6, tagged=("fd00:10:96::20", 80), blocked=("fd00:10:244:2::12", 8080),
                                forward_to=("fd00:10:244:1::11", 8080), node_ip="fd00:10::2",
                                pod_cidr="fd00:10:244::/56")  # fmt: skip
    yield "mixed", mixed_node(SCENARIOS[0].services, SCENARIOS[0].node).nft


@pytest.mark.kernel
def test_nft_accepts_every_generated_ruleset() -> None:
    GATE.require()
    with scratch_netns("nftcheck") as ns:
        checked = 0
        for name, text in _all_rulesets():
            proc = nft_check(ns, text)
            assert proc.returncode == 0, f"{name}: nft -c rejected it:\n{proc.stderr[:2000]}"
            checked += 1
        listing = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "ruleset"], capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
        assert listing.strip() == "", "nft -c changed nothing"
        assert checked > 2 * len(SCENARIOS + NFT_SCENARIOS)
