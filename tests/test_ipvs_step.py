"""The IPVS step's ops, taken directly (state and env in, outcome out): the lookup, the real servers' exact shares,
persistence as a choice, the DNAT and how the walk goes on, the refusal; and where its hooks sit."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.flow import (
    END,
    GOTO,
    REINJECT,
    STOP_TABLE,
    Action,
    Check,
    Choices,
    Effect,
    Env,
    Spread,
    Undecidable,
)
from kptui.engine.ipvs import IPVS_NS, PRIORITIES, IpvsViews, parse_ipvsadm
from kptui.engine.ipvs.step import CONNTRACK_ASSUMED, ServiceChain
from kptui.engine.packet import NodeContext
from kptui.engine.schedule import Netfilter, hook_schedule
from kptui.engine.trace_model import PacketState

TABLE = parse_ipvsadm("""\
-A -t 10.96.0.1:443 -s rr
-a -t 10.96.0.1:443 -r 10.0.0.2:6443 -m -w 1
-A -t 10.96.10.20:80 -s wrr
-a -t 10.96.10.20:80 -r 10.244.1.11:8080 -m -w 1
-a -t 10.96.10.20:80 -r 10.244.1.12:8080 -m -w 2
-a -t 10.96.10.20:80 -r 10.244.2.13:8080 -m -w 0
-A -t 10.96.60.10:80 -s rr -p 10800
-a -t 10.96.60.10:80 -r 10.244.1.61:8080 -m -w 1
-a -t 10.96.60.10:80 -r 10.244.2.63:8080 -m -w 1
-A -u 10.96.0.10:53 -s rr
-A -t 10.96.40.10:80 -s rr
-a -t 10.96.40.10:80 -r 10.244.2.40:80 -m -w 0
-A -t 10.96.9.9:80 -s rr
-a -t 10.96.9.9:80 -r 127.0.0.1:8080 -m -w 1
""", "node.ipvs")
NODE = NodeContext(addresses=("10.0.0.2",))


def env(hook: str = "INPUT", node: NodeContext = NODE, flags: frozenset[str] = frozenset({"SYN"})) -> Env:
    return Env(node, 4, hook, None, None, flags, None)


def syn(dst: str, dport: int = 80, proto: str = "tcp", ctstate: str = "NEW") -> PacketState:
    return PacketState("10.244.1.100", dst, proto, 40000, dport, ctstate=ctstate, orig_src="10.244.1.100",
                       orig_dst=dst, orig_sport=40000, orig_dport=dport)  # fmt: skip


def lookup(views: IpvsViews, s: PacketState, e: Env) -> object:
    chain = views.chain(IPVS_NS, e.hook)
    assert chain is not None and len(chain) == 1
    check, action = chain.ops(0)
    assert isinstance(check, Check) and isinstance(action, Action)
    got = check.fn(s, e)
    return action.fn(s, e) if got is True else got


def service(views: IpvsViews, key: str) -> ServiceChain:
    c = views.chain(IPVS_NS, key)
    assert isinstance(c, ServiceChain)
    return c


def schedule(c: ServiceChain, s: PacketState, e: Env) -> Spread:
    check, op = c.ops(len(c) - 2)
    assert isinstance(check, Check) and isinstance(op, Action)
    assert check.fn(s, e) is True
    r = op.fn(s, e)
    assert isinstance(r, Spread) and r.branches  # never an empty spread
    return r


def test_hooks_sit_where_ip_vs_ops_registers_them() -> None:
    views = IpvsViews(TABLE, conntrack=True)
    (inp,) = views.base_chains("INPUT", 4)
    (out,) = views.base_chains("OUTPUT", 4)
    assert (inp.priority, out.priority) == (99, -98) == (PRIORITIES["INPUT"], PRIORITIES["OUTPUT"])
    assert (inp.ns, inp.table, inp.nat) == (IPVS_NS, "ipvs", False)
    assert views.base_chains("FORWARD", 4) == [] and views.base_chains("PREROUTING", 4) == []
    assert views.base_chains("INPUT", 6) == []  # no IPv6 service: no IPv6 hooks (ip_vs_register_hooks)
    rules = parse_ruleset("*nat\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n"
                          ":OUTPUT ACCEPT [0:0]\nCOMMIT\n*mangle\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    order = [b.table for b in hook_schedule(Netfilter.of(rules, 4), "INPUT", 4, views.base_chains("INPUT", 4))]
    assert order == ["mangle", "filter", "ipvs", "nat"]  # after filter INPUT, before nat INPUT
    order = [b.table for b in hook_schedule(Netfilter.of(rules, 4), "OUTPUT", 4, views.base_chains("OUTPUT", 4))]
    assert order == ["mangle", "nat", "ipvs", "filter"]  # after nat OUTPUT
    assert views.policy(inp) == "ACCEPT"


def test_lookup_goes_to_the_virtual_service_or_lets_the_packet_on() -> None:
    views = IpvsViews(TABLE, conntrack=True)
    hit = lookup(views, syn("10.96.10.20"), env())
    assert isinstance(hit, Effect) and (hit.flow, hit.target) == (GOTO, "TCP 10.96.10.20:80")
    assert lookup(views, syn("10.96.10.20", 81), env()) is False  # no such service: on to nat INPUT, a socket
    assert lookup(views, syn("10.96.10.20", proto="icmp"), env()) is False  # IPVS balances TCP, UDP, SCTP
    assert lookup(views, syn("10.96.10.20"), env(flags=frozenset({"ACK"}))) is False  # only a SYN is scheduled
    q = lookup(views, syn("10.96.10.20", ctstate="ESTABLISHED"), env())
    assert isinstance(q, Undecidable) and "connection entry" in q.reason


def test_shares_are_exact_and_weight_zero_gets_none() -> None:
    views = IpvsViews(TABLE, conntrack=True)
    web = service(views, "TCP 10.96.10.20:80")
    spread = schedule(web, syn("10.96.10.20"), env())
    got = [(p, eff.state.dst, eff.state.dport) for p, eff, _ in spread.branches]
    assert got == [(Fraction(1, 3), "10.244.1.11", 8080), (Fraction(2, 3), "10.244.1.12", 8080)]  # wrr by weight
    assert sum(p for p, _, _ in spread.branches) == 1 and spread.rest_note == ""
    assert "10.244.2.13:8080 0 (weight 0, draining)" in web.row(len(web) - 2).text
    for _, eff, note in spread.branches:
        assert eff.verdict == "IPVS" and eff.flow == REINJECT and eff.state.dnat and eff.state.ctstate == "NEW"
        assert eff.state.orig_dst == "10.96.10.20" and "share" in note


def test_a_real_server_on_the_node_goes_on_in_this_hook() -> None:
    api = service(IpvsViews(TABLE, conntrack=True), "TCP 10.96.0.1:443")
    ((p, eff, _),) = schedule(api, syn("10.96.0.1", 443), env()).branches
    assert p == 1 and eff.flow == STOP_TABLE and (eff.state.dst, eff.state.dport) == ("10.0.0.2", 6443)
    unknown = NodeContext()  # the node's addresses not given: the walker decides on REINJECT (see step.py)
    ((_, eff, _),) = schedule(api, syn("10.96.0.1", 443), env(node=unknown)).branches
    assert eff.flow == REINJECT


def test_conntrack_off_leaves_the_packet_untracked_and_unknown_is_said() -> None:
    off = service(IpvsViews(TABLE, conntrack=False), "TCP 10.96.10.20:80")
    for _, eff, _ in schedule(off, syn("10.96.10.20"), env()).branches:
        assert eff.state.ctstate == "UNTRACKED" and "ip_vs_notrack" in (eff.note or "")
    unknown = service(IpvsViews(TABLE), "TCP 10.96.10.20:80")
    for _, eff, _ in schedule(unknown, syn("10.96.10.20"), env()).branches:
        assert eff.state.ctstate == "NEW" and CONNTRACK_ASSUMED in (eff.note or "")


def test_no_real_server_available_is_refused() -> None:
    views = IpvsViews(TABLE, conntrack=True)
    for key in ("UDP 10.96.0.10:53", "TCP 10.96.40.10:80"):  # none at all; only a draining one
        c = service(views, key)
        s = syn(key.split()[1].split(":")[0], int(key.rsplit(":", 1)[1]), key[:3].lower())
        check, _ = c.ops(len(c) - 2)
        assert isinstance(check, Check) and check.fn(s, env()) is False  # the walker then takes the next rule
        (op,) = c.ops(len(c) - 1)
        assert isinstance(op, Action)
        eff = op.fn(s, env())
        assert isinstance(eff, Effect) and (eff.verdict, eff.flow) == ("REJECT", END)
        assert "ICMP port unreachable" in (eff.note or "")


def test_persistence_is_a_choice_for_a_returning_client() -> None:
    cart = service(IpvsViews(TABLE, conntrack=True), "TCP 10.96.60.10:80")
    assert len(cart) == 4  # two persistence rules, the schedule, the refusal
    s = syn("10.96.60.10")

    def persist(i: int, affinity: str | None) -> object:
        check, action = cart.ops(i)
        assert isinstance(check, Check) and isinstance(action, Action)
        return check.fn(s, env(node=NodeContext(addresses=("10.0.0.2",), affinity=affinity)))

    assert persist(0, None) is False and persist(1, None) is False  # a new client: scheduled
    c0, c1 = persist(0, "any"), persist(1, "any")
    assert isinstance(c0, Choices) and isinstance(c1, Choices) and c0.key == c1.key
    assert (c0.value, c1.value) == ("10.244.1.61:8080", "10.244.2.63:8080") and len(c0.options) == 2
    assert persist(1, "10.244.2.63") is True and persist(0, "10.244.2.63") is False  # named endpoint
    _, action = cart.ops(1)
    eff = action.fn(s, env())
    assert isinstance(eff, Effect) and (eff.state.dst, eff.state.dport) == ("10.244.2.63", 8080)


def test_loopback_real_servers() -> None:
    lo = service(IpvsViews(TABLE, conntrack=True), "TCP 10.96.9.9:80")
    ((_, eff, _),) = schedule(lo, syn("10.96.9.9"), env("INPUT")).branches
    assert (eff.verdict, eff.flow) == ("DROP", END)  # ip_vs_nat_xmit: not from the network to a loopback address
    ((_, eff, _),) = schedule(lo, syn("10.96.9.9"), env("OUTPUT")).branches
    assert (eff.flow, eff.state.dst) == (STOP_TABLE, "127.0.0.1")


@pytest.mark.parametrize("forward", ["g", "i"])
def test_direct_routing_and_tunnels_do_not_dnat(forward: str) -> None:
    t = parse_ipvsadm(f"-A -t 10.96.0.5:80 -s rr\n-a -t 10.96.0.5:80 -r 10.0.1.5:80 -{forward} -w 1\n")
    c = service(IpvsViews(t, conntrack=True), "TCP 10.96.0.5:80")
    ((_, eff, _),) = schedule(c, syn("10.96.0.5"), env()).branches
    assert eff.flow == REINJECT and eff.state.dst == "10.96.0.5" and not eff.state.dnat


def test_rows_say_what_they_are() -> None:
    web = service(IpvsViews(TABLE, conntrack=True), "TCP 10.96.10.20:80")
    assert web.row(0).text.startswith("schedule (wrr): 10.244.1.11:8080 1/3, 10.244.1.12:8080 2/3")
    assert web.row(0).line == 3  # the -A line in the ipvsadm listing
    assert "ip_vs_leave" in web.row(1).text
    assert IpvsViews(TABLE).chain(IPVS_NS, "TCP 1.2.3.4:5") is None and IpvsViews(TABLE).chain(("xt",), "INPUT") is None
