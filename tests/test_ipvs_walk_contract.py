"""The IPVS step's contract with the walker (kptui/engine/ipvs/step.py's module doc), walked end to end.

kptui.engine.trace schedules the IPVS step (``Netfilter.ipvs``): IPVS base chains in INPUT and OUTPUT, the
``ipvs`` namespace's chains and policy, REINJECT as "local: the hook goes on; else LOCAL_OUT's chains from the
start, routed to the real server, then POSTROUTING" — the whole path of a connection to a virtual service: each
real server with its share, masquerade where the rules say.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from kptui.engine import parse_ruleset
from kptui.engine.ipvs import IpvsNode, ipvs_context
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.schedule import Netfilter
from kptui.engine.trace import trace
from kptui.engine.trace_model import Trace

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RULES = parse_ruleset((SAMPLES / "ipvs-mode.rules").read_text(), source="ipvs-mode.rules")
SETS = (SAMPLES / "ipvs-mode.ipset").read_text()
SAVE = (SAMPLES / "ipvs-mode.ipvsadm").read_text()
NODE = NodeContext(addresses=("10.0.0.2", "10.244.1.1"), pod_cidrs=("10.244.1.0/24", "10.244.0.0/16"),
                   interfaces={"eth0": ("10.0.0.2/24",), "vethpods": ("10.244.1.1/24",)}, uplink="eth0",
                   pod_iface="vethpods")  # fmt: skip


def walk(packet: Packet, node: IpvsNode, ctx: NodeContext = NODE) -> Trace:
    ctx = node.node_context(ctx)
    assert node.views is not None
    return trace(Netfilter({"ipv4": RULES}, None, node.views), packet, ctx)


def ipvs(**sysctls: str) -> IpvsNode:
    return ipvs_context(SETS, SAVE, ipset_source="ipvs-mode.ipset", ipvs_source="ipvs-mode.ipvsadm",
                        sysctls={f"net.ipv4.vs.{k}": v for k, v in sysctls.items()})  # fmt: skip


ON = ipvs(conntrack="1")


def ends(t: Trace) -> dict[str | None, tuple[Fraction, bool, str | None]]:
    assert t.total_probability == 1
    out: dict[str | None, tuple[Fraction, bool, str | None]] = {}
    for p in t.paths:
        prob, masq, delivery = out.get(p.endpoint, (Fraction(0), p.masquerade, p.delivery))
        out[p.endpoint] = (prob + p.probability, masq, delivery)
    return out


def test_pod_to_cluster_ip_reaches_each_live_real_server_with_its_share() -> None:
    t = walk(Packet("10.244.1.100", "10.96.10.20", dport=80), ON)
    assert ends(t) == {"10.244.1.11:8080": (Fraction(1, 2), False, "forward"),
                       "10.244.1.12:8080": (Fraction(1, 2), False, "forward")}  # the draining one gets none
    (p, _) = t.paths
    ipvs_hop = next(h for h in p.hops if h.table == "ipvs" and h.verdict == "IPVS")
    assert ipvs_hop.hook == "INPUT" and "share 1/2" in (ipvs_hop.note or "")
    tables = [(h.hook, h.table) for h in p.hops if h.kind == "policy" or h.matched]
    assert tables.index(("INPUT", "filter")) < tables.index(("INPUT", "ipvs")) < tables.index(("OUTPUT", "filter"))
    assert ("INPUT", "nat") not in tables  # IPVS took the packet before nat INPUT
    assert all(not a for a in (p.assumptions for p in t.paths))


def test_from_outside_the_cluster_ip_masquerades() -> None:
    t = walk(Packet("203.0.113.10", "10.96.10.20", dport=80, origin="external"), ON)
    assert {ep: m for ep, (_, m, _) in ends(t).items()} == {"10.244.1.11:8080": True, "10.244.1.12:8080": True}


def test_nodeports_cluster_and_local_policy() -> None:
    cluster = walk(Packet("203.0.113.10", "10.0.0.2", dport=30080, origin="external"), ON)
    assert ends(cluster) == {"10.244.1.21:8080": (Fraction(1, 2), True, "forward"),
                             "10.244.2.22:8080": (Fraction(1, 2), True, "forward")}  # fmt: skip
    local = walk(Packet("203.0.113.10", "10.0.0.2", dport=30090, origin="external"), ON)
    assert ends(local) == {"10.244.1.31:8080": (Fraction(1), False, "forward")}  # the client's address kept


def test_hairpin_masquerades_through_kube_loop_back() -> None:
    t = walk(Packet("10.244.1.11", "10.96.10.20", dport=80), ON)
    got = {ep: m for ep, (_, m, _) in ends(t).items()}
    assert got == {"10.244.1.11:8080": True, "10.244.1.12:8080": False}
    back = next(p for p in t.paths if p.endpoint == "10.244.1.11:8080")
    assert any(h.matched and "KUBE-LOOP-BACK" in (h.rule or "") for h in back.hops)


def test_without_vs_conntrack_nothing_is_masqueraded() -> None:
    t = walk(Packet("203.0.113.10", "10.96.10.20", dport=80, origin="external"), ipvs(conntrack="0"))
    assert all(p.final.ctstate == "UNTRACKED" and not p.masquerade for p in t.paths)


def test_a_real_server_on_the_node_is_delivered_in_input() -> None:
    t = walk(Packet("10.244.1.100", "10.96.0.1", dport=443), ON)
    (p,) = t.paths
    assert (p.endpoint, p.delivery) == ("10.0.0.2:6443", "local")
    assert [h.table for h in p.hops if h.hook == "INPUT" and h.kind == "policy"][-1] == "nat"  # nat INPUT ran after


def test_the_nodes_own_connection_goes_through_ipvs_in_output() -> None:
    t = walk(Packet("10.96.10.20", "10.96.10.20", dport=80, origin="local"), ON)
    assert {ep: (p, m) for ep, (p, m, _) in ends(t).items()} == {
        "10.244.1.11:8080": (Fraction(1, 2), True), "10.244.1.12:8080": (Fraction(1, 2), True)}
    p = t.paths[0]
    hooks = [(h.hook, h.table) for h in p.hops if h.kind == "policy" or h.matched]
    assert hooks.index(("OUTPUT", "nat")) < hooks.index(("OUTPUT", "ipvs"))


def test_persistence_with_a_returning_client_is_an_assumption_per_real_server() -> None:
    ctx = NodeContext(**{**NODE.__dict__, "affinity": "any"})  # type: ignore[arg-type]
    t = walk(Packet("10.244.1.100", "10.96.60.10", dport=80), ON, ctx)
    assert sorted(p.endpoint or "" for p in t.paths) == ["10.244.1.61:8080", "10.244.1.62:8080", "10.244.2.63:8080"]
    assert all(p.probability == 1 and len(p.assumptions) == 1 for p in t.paths)
    new = walk(Packet("10.244.1.100", "10.96.60.10", dport=80), ON)
    assert sorted(p.probability for p in new.paths) == [Fraction(1, 3)] * 3  # a new client is scheduled


def test_no_real_servers_is_refused() -> None:
    (p,) = walk(Packet("10.244.1.100", "10.96.40.10", dport=80), ON).paths
    assert p.verdict == "REJECT" and "ip_vs_leave" in (p.hops[-1].rule or "")
