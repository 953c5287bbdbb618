"""The kernel-trace parser on real captures (``data/``: xtables-monitor 1.8.9 and nft 1.0.x on Linux 6.x,
taken by the conformance harness) and on damaged or unusual input. Needs no root."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kptui.engine.kernel_trace import KernelTrace, first_packet, parse_kernel_trace

DATA = Path(__file__).resolve().parent / "data"


def load(name: str) -> str:
    return (DATA / name).read_text()


def steps(t: KernelTrace) -> list[str]:
    return [f"{e.hook} {e.table}/{e.chain}:{e.kind}:{e.verdict}{':' + e.target if e.target else ''}"
            for e in t.events]  # fmt: skip


def test_forwarded_syn_and_the_later_packets_that_reuse_its_trace_id() -> None:
    log = parse_kernel_trace(load("xt-pod-clusterip-tcp.txt"))
    assert log.format == "xtables" and log.warnings == ()
    assert len(log.traces) == 4  # SYN, ACK, ACK, FIN+ACK
    assert [sorted(t.first.flags) for t in log.traces if t.first] == [["SYN"], ["ACK"], ["ACK"], ["ACK", "FIN"]]
    assert len(log.by_id("74328cb3")) == 2, "the FIN reuses the SYN's id but is a traversal of its own"
    syn = first_packet(log, "tcp", 43000)
    assert syn is log.traces[0] and syn.ids == ("74328cb3",)
    first = syn.first
    assert first is not None
    assert (first.iif, first.oif, first.src, first.dst, first.sport, first.dport, first.proto, first.ip_id) == (
        "vethclient", None, "10.244.1.100", "10.96.10.20", 43000, 80, "tcp", 24155)
    assert first.mark == 0 and first.length == 60 and ("DF", "") in first.fields
    events = syn.without_trace_rules().events
    assert len(events) == len(syn.events) - 1 and syn.events[0].is_trace_rule
    assert steps(syn.without_trace_rules()) == [
        "PREROUTING raw/PREROUTING:policy:ACCEPT",
        "PREROUTING mangle/PREROUTING:policy:ACCEPT",
        "PREROUTING nat/PREROUTING:rule:JUMP:KUBE-SERVICES",
        "PREROUTING nat/KUBE-SERVICES:rule:JUMP:KUBE-SVC-CDGGSHYLG3RE2FKL",
        "PREROUTING nat/KUBE-SVC-CDGGSHYLG3RE2FKL:rule:JUMP:KUBE-SEP-ELX6N4Z5RGB67TLC",
        "PREROUTING nat/KUBE-SEP-ELX6N4Z5RGB67TLC:rule:ACCEPT",  # DNAT shows as ACCEPT
        "FORWARD mangle/FORWARD:policy:ACCEPT",
        "FORWARD filter/FORWARD:rule:JUMP:KUBE-PROXY-FIREWALL",
        "FORWARD filter/FORWARD:rule:JUMP:KUBE-FORWARD",
        "FORWARD filter/FORWARD:rule:JUMP:KUBE-SERVICES",
        "FORWARD filter/FORWARD:rule:JUMP:KUBE-EXTERNAL-SERVICES",
        "FORWARD filter/FORWARD:policy:ACCEPT",
        "POSTROUTING mangle/POSTROUTING:policy:ACCEPT",
        "POSTROUTING nat/POSTROUTING:rule:JUMP:KUBE-POSTROUTING",
        "POSTROUTING nat/KUBE-POSTROUTING:rule:RETURN",  # printed as 0xfffffffb
        "POSTROUTING nat/POSTROUTING:policy:ACCEPT",
    ]
    ret = events[14]
    assert ret.rule_text == "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN" and ret.handle == 0x1D
    dnat = events[5]
    assert dnat.rule_text is not None and dnat.rule_text.startswith("-A KUBE-SEP-ELX6N4Z5RGB67TLC -p tcp")
    assert dnat.packet is not None and dnat.packet.dst == "10.96.10.20", "nat sees the packet before DNAT"
    fwd = events[6].packet
    assert fwd is not None and (fwd.oif, fwd.dst, fwd.dport) == ("vethpod1", "10.244.1.11", 8080)
    assert syn.visits[:3] == (("PREROUTING", "raw"), ("PREROUTING", "mangle"), ("PREROUTING", "nat"))
    assert (syn.verdict, syn.delivery, syn.endpoint, syn.masquerade) == ("ACCEPT", "forward", "10.244.1.11:8080",
                                                                         False)


def test_node_to_itself_joins_the_lo_half() -> None:
    log = parse_kernel_trace(load("xt-node-to-itself-via-lo.txt"))
    out_half = log.traces[0]
    assert out_half.delivery == "loopback" and out_half.first and out_half.first.iif is None
    t = first_packet(log, "tcp", out_half.first.sport or 0)
    assert t is not None and len(t.ids) == 2 and t.ids[0] == out_half.id
    assert t.visits == (("OUTPUT", "raw"), ("OUTPUT", "mangle"), ("OUTPUT", "nat"), ("OUTPUT", "filter"),
                        ("POSTROUTING", "mangle"), ("POSTROUTING", "nat"),
                        ("PREROUTING", "raw"), ("PREROUTING", "mangle"), ("INPUT", "mangle"), ("INPUT", "filter"))
    lo = t.packets[-1]
    assert lo.iif == "lo" and lo.dst == "10.0.0.2" and lo.dport == 6443 and lo.ip_id == out_half.first.ip_id
    assert (t.verdict, t.delivery, t.endpoint, t.masquerade) == ("ACCEPT", "local", "10.0.0.2:6443", True)
    # The OUTPUT-side packet keeps the original route's OUT until POSTROUTING re-routes it to lo.
    assert [p.oif for p in out_half.packets] == ["eth0", "eth0", "eth0", "eth0", "lo", "lo"]
    assert [p.mark for p in out_half.packets] == [0, 0, 0, 0x4000, 0x4000, 0x4000]


def test_udp_datagram() -> None:
    log = parse_kernel_trace(load("xt-pod-dns-udp.txt"))
    (t,) = log.traces
    assert t.first and t.first.proto == "udp" and t.first.flags == frozenset() and t.first.is_first
    assert first_packet(log, "udp", t.first.sport or 0) is t
    assert first_packet(log, "tcp", t.first.sport or 0) is None
    assert first_packet(log, "udp", t.first.sport or 0, dport=54) is None
    assert t.endpoint == "10.244.2.3:53"


def test_reject_shows_as_drop_by_a_reject_rule() -> None:
    log = parse_kernel_trace(load("xt-no-endpoints-reject.txt"))
    t = log.traces[0]
    assert t.events[-1].verdict == "DROP" and "-j REJECT" in (t.events[-1].rule_text or "")
    assert (t.verdict, t.delivery, t.endpoint) == ("REJECT", None, None)


def test_122_mark_drop() -> None:
    t = parse_kernel_trace(load("xt-122-mark-drop.txt")).traces[0]
    assert t.verdict == "DROP"
    mark = next(e for e in t.events if e.chain == "KUBE-MARK-DROP")
    assert mark.hook == "PREROUTING" and mark.verdict == "CONTINUE"
    assert [p.mark for p in t.packets] == [0, 0, 0, 0x8000, 0x8000]


def test_nft_monitor_trace_format() -> None:
    log = parse_kernel_trace(load("nft-node-to-itself-via-lo.txt"))
    assert log.format == "nft" and log.warnings == ()
    t = first_packet(log, "tcp", 45000)
    assert t is not None and len(t.ids) == 2
    assert t.events[0].is_trace_rule and t.events[0].verdict == "CONTINUE"
    assert t.visits[0] == ("OUTPUT", "raw") and t.visits[-1] == ("INPUT", "filter")
    jump = next(e for e in t.events if e.verdict == "JUMP")
    assert jump.target == "KUBE-SERVICES" and jump.table == "nat"
    assert (t.verdict, t.delivery, t.endpoint, t.masquerade) == ("ACCEPT", "local", "10.0.0.2:6443", True)
    assert t.first and t.first.proto == "tcp" and t.first.flags == {"SYN"} and t.first.oif == "eth0"


XT_SNIPPET = """\
PACKET: 2 0000abcd IN=eth0 SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TOS=0x0 TTL=64 ID=7DF SPORT=1000 DPORT=80 SYN
 TRACE: 2 0000abcd filter:INPUT:rule:0x5:JUMP:CUSTOM  -4 -t filter -A INPUT -j CUSTOM
 TRACE: 2 0000abcd filter:CUSTOM:return:
 TRACE: 2 0000abcd filter:INPUT:rule:0x6:0xdeadbeef
 TRACE: 2 0000abcd filter:INPUT:policy:DROP
"""


def test_old_shapes_return_events_hex_verdicts_and_id_without_space() -> None:
    log = parse_kernel_trace(XT_SNIPPET)
    (t,) = log.traces
    assert t.first and t.first.ip_id == 7
    assert [(e.kind, e.verdict, e.rule_text) for e in t.events] == [
        ("rule", "JUMP", "-A INPUT -j CUSTOM"), ("return", "RETURN", None), ("rule", "0xdeadbeef", None),
        ("policy", "DROP", None)]
    assert t.verdict == "DROP" and all(e.hook == "INPUT" for e in t.events)


def test_bad_lines_are_skipped_with_warnings() -> None:
    text = ("garbage here\n TRACE: 2 0000abcd nat\n TRACE: x y z\nPACKET: 2 0000abcd\n"
            " EVENT: -4 -t filter -A INPUT -j ACCEPT\nNEWGEN: GENID=5 PID=1 NAME=iptables-nft\n\n" + XT_SNIPPET)
    log = parse_kernel_trace(text)
    assert len(log.warnings) == 3 and log.warnings[0].startswith("line 1:")
    assert any("unrecognised TRACE" in w for w in log.warnings)
    assert log.traces and log.traces[-1].verdict == "DROP"


def test_traversals_without_packet_lines_split_where_hooks_go_back() -> None:
    text = ("TRACE: 2 00000001 raw:PREROUTING:policy:ACCEPT\nTRACE: 2 00000001 filter:INPUT:policy:ACCEPT\n"
            "TRACE: 2 00000001 raw:PREROUTING:policy:ACCEPT\nTRACE: 2 00000002 raw:OUTPUT:policy:ACCEPT\n"
            "TRACE: 2 00000001 filter:INPUT:policy:ACCEPT\n")
    log = parse_kernel_trace(text)
    assert [(t.id, len(t.events)) for t in log.traces] == [("00000001", 2), ("00000001", 2), ("00000002", 1)]
    assert log.traces[1].visits == (("PREROUTING", "raw"), ("INPUT", "filter"))


def test_values_are_frozen() -> None:
    t = parse_kernel_trace(XT_SNIPPET).traces[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.id = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.events[0].verdict = "x"  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=80),
    st.sampled_from(XT_SNIPPET.splitlines() + load("nft-node-to-itself-via-lo.txt").splitlines()[:6]),
    st.builds(lambda a, b: f" TRACE: {a} {b}", st.text(max_size=10), st.text(max_size=60)),
    st.builds(lambda a: f"trace id 1 ip filter INPUT {a}", st.text(max_size=60)),
    st.builds(lambda a: f"PACKET: 2 00000001 {a}", st.text(max_size=60)),
), max_size=20))  # fmt: skip
def test_never_crashes(lines: list[str]) -> None:
    log = parse_kernel_trace("\n".join(lines))
    for t in log.traces:
        _ = (t.verdict, t.delivery, t.endpoint, t.masquerade, t.visits, t.line)
    first_packet(log, "tcp", 1000)
    first_packet(log, "udp", 1000)


def test_nft_trace_of_iptables_nft_rules_maps_back_by_handle() -> None:
    """``nft -a monitor trace`` of ip6tables-nft rules (xtables-monitor aborts on IPv6 ports): the handle in
    each rule event names the ip6tables-save rule, comment included (issue 14.6)."""
    from kptui.engine import parse_ruleset
    from kptui.engine.kernel_handles import rule_handles, with_iptables_rules

    log = parse_kernel_trace(load("nft-ip6-iptables-nft-handles.txt"))
    handles = rule_handles(load("nft-ip6-iptables-nft-handles.listing"))
    assert handles[(10, "filter", "X")] == {5: 1, 6: 2}  # the udp ACCEPT rule is the chain's first
    k = first_packet(log, "tcp", 37718)
    assert k is not None
    rules = parse_ruleset(load("nft-ip6-iptables-nft-handles.rules"))
    mapped = with_iptables_rules(k.without_trace_rules(), handles, rules)
    assert [e.rule_text for e in mapped.events if e.kind == "rule"] == [
        '-A OUTPUT -p tcp -m comment --comment "hello world" -m tcp --dport 80 -j X',
        "-A X -j MARK --set-xmark 0x4000/0x4000",
    ]
    assert [e.handle for e in k.events if e.kind == "rule"] == [2, 4, 6]


def test_a_comment_that_says_masquerade_is_no_masquerade() -> None:
    """kube-proxy's IPVS-mode ACCEPT for external IPs is commented "… for masquerade and filter purpose"; only a
    MASQUERADE target (or nft's masquerade statement) masquerades (captured: outside → external IP, no IPVS)."""
    log = parse_kernel_trace(load("xt-ipvs-external-ip.txt"))
    (t,) = log.traces
    assert any("for masquerade and filter purpose" in (e.rule_text or "") and e.verdict == "ACCEPT" for e in t.events)
    assert (t.verdict, t.delivery, t.masquerade) == ("ACCEPT", "local", False)
