"""``iptables -S`` output has no table headers (issue 14.2): each listing's table is inferred from what
kube-proxy and the kernel fix, and said; a listing nothing places is refused by trace, which never answers
with a verdict and no hops."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.cli import main
from kptui.engine import parse_ruleset
from kptui.engine.infer import block_facts, place
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.summary import summarize
from kptui.engine.trace import trace
from kptui.engine.traceable import trace_refusal

from .conftest import sample_paths
from .test_paste import as_listing

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.parametrize(("policies", "targets", "table", "because"), [
    ((), {"KUBE-SVC-AAAAAAAAAAAAAAAA": {"KUBE-SEP-BBBBBBBBBBBBBBBB"}}, "nat", "kube-proxy's nat chains"),
    ((), {"KUBE-SERVICES": {"KUBE-SVC-AAAAAAAAAAAAAAAA"}}, "nat", "jumps to service chains"),
    ((), {"KUBE-SERVICES": {"REJECT"}}, "filter", "REJECT rules"),
    ((), {"KUBE-FORWARD": {"ACCEPT", "DROP"}}, "filter", "kube-proxy's filter chains"),
    ((), {"KUBE-FIREWALL": {"DROP"}}, "filter", "filter chain"),
    ((), {"KUBE-FIREWALL": {"KUBE-MARK-DROP"}}, "nat", "IPVS mode"),  # the era decides
    ((), {"DOCKER": {"DNAT"}}, "nat", "-j DNAT"),
    ((), {"PREROUTING": {"NOTRACK"}}, "raw", "-j NOTRACK"),
    ((), {"CILIUM_PRE_raw": {"CT"}}, "raw", "-j CT"),
    (("INPUT", "FORWARD", "OUTPUT"), {"INPUT": {"ACCEPT"}}, "filter", "-P lines"),
    (("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"), {}, "nat", "-P lines"),
    (("PREROUTING", "OUTPUT"), {}, "raw", "-P lines"),
    (("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"), {}, "mangle", "-P lines"),
    ((), {"KUBE-PORTALS-CONTAINER": {"REDIRECT"}}, "nat", "REDIRECT"),
    ((), {"KUBE-NODEPORT-HOST": {"DNAT"}}, "nat", "DNAT"),
])  # fmt: skip
def test_a_listing_is_placed_with_its_reason(policies: tuple[str, ...], targets: dict[str, set[str]], table: str,
                                            because: str) -> None:  # fmt: skip
    got = place(block_facts(policies, targets))
    assert got.table == table and because in got.reason


@pytest.mark.parametrize(("policies", "targets", "why"), [
    ((), {"MINE": {"ACCEPT"}}, "nothing in it tells"),
    ((), {"A": {"DNAT"}, "B": {"NOTRACK"}}, "disagree"),
    ((), {"KUBE-MARK-MASQ": {"MARK"}, "KUBE-FORWARD": {"ACCEPT"}}, "disagree"),
])  # fmt: skip
def test_a_listing_nothing_places_or_that_contradicts_itself_is_not_placed(
        policies: tuple[str, ...], targets: dict[str, set[str]], why: str) -> None:  # fmt: skip
    got = place(block_facts(policies, targets))
    assert got.table is None and why in got.reason


def test_a_kube_proxy_nat_listing_without_policies_is_inferred_and_traced() -> None:
    listing = as_listing((SAMPLES / "clusterip.rules").read_text(), "nat")
    rules = "\n".join(ln for ln in listing.splitlines() if not ln.startswith("-P")) + "\n"
    rs = parse_ruleset(rules)
    assert list(rs.tables) == ["nat"] and "nat" in summarize(rs)["inferred_tables"][0]["table"]
    assert trace_refusal(rs, 4) is None
    t = trace(rs, Packet("10.244.1.5", "10.96.0.10", "udp", 40000, 53), NodeContext(addresses=("10.0.0.2",)))
    assert all(p.hops for p in t.paths) and any(p.endpoint for p in t.paths)
    assert any("inferred" in n for n in t.notes) and any("no filter table" in n for n in t.notes)


def test_trace_refuses_a_listing_whose_table_cannot_be_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "rules.S"
    dump.write_text("-N MINE\n-A MINE -s 10.0.0.9/32 -j DROP\n-N OTHER\n-A OTHER -j MINE\n")
    code = main(["trace", str(dump), "--src", "10.0.0.9", "--dst", "10.0.0.2", "--dport", "80"])
    err = capsys.readouterr().err
    assert code == 2 and "MINE" in err and "OTHER" in err and "iptables-save" in err
    code = main(["trace", str(dump), "--src", "10.0.0.9", "--dst", "10.0.0.2", "--dport", "80", "--json"])
    assert code == 2 and capsys.readouterr().out == ""


@pytest.mark.parametrize("form", ["save", "listings", "listings without policies", "nat only", "filter only",
                                  "user chains only"])  # fmt: skip
@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_no_trace_answers_with_a_verdict_and_no_hops(path: Path, form: str) -> None:
    """Every sample, as saved and as the -S listings people paste: a trace either refuses or every path has
    hops (the old engine answered ACCEPT with no hops for every -S dump)."""
    text = path.read_text()
    full = parse_ruleset(text)
    tables = [t for t in full.tables if t]
    if form == "save":
        dump = text
    elif form == "listings":
        dump = "".join(as_listing(text, t) for t in tables)
    elif form == "listings without policies":
        dump = "".join(ln + "\n" for t in tables for ln in as_listing(text, t).splitlines() if not ln.startswith("-P"))
    elif form in ("nat only", "filter only"):
        dump = as_listing(text, form.split()[0]) if form.split()[0] in tables else "-N X\n"
    else:
        dump = "".join(f"-N {c.name}\n" for t in tables for c in full.table(t) if not c.policy)  # type: ignore[union-attr]
    rs = parse_ruleset(dump)
    family = 6 if full.family == "ipv6" else 4
    pkt = (Packet("fd00:10:244:1::5", "fd00:10:96::a", "tcp", 40000, 80) if family == 6
           else Packet("10.244.1.5", "10.96.0.10", "tcp", 40000, 80))  # fmt: skip
    refused = trace_refusal(rs, family)
    if refused is not None:
        assert "iptables-save" in refused
        return
    result = trace(rs, pkt, NodeContext(addresses=("fd00::2",) if family == 6 else ("10.0.0.2",)))
    assert result.paths and all(p.hops for p in result.paths), (form, [p.verdict for p in result.paths])
