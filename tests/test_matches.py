"""Each match module against a packet state: true, false, a chance, or undecidable (never a silent guess)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kptui.engine.matches import Chance, Env, Undecidable, compile_match
from kptui.engine.packet import NodeContext
from kptui.engine.rules import decode_rule
from kptui.engine.trace_model import PacketState

NODE = NodeContext(addresses=("10.0.0.2",), interfaces={"eth0": ("10.0.0.2/24",)})
TCP = PacketState("10.244.1.5", "10.96.0.10", "tcp", 40000, 53, mark=0x4000, ctmark=0x10, ctstate="NEW",
                  in_iface="cni0", out_iface="eth0", orig_src="10.244.1.5", orig_dst="10.96.0.10",
                  orig_sport=40000, orig_dport=53)
ENV = Env(NODE, 4, "FORWARD", 60, 8, frozenset({"SYN"}), None)


def outcome(options: str, state: PacketState = TCP, env: Env = ENV) -> object:
    spec = decode_rule(f"-A X {options} -j ACCEPT")
    results = [c.fn(state, env) for m in spec.matches for c in compile_match(m)]
    for r in results:
        if r is not True:
            return r
    return True


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("-s 10.244.0.0/16", True), ("! -s 10.244.0.0/16", False), ("-d 10.96.0.10/32", True),
        ("-d 10.96.0.11", False), ("-i cni0", True), ("-i cni+", True), ("-i veth+", False), ("! -i eth0", True),
        ("-o eth0", True), ("-p tcp", True), ("-p udp", False), ("-p 6", True), ("-p all", True), ("-f", False),
        ("-p tcp -m tcp --dport 53", True), ("-p tcp -m tcp --dport 50:60", True), ("-p tcp -m tcp ! --dport 53", False),
        ("-p tcp -m tcp --sport 40000", True), ("-p udp -m udp --dport 53", False),
        ("-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", True), ("-p tcp -m tcp --syn", True),
        ("-p tcp -m tcp --tcp-flags SYN,ACK ACK", False),
        ("-p tcp -m multiport --dports 80,53,443", True), ("-p tcp -m multiport --dports 1:52", False),
        ("-m comment --comment anything", True),
        ("-m mark --mark 0x4000/0x4000", True), ("-m mark ! --mark 0x4000/0x4000", False), ("-m mark --mark 0x1", False),
        ("-m connmark --mark 0x10", True),
        ("-m addrtype --dst-type LOCAL", False), ("-m addrtype ! --dst-type LOCAL", True),
        ("-m addrtype --src-type UNICAST", True),
        ("-m conntrack --ctstate NEW", True), ("-m conntrack --ctstate RELATED,ESTABLISHED", False),
        ("-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT", True), ("-m state --state NEW", True),
        ("-m conntrack --ctorigdst 10.96.0.10", True), ("-m conntrack --ctorigdstport 53", True),
        ("-m conntrack --ctproto tcp", True), ("-m conntrack --ctdir ORIGINAL", True),
        ("-m iprange --src-range 10.244.1.1-10.244.1.9", True), ("-m iprange --dst-range 10.0.0.1-10.0.0.9", False),
        ("-m length --length 40:100", True), ("-m length --length 100:200", False),
        ("-m nfacct --nfacct-name localhost_nps_accepted_pkts", True), ("-m limit --limit 5/sec", True),
        ("-m pkttype --pkt-type unicast", True),
        ("-p icmp -m icmp --icmp-type 8", False),
    ],
)
def test_decidable_matches(options: str, expected: bool) -> None:
    assert outcome(options) is expected


def test_local_address_types_need_node_addresses() -> None:
    local = TCP.with_(dst="10.0.0.2")
    assert outcome("-m addrtype --dst-type LOCAL", local) is True
    assert outcome("-m addrtype --dst-type LOCAL", TCP.with_(dst="127.0.0.1")) is True
    unknown = Env(NodeContext(), 4, "PREROUTING", None, None, frozenset(), None)
    assert isinstance(outcome("-m addrtype --dst-type LOCAL", local, unknown), Undecidable)


def test_dnat_virtual_state() -> None:
    assert outcome("-m conntrack --ctstate DNAT", TCP) is False
    assert outcome("-m conntrack --ctstate DNAT", TCP.with_(dnat=True)) is True
    assert outcome("-m conntrack --ctstate NEW", TCP.with_(ctstate="UNTRACKED")) is False
    assert outcome("-m conntrack --ctstate UNTRACKED", TCP.with_(ctstate="UNTRACKED")) is True


def test_statistic_is_a_chance_with_the_kernel_probability() -> None:
    r = outcome("-m statistic --mode random --probability 0.33333333349")
    assert isinstance(r, Chance) and r.p == Fraction(715827883, 1 << 31)
    r = outcome("-m statistic --mode nth --every 4 --packet 0")
    assert isinstance(r, Chance) and r.p == Fraction(1, 4)
    r = outcome("-m statistic --mode random ! --probability 0.25")
    assert isinstance(r, Chance) and r.p == Fraction(3, 4)


@pytest.mark.parametrize(
    "options",
    [
        "-m set --match-set KUBE-CLUSTER-IP dst,dst", "-m mac --mac-source 00:11:22:33:44:55",
        "-m physdev --physdev-is-bridged", "-m owner --uid-owner 0", "-m u32 --u32 0x0>>22&0x3C@0>>16=0x1",
        "-m frobnicate --level 3", "-m conntrack --ctexpire 10:20", "-m rpfilter",
    ],
)
def test_what_the_context_cannot_know_is_undecidable(options: str) -> None:
    assert isinstance(outcome(options), Undecidable)


def test_interfaces_unknown_are_undecidable() -> None:
    r = outcome("-i cni0", TCP.with_(in_iface=None))
    assert isinstance(r, Undecidable) and "input interface" in r.reason


def test_known_ipsets_and_macs_decide() -> None:
    env = Env(NodeContext(ipsets={"PODS": ("10.244.0.0/16",)}), 4, "FORWARD", None, None, frozenset(),
              "00:11:22:33:44:55")
    assert outcome("-m set --match-set PODS src", env=env) is True
    assert outcome("-m set --match-set PODS dst", env=env) is False
    assert outcome("-m mac --mac-source 00:11:22:33:44:55", env=env) is True
