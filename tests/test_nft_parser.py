"""The nft listing parser on damaged, unusual and hostile input: located errors and warnings, never a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kptui.engine.errors import ParseError
from kptui.engine.nft import is_nft_listing, nft_summary, parse_nft, parse_nft_bytes
from kptui.engine.nft.exprs import OtherStmt

from .nft_fixtures import FORMS, RULESETS, fixture_path

KUBE = fixture_path("kube-proxy", "list.txt").read_text()
KUBE_JSON = fixture_path("kube-proxy", "list.json").read_text()


def test_text_that_is_no_listing_is_refused_with_file_line_and_caret() -> None:
    with pytest.raises(ParseError) as exc:
        parse_nft("# a comment\n\nadd rule ip t c accept\n", source="rules.txt")
    assert str(exc.value) == ("rules.txt:3: not an nft listing: expected 'table FAMILY NAME {'\n"
                              "  add rule ip t c accept\n  ^~~~~~~~~~~~~~~~~~~~~~")  # fmt: skip
    with pytest.raises(ParseError) as exc:
        parse_nft("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", source="dump.rules")
    assert exc.value.diagnostic.line == 1


def test_invalid_json_gives_the_json_errors_line() -> None:
    with pytest.raises(ParseError) as exc:
        parse_nft('{"nftables": [\n  {"table": {"family": "ip", "name": "t"}},\n  {"chain": oops}\n]}\n',
                  source="ruleset.json")  # fmt: skip
    d = exc.value.diagnostic
    assert (d.source, d.line, d.column) == ("ruleset.json", 3, 12) and "not valid JSON" in d.message
    assert d.format().splitlines()[1] == '    {"chain": oops}'
    with pytest.raises(ParseError, match="not nft JSON"):
        parse_nft('{"tables": []}', source="x.json")
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_nft('{"nftables": ' + "[" * 100000 + "]" * 100000 + "}")


def test_nul_bytes_and_latin1() -> None:
    with pytest.raises(ParseError, match="NUL byte"):
        parse_nft_bytes(b"table ip t {\n\x00\n}\n", source="bin")
    rs = parse_nft_bytes(b'table ip t {\n\tchain c {\n\t\taccept comment "caf\xe9"\n\t}\n}\n', source="l1.txt")
    assert rs.warnings[0].line == 3 and "Latin-1" in rs.warnings[0].message
    assert rs.chain("ip", "t", "c").rules[0].comment == "café"  # type: ignore[union-attr]


def test_a_cut_off_listing_keeps_what_it_has() -> None:
    cut = KUBE[: KUBE.index("jump mark-for-masquerade", KUBE.index("chain service-DK7ABAZC")) + 5]
    rs = parse_nft(cut, source="cut.txt")
    rule, w = rs.warnings
    assert rule.line == w.line == cut.count("\n") + 1 and "expected a chain name" in rule.message
    assert w.severity == "warning"
    assert "ends inside chain 'service-DK7ABAZC-ns1/web/tcp/http' of table ip kube-proxy" in w.message
    chain = rs.chain("ip", "kube-proxy", "service-DK7ABAZC-ns1/web/tcp/http")
    assert chain is not None and len(chain.rules) == 1
    assert isinstance(chain.rules[0].exprs[-1], OtherStmt)  # "jump" without its chain: kept, undecidable
    assert rs.table("ip", "kube-proxy").sets["service-ips"].elements  # type: ignore[union-attr]


def test_unbalanced_braces_and_unknown_lines_are_located_warnings() -> None:
    text = ("table ip t {\n\tchain a {\n\t\taccept\n\tchain b {\n\t\tdrop\n\t}\n\tfrobnicate x\n}\n}\n"
            "table ip u {\n\tset s {\n\t\ttype ipv4_addr\n\t\twobble 3\n\t\telements = { 10.0.0.1, 10.0.0.2\n\t}\n}\n")  # fmt: skip
    rs = parse_nft(text, source="bad.txt")
    got = [(w.line, w.message.split(" (")[0].split(":")[0]) for w in rs.warnings]
    assert got == [
        (4, "chain 'a' is not closed before this line"),
        (7, "not a chain, set or map of the table"),
        (9, "a '}' that closes nothing"),
        (13, "unknown set declaration 'wobble'"),
        (15, "the element list of set 's' is not closed"),
    ]
    assert [len(c.rules) for c in rs.table("ip", "t").chains.values()] == [1, 1]  # type: ignore[union-attr]
    assert [e.key for e in rs.table("ip", "u").sets["s"].elements] == [("10.0.0.1",), ("10.0.0.2",)]  # type: ignore[union-attr]
    assert rs.warnings[0].format().startswith("bad.txt:4: warning: chain 'a' is not closed")


def test_unknown_statements_and_unreadable_rules_stay_with_a_caret() -> None:
    rs = parse_nft('table ip t {\n\tchain c {\n\t\tcomment "no"\n\t\tip saddr 10.0.0.1 frobnicate 3 accept\n'
                   '\t\tip daddr { 10.0.0.1, accept\n\t}\n}\n', source="r.txt")  # fmt: skip
    c = rs.chain("ip", "t", "c")
    assert c is not None and len(c.rules) == 2 and c.comment == "no"
    assert c.rules[0].exprs[1] == OtherStmt("frobnicate", "frobnicate 3 accept")
    assert str(rs.warnings[0]) == ("r.txt:4: warning: unknown statement 'frobnicate': kept verbatim, evaluated as "
                                   "undecidable\n    ip saddr 10.0.0.1 frobnicate 3 accept\n"
                                   "                      ^~~~~~~~~~")  # fmt: skip
    assert rs.warnings[1].line == 5 and c.rules[1].exprs == (OtherStmt("ip", "ip daddr { 10.0.0.1, accept"),)


def test_nfts_warning_inside_a_line_is_taken_out() -> None:
    # ``nft list ruleset > f 2>&1``: the unbuffered warning lands where the buffered listing stood
    text = ("table ip nat {\n\tchain POSTROUTING {\n\t\tip saddr 10.0# Warning: table ip nat is managed by "
            "iptables-nft, do not touch!\n.0.1 masquerade\n\t}\n}\n")  # fmt: skip
    rs = parse_nft(text)
    t = rs.table("ip", "nat")
    assert t is not None and t.iptables_nft
    assert t.chains["POSTROUTING"].rules[0].text == "ip saddr 10.0.0.1 masquerade"


def test_untrusted_text_reaches_diagnostics_escaped() -> None:
    rs = parse_nft('table ip t {\n\tchain c {\n\t\tzap "\x1b[31mred"\n\t}\n}\n')
    assert "\x1b" not in rs.warnings[0].format() and "\\x1b" in rs.warnings[0].format()


@pytest.mark.parametrize("data, expected", [
    (b"table ip t {\n}\n", True),
    (b"# Warning: table ip filter is managed by iptables-nft, do not touch!\ntable ip filter {\n", True),
    (b'\n  {"nftables": [{"metainfo": {}}]}', True),
    (b"*filter\n:INPUT ACCEPT [0:0]\n", False),
    (b"# Generated by iptables-save\n*nat\n", False),
    (b'{"other": 1}', False),
    (b"", False),
])  # fmt: skip
def test_is_nft_listing(data: bytes, expected: bool) -> None:
    assert is_nft_listing(data) is expected


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_fixtures_are_recognised(name: str) -> None:
    for form in FORMS:
        assert is_nft_listing(fixture_path(name, form).read_bytes())


def test_summary_of_the_kube_proxy_fixture() -> None:
    s = nft_summary(parse_nft(KUBE, source="kube.txt"))
    json.dumps(s)  # JSON-ready
    assert s["schema"] == "kptui.nft-summary/1" and s["source"] == "kube.txt" and s["form"] == "text"
    v4 = s["tables"][0]
    assert (v4["family"], v4["name"], v4["iptables_nft"]) == ("ip", "kube-proxy", False)
    assert v4["rules"] == sum(c["rules"] for c in v4["chains"])
    assert {"name": "nat-prerouting", "type": "nat", "hook": "prerouting", "priority": -100,
            "priority_text": "dstnat", "policy": "accept", "devices": [], "rules": 1} in v4["base_chains"]  # fmt: skip
    sets = {x["name"]: x for x in v4["sets"]}
    assert sets["service-ips"] == {"name": "service-ips", "kind": "map", "key_type": ["ipv4_addr", "inet_proto",
                                   "inet_service"], "data_type": ["verdict"], "flags": [], "elements": 6}  # fmt: skip
    assert s["totals"] == {"tables": 2, "chains": sum(len(t["chains"]) for t in s["tables"]),
                           "rules": sum(t["rules"] for t in s["tables"]),
                           "elements": sum(x["elements"] for t in s["tables"] for x in t["sets"])}  # fmt: skip
    assert s["warnings"] == []


# -- fuzz: truncations and mutations of real listings give a model or a ParseError, nothing else ------------
SOURCES = [fixture_path(n, f).read_text() for n in sorted(RULESETS) for f in ("list.txt", "list-a.txt", "list.json")]
_NOISE = st.sampled_from(["{", "}", '"', "\n", " ", ".", ":", ",", "@", "/", "-", "0x", "\x1b", "\x00", "table ",
                          "chain ", "elements = {", "#", "# handle ", "vmap", "map", "set", "\t", "[", "]"])  # fmt: skip


def _parse_or_refuse(text: str) -> None:
    try:
        rs = parse_nft(text, source="fuzz")
    except ParseError as exc:
        assert exc.diagnostic.source == "fuzz"
        exc.diagnostic.format()
        return
    for w in rs.warnings:
        w.format()
    nft_summary(rs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SOURCES) - 1), st.floats(0, 1))
def test_fuzz_truncations(which: int, where: float) -> None:
    src = SOURCES[which]
    _parse_or_refuse(src[: int(len(src) * where)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SOURCES) - 1), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 12), _NOISE), max_size=6))
def test_fuzz_mutations(which: int, edits: list[tuple[float, int, str]]) -> None:
    text = SOURCES[which]
    for where, cut, noise in edits:
        i = int(len(text) * where)
        text = text[:i] + noise + text[i + cut :]
    _parse_or_refuse(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                        st.sampled_from(["table", "chain", "rule", "set", "map", "element", "expr", "match", "left",
                                         "right", "op", "family", "name", "elem", "payload", "meta", "vmap", "key",
                                         "data", "concat", "prefix", "range", "jump", "target", "dnat", "addr"]),
                        kids, max_size=4), max_leaves=25))  # fmt: skip
def test_fuzz_json_shapes(obj: object) -> None:
    _parse_or_refuse(json.dumps({"nftables": [{"table": {"family": "ip", "name": "t"}},
                                              {"chain": {"family": "ip", "table": "t", "name": "c"}}, obj,
                                              {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [obj]}}]}))


def test_an_unknown_hook_or_chain_type_is_a_located_warning_and_a_known_one_is_not() -> None:
    """nft -f refuses ``hook nowhere`` and ``type filtre``; kptui loads the rest and names the line and word."""
    text = ("table ip t {\n\tchain c {\n\t\ttype filter hook nowhere priority 0; policy accept;\n\t}\n"
            "\tchain d {\n\t\ttype filtre hook input priority 0; policy accept;\n\t}\n"
            "\tchain e {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n")  # fmt: skip
    rs = parse_nft(text, source="bad.nft")
    got = [(w.line, w.column, w.message.split(" (")[0]) for w in rs.warnings]
    assert got == [(3, 19, "unknown hook 'nowhere'"), (6, 7, "unknown chain type 'filtre'")]
    assert rs.table("ip", "t") is not None and len(rs.table("ip", "t").chains) == 3  # type: ignore[union-attr]


def test_nft_json_an_unknown_hook_or_chain_type_is_a_warning_naming_its_object() -> None:
    """The same in ``nft -j`` JSON: the warning names the object's place in the ``nftables`` array."""
    doc = {"nftables": [
        {"table": {"family": "ip", "name": "t"}},
        {"chain": {"family": "ip", "table": "t", "name": "c", "type": "filter", "hook": "nowhere", "prio": 0,
                   "policy": "accept"}},
        {"chain": {"family": "ip", "table": "t", "name": "d", "type": "filtre", "hook": "input", "prio": 0,
                   "policy": "accept"}},
        {"chain": {"family": "ip", "table": "t", "name": "e", "type": "nat", "hook": "postrouting", "prio": 100,
                   "policy": "accept"}},
        {"chain": {"family": "ip", "table": "t", "name": "f"}},
    ]}  # fmt: skip
    rs = parse_nft(json.dumps(doc), source="bad.json")
    got = [w.message.split(" (")[0] for w in rs.warnings]
    assert got == ["nftables[1]: unknown hook 'nowhere'", "nftables[2]: unknown chain type 'filtre'"]
    assert len(rs.table("ip", "t").chains) == 4  # type: ignore[union-attr]
