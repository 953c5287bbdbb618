"""Evaluation of nft rules compiled to walker ops, per expression and statement family (kptui.engine.nft)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from kptui.engine.flow import (
    CONTINUE,
    END,
    GOTO,
    JUMP,
    RETURN,
    STOP_TABLE,
    Action,
    Chance,
    Check,
    Effect,
    Env,
    Spread,  # fmt: skip
    Undecidable,
    iface_question,
    local_question,
)
from kptui.engine.model import Option, Target
from kptui.engine.nft import NftCompiled, parse_nft
from kptui.engine.packet import NodeContext
from kptui.engine.targets import apply_target
from kptui.engine.trace_model import PacketState

NODE = NodeContext(addresses=("192.168.0.2",), interfaces={"eth0": ("192.168.0.2/24",), "cni0": ("10.244.1.1/24",)},
                   uplink="eth0", pod_cidrs=("10.244.1.0/24",), pod_iface="cni0")  # fmt: skip
BLANK = NodeContext()


def state(src: str = "10.244.1.5", dst: str = "10.96.0.10", proto: str = "tcp", sport: int | None = 40000,
          dport: int | None = 80, **kw: Any) -> PacketState:  # fmt: skip
    base: dict[str, Any] = {"orig_src": src, "orig_dst": dst, "orig_sport": sport, "orig_dport": dport,
                            "in_iface": "cni0", "out_iface": "", "hook": "PREROUTING"}  # fmt: skip
    base.update(kw)
    return PacketState(src, dst, proto, sport, dport, **base)


def env(node: NodeContext = NODE, *, length: int | None = 60, icmp: int | None = None, flags: str = "SYN",
        mac: str | None = None, hook: str = "PREROUTING") -> Env:  # fmt: skip
    return Env(node, 4, hook, length, icmp, frozenset(flags.split(",")) if flags else frozenset(), mac)


def compiled(rules: str, family: str = "ip", decls: str = "") -> NftCompiled:
    body = "\n".join(f"\t\t{r}" for r in rules.strip().split("\n"))
    text = f"table {family} t {{\n{decls}\n\tchain c {{\n{body}\n\t}}\n\tchain x {{\n\t}}\n}}\n"
    rs = parse_nft(text, source="test.nft")
    assert [w for w in rs.warnings] == [], [w.format() for w in rs.warnings]
    return NftCompiled(rs)


def run(rule: str, s: PacketState, e: Env | None = None, *, family: str = "ip", decls: str = "") -> Any:
    """The outcome of one rule: False/Chance/Undecidable from the check that decided, else the last action's
    result (an Effect, Spread or Undecidable), or "matched" for a rule with no action."""
    view = compiled(rule, family, decls).chain(family, "t", "c")
    assert view is not None
    return evaluate(view.ops(0), s, e or env())


def evaluate(ops: tuple[Check | Action, ...], s: PacketState, e: Env) -> Any:
    last: Any = "matched"
    for op in ops:
        r = op.fn(s, e)
        if isinstance(op, Check):
            if r is True:
                continue
            return r
        if isinstance(r, Effect) and r.flow == CONTINUE:
            s, last = r.state, r
            continue
        return r
    return last


# -- payload ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, expected", [
    ("ip saddr 10.244.1.5", "matched"),
    ("ip saddr != 10.244.1.5", False),
    ("ip saddr 10.244.0.0/16", "matched"),
    ("ip saddr != 10.244.0.0/16", False),
    ("ip saddr 10.244.1.1-10.244.1.9", "matched"),
    ("ip saddr { 10.1.1.1, 10.244.1.0/24 }", "matched"),
    ("ip saddr != { 10.1.1.1, 10.244.1.0/24 }", False),
    ("ip daddr 10.96.0.10 tcp dport 80", "matched"),
    ("tcp dport { 22, 80-90 }", "matched"),
    ("tcp dport != 80", False),
    ("tcp dport < 1024", "matched"),
    ("tcp dport >= 1024", False),
    ("udp dport 80", False),  # a TCP packet has no UDP header: the rule breaks
    ("udp dport != 80", False),
    ("th dport 80", "matched"),
    ("th sport 40000", "matched"),
    ("ip protocol tcp", "matched"),
    ("tcp flags syn", "matched"),
    ("tcp flags syn / fin,syn,rst,ack", "matched"),
    ("tcp flags ack", False),
    ("tcp flags ! syn,ack", False),
    ("ip length 60", "matched"),
])  # fmt: skip
def test_payload_matches(rule: str, expected: Any) -> None:
    assert run(rule, state()) == expected


@pytest.mark.parametrize("rule, expected", [
    ("ip saddr 10.0.0.0/8", False),  # an IPv6 packet in an inet table: no IPv4 header
    ("ip6 saddr fd00::/16", "matched"),
    ("ip6 daddr fd00:10:96::10", "matched"),
    ("ip6 nexthdr tcp", "matched"),
    ("meta nfproto ipv6", "matched"),
    ("meta nfproto ipv4", False),
    ("meta protocol ip6", "matched"),
])  # fmt: skip
def test_payload_of_the_other_family_breaks_the_rule(rule: str, expected: Any) -> None:
    s = state("fd00:10:244:1::5", "fd00:10:96::10")
    assert run(rule, s, family="inet") == expected


def test_th_dport_of_icmp_and_fields_the_model_lacks_are_undecidable_under_the_rule_text() -> None:
    icmp = state(proto="icmp", sport=None, dport=None)
    r = run("th dport 53", icmp)
    assert isinstance(r, Undecidable) and r.key == "nft th dport 53"
    r = run("ip ttl 64", state())
    assert isinstance(r, Undecidable) and r.key == "nft ip ttl 64"
    assert run("icmp type echo-request", icmp, env(icmp=8)) == "matched"
    assert run("icmp type echo-reply", icmp, env(icmp=8)) is False
    assert run("icmp type echo-request icmp code net-unreachable", icmp, env(icmp=8)) == "matched"


# -- meta ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, expected", [
    ("meta l4proto tcp", "matched"),
    ("meta l4proto { tcp, udp }", "matched"),
    ("meta l4proto != tcp", False),
    ("meta mark 0x00004000", "matched"),
    ("meta mark & 0x00004000 == 0x00004000", "matched"),
    ("meta mark & 0x00004000 == 0x00000000", False),
    ("meta mark & 0x0000ff00 != 0x00000000", "matched"),
    ("iifname \"cni0\"", "matched"),
    ("iifname \"cn*\"", "matched"),
    ("iifname { \"eth0\", \"cni*\" }", "matched"),
    ("iifname != \"cni0\"", False),
    ("iif \"cni0\"", "matched"),
    ("meta pkttype host", "matched"),
    ("oifname \"eth0\"", False),  # before routing there is no output interface: the rule breaks
    ("oifname != \"eth0\"", False),
])  # fmt: skip
def test_meta_matches(rule: str, expected: Any) -> None:
    assert run(rule, state(mark=0x4000)) == expected


def test_unknown_interfaces_ask_the_standard_questions() -> None:
    s = state(in_iface=None, out_iface=None)
    assert run('iifname "eth0"', s) == iface_question(s, "in", "eth0")
    assert run('iifname != "eth0"', s) == iface_question(s, "in", "eth0", negated=True)
    assert run('iifname "veth*"', s) == iface_question(s, "in", "veth*")
    assert run('oif "eth0"', s) == iface_question(s, "out", "eth0")
    both = run('iifname { "eth0", "wg*" }', s)
    assert isinstance(both, Undecidable)
    assert (both.key, both.pred, both.negated) == ("iface:in", ("in", "eth0 wg*"), False)
    named = run("iifname @ifs", s, decls='\tset ifs {\n\t\ttype ifname\n\t\telements = { "eth0", "eth1" }\n\t}')
    assert isinstance(named, Undecidable) and named.pred == ("in", "eth0 eth1")


def test_a_locally_generated_packet_has_no_input_interface() -> None:
    local = state("192.168.0.2", in_iface="", hook="OUTPUT")
    assert run('iifname "eth0"', local) is False
    assert run('iifname != "eth0"', local) is False  # nft breaks the rule (iptables' ! -i eth0 would match)


# -- ct -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ctstate, rule, expected", [
    ("NEW", "ct state new", "matched"),
    ("NEW", "ct state established,related", False),
    ("ESTABLISHED", "ct state established,related", "matched"),
    ("NEW", "ct state { invalid, new }", "matched"),
    ("NEW", "ct state != new", False),
    ("NEW", "ct state == new", "matched"),
    ("UNTRACKED", "ct state untracked", "matched"),
    ("UNTRACKED", "ct mark 0x00000000", False),  # no conntrack entry: ct keys break the rule
    ("NEW", "ct original ip daddr 10.96.0.10", "matched"),
    ("NEW", "ct original proto-dst 80", "matched"),
    ("NEW", "ct direction original", "matched"),
    ("NEW", "ct status dnat", False),
])  # fmt: skip
def test_ct_matches(ctstate: str, rule: str, expected: Any) -> None:
    assert run(rule, state(ctstate=ctstate)) == expected


def test_ct_status_reads_the_nat_state() -> None:
    after = state().with_(dst="10.244.2.6", dport=8080, dnat=True)
    assert run("ct status dnat", after) == "matched"
    assert run("ct status snat", after) is False
    assert run("ct status & dnat == dnat", after) == "matched"
    assert run("ct original ip daddr 10.96.0.10 ct status dnat", after) == "matched"


# -- fib ----------------------------------------------------------------------------------------------------
def test_fib_type_asks_the_standard_local_question() -> None:
    to_node = state(dst="192.168.0.2")
    assert run("fib daddr type local", to_node) == "matched"
    assert run("fib daddr type local", state()) is False
    assert run("fib daddr type != local", state()) == "matched"
    assert run("fib daddr type { local, broadcast }", to_node) == "matched"
    assert run("fib saddr type local", state("127.0.0.1")) == "matched"
    unknown = run("fib daddr type local", to_node, env(BLANK))
    assert unknown == local_question("192.168.0.2", BLANK)
    assert isinstance(unknown, Undecidable) and unknown.key == "local 192.168.0.2"
    negated = run("fib daddr type != local", to_node, env(BLANK))
    assert negated == local_question("192.168.0.2", BLANK, negated=True)
    assert run("fib daddr type unicast", to_node, env(BLANK)) == local_question("192.168.0.2", BLANK, negated=True)


def test_fib_reverse_path_lookup() -> None:
    outside = state("203.0.113.5", "192.168.0.2", in_iface="eth0")
    assert run("fib saddr . iif oif missing", outside) is False  # the default route leads back out of eth0
    spoofed = state("10.244.1.7", "192.168.0.2", in_iface="eth0")  # a pod address arriving on the uplink
    assert run("fib saddr . iif oif missing", spoofed) == "matched"
    assert run("fib saddr . iif oif exists", spoofed) is False
    r = run("fib saddr . iif oif missing", state("198.51.100.1", in_iface="cni0"))
    assert isinstance(r, Undecidable)  # only the default route is known, and it leaves by eth0
    assert run('fib daddr oif "eth0"', state(dst="192.168.0.77")) == "matched"


# -- numgen, hashes, maps -------------------------------------------------------------------------------------
def branches(r: Any) -> list[tuple[Fraction, str, str | None]]:
    assert isinstance(r, Spread), r
    return [(p, eff.verdict, eff.target) for p, eff, _ in r.branches]


def test_numgen_vmap_is_a_spread_of_exact_shares() -> None:
    r = run("numgen random mod 3 vmap { 0 : goto x, 1 : jump x, 2 : accept }", state())
    assert branches(r) == [(Fraction(1, 3), "GOTO", "x"), (Fraction(1, 3), "JUMP", "x"),
                           (Fraction(1, 3), "ACCEPT", None)]  # fmt: skip
    assert sum(p for p, _, _ in branches(r)) == 1
    gap = run("numgen random mod 4 vmap { 0 : goto x, 2-3 : drop }", state())
    assert branches(gap) == [(Fraction(1, 4), "GOTO", "x"), (Fraction(1, 2), "DROP", None)]
    assert isinstance(gap, Spread) and "no element" in gap.rest_note  # value 1: the rule goes on
    inc = run("numgen inc mod 2 offset 5 vmap { 5 : accept, 6 : drop }", state())
    assert isinstance(inc, Spread) and "round-robin" in inc.branches[0][2]
    h = run("jhash ip saddr . tcp sport mod 2 vmap { 0 : accept, 1 : drop }", state())
    assert isinstance(h, Spread) and [b[0] for b in h.branches] == [Fraction(1, 2)] * 2
    assert "assumed" in h.branches[0][2]


def test_numgen_in_a_match_is_a_chance() -> None:
    assert run("numgen random mod 4 < 1", state()) == Chance(Fraction(1, 4),
                                                            "numgen random mod 4: 1 of 4 values match")  # fmt: skip
    assert run("numgen random mod 4 < 4", state()) == "matched"


KUBE = """\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 10.96.0.10 . tcp . 80 : goto x, 10.96.0.53 . udp . 53 : jump x }
\t}"""


@pytest.mark.parametrize("s, expected", [
    (state(), ("GOTO", GOTO, "x")),
    (state(dst="10.96.0.53", proto="udp", dport=53), ("JUMP", JUMP, "x")),
])  # fmt: skip
def test_vmap_hit(s: PacketState, expected: tuple[str, str, str]) -> None:
    r = run("ip daddr . meta l4proto . th dport vmap @service-ips", s, decls=KUBE)
    assert isinstance(r, Effect) and (r.verdict, r.flow, r.target) == expected


@pytest.mark.parametrize("s", [state(dport=81), state(proto="udp"), state(dst="10.96.0.99")])
def test_vmap_miss_is_an_empty_spread(s: PacketState) -> None:
    r = run("ip daddr . meta l4proto . th dport vmap @service-ips", s, decls=KUBE)
    assert isinstance(r, Spread) and r.branches == () and "service-ips" in r.rest_note


def test_interval_and_concatenated_named_sets() -> None:
    decls = ("\tset allow {\n\t\ttype ipv4_addr . inet_service\n\t\tflags interval\n"
             "\t\telements = { 10.244.0.0/16 . 8000-8100, 192.0.2.7 . 22 }\n\t}")  # fmt: skip
    assert run("ip saddr . tcp dport @allow", state(dport=8080), decls=decls) == "matched"
    assert run("ip saddr . tcp dport @allow", state(dport=80), decls=decls) is False
    assert run("ip saddr . tcp dport != @allow", state(dport=80), decls=decls) == "matched"
    assert run("ip saddr . tcp dport { 10.244.1.5 . 80 }", state()) == "matched"


def test_dnat_through_a_numgen_map_spreads_the_endpoints() -> None:
    r = run("meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.244.1.5 . 8080, 1 : 10.244.2.6 . 8080 }",
            state())  # fmt: skip
    assert isinstance(r, Spread)
    got = [(p, e.verdict, e.flow, e.state.dst, e.state.dport, e.state.dnat) for p, e, _ in r.branches]
    assert got == [(Fraction(1, 2), "DNAT", STOP_TABLE, "10.244.1.5", 8080, True),
                   (Fraction(1, 2), "DNAT", STOP_TABLE, "10.244.2.6", 8080, True)]  # fmt: skip
    decls = "\tmap redirects {\n\t\ttype inet_service : ipv4_addr . inet_service\n\t\telements = { 80 : 10.1.0.1 . 8080 }\n\t}"
    hit = run("dnat ip to tcp dport map @redirects", state(), decls=decls)
    assert isinstance(hit, Effect) and (hit.state.dst, hit.state.dport) == ("10.1.0.1", 8080)
    miss = run("dnat ip to tcp dport map @redirects", state(dport=81), decls=decls)
    assert isinstance(miss, Spread) and miss.branches == ()


# -- dynamic sets (session affinity) -----------------------------------------------------------------------
AFFINITY = """\tset aff {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 3h
\t\telements = { 10.244.3.99 expires 2h }
\t}"""


def test_a_dynamic_set_is_empty_for_a_first_packet_unless_told() -> None:
    assert run("ip saddr @aff goto x", state(), decls=AFFINITY) is False
    told = NodeContext(addresses=NODE.addresses, recent=frozenset({"aff"}))
    assert isinstance(run("ip saddr @aff goto x", state(), env(told), decls=AFFINITY), Effect)
    qualified = NodeContext(recent=frozenset({"ip t aff"}))
    assert isinstance(run("ip saddr @aff goto x", state(), env(qualified), decls=AFFINITY), Effect)
    everyone = NodeContext(affinity="any")  # a returning client (a set not named after an endpoint: held)
    assert isinstance(run("ip saddr @aff goto x", state(), env(everyone), decls=AFFINITY), Effect)
    listed = run("ip saddr @aff goto x", state("10.244.3.99"), decls=AFFINITY)
    assert isinstance(listed, Effect)  # the listing shows the element: the node as listed holds it


def test_update_adds_the_key_for_later_lookups_on_the_path() -> None:
    view = compiled("update @aff { ip saddr }\nip saddr @aff goto x", decls=AFFINITY).chain("ip", "t", "c")
    assert view is not None
    upd = view.ops(0)[0].fn(state(), env())
    assert isinstance(upd, Effect) and upd.flow == CONTINUE
    assert upd.state.dyn == frozenset({("ip t aff", "10.244.1.5")})
    assert evaluate(view.ops(1), upd.state, env()).flow == GOTO
    assert evaluate(view.ops(1), state(), env()) is False


# -- verdicts and statements --------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, verdict, flow, target", [
    ("accept", "ACCEPT", STOP_TABLE, None),
    ("drop", "DROP", END, None),
    ("reject", "REJECT", END, None),
    ("reject with icmp host-unreachable", "REJECT", END, None),
    ("continue", "CONTINUE", CONTINUE, None),
    ("return", "RETURN", RETURN, None),
    ("jump x", "JUMP", JUMP, "x"),
    ("goto x", "GOTO", GOTO, "x"),
    ("queue flags bypass to 3", "QUEUE", END, None),
])  # fmt: skip
def test_verdicts(rule: str, verdict: str, flow: str, target: str | None) -> None:
    view = compiled(rule).chain("ip", "t", "c")
    assert view is not None
    (op,) = view.ops(0)
    eff = op.fn(state(), env())
    assert isinstance(op, Action) and isinstance(eff, Effect)
    assert (eff.verdict, eff.flow, eff.target) == (verdict, flow, target)


def test_reject_with_tcp_reset_applies_to_tcp_only() -> None:
    assert isinstance(run("reject with tcp reset", state()), Effect)
    assert run("reject with tcp reset", state(proto="udp")) is False
    v6 = state("fd00::1", "fd00::2")
    assert run("reject with icmp port-unreachable", v6, family="inet") is False
    assert isinstance(run("reject with icmpx admin-prohibited", v6, family="inet"), Effect)


def test_marks() -> None:
    r = run("meta mark set meta mark | 0x00004000", state(mark=0x1))
    assert isinstance(r, Effect) and r.state.mark == 0x4001 and r.flow == CONTINUE
    r = run("meta mark set meta mark ^ 0x00004000", state(mark=0x4001))
    assert isinstance(r, Effect) and r.state.mark == 0x1
    r = run("meta mark set mark and 0xffff00ff", state(mark=0x4321))
    assert isinstance(r, Effect) and r.state.mark == 0x21
    r = run("ct mark set meta mark", state(mark=0x7))
    assert isinstance(r, Effect) and r.state.ctmark == 0x7
    r = run("meta mark set 0x00000010", state())
    assert isinstance(r, Effect) and r.state.mark == 0x10
    view = compiled("meta nftrace set 1").chain("ip", "t", "c")
    assert view is not None and view.ops(0) == ()


def test_nat_statements() -> None:
    r = run("meta l4proto tcp dnat to 10.244.1.5:8080", state())
    assert isinstance(r, Effect) and (r.verdict, r.flow, r.state.dst, r.state.dport, r.state.dnat) == (
        "DNAT", STOP_TABLE, "10.244.1.5", 8080, True)
    r = run("snat to 192.0.2.1", state())
    assert isinstance(r, Effect) and (r.verdict, r.state.src, r.state.snat) == ("SNAT", "192.0.2.1", True)
    r = run("tcp dport 80 redirect to :9090", state(dst="192.168.0.2", in_iface="eth0"))
    assert isinstance(r, Effect) and (r.verdict, r.state.dst, r.state.dport) == ("REDIRECT", "192.168.0.2", 9090)
    v6 = state("fd00::1", "fd00::2")
    assert run("dnat ip to 10.0.0.1", v6, family="inet") == Spread((), "dnat ip does not apply to this packet")


@pytest.mark.parametrize("out_iface, node", [("eth0", NODE), ("", NODE), ("lo", NODE), ("eth0", BLANK),
                                              ("eth7", NODE)])  # fmt: skip
def test_masquerade_agrees_with_the_iptables_target(out_iface: str, node: NodeContext) -> None:
    s = state(out_iface=out_iface, hook="POSTROUTING")
    nft = run("masquerade fully-random", s, env(node))
    ipt = apply_target(Target("MASQUERADE", (Option("--random-fully"),)), s, node, "nat", ())
    assert isinstance(nft, Effect)
    assert (nft.verdict, nft.flow, nft.state, nft.note) == (ipt.verdict, ipt.flow, ipt.state, ipt.note)


def test_limit_quota_log_notrack_counter() -> None:
    r = run("limit rate 10/second accept", state())
    assert isinstance(r, Effect) and r.verdict == "ACCEPT"
    view = compiled("limit rate 10/second accept").chain("ip", "t", "c")
    assert view is not None
    note = view.ops(0)[0].fn(state(), env())
    assert isinstance(note, Effect) and "first packet" in (note.note or "")
    assert run("limit rate over 10/second drop", state()) is False
    assert isinstance(run("quota 10 mbytes accept", state()), Effect)
    assert run("quota over 10 mbytes drop", state()) is False
    r = run("udp dport 123 notrack", state(proto="udp", dport=123))
    assert isinstance(r, Effect) and r.state.ctstate == "UNTRACKED"
    r = run('log prefix "x " counter packets 3 bytes 180', state())
    assert isinstance(r, Effect) and r.verdict == "CONTINUE" and "logged" in (r.note or "")


def test_what_kptui_does_not_know_is_undecidable_never_true() -> None:
    rs = parse_nft("table ip t {\n\tchain c {\n\t\tfrobnicate 7 accept\n\t\tmeta skuid 0 accept\n"
                   "\t\txt match recent counter packets 0 bytes 0 accept\n\t\tct count over 3 drop\n\t}\n}\n")  # fmt: skip
    assert ["frobnicate" in w.message or "iptables-nft" in w.message for w in rs.warnings] == [True, True]
    assert rs.tables[0].iptables_nft  # an xt expression: the table was written by iptables-nft
    view = NftCompiled(rs).chain("ip", "t", "c")
    assert view is not None
    keys = []
    for i in range(len(view)):
        first = view.ops(i)[0]
        r = first.fn(state(), env())
        assert isinstance(first, Check) and isinstance(r, Undecidable)
        keys.append(r.key)
    assert keys == ["nft frobnicate 7 accept", "nft meta skuid 0", "xt match recent", "nft ct count over 3"]


def test_chain_view_rows_and_cached_ops() -> None:
    rs = parse_nft("table ip t { # handle 3\n\tchain c { # handle 1\n\t\tip saddr 10.0.0.1 counter packets 4 "
                   "bytes 240 accept comment \"hi\" # handle 7\n\t}\n}\n", source="x.nft")  # fmt: skip
    c = NftCompiled(rs)
    view = c.chain("ip", "t", "c")
    assert view is not None and len(view) == 1 and c.chain("ip", "t", "nope") is None
    row = view.row(0)
    text = 'ip saddr 10.0.0.1 counter packets 4 bytes 240 accept comment "hi"'
    assert (row.line, row.text, row.counter, row.handle) == (3, text, (4, 240), 7)
    assert view.ops(0) is view.ops(0) and view.next_candidate(0, "10.0.0.1", None) == 0
    assert c.chain("ip", "t", "c") is view


def test_a_key_with_an_unknown_part_can_still_miss_for_sure() -> None:
    icmp = state(proto="icmp", sport=None, dport=None)
    miss = run("ip daddr . meta l4proto . th dport vmap @service-ips", icmp, decls=KUBE)
    assert isinstance(miss, Spread) and miss.branches == ()
    decls = KUBE.replace("10.96.0.53 . udp . 53 : jump x", "10.96.0.10 . icmp . 0 : jump x")
    maybe = run("ip daddr . meta l4proto . th dport vmap @service-ips", icmp, decls=decls)
    assert isinstance(maybe, Undecidable) and maybe.key == "nft ip daddr . meta l4proto . th dport vmap @service-ips"
    assert run("ip daddr . meta l4proto . th dport @svc", icmp, decls=SVC_SET) is False
    assert run("ip daddr . meta l4proto . th dport != @svc", icmp, decls=SVC_SET) == "matched"


SVC_SET = """\tset svc {
\t\ttype ipv4_addr . inet_proto . inet_service
\t\telements = { 10.96.0.10 . tcp . 80 }
\t}"""
