"""kube-proxy's nftables mode: the layout revision, the node settings, the mode in use, leftovers and mixed nodes."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kptui.engine import parse_ruleset, parse_ruleset_bytes
from kptui.engine.kube.era import layout_to_dict
from kptui.engine.kube.nft_build import build_nft_service_index
from kptui.engine.kube.nft_layout import kube_layout_of, kube_tables, nft_layout
from kptui.engine.kube.nft_mode import kube_modes
from tools.kubegen import Endpoint, NodeConfig, ServicePort
from tools.kubegen_nft import generate_nft

from .nft_kube import SAMPLES, as_listing, edited, listing, sample_text


def generated(layout: str, services: list[ServicePort], node: NodeConfig | None = None) -> str:
    node = node or NodeConfig()
    family = "ip6" if node.family == 6 else "ip"
    return as_listing(generate_nft(services, node, layout).render(), family)


WEB = ServicePort("default", "web", "10.96.10.20", 80, port_name="http",
                  endpoints=[Endpoint("10.244.1.11", 8080, True), Endpoint("10.244.2.13", 8080)])


@pytest.mark.parametrize(("layout", "era", "base"), [
    ("1.33", "1.33+", {"filter-prerouting-pre-dnat", "filter-output-pre-dnat", "filter-input", "filter-forward",
                       "filter-output", "nat-prerouting", "nat-output", "nat-postrouting"}),
    ("1.31", "1.31-1.32", {"filter-prerouting", "filter-input", "filter-forward", "filter-output",
                           "filter-output-post-dnat", "nat-prerouting", "nat-output", "nat-postrouting"}),
])  # fmt: skip
def test_the_layout_revision_is_told_by_its_base_chains(layout: str, era: str, base: set[str]) -> None:
    rs = listing(generated(layout, [WEB]))
    (table,) = kube_tables(rs)
    lay = nft_layout(table)
    assert lay.era == era and {b.name for b in lay.base_chains} == base
    assert lay.dnat == "endpoint-chains" and lay.local_detector == "cidr" and lay.local_detector_values == ("10.244.0.0/16",)
    assert lay.masquerade_mark == "0x4000" and lay.random_fully and lay.service_cidrs == ("10.96.0.0/12",)
    assert lay.nodeport_addresses == ("10.0.0.2",)
    # both revisions give the same service, whatever the masquerade rule's shape (1.31 adds the port)
    (svc,) = build_nft_service_index(rs)
    assert svc.name == "default/web:http" and [e.probability for e in svc.endpoints] == [Fraction(1, 2)] * 2


def test_the_samples_are_the_133_layout() -> None:
    for name in ("nft-clusterip", "nft-ipv6"):
        lay = kube_layout_of(listing(sample_text(name)))
        assert (lay.mode, lay.era, lay.kube_proxy) == ("nftables", "1.33+", True)
    d = layout_to_dict(kube_layout_of(listing(sample_text("nft-ipv6"))))
    assert d["family"] == "ipv6" and d["local_detector_values"] == ["fd00:10:244::/56"]


def test_the_first_alpha_and_an_unknown_release() -> None:
    alpha = listing("table ip kube-proxy {\n\tchain filter-input {\n\t\ttype filter hook input priority -110; "
                    "policy accept;\n\t\tct state new jump endpoints-check\n\t}\n\tchain endpoints-check {\n\t}\n}\n")
    assert nft_layout(kube_tables(alpha)[0]).era == "1.29-1.30"
    bare = listing("table ip kube-proxy {\n\tchain services {\n\t}\n}\n")
    lay = nft_layout(kube_tables(bare)[0])
    assert lay.era is None and "not known" in lay.evidence[0]


def test_inline_dnat_is_the_newest_layout_and_gives_the_same_shares() -> None:
    rs = edited("nft-clusterip", "numgen random mod 3 vmap { 0 : goto endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080, "
                "1 : goto endpoint-IT6PTZ7B-default/web/tcp/http__10.244.1.12/8080, 2 : goto "
                "endpoint-AEEJN5SZ-default/web/tcp/http__10.244.2.13/8080 }",
                "dnat ip to numgen random mod 3 map { 0 : 10.244.1.11 . 8080, 1 : 10.244.1.12 . 8080, 2 : 10.244.2.13 . 8080 }")
    lay = nft_layout(kube_tables(rs)[0])
    assert lay.era == "1.35+" and lay.dnat == "mixed"  # the other services still have endpoint chains
    web = next(s for s in build_nft_service_index(rs) if s.name == "default/web:http")
    assert [(e.address, e.chain, e.probability) for e in web.endpoints] == [
        ("10.244.1.11:8080", "", Fraction(1, 3)), ("10.244.1.12:8080", "", Fraction(1, 3)),
        ("10.244.2.13:8080", "", Fraction(1, 3))]


def test_other_detectors_and_nodeport_addresses() -> None:
    rs = listing(generated("1.33", [WEB], NodeConfig(masquerade_all=True, nodeport_addresses="all")))
    lay = nft_layout(kube_tables(rs)[0])
    assert lay.local_detector == "masquerade-all" and lay.nodeport_addresses is None
    iface = edited("nft-clusterip", "ip saddr != 10.244.0.0/16", 'iifname != "veth*"')
    lay = nft_layout(kube_tables(iface)[0])
    assert (lay.local_detector, lay.local_detector_values) == ("interface-prefix", ("veth*",))


# -- the mode in use, leftovers, mixed nodes ------------------------------------------------------------
def ipt(name: str) -> object:
    return parse_ruleset_bytes((SAMPLES / f"{name}.rules").read_bytes())


def test_an_nft_listing_alone_is_nftables_mode() -> None:
    m = kube_modes(None, listing(sample_text("nft-clusterip")))
    assert (m.mode, m.source, m.mixed, m.leftovers) == ("nftables", "rules", False, ())


def test_kube_proxys_word_wins() -> None:
    m = kube_modes(ipt("clusterip"), listing(sample_text("nft-clusterip")), "iptables")  # type: ignore[arg-type]
    assert (m.mode, m.source) == ("iptables", "proxyMode")
    assert [lo.mode for lo in m.leftovers] == ["nftables"] and m.mixed


def test_both_modes_live_is_mixed() -> None:
    m = kube_modes(ipt("clusterip"), listing(sample_text("nft-clusterip")))  # type: ignore[arg-type]
    assert m.mode == "nftables" and m.mixed
    (lo,) = m.leftovers
    assert lo.mode == "iptables" and lo.live and lo.services == 5


def test_iptables_chains_no_longer_hooked_in_are_leftovers() -> None:
    text = (SAMPLES / "clusterip.rules").read_text()
    unhooked = "\n".join(ln for ln in text.splitlines() if not ln.partition("] ")[2].startswith(
        ("-A PREROUTING", "-A OUTPUT")))  # fmt: skip
    m = kube_modes(parse_ruleset(unhooked), listing(sample_text("nft-clusterip")))
    assert m.mode == "nftables" and not m.mixed
    (lo,) = m.leftovers
    assert lo.mode == "iptables" and not lo.hooked and lo.chains > 10


def test_kubelets_own_chains_are_no_leftovers() -> None:
    kubelet = parse_ruleset("*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\n"
                            "-A INPUT -j KUBE-FIREWALL\nCOMMIT\n")  # fmt: skip
    m = kube_modes(kubelet, listing(sample_text("nft-clusterip")))
    assert m.leftovers == () and not m.mixed


def test_iptables_nft_tables_inside_an_nft_listing_count_too() -> None:
    text = sample_text("nft-clusterip") + (
        "table ip nat {\n\tchain PREROUTING {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        "\t\tcounter packets 0 bytes 0 jump KUBE-SERVICES\n\t}\n\tchain KUBE-SERVICES {\n\t}\n}\n")
    m = kube_modes(None, listing(text))
    (lo,) = m.leftovers
    assert lo.where == "table ip nat" and lo.hooked and lo.services == 0 and not m.mixed


def test_a_node_without_kube_proxy() -> None:
    m = kube_modes(None, listing(sample_text("mixed-node")))
    assert m.mode is None and m.leftovers == ()
