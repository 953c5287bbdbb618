"""The node context from `ip -j` output: addresses, uplink, pod subnet, and honest notes where nothing tells."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.iproute import detector_hints, node_facts, parse_ip_json


def link(name: str, *addrs: tuple[str, int, str], kind: str | None = None, master: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"ifname": name, "addr_info": [
        {"family": "inet6" if ":" in a else "inet", "local": a, "prefixlen": p, "scope": s} for a, p, s in addrs]}
    if kind:
        d["linkinfo"] = {"info_kind": kind}
    if master:
        d["master"] = master
    return d


LO = link("lo", ("127.0.0.1", 8, "host"), ("::1", 128, "host"))
ETH0 = link("eth0", ("fe80::1", 64, "link"), ("10.0.0.2", 24, "global"), ("fd00::2", 64, "global"))
DEFAULT = {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0", "flags": []}


def test_flannel_style_bridge_gives_pod_subnet_and_interface() -> None:
    addrs = [LO, ETH0, link("cni0", ("10.244.1.1", 24, "global"), kind="bridge"),
             link("veth1", kind="veth", master="cni0"), link("flannel.1", ("10.244.1.0", 32, "global"), kind="vxlan")]
    routes = [DEFAULT, {"dst": "10.244.2.0/24", "gateway": "10.244.2.0", "dev": "flannel.1", "flags": ["onlink"]}]
    f = node_facts(addrs, routes, 4)
    c = f.context
    assert c.uplink == "eth0" and c.pod_iface == "cni0"
    assert c.pod_cidrs == ("10.244.1.0/24",)
    assert c.addresses[:2] == ("10.0.0.2", "fd00::2")  # global scope first
    assert c.interfaces["eth0"][0] == "10.0.0.2/24"  # MASQUERADE picks the global address, not fe80::
    assert any("bridge cni0" in n for n in f.notes)


def test_docker0_and_the_uplink_bridge_are_not_pod_bridges() -> None:
    addrs = [LO, link("br0", ("10.0.0.2", 24, "global"), kind="bridge"), link("eth0", kind="veth", master="br0"),
             link("docker0", ("172.17.0.1", 16, "global"), kind="bridge"), link("vethd", kind="veth", master="docker0")]
    f = node_facts(addrs, [{"dst": "default", "gateway": "10.0.0.1", "dev": "br0"}], 4)
    assert f.context.pod_iface is None and f.context.pod_cidrs == ()
    assert any("not derivable" in n for n in f.notes)


def test_calico_blackhole_block_and_per_pod_routes() -> None:
    addrs = [LO, ETH0, link("cali1234", kind="veth"), link("cali5678", kind="veth")]
    routes = [DEFAULT, {"type": "blackhole", "dst": "10.244.7.0/26", "protocol": "bird", "flags": []},
              {"dst": "10.244.7.5", "dev": "cali1234", "scope": "link", "flags": []},
              {"dst": "10.244.7.6", "dev": "cali5678", "scope": "link", "flags": []}]
    f = node_facts(addrs, routes, 4)
    assert f.context.pod_cidrs == ("10.244.7.0/26",) and f.pod_ips == 2
    assert f.context.pod_iface is None
    assert any("several interfaces" in n for n in f.notes) and any("Calico" in n for n in f.notes)


def test_cluster_cidr_and_iface_from_the_rules_detector() -> None:
    rs = parse_ruleset("*nat\n:KUBE-SVC-X - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n"
                       "-A KUBE-SVC-X ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-MARK-MASQ\n"
                       "-A KUBE-SVC-X ! -i cni0 -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-MARK-MASQ\n"
                       "COMMIT\n")  # fmt: skip
    assert detector_hints(rs, 4) == (("10.244.0.0/16",), ("cni0",))
    assert detector_hints(rs, 6) == ((), ("cni0",))
    f = node_facts([LO, ETH0], [DEFAULT], 4, rs)
    assert f.context.pod_cidrs == ("10.244.0.0/16",) and f.context.pod_iface == "cni0"
    assert f.cluster_cidrs == ("10.244.0.0/16",) and f.node_pod_cidrs == ()


def test_multipath_and_missing_default_routes() -> None:
    ecmp = {"dst": "default", "flags": [], "nexthops": [{"gateway": "10.0.0.1", "dev": "eth1"},
                                                        {"gateway": "10.0.1.1", "dev": "eth2"}]}
    f = node_facts([LO], [ecmp], 4)
    assert f.context.uplink == "eth1" and any("multipath" in n for n in f.notes)
    f = node_facts([LO, ETH0], [], 6)
    assert f.context.uplink is None and any("no IPv6 default route" in n for n in f.notes)


def test_ipv6_family() -> None:
    f = node_facts([LO, ETH0, link("cni0", ("fe80::1", 64, "link"), ("fd00:244:1::1", 64, "global"), kind="bridge")],
                   [{"dst": "default", "gateway": "fd00::1", "dev": "eth0"}], 6)  # fmt: skip
    assert f.context.uplink == "eth0" and f.context.pod_cidrs == ("fd00:244:1::/64",)
    assert f.to_dict()["family"] == "ipv6"


def test_parse_ip_json_errors() -> None:
    assert parse_ip_json(None, "x") == [] and parse_ip_json(b"  ", "x") == []
    assert parse_ip_json(json.dumps([{"a": 1}]), "x") == [{"a": 1}]
    with pytest.raises(ValueError, match="ip -j addr"):
        parse_ip_json("not json", "ip -j addr")
    with pytest.raises(ValueError):
        parse_ip_json("{}", "x")
    with pytest.raises(ValueError):
        node_facts([], [], 5)
