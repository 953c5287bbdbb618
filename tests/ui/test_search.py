"""The filter's query language, without a UI: addresses, networks, ports and text."""

from __future__ import annotations

import pytest

from kptui.ui.packet_builder import field_of
from kptui.ui.search import compile_query, run_filter
from kptui.ui.services import CommentInsights

from .conftest import sample

RULE = ('-A KUBE-SVC-X ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns" '
        "-m udp --dport 53 -j KUBE-MARK-MASQ")
DNAT = "-A KUBE-SEP-Y -p tcp -m tcp -j DNAT --to-destination 10.244.1.21:8080"


@pytest.mark.parametrize(
    ("query", "raw", "hit"),
    [
        ("10.96.0.10", RULE, True),
        ("10.96.0.1", RULE, False),  # a prefix of a longer address is not that address
        ("10.244.1.21", DNAT, True),  # in --to-destination IP:PORT
        ("10.244.7.7", "-A X -s 10.244.0.0/16 -j ACCEPT", True),  # inside a positive -s network
        ("10.244.7.7", RULE, False),  # ... but not inside a negated one
        # -s and -d side by side, as iptables-save prints them (flannel's POSTROUTING): both networks count
        ("10.244.7.7", "-A POSTROUTING -s 192.168.0.0/16 -d 10.244.0.0/16 -j RETURN", True),
        ("10.244.7.7", "-A POSTROUTING -s 192.168.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE", False),
        ("10.96.0.0/12", RULE, True),  # a network holding an address of the rule
        ("10.244.1.0/24", DNAT, True),  # ... or its DNAT target (the address without its port)
        ("10.244.1.21/32", DNAT, True),
        ("10.244.2.0/24", DNAT, False),
        ("53", RULE, True),
        (":8080", DNAT, True),
        ("16", RULE, False),  # not the prefix length of a CIDR
        ("4000", "-A X -j MARK --set-xmark 0x4000/0x4000", False),  # not inside a mark
        ("KUBE-DNS", RULE, True),  # text: case-insensitive
        ("kube-dns:dns", RULE, True),
    ],
)
def test_queries(query: str, raw: str, hit: bool) -> None:
    q = compile_query(query)
    assert q is not None
    assert q.rule_matches(raw) is hit


def test_empty_query_is_none() -> None:
    assert compile_query("  ") is None


def test_run_filter_over_a_sample_reports_chains_and_rules_in_kernel_table_order() -> None:
    rs = sample("mixed-all.rules")
    q = compile_query("shop/frontend")
    assert q is not None
    result = run_filter(rs, q, CommentInsights(rs).service_of)
    assert list(result.tables) == ["nat", "filter"] or list(result.tables) == ["nat"]
    chains = dict(result.tables["nat"])
    assert chains["KUBE-SVC-PY4JZH2ITZYEO4CN"] is None  # matched by its service name: every rule shown
    assert chains["KUBE-SERVICES"] is not None and len(chains["KUBE-SERVICES"]) >= 1
    assert result.rules > 0 and result.chains == sum(len(v) for v in result.tables.values())


def test_engine_messages_map_to_builder_fields() -> None:
    assert field_of("source '1' is not an IP address") == "src"
    assert field_of("a udp packet needs a destination port") == "dport"
    assert field_of("pod CIDR 'x' is not an address or CIDR") == "pod_cidr"
    assert field_of("something else") is None


def test_a_cidr_filter_finds_the_dnat_targets_inside_it_with_and_without_the_index() -> None:
    """Issue 10, item 10: /10.244.2.0/24 found the -s rules but no --to-destination 10.244.2.x (an address with
    a port was no address to the network filter); /10.244.2.22 did."""
    from kptui.ui.search_index import build_index, filter_indexed

    rs = sample("nodeport-cluster.rules")
    service_of = CommentInsights(rs).service_of
    q = compile_query("10.244.2.0/24")
    assert q is not None
    for result in (run_filter(rs, q, service_of), filter_indexed(build_index(rs, service_of), q)):
        nat = dict(result.tables["nat"])
        assert nat["KUBE-SEP-KCXANH426NC62INK"] == (1, 2)  # -s 10.244.2.22/32 and DNAT --to-destination 10.244.2.22:8080
        assert nat["KUBE-SEP-3ARHRIN5OOHGXERH"] == (1, 2)  # the same for 10.244.2.24:5514 (udp)
        assert "KUBE-SEP-2ATXUOYIKDUXCR7P" not in nat  # 10.244.1.21: outside the network
