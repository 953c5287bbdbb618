"""Structural facts: callers, jumps to nowhere, unreferenced chains, loops."""

from __future__ import annotations

from kptui.engine.graph import ChainRef, RuleRef, graph_of

from .conftest import parse

TEXT = """\
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
:KUBE-SEP-1 - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-STALE - [0:0]
:LOOP-A - [0:0]
:LOOP-B - [0:0]
:SELF - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-A
-A KUBE-SERVICES -j KUBE-MISSING
-A KUBE-SVC-A -g KUBE-SEP-1
-A KUBE-SEP-1 -s 10.244.1.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-1 -p tcp -m tcp -j DNAT --to-destination 10.244.1.5:443
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A LOOP-A -j LOOP-B
-A LOOP-B -j LOOP-A
-A SELF -j SELF
COMMIT
"""


def test_callers_in_file_order_including_goto() -> None:
    g = graph_of(parse(TEXT))
    assert g.callers_of("nat", "KUBE-SERVICES") == (
        RuleRef("nat", "PREROUTING", 1, 12),
        RuleRef("nat", "OUTPUT", 1, 13),
    )
    assert g.callers_of("nat", "KUBE-SEP-1") == (RuleRef("nat", "KUBE-SVC-A", 1, 16),)
    assert g.callers_of("nat", "PREROUTING") == ()


def test_jumps_to_undeclared_chains() -> None:
    g = graph_of(parse(TEXT))
    assert g.dangling == ((RuleRef("nat", "KUBE-SERVICES", 2, 15), "KUBE-MISSING"),)


def test_known_targets_are_not_dangling() -> None:
    assert graph_of(parse(TEXT)).dangling[0][1] == "KUBE-MISSING"  # MARK and DNAT are targets, not chains


def test_unreferenced_user_chains() -> None:
    g = graph_of(parse(TEXT))
    assert set(g.unreferenced) == {ChainRef("nat", "KUBE-STALE")}  # loops reference each other


def test_loops_are_found_once_each() -> None:
    g = graph_of(parse(TEXT))
    assert g.loops == (
        (ChainRef("nat", "LOOP-A"), ChainRef("nat", "LOOP-B")),
        (ChainRef("nat", "SELF"),),
    )


def test_deep_chain_nesting_does_not_recurse() -> None:
    depth = 5000
    decls = "".join(f":C{i} - [0:0]\n" for i in range(depth))
    rules = "".join(f"-A C{i} -j C{i + 1}\n" for i in range(depth - 1)) + f"-A C{depth - 1} -j C0\n"
    g = graph_of(parse(f"*filter\n{decls}{rules}COMMIT\n"))
    assert len(g.loops) == 1 and len(g.loops[0]) == depth
