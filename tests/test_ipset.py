"""ipset parsing (``ipset save``, ``ipset list``) and membership (every kube-proxy set type, direction flags, ``!``,
``nomatch``); the kernel agrees in tests/kernel/test_conformance_ipsets.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import ParseError, parse_ruleset
from kptui.engine.flow import Env, Undecidable
from kptui.engine.ipset import IpsetTable, SetMatch, legacy_sets
from kptui.engine.ipset_match import test_set as set_outcome
from kptui.engine.ipset_parse import parse_ipsets
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace import trace
from kptui.engine.trace_model import PacketState

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAVE = """\
create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xb9ca27ab
add KUBE-CLUSTER-IP 10.96.0.1,tcp:443
add KUBE-CLUSTER-IP 10.96.0.10,udp:53
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add KUBE-LOOP-BACK 10.244.1.11,tcp:8080,10.244.1.11
create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536
add KUBE-LOAD-BALANCER-SOURCE-CIDR 192.0.2.50,tcp:443,203.0.113.0/24
create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
add KUBE-NODE-PORT-TCP 30080
create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536
add KUBE-IPVS-IPS 10.96.0.1
create CALICO hash:net family inet hashsize 1024 maxelem 65536
add CALICO 10.0.0.0/8
add CALICO 10.1.0.0/16 nomatch
create V6 hash:ip family inet6 hashsize 1024 maxelem 65536
add V6 fd00::1
create LIST list:set size 8
add LIST CALICO
"""
LIST = """\
Name: KUBE-CLUSTER-IP
Type: hash:ip,port
Revision: 7
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xb9ca27ab
Size in memory: 264
References: 2
Number of entries: 2
Members:
10.96.0.1,tcp:443
10.96.0.10,udp:53

Name: KUBE-NODE-PORT-TCP
Type: bitmap:port
Revision: 3
Header: range 0-65535
Size in memory: 8264
References: 1
Number of entries: 1
Members:
30080
"""
ENV = Env(NodeContext(), 4, "PREROUTING", None, 8, frozenset({"SYN"}), None)
SETS = parse_ipsets(SAVE, "node.ipset")


def st(src: str, dst: str, proto: str = "tcp", sport: int | None = 40000, dport: int | None = 443) -> PacketState:
    return PacketState(src, dst, proto, sport, dport)


def m(name: str, flags: str, neg: bool = False, rn: bool = False) -> SetMatch:
    return SetMatch(name, tuple(flags.split(",")), neg, rn)


@pytest.mark.parametrize(("match", "state", "want"), [
    (m("KUBE-CLUSTER-IP", "dst,dst"), st("10.244.1.5", "10.96.0.1"), True),
    (m("KUBE-CLUSTER-IP", "dst,dst"), st("10.244.1.5", "10.96.0.1", dport=80), False),  # other port
    (m("KUBE-CLUSTER-IP", "dst,dst"), st("10.244.1.5", "10.96.0.1", "udp"), False),  # other protocol
    (m("KUBE-CLUSTER-IP", "dst,dst"), st("1.1.1.1", "10.96.0.10", "udp", dport=53), True),
    (m("KUBE-CLUSTER-IP", "dst"), st("10.244.1.5", "10.96.0.1"), False),  # fewer flags than dimensions
    (m("KUBE-CLUSTER-IP", "dst,dst,src"), st("10.244.1.5", "10.96.0.1"), True),  # extra flags are ignored
    (m("KUBE-CLUSTER-IP", "dst,dst", neg=True), st("10.244.1.5", "10.96.0.1"), False),
    (m("KUBE-LOOP-BACK", "dst,dst,src"), st("10.244.1.11", "10.244.1.11", dport=8080), True),  # hairpin
    (m("KUBE-LOOP-BACK", "dst,dst,src"), st("10.244.1.12", "10.244.1.11", dport=8080), False),
    (m("KUBE-LOAD-BALANCER-SOURCE-CIDR", "dst,dst,src"), st("203.0.113.9", "192.0.2.50"), True),
    (m("KUBE-LOAD-BALANCER-SOURCE-CIDR", "dst,dst,src"), st("198.51.100.9", "192.0.2.50"), False),
    (m("KUBE-NODE-PORT-TCP", "dst"), st("1.1.1.1", "10.0.0.2", dport=30080), True),
    (m("KUBE-NODE-PORT-TCP", "dst"), st("1.1.1.1", "10.0.0.2", "udp", dport=30080), True),  # bitmap: any TCP/UDP
    (m("KUBE-NODE-PORT-TCP", "dst"), st("1.1.1.1", "10.0.0.2", "sctp", dport=30080), False),  # not SCTP
    (m("KUBE-NODE-PORT-TCP", "src"), st("1.1.1.1", "10.0.0.2", sport=30080, dport=1), True),
    (m("KUBE-IPVS-IPS", "dst"), st("10.244.1.5", "10.96.0.1"), True),
    (m("CALICO", "src"), st("10.2.0.1", "1.1.1.1"), True),
    (m("CALICO", "src"), st("10.1.0.1", "1.1.1.1"), False),  # the more specific nomatch element decides
    (m("CALICO", "src", rn=True), st("10.1.0.1", "1.1.1.1"), True),  # --return-nomatch reverses it
    (m("CALICO", "src", rn=True), st("10.2.0.1", "1.1.1.1"), False),
    (m("V6", "dst"), st("10.0.0.1", "10.0.0.2"), False),  # another family
    (m("V6", "dst"), st("fd00::2", "fd00::1"), True),
    (m("LIST", "src"), st("10.2.0.1", "1.1.1.1"), True),
    (m("LIST", "src"), st("192.168.0.1", "1.1.1.1"), False),
])  # fmt: skip
def test_membership(match: SetMatch, state: PacketState, want: bool) -> None:
    assert set_outcome(SETS, match, state, ENV) is want


def test_unknown_sets_and_values_are_questions_named_like_the_match() -> None:
    r = set_outcome(SETS, m("NOPE", "src"), st("1.1.1.1", "2.2.2.2"), ENV)
    assert isinstance(r, Undecidable) and r.key == "set NOPE src" and "not given" in r.reason
    neg = set_outcome(SETS, m("NOPE", "src", neg=True), st("1.1.1.1", "2.2.2.2"), ENV)
    assert isinstance(neg, Undecidable) and neg.negated
    terse = parse_ipsets("Name: T\nType: hash:ip\nHeader: family inet\nSize in memory: 1\nReferences: 0\n"
                         "Number of entries: 3\n")  # ipset list -t: no members
    r = set_outcome(terse, m("T", "dst"), st("1.1.1.1", "2.2.2.2"), ENV)
    assert isinstance(r, Undecidable) and "ipset list -t" in r.reason
    icmp_unreach = Env(NodeContext(), 4, "PREROUTING", None, 3, frozenset(), None)
    mac = parse_ipsets("create M hash:ip,port family inet\nadd M 1.1.1.1,icmp:3/1\n")
    r = set_outcome(mac, m("M", "dst,dst"), st("2.2.2.2", "1.1.1.1", "icmp", None, None), icmp_unreach)
    assert isinstance(r, Undecidable) and "ICMP code" in r.reason


def test_ipset_list_reads_like_save() -> None:
    listed = parse_ipsets(LIST, "ipset-list.txt")
    for name in ("KUBE-CLUSTER-IP", "KUBE-NODE-PORT-TCP"):
        assert listed.members(name) == SETS.members(name)
    s = listed.get("KUBE-CLUSTER-IP")
    assert s is not None and s.type == "hash:ip,port" and s.family == "inet" and s.option("hashsize") == "1024"


def test_element_options_ranges_and_netmasks() -> None:
    t = parse_ipsets('create P hash:ip,port family inet counters comment\n'
                     'add P 10.0.0.1,80-82 packets 5 bytes 300 comment "web ports"\n'
                     'create N hash:ip family inet netmask 24\nadd N 192.0.2.0\n'
                     'create R hash:net family inet\nadd R 10.0.0.1-10.0.0.6\n')
    p = t.get("P")
    assert p is not None and len(p.elements) == 3  # a port range is three elements (tcp: the default)
    assert dict(p.elements[0].options) == {"packets": "5", "bytes": "300", "comment": "web ports"}
    assert set_outcome(t, m("P", "dst,dst"), st("1.1.1.1", "10.0.0.1", dport=81), ENV) is True
    assert set_outcome(t, m("N", "dst"), st("1.1.1.1", "192.0.2.77"), ENV) is True  # netmask 24
    assert set_outcome(t, m("R", "dst"), st("1.1.1.1", "10.0.0.6"), ENV) is True
    assert set_outcome(t, m("R", "dst"), st("1.1.1.1", "10.0.0.7"), ENV) is False


@pytest.mark.parametrize(("text", "where", "message"), [
    ("create A hash:ip\nadd B 1.1.1.1\n", 2, "before it is created"),
    ("create A hash:ip,port\nadd A 1.1.1.1\n", 2, "does not fit set type hash:ip,port"),
    ("create A hash:ip\nadd A 1.1.1.x\n", 2, "not an IPv4 address"),
    ("create A hash:ip,port\nadd A 1.1.1.1,tcp:70000\n", 2, "out of range"),
    ("create A hash:ip\ncreate A hash:ip\n", 2, "created twice"),
    ("-N foo iphash\n", 1, "old ipset 4 save format"),
    ("<ipsets>\n", 1, "XML"),
    ("iptables -A INPUT\n", 1, "not ipset save or ipset list output"),
    ("create A hash:ip family inet5\n", 1, "unknown family"),
])  # fmt: skip
def test_bad_input_is_located(text: str, where: int, message: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_ipsets(text, "node.ipset")
    d = e.value.diagnostic
    assert d.source == "node.ipset" and d.line == where and message in d.message
    assert str(e.value).startswith(f"node.ipset:{where}: ")


def test_unknown_options_and_types_are_warnings_not_errors() -> None:
    t = parse_ipsets("create A hash:ip family inet frobnicate 3\ncreate W hash:weird family inet\nadd W x\n")
    assert [w.line for w in t.warnings] == [1, 2]
    r = set_outcome(t, m("W", "src"), st("1.1.1.1", "2.2.2.2"), ENV)
    assert isinstance(r, Undecidable) and "does not model" in r.reason


def test_the_sample_sets_and_a_rule_matching_them() -> None:
    sets = parse_ipsets((SAMPLES / "ipvs-mode.ipset").read_text(), "ipvs-mode.ipset")
    assert len(sets) == 17 and sets.warnings == ()
    assert "10.96.0.1,tcp:443" in sets.members("KUBE-CLUSTER-IP")
    rs = parse_ruleset((SAMPLES / "ipvs-mode.rules").read_text(), source="ipvs-mode.rules")
    known = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.1.0/24", "10.244.0.0/16"), ipsets=sets,
                        interfaces={"eth0": ("10.0.0.2/24",)}, vips=("10.96.10.20",))  # fmt: skip
    result = trace(rs, Packet("203.0.113.10", "10.96.10.20", dport=80, origin="external"), known)
    (path,) = result.paths
    marks = [h for h in path.hops if h.matched and h.chain == "KUBE-SERVICES"]
    assert [h.target for h in marks] == ["KUBE-MARK-MASQ", "KUBE-NODE-PORT", "ACCEPT"]
    assert path.assumptions == () and path.delivery == "local"  # no IPVS step yet: delivered to the node


def test_the_old_members_only_form_still_decides_one_flag_matches() -> None:
    ctx = NodeContext(ipsets={"PODS": ("10.244.0.0/16",)})
    assert isinstance(ctx.ipsets, IpsetTable)
    assert set_outcome(ctx.ipsets, m("PODS", "src"), st("10.244.1.1", "1.1.1.1"), ENV) is True
    r = set_outcome(legacy_sets({"P": ["10.0.0.0/8"]}), m("P", "src,dst"), st("10.1.1.1", "1.1.1.1"), ENV)
    assert isinstance(r, Undecidable)  # its type is not known: a two-flag match stays open
