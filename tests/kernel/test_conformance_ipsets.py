"""ipset membership against the kernel's own ``-m set``: for every set type kube-proxy uses (and hash:net,
list:set, a netmask, an IPv6 set), direction flags, ``!``, ``nomatch`` and ``--return-nomatch``, a real packet is
sent and the kernel's counter of each test rule is compared with the engine's answer for that packet.

The node namespace gets the sets with ``ipset restore`` and one counting rule per check in raw PREROUTING (no
target: it only counts); a client namespace sends TCP, UDP and ICMP packets from several source addresses. The
engine reads the sets back from ``ipset save``, as a user would give them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from kptui.engine.flow import Env
from kptui.engine.ipset import SetMatch
from kptui.engine.ipset_match import test_set as set_outcome
from kptui.engine.ipset_parse import parse_ipsets
from kptui.engine.packet import NodeContext
from kptui.engine.trace_model import PacketState
from tools.netlab import Lab, Probe

pytestmark = pytest.mark.kernel

SETS = """\
create CIP hash:ip,port family inet hashsize 1024 maxelem 65536
add CIP 192.0.2.1,tcp:80
add CIP 192.0.2.1,udp:53
add CIP 10.9.0.1,icmp:echo-request
create LB hash:ip,port,net family inet hashsize 1024 maxelem 65536
add LB 192.0.2.1,tcp:80,203.0.113.0/24
add LB 192.0.2.1,tcp:80,203.0.113.128/25 nomatch
create LBIP hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add LBIP 192.0.2.1,tcp:80,203.0.113.5
create NP bitmap:port range 0-65535
add NP 80
add NP 53
create NET hash:net family inet hashsize 1024 maxelem 65536
add NET 203.0.113.0/24
add NET 203.0.113.128/25 nomatch
create IPS hash:ip family inet netmask 24 hashsize 1024 maxelem 65536
add IPS 192.0.2.0
create V6 hash:ip family inet6 hashsize 1024 maxelem 65536
add V6 fd00::1
create L list:set size 8
add L NET
add L IPS
"""
CHECKS = [  # (set, flags, negated, --return-nomatch)
    ("CIP", "dst,dst", False, False), ("CIP", "dst", False, False), ("CIP", "src,dst", False, False),
    ("CIP", "dst,dst,dst", False, False), ("CIP", "dst,src", False, False),
    ("LB", "dst,dst,src", False, False), ("LB", "dst,dst,src", False, True), ("LB", "dst,dst,src", True, False),
    ("LBIP", "dst,dst,src", False, False), ("NP", "dst", False, False), ("NP", "src", False, False),
    ("NET", "src", False, False), ("NET", "src", True, False), ("NET", "src", False, True),
    ("IPS", "dst", False, False), ("L", "src", False, False), ("L", "dst", False, False),
]  # fmt: skip  (a rule cannot test set V6 from IPv4: iptables refuses it, "not applicable")


class Pkt(NamedTuple):
    proto: str
    src: str
    dst: str
    sport: int
    dport: int


PACKETS = [
    Pkt("tcp", "203.0.113.5", "192.0.2.1", 41001, 80),
    Pkt("tcp", "203.0.113.200", "192.0.2.1", 41002, 80),
    Pkt("tcp", "10.9.0.2", "10.9.0.1", 41003, 80),
    Pkt("udp", "203.0.113.5", "192.0.2.1", 41004, 53),
    Pkt("udp", "10.9.0.2", "10.9.0.1", 80, 9999),
    Pkt("tcp", "203.0.113.5", "192.0.2.9", 53, 8080),
    Pkt("icmp", "10.9.0.2", "10.9.0.1", 0, 0),
    Pkt("icmp", "203.0.113.130", "192.0.2.1", 0, 0),
]
PING = r'''
import socket, struct, sys
src, dst = sys.argv[1], sys.argv[2]
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
hdr = struct.pack("!BBHHH", 8, 0, 0, 0x4b50, 1) + b"kptui-ipset"
hdr = hdr[:2] + struct.pack("!H", csum(hdr + b"\0" if len(hdr) % 2 else hdr)) + hdr[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.bind((src, 0))
s.sendto(hdr, (dst, 0))
'''


@pytest.fixture(scope="module")
def lab(kernel_ok: None) -> Iterator[Lab]:
    with Lab("kc-ipsets") as lab:
        client = lab.add_netns("client")
        lab.veth(lab.node, "eth0", client, "eth0")
        lab.add_addr(lab.node, "eth0", "10.9.0.1/24")
        lab.add_addr(client, "eth0", "10.9.0.2/24")
        for ip in ("203.0.113.5", "203.0.113.200", "203.0.113.130"):
            lab.add_addr(client, "lo", f"{ip}/32")
        lab.add_addr(lab.node, "lo", "192.0.2.1/32")
        lab.add_route(client, "default", via="10.9.0.1")
        lab.add_route(lab.node, "203.0.113.0/24", via="10.9.0.2")
        lab.load_ipsets(SETS)
        rules = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
        for i, (name, flags, neg, rn) in enumerate(CHECKS):
            rules.append(f"-A PREROUTING -m comment --comment ck{i} -m set {'! ' if neg else ''}--match-set {name} "
                         f"{flags}{' --return-nomatch' if rn else ''}")  # fmt: skip
        lab.load_rules("\n".join([*rules, "COMMIT", ""]))
        yield lab


def _counts(lab: Lab) -> dict[int, int]:
    out = {}
    for line in lab.save_rules().splitlines():
        if "--comment ck" in line and line.startswith("["):
            pkts = int(line[1:].split(":", 1)[0])
            out[int(line.split("--comment ck", 1)[1].split()[0])] = pkts
    return out


def _send(lab: Lab, p: Pkt) -> None:
    client = lab.prefix + "client"
    if p.proto == "icmp":
        lab.exec(client, ["python3", "-c", PING, p.src, p.dst])
    else:
        lab.probe(client, [Probe(p.proto, p.dst, p.dport, p.src, p.sport, 0.2)])


def test_every_check_matches_as_the_kernel_decides(lab: Lab) -> None:
    sets = parse_ipsets(lab.exec(lab.node, ["ipset", "save"]).stdout, "ipset save")
    env = Env(NodeContext(), 4, "PREROUTING", None, 8, frozenset({"SYN"}), None)
    mismatches = []
    matched = unmatched = 0
    for p in PACKETS:
        before = _counts(lab)
        _send(lab, p)
        after = _counts(lab)
        state = PacketState(p.src, p.dst, p.proto, p.sport if p.proto != "icmp" else None,
                            p.dport if p.proto != "icmp" else None)  # fmt: skip
        for i, (name, flags, neg, rn) in enumerate(CHECKS):
            kernel = after[i] > before[i]
            matched, unmatched = matched + kernel, unmatched + (not kernel)
            engine = set_outcome(sets, SetMatch(name, tuple(flags.split(",")), neg, rn), state, env)
            if engine is not kernel:  # an undecidable answer is a mismatch too
                mismatches.append(f"{p}: {'! ' if neg else ''}{name} {flags}{' --return-nomatch' if rn else ''}: "
                                  f"kernel {kernel}, engine {engine}")  # fmt: skip
    assert not mismatches, json.dumps(mismatches, indent=1)
    assert matched >= 20 and unmatched >= 20, (matched, unmatched)  # not vacuous: both answers, often
