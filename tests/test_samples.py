"""Every bundled sample (saved from a real kernel) parses cleanly and prints back byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import parse_ruleset_bytes
from kptui.engine.graph import graph_of
from kptui.engine.rules import decode_rule

from .conftest import sample_paths

EXPECTED = {  # name → (backend, family)
    "clusterip": ("nf_tables", "ipv4"),
    "foreign-chains": ("nf_tables", "ipv4"),
    "ipv6": ("nf_tables", "ipv6"),
    "kube-1.22-legacy": ("legacy", "ipv4"),
    "loadbalancer-sourceranges": ("nf_tables", "ipv4"),
    "mixed-all": ("nf_tables", "ipv4"),
    "mixed-node": ("nf_tables", "ipv4"),
    "no-endpoints": ("nf_tables", "ipv4"),
    "nodeport-cluster": ("nf_tables", "ipv4"),
    "nodeport-local": ("nf_tables", "ipv4"),
    "session-affinity": ("nf_tables", "ipv4"),
    "ipvs-mode": ("nf_tables", "ipv4"),
}


def test_all_expected_samples_are_there() -> None:
    assert {p.stem for p in sample_paths(ipvs=True)} >= set(EXPECTED)


@pytest.mark.parametrize("path", sample_paths(ipvs=True), ids=lambda p: p.stem)
def test_sample_parses_cleanly_and_round_trips(path: Path) -> None:
    rs = parse_ruleset_bytes(path.read_bytes(), source=str(path))
    assert rs.warnings == ()
    assert (rs.backend, rs.family) == EXPECTED[path.stem]
    assert rs.rule_count > 20
    assert graph_of(rs).dangling == () and graph_of(rs).loops == ()
    lines = path.read_text().splitlines()
    for rule in rs.rules():
        assert lines[rule.line - 1].endswith(rule.raw)  # the raw text is the line minus its counters
        assert rule.counters is not None
        text = rule.text()
        assert text == rule.raw  # iptables-save's canonical form, printed back byte for byte
        assert decode_rule(text) == rule.spec


def test_samples_carry_real_traffic() -> None:
    for path in sample_paths(ipvs=True):
        rs = parse_ruleset_bytes(path.read_bytes())
        if path.stem == "ipvs-mode":  # no DNAT rules: IPVS DNATs (and this kernel has no IPVS); the set matches count
            hits = [r for r in rs.rules() if "--match-set KUBE-CLUSTER-IP" in r.raw]
        else:
            hits = [r for r in rs.rules() if r.target_name == "DNAT"]
        assert hits and all(r.counters and r.counters.packets > 0 for r in hits), path.stem
