"""Decoding one rule line: options in any order, negation, modules, targets; errors with columns."""

from __future__ import annotations

import pytest

from kptui.engine import Match, Option, ParseError, Target
from kptui.engine.model import HEADER
from kptui.engine.render import render_rule
from kptui.engine.rules import decode_rule


def opt(name: str, *args: str, neg: bool = False) -> Option:
    return Option(name, tuple(args), neg)


def test_canonical_kube_service_rule() -> None:
    spec = decode_rule(
        '-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" '
        "-m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU"
    )
    assert spec.matches == (
        Match(HEADER, (opt("-d", "10.96.0.10/32"),)),
        Match(HEADER, (opt("-p", "udp"),)),
        Match("comment", (opt("--comment", "kube-system/kube-dns:dns cluster IP"),)),
        Match("udp", (opt("--dport", "53"),)),
    )
    assert spec.target == Target("KUBE-SVC-TCOU7JCQXEZGVUNU")


def test_kube_proxy_restore_order_is_the_same_rule() -> None:
    """kube-proxy writes -m before -p and omits /32; the options still land in the right module."""
    a = decode_rule('-A KUBE-SERVICES -m comment --comment "ns/s:p cluster IP" -m tcp -p tcp -d 10.96.0.1 '
                    "--dport 443 -j KUBE-SVC-X")  # fmt: skip
    b = decode_rule('-A KUBE-SERVICES -d 10.96.0.1 -p tcp -m comment --comment "ns/s:p cluster IP" -m tcp '
                    "--dport 443 -j KUBE-SVC-X")  # fmt: skip
    assert a == b
    assert a.matches[-1] == Match("tcp", (opt("--dport", "443"),))


def test_option_goes_to_the_module_that_knows_it() -> None:
    spec = decode_rule("-A X -p tcp -m tcp -m comment --comment c --dport 80 -j ACCEPT")
    mods = {m.module: m.options for m in spec.matches if m.module}
    assert mods["tcp"] == (opt("--dport", "80"),)
    assert mods["comment"] == (opt("--comment", "c"),)


def test_implicit_protocol_match_equals_explicit() -> None:
    implicit = decode_rule("-A X -p tcp --dport 80 -j ACCEPT")
    explicit = decode_rule("-A X -p tcp -m tcp --dport 80 -j ACCEPT")
    assert implicit == explicit
    assert implicit.matches[-1].implicit and not explicit.matches[-1].implicit


@pytest.mark.parametrize(
    "line",
    [
        "-A X ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        "-A X -s ! 10.244.0.0/16 -j KUBE-MARK-MASQ",  # the pre-1.4.3 placement
    ],
)
def test_negated_header_option(line: str) -> None:
    assert decode_rule(line).matches == (Match(HEADER, (opt("-s", "10.244.0.0/16", neg=True),)),)


def test_negated_module_options() -> None:
    spec = decode_rule(
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
    )
    assert spec.matches == (Match("mark", (opt("--mark", "0x4000/0x4000", neg=True),)),)
    spec = decode_rule("-A X -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
    assert spec.matches[0].options == (opt("--ctstate", "RELATED,ESTABLISHED,DNAT", neg=True),)
    spec = decode_rule("-A X -m set ! --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT")
    assert spec.matches[0].options == (opt("--match-set", "KUBE-CLUSTER-IP", "dst,dst", neg=True),)


def test_multi_argument_and_flag_options() -> None:
    spec = decode_rule(
        "-A KUBE-SVC-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 "
        "--rsource -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j KUBE-SEP-A"
    )
    recent, tcp = spec.matches
    assert recent.options == (
        opt("--rcheck"), opt("--seconds", "10800"), opt("--reap"), opt("--name", "KUBE-SEP-A"),
        opt("--mask", "255.255.255.255"), opt("--rsource"),
    )  # fmt: skip
    assert tcp.options == (opt("--tcp-flags", "FIN,SYN,RST,ACK", "SYN"),)


def test_target_options_goto_and_no_target() -> None:
    spec = decode_rule("-A KUBE-SEP-X -p tcp -m tcp -j DNAT --to-destination 10.244.1.5:8080")
    assert spec.target == Target("DNAT", (opt("--to-destination", "10.244.1.5:8080"),))
    assert decode_rule("-A X -s 1.2.3.4/32 -g KUBE-SVC-Y").target == Target("KUBE-SVC-Y", goto=True)
    no_target = decode_rule('-A KUBE-FW-X -m comment --comment "other traffic will be dropped"')
    assert no_target.target is None
    reject = decode_rule("-A X -j REJECT --reject-with icmp-port-unreachable")
    assert reject.target == Target("REJECT", (opt("--reject-with", "icmp-port-unreachable"),))


def test_match_after_target_is_still_a_match() -> None:
    spec = decode_rule("-A X -j MARK --set-xmark 0x4000/0x4000 -m comment --comment late")
    assert spec.target == Target("MARK", (opt("--set-xmark", "0x4000/0x4000"),))
    assert spec.matches == (Match("comment", (opt("--comment", "late"),)),)


def test_unknown_modules_and_targets_are_kept_whole() -> None:
    spec = decode_rule("-A X -m frobnicate --level 11 --shiny -j FANCY --glitter gold --now")
    assert spec.matches == (Match("frobnicate", (opt("--level", "11"), opt("--shiny"))),)
    assert spec.target == Target("FANCY", (opt("--glitter", "gold"), opt("--now")))


def test_a_quote_never_closed_takes_the_rest_of_the_line_like_iptables_restore() -> None:
    spec = decode_rule('-A X -m comment --comment "open -j DROP')
    assert spec.matches[0].options == (opt("--comment", "open -j DROP"),) and spec.target is None


def test_free_text_that_looks_like_an_option() -> None:
    spec = decode_rule('-A X -m comment --comment --not-an-option -j LOG --log-prefix "-j DROP "')
    assert spec.matches[0].options == (opt("--comment", "--not-an-option"),)
    assert spec.target == Target("LOG", (opt("--log-prefix", "-j DROP "),))


def test_long_option_spellings() -> None:
    spec = decode_rule("-A X --source 10.0.0.1 --destination 10.0.0.2 --protocol tcp --in-interface eth0 "
                       "--jump ACCEPT")  # fmt: skip
    assert [m.options[0].name for m in spec.matches] == ["-s", "-d", "-i", "-p"]
    assert spec.target == Target("ACCEPT")


@pytest.mark.parametrize(
    ("line", "message", "column"),
    [
        ("-A X --frobnicate 1 -j ACCEPT", "unknown option '--frobnicate'", 5),
        ("-A X -s", "option '-s' needs an argument", 5),
        ("-A X -j", "-j needs a target name", 5),
        ("-A X -m", "-m needs a module name", 5),
        ("-A X 10.0.0.1 -j ACCEPT", "unexpected argument '10.0.0.1'", 5),
        ("-A X ! ! -s 1.2.3.4 -j ACCEPT", "'!' twice in a row", 7),
        ("-A X ! -m tcp --dport 80", "'!' cannot negate -m", 5),
        ("-A X -j ACCEPT -j DROP", "a rule has only one target", 15),
        ("-A X -s 1.2.3.4 !", "negates nothing", 16),
    ],
)
def test_errors_name_the_problem_and_column(line: str, message: str, column: int) -> None:
    with pytest.raises(ParseError) as info:
        decode_rule(line, lineno=3)
    d = info.value.diagnostic
    assert message in d.message
    assert (d.line, d.column) == (3, column)


@pytest.mark.parametrize(
    "line",
    [
        ('-A KUBE-SVC-X ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment "a \\"b\\" \\\\ c" '
        "-m tcp --dport 443 -j KUBE-MARK-MASQ"),
        "-A X -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-Y",
        "-A X -p tcp -m addrtype --dst-type LOCAL -m multiport --dports 80,443:445 -j KUBE-NODEPORTS",
        "-A X -g Y",
        "-A X",
    ],
)
def test_render_is_canonical_and_round_trips(line: str) -> None:
    spec = decode_rule(line)
    text = render_rule("X", spec)
    assert decode_rule(text) == spec
    if line.startswith("-A X"):
        assert text == line  # already canonical: printed back byte for byte
