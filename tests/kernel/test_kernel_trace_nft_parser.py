"""The kernel-trace parser on ``nft monitor trace`` captures of native nft tables (``data/nft-*.txt``: nft 1.0.6 on
Linux 6.x, taken by tests/kernel/nft_harness.py): base chains named freely get their hook and their place in the
hook's order from ``base_chains``. Needs no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine.kernel_trace import first_packet, parse_kernel_trace, visit_order

DATA = Path(__file__).resolve().parent / "data"

TRACE = {("ip", "kptrace", "pre"): ("prerouting", "filter", -310), ("ip", "kptrace", "out"): ("output", "filter", -310)}
KUBE_PROXY = {
    ("ip", "kube-proxy", "filter-prerouting-pre-dnat"): ("prerouting", "filter", -110),
    ("ip", "kube-proxy", "filter-output-pre-dnat"): ("output", "filter", -110),
    ("ip", "kube-proxy", "filter-input"): ("input", "filter", 0),
    ("ip", "kube-proxy", "filter-forward"): ("forward", "filter", 0),
    ("ip", "kube-proxy", "filter-output"): ("output", "filter", 0),
    ("ip", "kube-proxy", "nat-prerouting"): ("prerouting", "nat", -100),
    ("ip", "kube-proxy", "nat-output"): ("output", "nat", -100),
    ("ip", "kube-proxy", "nat-postrouting"): ("postrouting", "nat", 100),
} | TRACE
GUARD = {
    ("ip", "guard", "tag"): ("prerouting", "filter", -150),
    ("ip", "guard", "port-forward"): ("prerouting", "nat", -90),
    ("ip", "guard", "after-nat"): ("prerouting", "filter", -95),
    ("ip", "guard", "deny"): ("forward", "filter", -10),
} | KUBE_PROXY
FIREWALLD = {
    ("inet", "firewalld", "mangle_PREROUTING"): ("prerouting", "filter", -140),
    ("inet", "firewalld", "nat_PREROUTING"): ("prerouting", "nat", -90),
    ("inet", "firewalld", "filter_INPUT"): ("input", "filter", 10),
    ("inet", "firewalld", "filter_FORWARD"): ("forward", "filter", 10),
    ("inet", "firewalld", "filter_OUTPUT"): ("output", "filter", 10),
    ("inet", "firewalld", "nat_POSTROUTING"): ("postrouting", "nat", 110),
} | TRACE


def load(name: str) -> str:
    return (DATA / name).read_text()


def test_visit_order_puts_nat_chains_at_the_nat_hooks_priority() -> None:
    assert visit_order("prerouting", "nat", -90) == (-100, -90)
    assert visit_order("PREROUTING", "filter", -95) == (-95, -95)
    assert visit_order("input", "nat", 200) == (100, 200)
    assert visit_order("postrouting", "nat", 110) == (100, 110)
    assert visit_order("forward", "filter", -10) < visit_order("forward", "filter", 0)
    assert visit_order("prerouting", "nat", -90) < visit_order("prerouting", "filter", -95)


def test_without_base_chains_native_visits_have_no_hook() -> None:
    walk = first_packet(parse_kernel_trace(load("nft-kp-node-to-api-via-lo.txt")), "tcp", 47000)
    assert walk is not None
    assert {e.hook for e in walk.events} == {None} and walk.delivery is None, "nothing names the hooks"
    assert walk.ids == ("256f7706",), "and the lo half cannot be joined"


def test_kube_proxy_node_to_its_own_api_server_loops_through_lo_with_a_new_source_port() -> None:
    log = parse_kernel_trace(load("nft-kp-node-to-api-via-lo.txt"), base_chains=KUBE_PROXY)
    assert log.format == "nft" and log.warnings == ()
    walk = first_packet(log, "tcp", 47000)
    assert walk is not None
    assert walk.ids == ("256f7706", "a32feeb4"), "the lo half has its own trace id"
    assert walk.endpoint == "10.0.0.2:6443" and walk.masquerade and walk.verdict == "ACCEPT"
    assert walk.delivery == "local"
    sports = [p.sport for p in walk.packets]
    assert sports[0] == 47000 and sports[-1] == 51719, "masquerade fully-random rewrote the source port on lo"
    assert len({p.ip_id for p in walk.packets}) == 1, "the IPv4 id joins the halves"
    hooks = [e.hook for e in walk.without_trace_rules().events if e.table == "kube-proxy"]
    assert hooks[0] == "OUTPUT" and hooks[-1] == "INPUT" and "POSTROUTING" in hooks
    lo = [e for e in walk.events if e.trace_id == "a32feeb4" and e.table == "kube-proxy"]
    assert {e.chain for e in lo} == {"filter-prerouting-pre-dnat", "filter-input"}, "no nat-prerouting on lo"
    assert next(e.order for e in walk.events if e.chain == "nat-output") == (-100, -100)


def test_nat_chains_run_before_a_filter_chain_of_lower_priority() -> None:
    walk = first_packet(parse_kernel_trace(load("nft-guard-nat-order.txt"), base_chains=GUARD), "tcp", 47001)
    assert walk is not None and len(walk.ids) == 1, "one traversal: -90 (nat) before -95 (filter) is no way back"
    chains = [(e.table, e.chain, e.kind, e.verdict) for e in walk.events if e.hook == "PREROUTING"]
    wanted = ("nat-prerouting", "port-forward", "after-nat")
    order = [tc for tc in dict.fromkeys((t, c) for t, c, _, _ in chains) if tc[1] in wanted]
    assert order == [("kube-proxy", "nat-prerouting"), ("guard", "port-forward"), ("guard", "after-nat")]
    assert ("guard", "port-forward", "rule", "ACCEPT") in chains and walk.endpoint == "10.244.1.21:8080"
    assert walk.delivery == "forward" and not walk.masquerade


def test_iptables_nft_tables_and_a_native_inet_table_interleave_by_priority() -> None:
    walk = first_packet(parse_kernel_trace(load("nft-mixed-firewalld-reject.txt"), base_chains=FIREWALLD), "tcp",
                        47002)  # fmt: skip
    assert walk is not None and walk.verdict == "REJECT" and len(walk.ids) == 1
    seq = list(dict.fromkeys((e.hook, e.family, e.table) for e in walk.events if e.table != "kptrace"))
    assert seq == [("PREROUTING", 2, "mangle"), ("PREROUTING", 1, "firewalld"), ("PREROUTING", 2, "nat"),
                   ("INPUT", 2, "mangle"), ("INPUT", 2, "filter"), ("INPUT", 1, "firewalld")]
    last = walk.events[-1]
    assert (last.table, last.chain, last.verdict) == ("firewalld", "filter_INPUT", "DROP")
    assert last.rule_text == "reject with icmpx admin-prohibited"


@pytest.mark.parametrize("name", ["nft-kp-node-to-api-via-lo.txt", "nft-guard-nat-order.txt",
                                  "nft-mixed-firewalld-reject.txt"])  # fmt: skip
def test_base_chains_do_not_change_what_a_rule_event_says(name: str) -> None:
    plain = parse_kernel_trace(load(name))
    named = parse_kernel_trace(load(name), base_chains=GUARD | FIREWALLD)
    strip = [(e.line, e.table, e.chain, e.kind, e.verdict, e.target, e.rule_text) for t in plain.traces
             for e in t.events]  # fmt: skip
    assert strip == [(e.line, e.table, e.chain, e.kind, e.verdict, e.target, e.rule_text) for t in named.traces
                     for e in t.events]  # fmt: skip
