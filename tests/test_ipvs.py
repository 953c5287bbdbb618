"""The IPVS table: ``ipvsadm -S -n`` and ``ipvsadm -L -n`` (with ``--stats``, ``--rate``, ``--thresholds``,
``--persistent-conn``) read into the same model; lookups as ``ip_vs_service_find``; shares by scheduler."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from kptui.engine import ParseError
from kptui.engine.ipvs import ipvs_context, kube_ipvs0_addresses, parse_ipvsadm, shares
from kptui.engine.ipvs.model import VirtualService
from kptui.engine.ipvs.parse import counter_value

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAVE = """\
-A -t 10.96.0.1:443 -s rr -p 10800
-a -t 10.96.0.1:443 -r 10.0.0.2:6443 -m -w 1
-A -t 10.96.10.20:80 -s wrr
-a -t 10.96.10.20:80 -r 10.244.1.11:8080 -m -w 1
-a -t 10.96.10.20:80 -r 10.244.1.12:8080 -m -w 2
-a -t 10.96.10.20:80 -r 10.244.2.13:8080 -m -w 0
-A -u 10.96.0.10:53 -s rr
-A -t [fd00:10:96::20]:80 -s rr
-a -t [fd00:10:96::20]:80 -r [fd00:10:244:1::11]:8080 -m -w 1
-A -f 7 -s sh
-a -f 7 -r 10.244.1.40:0 -g -w 3
-A -t 10.96.0.50:0 -s rr -p 60 -M 255.255.255.0
"""
LIST = """\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.1:443 rr persistent 10800
  -> 10.0.0.2:6443                Masq    1      0          0         
TCP  10.96.10.20:80 wrr
  -> 10.244.1.11:8080             Masq    1      3          7         
  -> 10.244.1.12:8080             Masq    2      0          0         
  -> 10.244.2.13:8080             Masq    0      0          4         
UDP  10.96.0.10:53 rr
TCP  [fd00:10:96::20]:80 rr
  -> [fd00:10:244:1::11]:8080      Masq    1      0          0
FWM  7 sh
  -> 10.244.1.40:0                Route   3      0          0
TCP  10.96.0.50:0 rr persistent 60 mask 255.255.255.0
"""
STATS = """\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.96.10.20:80                   1234K   3456M       0        0        0
  -> 10.244.1.11:8080                    12       40      33     2400     1980
  -> 10.244.1.12:8080                     0        0       0        0        0
"""
RATE = """\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.96.10.20:80                       1        4        3      240      198
  -> 10.244.1.11:8080                     1        4        3      240      198
"""


def _summary(text: str) -> list[tuple[object, ...]]:
    t = parse_ipvsadm(text, "x")
    return [(vs.key, vs.scheduler, vs.persistence, vs.netmask,
             [(r.hostport, r.forward, r.weight) for r in vs.real_servers]) for vs in t]  # fmt: skip


def test_save_and_list_read_the_same_table() -> None:
    assert _summary(SAVE) == _summary(LIST)
    t = parse_ipvsadm(LIST, "ipvsadm-L")
    web = t.get("tcp", "10.96.10.20", 80)
    assert web is not None and [r.active for r in web.real_servers] == [3, 0, 0]
    assert [r.inactive for r in web.real_servers] == [7, 0, 4] and web.real_servers[2].draining


def test_the_sample_listings_match() -> None:
    save = (SAMPLES / "ipvs-mode.ipvsadm").read_text()
    listed = (SAMPLES / "ipvs-mode.ipvsadm-list").read_text()
    assert _summary(save) == _summary(listed) and len(_summary(save)) > 20
    assert any(line.endswith(" ") for line in listed.splitlines())  # ipvsadm pads its last column


def test_counters_listings_have_no_schedulers_or_weights_and_merge_into_a_save() -> None:
    st = parse_ipvsadm(STATS, "stats")
    assert st.listing == "stats"
    (web,) = st
    assert web.scheduler is None and dict(web.stats)["Conns"] == "1234K"
    assert [r.weight for r in web.real_servers] == [None, None] and web.real_servers[0].forward is None
    assert counter_value("1234K") == 1234000 and counter_value("3456M") == 3456 * 10**6
    merged = parse_ipvsadm(SAVE, "save").merged(st)
    w = merged.get("tcp", "10.96.10.20", 80)
    assert w is not None and w.scheduler == "wrr" and dict(w.stats)["InPkts"] == "3456M"
    assert [(r.weight, dict(r.stats).get("Conns")) for r in w.real_servers] == [(1, "12"), (2, "0"), (0, None)]
    rate = parse_ipvsadm(RATE, "rate")
    assert rate.listing == "rate" and dict(rate.services[0].stats) == {"CPS": "1", "InPPS": "4", "OutPPS": "3",
                                                                        "InBPS": "240", "OutBPS": "198"}


def test_thresholds_and_persistent_conn_listings() -> None:
    th = parse_ipvsadm("Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn\n"
                       "  -> RemoteAddress:Port\nTCP  10.96.0.1:443\n  -> 10.0.0.2:6443  0  0  5  1\n")
    assert th.listing == "thresholds" and th.services[0].real_servers[0].active == 5
    pc = parse_ipvsadm("Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn\n"
                       "  -> RemoteAddress:Port\nTCP  10.96.0.1:443 rr persistent 10800\n"
                       "  -> 10.0.0.2:6443  1  4  2  0\n")
    rs = pc.services[0].real_servers[0]
    assert pc.listing == "persistent" and (rs.weight, rs.persistent_conns, rs.active) == (1, 4, 2)


def test_lookup_follows_ip_vs_service_find() -> None:
    t = parse_ipvsadm(SAVE, "save")
    assert (hit := t.lookup("tcp", "10.96.0.1", 443)) is not None and hit.key == "TCP 10.96.0.1:443"
    assert t.lookup("udp", "10.96.0.1", 443) is None  # protocol, address and port together
    assert t.lookup("tcp", "10.96.0.50", 8443) is not None  # a port-zero service catches every port
    assert (fw := t.lookup("tcp", "10.9.9.9", 80, mark=7)) is not None and fw.key == "FWM 7"  # mark first
    assert t.lookup("tcp", "fd00:10:96:0::20", 80) is not None  # any spelling of the address
    assert t.lookup("icmp", "10.96.0.1", None) is None


@pytest.mark.parametrize(("sched", "weights", "want", "exact"), [
    ("rr", [1, 1, 1], [Fraction(1, 3)] * 3, True),
    ("rr", [1, 5, 0], [Fraction(1, 2), Fraction(1, 2)], True),  # rr ignores weights, except 0
    ("wrr", [1, 2, 0], [Fraction(1, 3), Fraction(2, 3)], True),
    ("wlc", [1, 3], [Fraction(1, 4), Fraction(3, 4)], False),  # by load: weight shares, said so
    ("sh", [2, 2], [Fraction(1, 2)] * 2, False),
    ("fo", [1, 5, 2], [Fraction(1)], True),  # weighted failover: the highest weight
    ("rr", [0, 0], [], True),  # all draining: no new connection
])  # fmt: skip
def test_shares(sched: str, weights: list[int], want: list[Fraction], exact: bool) -> None:
    lines = [f"-A -t 10.0.0.1:80 -s {sched}"] + [f"-a -t 10.0.0.1:80 -r 10.1.0.{i}:80 -m -w {w}"
                                                  for i, w in enumerate(weights)]  # fmt: skip
    (vs,) = parse_ipvsadm("\n".join(lines))
    sh = shares(vs)
    assert [p for _, p in sh.servers] == want and sh.exact is exact
    assert sum(p for _, p in sh.servers) in (0, 1)
    assert len(sh.draining) == weights.count(0)
    if not exact:
        assert "depends" in sh.note or "shares by weight" in sh.note


def test_no_weights_listed_gives_equal_shares_and_says_so() -> None:
    (vs,) = parse_ipvsadm(STATS)
    sh = shares(vs)
    assert [p for _, p in sh.servers] == [Fraction(1, 2)] * 2 and not sh.exact and "no weights" in sh.note
    assert shares(VirtualService("tcp", "10.0.0.1", 80)).servers == ()


@pytest.mark.parametrize(("text", "line", "message"), [
    ("-A -t 10.96.0.1:443 -s rr\n-a -t 10.96.0.9:443 -r 10.0.0.2:6443 -m -w 1\n", 2, "has not been added"),
    ("-A -t kubernetes.default:https -s rr\n", 1, "without -n"),
    ("TCP  kubernetes.default:https rr\n", 1, "without -n"),
    ("-A -t 10.96.0.1:443 -s rr\n-A -t 10.96.0.1:443 -s rr\n", 2, "added twice"),
    ("-A -t 10.96.0.1:443 -s rr -w\n", 1, "needs a value"),
    ("-X -t 10.96.0.1:443\n", 1, "not ipvsadm -S output"),
    ("IPVS connection entries\npro expire state       source             virtual            destination\n", 1,
     "connection table"),
    ("TCP  10.96.0.1:443 rr\n  -> 10.0.0.2:6443  Masq  1\n", 2, "Forward Weight ActiveConn InActConn"),
    ("  -> 10.0.0.2:6443  Masq  1  0  0\n", 1, "before any virtual service"),
    ("hello\n", 1, "not ipvsadm -L -n output"),
])  # fmt: skip
def test_bad_input_is_located(text: str, line: int, message: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_ipvsadm(text, "node.ipvs")
    d = e.value.diagnostic
    assert (d.source, d.line) == ("node.ipvs", line) and message in d.message, d.message


def test_empty_table() -> None:
    assert len(parse_ipvsadm("", "x")) == 0
    assert len(parse_ipvsadm("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
                             "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")) == 0


def test_context_takes_raw_bytes_and_the_addresses_of_kube_ipvs0() -> None:
    addrs = json.dumps([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.2", "prefixlen": 24}]},
                        {"ifname": "kube-ipvs0", "addr_info": [{"family": "inet", "local": "10.96.0.1", "prefixlen": 32},
                                                               {"family": "inet", "local": "10.96.0.10"}]}])
    assert kube_ipvs0_addresses(addrs.encode()) == ("10.96.0.1", "10.96.0.10")
    assert kube_ipvs0_addresses(json.dumps([{"ifname": "eth0", "addr_info": []}])) is None  # no such link
    assert kube_ipvs0_addresses("not json") is None
    node = ipvs_context(b"create KUBE-CLUSTER-IP hash:ip,port family inet\nadd KUBE-CLUSTER-IP 10.96.0.1,tcp:443\n",
                        SAVE.encode(), kube_ipvs0=kube_ipvs0_addresses(addrs), sysctls={"net.ipv4.vs.conntrack": "1"})
    assert node.table is not None and node.table.get("tcp", "10.96.0.1", 443) is not None
    assert node.conntrack is True and node.vips[:2] == ("10.96.0.1", "10.96.0.10")
    with pytest.raises(ParseError, match=r"bundle: ipvs/ipvsadm-save.txt:1"):
        ipvs_context(ipvs_text=b"-A -t nowhere\n", ipvs_source="bundle: ipvs/ipvsadm-save.txt")
