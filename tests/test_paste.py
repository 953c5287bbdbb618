"""Dumps as people paste them (issue 14.1): prompts and command lines, elision and pager lines, blank lines,
CRLF, several outputs in one paste. Each is loaded with a located warning per skipped line (folded when
repeated); what is neither a rule, a prompt nor a known decoration stays an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import ParseError, parse_ruleset
from kptui.engine.kube.findings import find_pitfalls
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.summary import summarize
from kptui.engine.trace import trace

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAVE = (SAMPLES / "clusterip.rules").read_text()
SAVE6 = (SAMPLES / "ipv6.rules").read_text()
POD = Packet("10.244.1.5", "10.96.0.10", "udp", 40000, 53)


def as_listing(text: str, table: str) -> str:
    """``iptables -t TABLE -S`` of a save dump: -P for built-in chains, -N for user chains, then the rules."""
    rs = parse_ruleset(text)
    t = rs.table(table)
    assert t is not None
    out = [f"-P {c.name} {c.policy}" for c in t if c.policy]
    out += [f"-N {c.name}" for c in t if not c.policy]
    out += [r.raw for c in t for r in c.rules]
    return "\n".join(out) + "\n"


def kinds(rs: object) -> list[str]:
    return [k for _, k, _ in rs.skipped]  # type: ignore[attr-defined]


@pytest.mark.parametrize("prompt", ["[root@node ~]# iptables-save", "root@k8s:~$ sudo iptables-save",
                                    "$ iptables-save", "# iptables-save", "node01 ~ # iptables-save",
                                    "kubectl -n kube-system exec kube-proxy-x -- iptables-save"])  # fmt: skip
def test_a_prompt_before_the_dump_is_skipped_with_a_located_warning(prompt: str) -> None:
    rs = parse_ruleset(f"{prompt}\n{SAVE}\n[root@node ~]# \n", source="paste.txt")
    assert rs.rule_count == parse_ruleset(SAVE).rule_count
    assert kinds(rs)[0] == "prompt" and rs.skipped[0][0] == 1
    w = next(w for w in rs.warnings if w.line == 1)
    assert "prompt or command line" in w.message and w.format().startswith("paste.txt:1: warning:")


def test_elision_pager_markdown_blank_lines_and_crlf() -> None:
    lines = SAVE.splitlines()
    at = next(i for i, ln in enumerate(lines) if "-A KUBE-SERVICES" in ln) + 1
    pasted = ["```text", *lines[:at], "", "...", "…", "--More--(42%)", "", *lines[at:], "```"]
    rs = parse_ruleset("\r\n".join(pasted) + "\r\n", source="issue.md")
    assert set(kinds(rs)) == {"decoration", "elision"} and kinds(rs).count("elision") == 2
    assert len(rs.rules_missing) == 2 and "left-out lines" in rs.rules_missing[0]
    assert rs.warnings[0].message.startswith("RULES ARE MISSING")  # first: never cut from a short list
    s = summarize(rs)
    assert [x["kind"] for x in s["skipped"]].count("decoration") == 3 and s["rules_missing"]
    notes = trace(rs, POD, NodeContext(addresses=("10.0.0.2",))).notes
    assert any("rules are missing" in n for n in notes)
    assert any(f.code == "rules-missing" for f in find_pitfalls(rs))


def test_a_filtered_command_means_rules_are_missing() -> None:
    rs = parse_ruleset(f"$ sudo iptables-save | grep -v DOCKER\n{SAVE}")
    assert rs.rules_missing and "filtered" in rs.rules_missing[0]


def test_repeated_prompts_fold_into_one_warning() -> None:
    text = "".join(f"$ iptables -t nat -S\n{as_listing(SAVE, 'nat')}" for _ in range(6))
    rs = parse_ruleset(text)
    prompts = [w for w in rs.warnings if "prompt" in w.message]
    assert len(prompts) == 4 and "skipped 3 more shell prompts" in prompts[-1].message


def test_two_listings_with_their_command_lines_are_two_tables() -> None:
    text = (f"root@k8s:~$ sudo iptables -t nat -S\n{as_listing(SAVE, 'nat')}"
            f"root@k8s:~$ sudo iptables -t filter -S\n{as_listing(SAVE, 'filter')}")  # fmt: skip
    rs = parse_ruleset(text)
    assert set(rs.tables) == {"nat", "filter"}
    assert [t for t, _ in rs.inferred_tables] == ["nat", "filter"]
    assert all("command line" in why for _, why in rs.inferred_tables)
    full = parse_ruleset(SAVE)
    for name in ("nat", "filter"):
        assert [r.raw for r in rs.table(name).rules()] == [r.raw for r in full.table(name).rules()]  # type: ignore[union-attr]
    assert trace(rs, POD, NodeContext(addresses=("10.0.0.2",))).paths[0].hops


def test_two_listings_without_command_lines_split_at_the_policies() -> None:
    rs = parse_ruleset(as_listing(SAVE, "nat") + as_listing(SAVE, "filter"))
    assert set(rs.tables) == {"nat", "filter"} and not rs.unplaced_chains


def test_a_v4_and_a_v6_save_in_one_paste() -> None:
    rs = parse_ruleset(f"$ iptables-save\n{SAVE}$ ip6tables-save\n{SAVE6}")
    assert rs.family == "ipv4" and [c.family for c in rs.companions] == ["ipv6"]
    assert rs.rule_count == parse_ruleset(SAVE).rule_count
    assert rs.companions[0].rule_count == parse_ruleset(SAVE6).rule_count
    assert summarize(rs)["other_families"][0]["family"] == "ipv6"
    assert any("second dump starts here (ipv6)" in w.message for w in rs.warnings)


def test_a_v6_packet_is_traced_through_the_v6_dump_of_the_paste() -> None:
    rs = parse_ruleset(f"{SAVE}\n{SAVE6}")
    six = parse_ruleset(SAVE6)
    rule = next(r for r in six.chain("nat", "KUBE-SERVICES").rules if "-d " in r.raw)  # type: ignore[union-attr]
    dst = rule.raw.split("-d ", 1)[1].split()[0].split("/")[0]
    port = int(rule.raw.split("--dport ", 1)[1].split()[0])
    proto = rule.raw.split("-p ", 1)[1].split()[0]
    t = trace(rs, Packet("fd00:10:244:1::5", dst, proto, 40000, port), NodeContext(addresses=("fd00::2",)))
    assert any(h.chain == rule.chain for p in t.paths for h in p.hops)


@pytest.mark.parametrize(("line", "needle"), [
    ("hello world", "unrecognised line"),
    ("Chain INPUT (policy ACCEPT)", "iptables -L"),
    ("target     prot opt source               destination", "unrecognised line"),
])  # fmt: skip
def test_what_is_neither_a_rule_a_prompt_nor_a_decoration_stays_an_error(line: str, needle: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_ruleset(f"$ iptables-save\n{line}\n{SAVE}", source="p")
    assert info.value.diagnostic.line == 2 and needle in info.value.diagnostic.message


def test_a_save_dump_after_a_listing_of_the_same_paste() -> None:
    nat = "*nat" + SAVE.split("*nat", 1)[1]
    rs = parse_ruleset(f"{as_listing(SAVE, 'filter')}$ iptables-save -t nat\n{nat}")
    assert {"filter", "nat"} <= set(rs.tables)
