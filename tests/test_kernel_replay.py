"""Replaying real kernel trace logs (tests/kernel/data: xtables-monitor 1.8.9 and nft monitor trace on Linux 6.x,
captured by the kernel harness on the samples' scenarios) against the samples' dumps: the packet, where each
event is in the dump, and the hop-by-hop comparison with the engine -- on the real pair (they agree) and on
deliberately altered logs and dumps (they differ, and say where)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset
from kptui.engine.kernel_replay import locate_events, node_from_kernel, packet_from_kernel, replay
from kptui.engine.kernel_replay_walks import kernel_walks, walk_label
from kptui.engine.kernel_trace import KernelTrace, parse_kernel_trace
from kptui.engine.packet import NodeContext
from kptui.engine.trace import trace
from kptui.engine.trace_compare import compare, engine_steps, kernel_steps, same_steps

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "kernel" / "data"


def dump(name: str, edit: tuple[str, str] | None = None) -> Ruleset:
    text = (ROOT / "samples" / f"{name}.rules").read_text()
    if edit is not None:
        assert edit[0] in text
        text = text.replace(edit[0], edit[1])
    return parse_ruleset(text, source=name)


def walk(log: str, edit: tuple[str, str] | None = None) -> KernelTrace:
    text = (LOGS / log).read_text()
    if edit is not None:
        assert edit[0] in text
        text = text.replace(edit[0], edit[1], 1)
    walks = kernel_walks(text, log)
    return walks.walks[walks.default]


@pytest.mark.parametrize(("sample", "log", "hops", "endpoint"), [
    ("clusterip", "xt-pod-clusterip-tcp.txt", 15, "10.244.1.11:8080"),
    ("clusterip", "xt-pod-dns-udp.txt", 15, "10.244.2.3:53"),
    ("clusterip", "xt-node-to-itself-via-lo.txt", 24, "10.0.0.2:6443"),
    ("clusterip", "nft-node-to-itself-via-lo.txt", 24, "10.0.0.2:6443"),  # nft syntax: matched by location
    ("no-endpoints", "xt-no-endpoints-reject.txt", 8, None),
    ("kube-1.22-legacy", "xt-122-mark-drop.txt", 12, None),
])  # fmt: skip
def test_a_real_capture_and_its_dump_agree_on_every_hop(sample: str, log: str, hops: int,
                                                        endpoint: str | None) -> None:  # fmt: skip
    rp = replay(dump(sample), walk(log))
    cmp = rp.comparison
    assert cmp.agree, "\n".join(f"{r.kind}: {r.detail}" for r in cmp.rows if not r.ok) + str(cmp.problems)
    assert cmp.summary == f"the kernel and the simulation agree on all {hops} hops"
    assert len(cmp.rows) == hops and cmp.first_difference is None and rp.marks() == frozenset()
    assert rp.missing == 0, "every rule the kernel matched is found in the dump"
    assert cmp.path is not None and cmp.path.endpoint == endpoint == rp.kernel.endpoint
    kernel_path, engine_path = rp.trace.paths
    assert [(h.table, h.chain, h.index) for h in kernel_path.hops] == [
        (h.table, h.chain, h.index) for h in engine_path.matched_hops if h.kind != "routing"]
    assert rp.trace.notes[0] == cmp.summary


def test_packet_and_node_come_from_the_first_packet_line() -> None:
    k = walk("xt-pod-clusterip-tcp.txt")
    p = packet_from_kernel(k)
    assert (p.src, p.dst, p.proto, p.sport, p.dport, p.origin, p.in_iface, p.length) == (
        "10.244.1.100", "10.96.10.20", "tcp", 43000, 80, "pod", "vethclient", 60)
    node = node_from_kernel(k)
    assert node.pod_iface == "vethclient" and node.addresses == ()  # forwarded: no node address is proven
    local = walk("xt-node-to-itself-via-lo.txt")
    lp = packet_from_kernel(local)
    assert (lp.origin, lp.in_iface, lp.dport) == ("local", None, 443)
    assert "10.0.0.2" in node_from_kernel(local).addresses  # it sent the packet and delivered it to itself
    outside = walk("xt-122-mark-drop.txt")
    assert packet_from_kernel(outside).origin == "external"
    # the node context decides over the interface name
    assert packet_from_kernel(k, NodeContext(uplink="vethclient")).origin == "external"
    assert packet_from_kernel(k, NodeContext(pod_cidrs=("10.244.0.0/16",))).origin == "pod"


def test_events_are_located_by_rule_text_not_by_handle() -> None:
    rs = dump("clusterip")
    k = walk("xt-pod-clusterip-tcp.txt").without_trace_rules()
    locs = locate_events(rs, k)
    by_chain = {(e.chain, e.handle): loc for e, loc in zip(k.events, locs) if e.kind == "rule"}
    assert by_chain[("KUBE-SEP-ELX6N4Z5RGB67TLC", 0x2C)] == ("nat", "KUBE-SEP-ELX6N4Z5RGB67TLC", 2)
    assert by_chain[("KUBE-POSTROUTING", 0x1D)] == ("nat", "KUBE-POSTROUTING", 1)
    assert all(loc is None for e, loc in zip(k.events, locs) if e.kind == "policy")
    for (table, chain, index), e in ((loc, e) for e, loc in zip(k.events, locs) if loc):
        chain_obj = rs.chain(table, chain)
        assert chain_obj is not None and chain_obj.rules[index - 1].spec.target is not None
        assert e.rule_text is not None and chain_obj.rules[index - 1].raw.split(" -j ")[-1] in e.rule_text
    # nft monitor trace prints nft syntax; jumps, MARK, DNAT and MASQUERADE are found by target, in order
    nft = walk("nft-node-to-itself-via-lo.txt").without_trace_rules()
    nlocs = locate_events(rs, nft)
    marks = [loc for e, loc in zip(nft.events, nlocs) if e.chain == "KUBE-MARK-MASQ" and e.kind == "rule"]
    assert marks == [("nat", "KUBE-MARK-MASQ", 1)] * 2
    assert all(loc is not None for e, loc in zip(nft.events, nlocs) if e.kind == "rule")


def test_a_rule_the_dump_does_not_hold_is_not_found_and_the_walks_differ_from_there() -> None:
    # the no-endpoints scenario's log against the clusterip dump: the REJECT rule is not in this dump
    rp = replay(dump("clusterip"), walk("xt-no-endpoints-reject.txt"))
    cmp = rp.comparison
    assert not cmp.agree and rp.missing == 1
    assert cmp.first_difference == 8
    row = cmp.rows[7]
    assert row.kind == "kernel-only" and row.kernel is not None and "has no endpoints" in row.kernel.text
    assert cmp.summary.startswith("the kernel and the simulation differ from hop 8: only the kernel: FORWARD "
                                  "filter/KUBE-SERVICES: -A KUBE-SERVICES -d 10.96.40.10/32")
    assert "verdict: kernel REJECT, engine ACCEPT" in cmp.problems
    assert (0, 7) in rp.marks() and all(p == 1 for p, _ in rp.marks() - {(0, 7)})
    hop = rp.trace.paths[0].hops[7]
    assert hop.index is None and hop.note is not None and "rule not found in the dump" in hop.note


def test_an_altered_dump_shows_the_rule_that_differs() -> None:
    # the dump's cluster-IP rule now says --dport 8080: the kernel's rule (--dport 80) is not in it, and the
    # engine's packet to port 80 never reaches the service (nor KUBE-NODEPORTS: a cluster IP the rules name is
    # not a node address, so the addrtype LOCAL rule does not match either)
    rule = '-d 10.96.10.20/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80'
    rs = dump("clusterip", (rule, rule + "80"))
    rp = replay(rs, walk("xt-pod-clusterip-tcp.txt"))
    cmp = rp.comparison
    assert not cmp.agree and cmp.first_difference == 3  # after mangle PREROUTING and nat PREROUTING's jump
    row = cmp.rows[2]
    assert row.kind == "kernel-only" and row.kernel is not None and row.engine is None
    assert "KUBE-SVC-CDGGSHYLG3RE2FKL" in row.kernel.text
    assert cmp.summary.startswith("the kernel and the simulation differ from hop 3: only the kernel: PREROUTING "
                                  "nat/KUBE-SERVICES")
    assert "endpoint: kernel 10.244.1.11:8080, engine none" in cmp.problems


def test_an_altered_log_shows_packet_and_verdict_differences() -> None:
    rs = dump("clusterip")
    # the FORWARD visit's packet carries a mark the engine does not give it
    forward = "ID=24155 DF SPORT=43000 DPORT=8080 SYN \n TRACE: 2 74328cb3 mangle:FORWARD"
    marked = walk("xt-pod-clusterip-tcp.txt", (forward, forward.replace("SYN ", "SYN MARK=0x4000 ")))
    cmp = replay(rs, marked).comparison
    kinds = [(n, r.kind) for n, r in enumerate(cmp.rows, 1) if not r.ok]
    assert kinds == [(6, "packet")], kinds
    assert "mark kernel 0x4000, engine 0x0" in cmp.rows[5].detail
    assert cmp.summary.startswith("the kernel and the simulation differ from hop 6: packet at FORWARD mangle:")
    # the filter FORWARD policy said DROP
    dropped = walk("xt-pod-clusterip-tcp.txt", ("filter:FORWARD:policy:ACCEPT", "filter:FORWARD:policy:DROP"))
    cmp = replay(rs, dropped).comparison
    assert [(n, r.kind) for n, r in enumerate(cmp.rows, 1) if not r.ok] == [(11, "verdict")]
    assert cmp.rows[10].detail == "filter/FORWARD policy: kernel DROP, engine ACCEPT"
    assert "verdict: kernel DROP, engine ACCEPT" in cmp.problems


def test_compare_without_locations_matches_the_conformance_steps() -> None:
    rs = dump("clusterip")
    k = walk("xt-pod-dns-udp.txt").without_trace_rules()
    k = k.__class__(k.id, k.family, tuple(e for e in k.events if e.table != "raw"), k.packets, k.ids)
    engine = trace(rs, packet_from_kernel(k), node_from_kernel(k))
    cmp = compare(k, engine)
    assert cmp.agree and cmp.path is not None
    assert same_steps(kernel_steps(k), engine_steps(cmp.path))


def test_walks_pick_the_first_packet_and_join_the_lo_half() -> None:
    text = (LOGS / "xt-node-to-itself-via-lo.txt").read_text()
    walks = kernel_walks(text, "lo.log")
    assert walks.default == 0 and len(walks.walks[0].ids) == 2  # the lo half joined
    assert len(walks.walks) == len(parse_kernel_trace(text).traces) - 1
    assert walk_label(walks, 0) == "1. line 1: 10.0.0.2:43001 → 10.96.0.1:443 tcp SYN · ACCEPT (local)"
    assert walk_label(walks, 1).startswith("2. line 39: ") and walk_label(walks, 1).endswith("ACK · ACCEPT (loopback)")


@pytest.mark.parametrize(("text", "message"), [
    ("", "x.log: the kernel trace log is empty"),
    ("\n\n", "x.log: the kernel trace log is empty"),
    ("hello\n", "x.log: line 1: not a trace line: hello -- not an xtables-monitor --trace or nft monitor trace"),
    ("\n EVENT: x\nnope \x1b[31m\n", "x.log: line 3: not a trace line: nope \\x1b[31m"),
    (" TRACE: 2 ab raw:PREROUTING:policy:ACCEPT \n", "x.log: line 1: no traversal with a PACKET line"),
])  # fmt: skip
def test_a_log_with_nothing_to_replay_names_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        kernel_walks(text, "x.log")
    assert str(exc.value).startswith(message)
    assert "\x1b" not in str(exc.value)
