"""The kernel's routing decisions between the hooks (issue 14.5): martians and route_localnet, forwarding off,
no route, strict and loose reverse-path filtering — each a hop of its own with its cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace import trace
from kptui.engine.trace_report import path_verdict

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
IFACES = {"eth0": ("10.0.0.2/24",), "cni0": ("10.244.1.1/24",), "lo": ("127.0.0.1/8",)}
ROUTES = (("default", "eth0"), ("10.0.0.0/24", "eth0"), ("10.244.1.0/24", "cni0"))


def node(**sysctls: str) -> NodeContext:
    return NodeContext(addresses=("10.0.0.2",), interfaces=IFACES, uplink="eth0", pod_iface="cni0",
                       pod_cidrs=("10.244.1.0/24",), routes=ROUTES,
                       sysctls={k.replace("__", "."): v for k, v in sysctls.items()})  # fmt: skip


def only(rules: str, packet: Packet, ctx: NodeContext):  # type: ignore[no-untyped-def]
    (path,) = trace(parse_ruleset(rules), packet, ctx).paths
    return path


def routing_hops(path) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.rule or "" for h in path.hops if h.kind == "routing"]


@pytest.mark.parametrize("value, dropped", [("0", True), ("1", False)])
def test_a_packet_from_outside_to_127_is_a_martian_unless_route_localnet(value: str, dropped: bool) -> None:
    ctx = node(**{"net.ipv4.conf.eth0.route_localnet": value})
    p = only(EMPTY, Packet("10.0.0.1", "127.0.0.1", dport=8080, origin="external"), ctx)
    if dropped:
        assert p.verdict == "DROP" and path_verdict(p) == "DROP at routing"
        (text,) = routing_hops(p)
        assert "martian destination 127.0.0.1 (route_localnet=0 on eth0" in text
        assert not any(h.hook == "INPUT" for h in p.hops)
    else:
        assert p.verdict == "ACCEPT" and p.delivery == "local"


def test_route_localnet_on_all_enables_every_interface() -> None:
    ctx = node(**{"net.ipv4.conf.all.route_localnet": "1", "net.ipv4.conf.eth0.route_localnet": "0"})
    assert only(EMPTY, Packet("10.0.0.1", "127.0.0.1", dport=80, origin="external"), ctx).delivery == "local"


def test_a_martian_source_is_dropped_too() -> None:
    p = only(EMPTY, Packet("127.0.0.9", "10.244.1.7", dport=80, origin="external"), node())
    assert p.verdict == "DROP" and "martian source 127.0.0.9" in routing_hops(p)[0]
    assert any("taken as 0" in a for a in p.assumptions)  # unknown sysctl: the kernel default, said so


LOCALHOST_NODEPORT = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 30080 -j DNAT --to-destination 10.244.1.21:8080
-A POSTROUTING -s 127.0.0.0/8 -j MASQUERADE
COMMIT
"""


@pytest.mark.parametrize("value, dropped", [("0", True), ("1", False)])
def test_a_localhost_nodeport_needs_route_localnet_to_leave(value: str, dropped: bool) -> None:
    ctx = node(**{"net.ipv4.conf.all.route_localnet": value})
    p = only(LOCALHOST_NODEPORT, Packet("127.0.0.1", "127.0.0.1", dport=30080, origin="local"), ctx)
    if dropped:
        assert p.verdict == "DROP" and "may not leave by cni0" in routing_hops(p)[0]
        assert not any(h.hook == "POSTROUTING" for h in p.hops)
    else:
        assert p.verdict == "ACCEPT" and p.delivery == "sent" and p.masquerade and p.final.src == "10.244.1.1"


def test_an_unknown_route_localnet_follows_kube_proxys_localnet_guard() -> None:
    guard = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n"
             "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet "
             "connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\nCOMMIT\n")
    p = only(LOCALHOST_NODEPORT + guard, Packet("127.0.0.1", "127.0.0.1", dport=30080, origin="local"), node())
    assert p.verdict == "ACCEPT" and any("taken as 1" in a for a in p.assumptions)
    p0 = only(LOCALHOST_NODEPORT, Packet("127.0.0.1", "127.0.0.1", dport=30080, origin="local"), node())
    assert p0.verdict == "DROP" and any("taken as 0" in a for a in p0.assumptions)


@pytest.mark.parametrize("value, dropped", [("0", True), ("1", False)])
def test_forwarding_off_forwards_nothing(value: str, dropped: bool) -> None:
    p = only(EMPTY, Packet("10.244.1.5", "10.244.2.7", dport=80), node(**{"net.ipv4.ip_forward": value}))
    assert (p.verdict, p.delivery) == (("DROP", None) if dropped else ("ACCEPT", "forward"))
    if dropped:
        assert "forwarding is off (net.ipv4.ip_forward=0" in routing_hops(p)[0]
        assert not any(h.hook == "FORWARD" for h in p.hops)


def test_no_route_means_not_delivered() -> None:
    ctx = NodeContext(addresses=("10.0.0.2",), interfaces=IFACES, uplink="eth0", routes=ROUTES[1:])  # no default
    p = only(EMPTY, Packet("10.0.0.1", "192.0.2.9", dport=80, origin="external"), ctx)
    assert p.verdict == "DROP" and "no route to 192.0.2.9" in routing_hops(p)[0]
    sent = only(EMPTY, Packet("10.0.0.2", "192.0.2.9", dport=80, origin="local"), ctx)
    assert sent.verdict == "DROP" and "never sent" in routing_hops(sent)[0] and len(sent.hops) == 1


@pytest.mark.parametrize("value, dropped", [("1", True), ("2", False), ("0", False)])
def test_strict_reverse_path_filtering(value: str, dropped: bool) -> None:
    # arrives on eth0 from a pod address the node routes by cni0: strict rp_filter drops it, loose does not
    ctx = node(**{"net.ipv4.conf.all.rp_filter": value})
    p = only(EMPTY, Packet("10.244.1.50", "10.0.0.9", dport=80, origin="external", in_iface="eth0"), ctx)
    assert p.verdict == ("DROP" if dropped else "ACCEPT")
    if dropped:
        assert "strict reverse-path filtering: the route back to 10.244.1.50 leaves by cni0" in routing_hops(p)[0]


def test_a_sample_without_routes_or_sysctls_has_no_routing_drop() -> None:
    rs = parse_ruleset((SAMPLES / "nodeport-cluster.rules").read_text())
    ctx = NodeContext(addresses=("10.0.0.2",), interfaces={"eth0": ("10.0.0.2/24",)}, uplink="eth0")
    for p in trace(rs, Packet("10.0.0.1", "10.0.0.2", dport=30080, origin="external"), ctx).paths:
        assert p.verdict == "ACCEPT" and not routing_hops(p)
