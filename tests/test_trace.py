"""The trace engine on hand-built rulesets: hook order, verdicts, NAT, marks, branches, assumptions."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.matches import probability_of
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace import trace

NODE = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.1.0/24",),
                   interfaces={"eth0": ("10.0.0.2/24",), "cni0": ("10.244.1.1/24",)},
                   uplink="eth0", pod_iface="cni0")  # fmt: skip


def rules(**tables: str) -> str:
    out = []
    builtins = {"raw": "PREROUTING OUTPUT", "mangle": "PREROUTING INPUT FORWARD OUTPUT POSTROUTING",
                "nat": "PREROUTING INPUT OUTPUT POSTROUTING", "filter": "INPUT FORWARD OUTPUT"}  # fmt: skip
    for table, body in tables.items():
        out.append(f"*{table}")
        out += [f":{c} ACCEPT [0:0]" for c in builtins[table].split()]
        chains = sorted({ln.split()[1] for ln in body.splitlines() if ln.startswith("-A")}
                        - set(builtins[table].split()))  # fmt: skip
        chains += [ln[2:].strip() for ln in body.splitlines() if ln.startswith("#:")]
        out += [f":{c} - [0:0]" for c in chains]
        out += [ln for ln in body.splitlines() if ln.startswith("-A")]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def seq(path) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{h.table}/{h.chain}:{h.index or h.verdict}" for h in path.matched_hops]


def test_hook_order_for_a_forwarded_packet() -> None:
    rs = parse_ruleset(rules(raw="", mangle="", nat="", filter=""))
    (path,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    assert seq(path) == [
        "raw/PREROUTING:ACCEPT", "mangle/PREROUTING:ACCEPT", "nat/PREROUTING:ACCEPT",
        "mangle/FORWARD:ACCEPT", "filter/FORWARD:ACCEPT", "mangle/POSTROUTING:ACCEPT", "nat/POSTROUTING:ACCEPT",
    ]  # fmt: skip
    assert (path.verdict, path.delivery, path.final.out_iface) == ("ACCEPT", "forward", "eth0")


def test_hook_order_for_local_delivery_and_local_origin() -> None:
    rs = parse_ruleset(rules(raw="", mangle="", nat="", filter=""))
    (inbound,) = trace(rs, Packet("10.0.0.1", "10.0.0.2", dport=22, origin="external"), NODE).paths
    assert seq(inbound)[3:] == ["mangle/INPUT:ACCEPT", "filter/INPUT:ACCEPT", "nat/INPUT:ACCEPT"]
    assert inbound.delivery == "local"
    (out,) = trace(rs, Packet("10.0.0.2", "10.0.0.9", dport=80, origin="local"), NODE).paths
    assert seq(out) == ["raw/OUTPUT:ACCEPT", "mangle/OUTPUT:ACCEPT", "nat/OUTPUT:ACCEPT", "filter/OUTPUT:ACCEPT",
                        "mangle/POSTROUTING:ACCEPT", "nat/POSTROUTING:ACCEPT"]  # fmt: skip
    (loop,) = trace(rs, Packet("10.0.0.2", "10.0.0.2", dport=80, origin="local"), NODE).paths
    assert seq(loop)[6:] == ["raw/PREROUTING:ACCEPT", "mangle/PREROUTING:ACCEPT", "mangle/INPUT:ACCEPT",
                             "filter/INPUT:ACCEPT"]  # via lo, NAT already bound  # fmt: skip
    assert loop.final.in_iface == "lo" and loop.delivery == "local"


def test_nat_sees_only_new_connections_and_notrack_skips_it() -> None:
    rs = parse_ruleset(rules(raw="-A PREROUTING -p udp -m udp --dport 9999 -j NOTRACK",
                             nat="-A PREROUTING -j DNAT --to-destination 10.244.1.9"))  # fmt: skip
    (est,) = trace(rs, Packet("10.244.1.5", "10.96.0.1", dport=80, ctstate="ESTABLISHED"), NODE).paths
    assert not any(h.table == "nat" for h in est.hops) and est.final.dst == "10.96.0.1"
    (untracked,) = trace(rs, Packet("10.244.1.5", "10.96.0.1", "udp", dport=9999), NODE).paths
    assert untracked.final.ctstate == "UNTRACKED" and not any(h.table == "nat" for h in untracked.hops)
    (new,) = trace(rs, Packet("10.244.1.5", "10.96.0.1", "udp", dport=53), NODE).paths
    assert new.final.dst == "10.244.1.9" and new.final.dnat


@pytest.mark.parametrize(
    ("target", "start", "expected"),
    [
        ("MARK --set-xmark 0x4000/0x4000", 0x1, 0x4001),
        ("MARK --set-xmark 0x4000/0x0", 0x4001, 0x0001),  # KUBE-POSTROUTING's xor
        ("MARK --set-mark 0x10/0xf0", 0xff, 0x1f),
        ("MARK --or-mark 0x8000", 0x4000, 0xC000),
        ("MARK --and-mark 0x4000", 0xC001, 0x4000),
        ("MARK --xor-mark 0x4000", 0x4000, 0x0),
    ],
)
def test_mark_arithmetic(target: str, start: int, expected: int) -> None:
    rs = parse_ruleset(rules(mangle=f"-A PREROUTING -j {target}"))
    (path,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80, mark=start), NODE).paths
    assert path.final.mark == expected


def test_jump_goto_return_and_policy() -> None:
    rs = parse_ruleset(rules(filter="""\
-A FORWARD -j A
-A FORWARD -j DROP
-A A -g B
-A A -j ACCEPT
-A B -j RETURN
#:C"""))
    (path,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    # B returns to FORWARD (A was left by goto), whose next rule drops
    assert seq(path)[-4:] == ["filter/FORWARD:1", "filter/A:1", "filter/B:1", "filter/FORWARD:2"]
    assert path.verdict == "DROP"


def test_return_from_a_builtin_chain_applies_its_policy() -> None:
    text = rules(filter="-A FORWARD -j RETURN\n-A FORWARD -j ACCEPT").replace(":FORWARD ACCEPT", ":FORWARD DROP")
    (path,) = trace(parse_ruleset(text), Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    assert seq(path)[-2:] == ["filter/FORWARD:1", "filter/FORWARD:DROP"] and path.verdict == "DROP"


def test_reject_ends_the_packet_and_names_where() -> None:
    rs = parse_ruleset(rules(filter='-A FORWARD -d 10.96.0.9/32 -p tcp -m tcp --dport 80 -j REJECT '
                                    '--reject-with icmp-port-unreachable'))  # fmt: skip
    (path,) = trace(rs, Packet("10.244.1.5", "10.96.0.9", dport=80), NODE).paths
    assert path.verdict == "REJECT" and path.hops[-1].chain == "FORWARD"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 37])
def test_kube_proxy_cascade_gives_each_endpoint_one_nth(n: int) -> None:
    svc = []
    for i in range(n):
        p = Fraction(1, n - i)
        stat = f" -m statistic --mode random --probability {float(p):.11f}" if i < n - 1 else ""
        svc.append(f"-A KUBE-SVC-X{stat} -j KUBE-SEP-{i}")
        svc.append(f"-A KUBE-SEP-{i} -p tcp -m tcp -j DNAT --to-destination 10.244.2.{i + 1}:8080")
    rs = parse_ruleset(rules(nat="-A PREROUTING -j KUBE-SVC-X\n" + "\n".join(svc)))
    result = trace(rs, Packet("10.244.1.5", "10.96.0.9", dport=80), NODE)
    assert [p.endpoint for p in result.paths] == [f"10.244.2.{i + 1}:8080" for i in range(n)]
    assert result.total_probability == 1
    for path in result.paths:
        assert abs(float(path.probability) - 1 / n) < 1e-9


def test_probability_is_the_kernels_stored_value() -> None:
    assert probability_of("0.33333333349") == Fraction(715827883, 1 << 31)
    assert probability_of("0.50000000000") == Fraction(1, 2)
    assert probability_of("0.33332999982") == Fraction(715820724, 1 << 31)  # a 5-decimal (≤1.16) dump


def test_undecidable_match_branches_consistently() -> None:
    rs = parse_ruleset(rules(filter="""\
-A FORWARD -m set --match-set ALLOW src -j A
-A FORWARD -j DROP
-A A -m set --match-set ALLOW src -j ACCEPT
-A A -j REJECT"""))
    result = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE)
    assert sorted(p.verdict for p in result.paths) == ["ACCEPT", "DROP"]  # never the inconsistent REJECT
    accept = next(p for p in result.paths if p.verdict == "ACCEPT")
    assert accept.assumptions == ("set ALLOW src: assumed true",)
    known = NodeContext(addresses=NODE.addresses, ipsets={"ALLOW": ("10.244.1.0/24",)})
    (decided,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), known).paths
    assert decided.verdict == "ACCEPT" and decided.assumptions == ()


def test_session_affinity_rcheck_needs_a_recorded_source() -> None:
    nat = """\
-A PREROUTING -j KUBE-SVC-A
-A KUBE-SVC-A -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-2 --mask 255.255.255.255 --rsource -j KUBE-SEP-2
-A KUBE-SVC-A -j KUBE-SEP-1
-A KUBE-SEP-1 -m recent --set --name KUBE-SEP-1 --mask 255.255.255.255 --rsource -p tcp -m tcp -j DNAT --to-destination 10.244.2.1:80
-A KUBE-SEP-2 -p tcp -m tcp -j DNAT --to-destination 10.244.2.2:80"""
    rs = parse_ruleset(rules(nat=nat))
    pk = Packet("10.244.1.5", "10.96.0.9", dport=80)
    (first,) = trace(rs, pk, NODE).paths
    assert first.endpoint == "10.244.2.1:80" and first.final.recent == frozenset({"KUBE-SEP-1"})
    again = NodeContext(addresses=NODE.addresses, recent=frozenset({"KUBE-SEP-2"}))
    assert trace(rs, pk, again).paths[0].endpoint == "10.244.2.2:80"


def test_dnat_is_visible_as_ctstate_dnat_in_filter() -> None:
    rs = parse_ruleset(rules(
        nat="-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.2.7:8080",
        filter="-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT\n-A FORWARD -j DROP",
    ))  # fmt: skip
    (path,) = trace(rs, Packet("10.0.0.1", "10.0.0.2", dport=80, origin="external"), NODE).paths
    assert path.verdict == "ACCEPT" and path.endpoint == "10.244.2.7:8080" and path.final.orig_dst == "10.0.0.2"


def test_masquerade_uses_the_outgoing_interface_address() -> None:
    rs = parse_ruleset(rules(nat="-A POSTROUTING -j MASQUERADE"))
    (remote,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    (local_pod,) = trace(rs, Packet("10.0.0.1", "10.244.1.9", dport=80, origin="external"), NODE).paths
    assert (remote.final.src, remote.masquerade) == ("10.0.0.2", True)
    assert local_pod.final.src == "10.244.1.1"


def test_every_evaluated_rule_is_a_hop_with_the_failed_match() -> None:
    rs = parse_ruleset(rules(filter="""\
-A FORWARD -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DROP
-A FORWARD -p udp -j DROP
-A FORWARD -m comment --comment "-d 10.244.2.7/32 looks like a match" -s 10.9.9.9/32 -j DROP"""))
    (path,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    misses = [(h.index, h.failed) for h in path.hops if h.chain == "FORWARD" and h.kind == "rule"]
    assert misses == [(1, "-d 10.96.0.1"), (2, "-p udp"), (3, "-s 10.9.9.9/32")]


def test_interface_matches_without_interface_names_are_undecidable() -> None:
    rs = parse_ruleset(rules(nat="-A PREROUTING ! -i cni0 -j MARK --set-xmark 0x4000/0x4000"))
    result = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NodeContext(addresses=("10.0.0.2",)))
    assert len(result.paths) == 2 and all(p.assumptions for p in result.paths)
    (known,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    assert known.final.mark == 0  # arrives on cni0


def test_a_jump_loop_is_reported_not_hung() -> None:
    rs = parse_ruleset(rules(filter="-A FORWARD -j A\n-A A -j B\n-A B -j A"))
    (path,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    assert path.verdict == "LOOP"


def test_unknown_target_continues_with_a_note() -> None:
    """A rule iptables-restore refuses (no such target) is not understood: the trace takes both ways and says
    so on each (issue 14.3); where it matched, the unknown target is assumed to let the packet on."""
    rs = parse_ruleset(rules(filter="-A FORWARD -j FROBNICATE --level 3\n-A FORWARD -j DROP"))
    paths = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    assert len(paths) == 2 and all(p.verdict == "DROP" for p in paths)
    assert all(any("not understood" in a for a in p.assumptions) for p in paths)
    hop = next(h for p in paths for h in p.hops if h.verdict == "UNKNOWN")
    assert "FROBNICATE" in (hop.note or "")


def test_packet_validation() -> None:
    with pytest.raises(ValueError, match="destination port"):
        Packet("10.0.0.1", "10.0.0.2", "tcp")
    with pytest.raises(ValueError, match="both be IPv4 or both IPv6"):
        Packet("10.0.0.1", "fd00::1", dport=1)
    with pytest.raises(ValueError, match="origin"):
        Packet("10.0.0.1", "10.0.0.2", dport=1, origin="mars")
    assert Packet("fd00::1", "fd00::2", "icmp").proto == "icmpv6"


def test_a_negated_undecidable_match_is_the_opposite_of_the_plain_one() -> None:
    rs = parse_ruleset(rules(filter="-A FORWARD -m set --match-set allowed src -j ACCEPT\n"
                                    "-A FORWARD -m set ! --match-set allowed src -j DROP\n"
                                    "-A FORWARD -j REJECT"))  # fmt: skip
    result = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE)
    verdicts = {p.assumptions: p.verdict for p in result.paths}
    assert verdicts == {("set allowed src: assumed true",): "ACCEPT", ("set allowed src: assumed false",): "DROP"}


def test_paths_that_differ_only_by_an_assumption_say_it_on_their_brief_line() -> None:
    """Without the node's addresses, whether 10.0.0.2 is the node's is undecidable: two paths, each certain under
    its assumption. Their one-line forms must not look alike with p=1 each. The assumption steers routing: the
    path that takes 10.0.0.2 for a node address is delivered locally and never meets the FORWARD rule (the old
    engine forwarded it and then found `addrtype --dst-type LOCAL` true in FORWARD: a packet that cannot be)."""
    from kptui.engine.trace_report import path_brief

    rs = parse_ruleset(rules(filter="-A FORWARD -m addrtype --dst-type LOCAL -j DROP\n"))
    t = trace(rs, Packet("10.0.0.9", "10.0.0.2", "tcp", None, 80, "external"))
    briefs = sorted(path_brief(p) for p in t.paths)
    assert briefs == [
        "ACCEPT (delivered on the node) · p=1 if 10.0.0.2 is a node address",
        "ACCEPT (forwarded) · p=1 if 10.0.0.2 is not a node address",
    ], briefs


def test_the_brief_line_keeps_a_mark_that_is_not_only_the_masquerade_bit() -> None:
    """The 80-column path line leaves out a mark that is only the masquerade bit (the MASQUERADE it asked for
    is said next); any other bit keeps the mark on the line, and the CLI's line always has it."""
    from kptui.engine.trace_report import path_brief, path_summary

    for mark, shown in (("0x4000", None), ("0x4010", "mark 0x4010 (masq)")):
        rs = parse_ruleset(rules(mangle=f"-A FORWARD -j MARK --set-xmark {mark}/0xffffffff\n",
                                 nat="-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n"))  # fmt: skip
        t = trace(rs, Packet("10.244.1.5", "192.0.2.9", "tcp", None, 80, "pod"), NODE)
        (path,) = t.paths
        brief = path_brief(path)
        assert brief.endswith("MASQUERADE as 10.0.0.2"), brief
        assert ("mark" in brief) is (shown is not None) and (shown or "") in brief, brief
        assert f"mark {mark}" in path_summary(t, path)


def test_the_raw_table_runs_before_conntrack_so_ctstate_matches_see_invalid() -> None:
    """raw (-300) runs before conntrack looks the packet up (-200): no entry yet, so `--ctstate NEW` does not
    match there and `--ctstate INVALID` does (xt_conntrack: no ct → the INVALID bit); mangle sees NEW."""
    rs = parse_ruleset(rules(
        raw="-A PREROUTING -m conntrack --ctstate NEW -j DROP\n"
            "-A PREROUTING -m conntrack --ctstate INVALID -j MARK --set-xmark 0x200/0x200",
        mangle="-A PREROUTING -m conntrack --ctstate NEW -j MARK --set-xmark 0x400/0x400",
    ))  # fmt: skip
    (path,) = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    assert path.verdict == "ACCEPT" and path.final.mark == 0x600
    untracked = parse_ruleset(rules(raw="-A PREROUTING -j NOTRACK\n"
                                        "-A PREROUTING -m conntrack --ctstate UNTRACKED -j MARK --set-xmark 0x1/0x1"))
    (p2,) = trace(untracked, Packet("10.244.1.5", "10.244.2.7", dport=80), NODE).paths
    assert p2.final.mark == 1
