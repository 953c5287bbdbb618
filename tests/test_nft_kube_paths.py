"""The compiled ops of the kube-proxy fixture chained together the way the trace walker chains them (a small
walker for one base chain: jump/goto/return, spreads): the paths kube-proxy's nftables rules give a packet."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from kptui.engine.flow import (
    CONTINUE,
    END,
    GOTO,
    JUMP,
    RETURN,
    STOP_TABLE,
    Check,
    Effect,
    Env,
    Spread,
    Undecidable,
)
from kptui.engine.nft import NftCompiled, parse_nft
from kptui.engine.packet import NodeContext
from kptui.engine.trace_model import PacketState

from .nft_fixtures import fixture_path

RS = parse_nft(fixture_path("kube-proxy", "list.txt").read_text(), source="kube-proxy.list.txt")
NODE = NodeContext(addresses=("192.168.0.2",), interfaces={"eth0": ("192.168.0.2/24",)}, uplink="eth0",
                   pod_cidrs=("10.244.1.0/24",), pod_iface="cni0")  # fmt: skip


def walk(base: str, s: PacketState, node: NodeContext = NODE, *, family: str = "ip") -> list[tuple[Any, ...]]:
    """Every way through base chain ``base``: (probability, verdict, final state) — verdict the ending effect's,
    or the policy (``policy accept``)."""
    comp = NftCompiled(RS)
    env = Env(node, 4 if family == "ip" else 6, s.hook, 60, None, frozenset({"SYN"}), None)
    out: list[tuple[Any, ...]] = []

    def go(frames: list[tuple[str, int]], s: PacketState, p: Fraction) -> None:
        while frames:
            name, i = frames[-1]
            view = comp.chain(family, "kube-proxy", name)
            assert view is not None, name
            if i >= len(view):
                frames = frames[:-1]
                continue
            frames = frames[:-1] + [(name, i + 1)]
            for op in view.ops(i):
                r = op.fn(s, env)
                if isinstance(op, Check):
                    if r is True:
                        continue
                    assert r is False, (view.row(i).text, r)
                    break
                if isinstance(r, Spread):
                    rest = p * (1 - sum(b[0] for b in r.branches))
                    for q, eff, _ in r.branches:
                        follow(frames, eff, p * q)
                    if rest:
                        go(frames, s, rest)
                    return
                assert isinstance(r, Effect), r
                if r.flow == CONTINUE:
                    s = r.state
                    continue
                follow(frames, r, p)
                return
        out.append((p, "policy accept", s))

    def follow(frames: list[tuple[str, int]], eff: Effect, p: Fraction) -> None:
        if eff.flow in (STOP_TABLE, END):
            out.append((p, eff.verdict, eff.state))
        elif eff.flow == JUMP:
            go(frames + [(eff.target or "", 0)], eff.state, p)
        elif eff.flow == GOTO:
            go(frames[:-1] + [(eff.target or "", 0)], eff.state, p)
        else:
            assert eff.flow == RETURN
            go(frames[:-1], eff.state, p)

    go([(base, 0)], s, Fraction(1))
    return out


def pkt(src: str, dst: str, dport: int, proto: str = "tcp", hook: str = "PREROUTING", **kw: Any) -> PacketState:
    base = {"orig_src": src, "orig_dst": dst, "orig_sport": 40000, "orig_dport": dport, "in_iface": "cni0",
            "out_iface": "", "hook": hook}  # fmt: skip
    base.update(kw)
    return PacketState(src, dst, proto, 40000, dport, **base)


def dnat(paths: list[tuple[Any, ...]]) -> list[tuple[Fraction, str, str, int | None, int]]:
    return sorted((p, v, s.dst, s.dport, s.mark) for p, v, s in paths)


def test_a_cluster_ip_spreads_over_its_three_endpoints() -> None:
    got = dnat(walk("nat-prerouting", pkt("10.244.1.77", "10.96.0.10", 80)))
    third = Fraction(1, 3)
    assert got == [(third, "DNAT", "10.244.1.5", 8080, 0), (third, "DNAT", "10.244.2.6", 8080, 0),
                   (third, "DNAT", "10.244.3.7", 8080, 0)]  # fmt: skip
    assert sum(p for p, *_ in got) == 1


def test_hairpin_and_outside_clients_get_the_masquerade_mark() -> None:
    hairpin = dnat(walk("nat-prerouting", pkt("10.244.1.5", "10.96.0.10", 80)))
    assert [(p, dst, mark) for p, _, dst, _, mark in hairpin] == [
        (Fraction(1, 3), "10.244.1.5", 0x4000), (Fraction(1, 3), "10.244.2.6", 0), (Fraction(1, 3), "10.244.3.7", 0)]
    outside = dnat(walk("nat-prerouting", pkt("203.0.113.9", "10.96.0.10", 80, in_iface="eth0")))
    assert {mark for *_, mark in outside} == {0x4000}


def test_a_nodeport_goes_through_the_external_chain() -> None:
    got = dnat(walk("nat-prerouting", pkt("203.0.113.9", "192.168.0.2", 30080, in_iface="eth0")))
    assert got == [(Fraction(1, 2), "DNAT", "10.244.1.8", 80, 0x4000), (Fraction(1, 2), "DNAT", "10.244.2.9", 80,
                                                                         0x4000)]  # fmt: skip


def test_the_newer_layout_dnats_through_a_numgen_map() -> None:
    got = dnat(walk("nat-prerouting", pkt("10.244.1.77", "10.96.0.60", 53, "udp")))
    assert got == [(Fraction(1, 2), "DNAT", "10.244.1.40", 53, 0), (Fraction(1, 2), "DNAT", "10.244.2.41", 53, 0)]


def test_unknown_service_traffic_falls_through_nat() -> None:
    assert [(p, v) for p, v, _ in walk("nat-prerouting", pkt("10.244.1.77", "10.96.0.99", 80))] == [
        (Fraction(1), "policy accept")]


def test_no_endpoints_and_unallocated_cluster_ips_are_refused_in_filter() -> None:
    fwd = {"hook": "FORWARD", "out_iface": "eth0"}
    assert [v for _, v, _ in walk("filter-forward", pkt("10.244.1.77", "10.96.0.30", 80, **fwd))] == ["REJECT"]
    assert [v for _, v, _ in walk("filter-forward", pkt("10.244.1.77", "10.96.0.10", 81, **fwd))] == ["REJECT"]
    assert [v for _, v, _ in walk("filter-forward", pkt("10.244.1.77", "10.96.9.9", 80, **fwd))] == ["DROP"]
    assert [v for _, v, _ in walk("filter-input", pkt("203.0.113.9", "192.168.0.2", 30030, in_iface="eth0",
                                                      hook="INPUT"))] == ["REJECT"]  # fmt: skip


def test_load_balancer_source_ranges_drop_before_dnat() -> None:
    blocked = walk("filter-prerouting-pre-dnat", pkt("203.0.113.200", "198.51.100.10", 443, in_iface="eth0"))
    allowed = walk("filter-prerouting-pre-dnat", pkt("203.0.113.5", "198.51.100.10", 443, in_iface="eth0"))
    assert [v for _, v, _ in blocked] == ["DROP"] and [v for _, v, _ in allowed] == ["policy accept"]


def test_external_traffic_policy_local_short_circuits() -> None:
    outside = dnat(walk("nat-prerouting", pkt("203.0.113.5", "198.51.100.10", 443, in_iface="eth0")))
    assert outside == [(Fraction(1), "DNAT", "10.244.1.20", 8443, 0)]  # only the local endpoint, no masquerade
    pod = dnat(walk("nat-prerouting", pkt("10.244.1.77", "198.51.100.10", 443)))
    assert [(p, dst, mark) for p, _, dst, _, mark in pod] == [(Fraction(1, 2), "10.244.1.20", 0),
                                                              (Fraction(1, 2), "10.244.2.21", 0)]  # fmt: skip
    unknown = NodeContext()  # no node addresses: whether the source is local cannot be told
    comp = NftCompiled(RS).chain("ip", "kube-proxy", "external-AX7PDJR4-ns4/lb/tcp/https")
    assert comp is not None
    env = Env(unknown, 4, "PREROUTING", 60, None, frozenset({"SYN"}), None)
    q = comp.ops(1)[0].fn(pkt("203.0.113.5", "198.51.100.10", 443), env)
    assert isinstance(q, Undecidable) and q.key == "local 203.0.113.5"


def test_session_affinity() -> None:
    first = dnat(walk("nat-prerouting", pkt("10.244.1.77", "10.96.0.50", 80)))
    assert [p for p, *_ in first] == [Fraction(1, 2)] * 2
    affinity = {s.dyn for _, _, s in walk("nat-prerouting", pkt("10.244.1.77", "10.96.0.50", 80))}
    assert affinity == {frozenset({("ip kube-proxy affinity-TIQFMADE-ns5/sticky/tcp/http__10.244.1.30/80",
                                    "10.244.1.77")}),
                        frozenset({("ip kube-proxy affinity-VBJH2E7W-ns5/sticky/tcp/http__10.244.2.31/80",
                                    "10.244.1.77")})}  # fmt: skip
    bound = NodeContext(affinity="10.244.2.31:80")  # a returning client, bound to the second endpoint
    repeat = dnat(walk("nat-prerouting", pkt("10.244.1.77", "10.96.0.50", 80), bound))
    assert repeat == [(Fraction(1), "DNAT", "10.244.2.31", 80, 0)]  # its own endpoint, not always the first


def test_masquerading_in_postrouting() -> None:
    marked = walk("nat-postrouting", pkt("10.244.1.77", "10.244.2.6", 8080, hook="POSTROUTING", mark=0x4000,
                                         out_iface="eth0"))  # fmt: skip
    assert [(v, s.src, s.mark, s.masquerade) for _, v, s in marked] == [("MASQUERADE", "192.168.0.2", 0, True)]
    plain = walk("nat-postrouting", pkt("10.244.1.77", "10.244.2.6", 8080, hook="POSTROUTING", out_iface="eth0"))
    assert [v for _, v, _ in plain] == ["policy accept"]


def test_ipv6_nodeport_on_any_local_address() -> None:
    node6 = NodeContext(addresses=("fd00:1::2",))
    s = pkt("fd00:99::1", "fd00:1::2", 30081, in_iface="eth0", orig_src="fd00:99::1", orig_dst="fd00:1::2")
    got = walk("nat-prerouting", s, node6, family="ip6")
    assert sorted((p, v, st.dst) for p, v, st in got) == [(Fraction(1, 2), "DNAT", "fd00:10:244:1::5"),
                                                          (Fraction(1, 2), "DNAT", "fd00:10:244:2::6")]  # fmt: skip


def test_ping_to_a_cluster_ip_misses_the_service_maps_and_is_rejected() -> None:
    ping = PacketState("10.244.1.77", "10.96.0.10", "icmp", None, None, orig_src="10.244.1.77",
                       orig_dst="10.96.0.10", in_iface="cni0", out_iface="", hook="PREROUTING")  # fmt: skip
    # th dport of an ICMP packet is not known, but no element of @service-ips has protocol icmp: a sure miss
    assert [v for _, v, _ in walk("nat-prerouting", ping)] == ["policy accept"]
    fwd = ping.with_(hook="FORWARD", out_iface="eth0")
    assert [v for _, v, _ in walk("filter-forward", fwd)] == ["REJECT"]  # "Reject traffic to invalid ports"
