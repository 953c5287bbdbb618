"""Big inputs: a 700k-line dump (the largest reported in the field) loads, and a 220k-rule one stays lean.

These are correctness tests at scale; speed is measured by benchmarks/bench_parse.py, not asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.graph import graph_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from gen_dump import generate_lines


@pytest.mark.slow
def test_a_700k_line_dump_parses_completely() -> None:
    text = "".join(line + "\n" for line in generate_lines(16000, 10, seed=7))
    lines = text.count("\n")
    assert lines >= 690_000
    rs = parse_ruleset(text, source="big.rules")
    declared = sum(1 for line in text.splitlines() if line.startswith(":"))
    rules = sum(1 for line in text.splitlines() if line.startswith("["))
    assert rs.rule_count == rules
    assert sum(len(t.chains) for t in rs.tables.values()) == declared
    assert rs.warnings == () and graph_of(rs).dangling == () and graph_of(rs).loops == ()
    services = rs.chain("nat", "KUBE-SERVICES")
    assert services is not None and len(services.rules) > 16000
    # A rule deep in the file decodes on demand with its right line number.
    last = services.rules[-1]
    assert text.splitlines()[last.line - 1].endswith(last.raw)
    assert last.target is not None and last.target.name == "KUBE-NODEPORTS"
