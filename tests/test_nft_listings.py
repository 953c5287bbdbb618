"""The nft front end on real listings (tests/data/nft, made by the real nft: tests/data/nft/regenerate.py):
every form of a ruleset gives the same model, JSON rules get their listing text back, handles and priorities
agree. tests/kernel/test_nft_listings_kernel.py does the same on listings taken afresh."""

from __future__ import annotations

import pytest

from kptui.engine.nft import NftRuleset, parse_nft

from .nft_fixtures import FORMS, RULESETS, differences, fixture_path


def load(name: str, form: str) -> NftRuleset:
    return parse_nft(fixture_path(name, form).read_text(), source=f"{name}.{form}")


def check_forms(texts: dict[str, str], name: str) -> None:
    models = {form: parse_nft(text, source=f"{name}.{form}") for form, text in texts.items()}
    base = models["list.txt"]
    assert base.tables, "the fixture has tables"
    for form, model in models.items():
        assert differences(base, model) == [], form
        unexpected = [w.format() for w in model.warnings if "iptables-nft" not in w.message]
        assert unexpected == [], form
    text, annotated, json_ = models["list.txt"], models["list-a.txt"], models["list.json"]
    for t in text.tables:
        j = json_.table(t.family, t.name)
        a = annotated.table(t.family, t.name)
        assert j is not None and a is not None
        assert a.handle == j.handle is not None
        for cname, chain in t.chains.items():
            jc, ac = j.chains[cname], a.chains[cname]
            assert ac.handle == jc.handle is not None
            assert jc.priority_text == chain.priority_text, f"{t.name}/{cname}"
            for r, ar, jr in zip(chain.rules, ac.rules, jc.rules, strict=True):
                assert ar.handle == jr.handle is not None
                assert ar.text == r.text
                if not t.iptables_nft:  # nft lists those rules as translations, JSON as xt expressions
                    assert jr.text == r.text, f"{t.name}/{cname} rule {r.index}"
        for sname, st in a.sets.items():
            assert st.handle == j.sets[sname].handle is not None


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_every_listing_form_gives_the_same_model(name: str) -> None:
    check_forms({form: fixture_path(name, form).read_text() for form in FORMS}, name)


def test_the_kube_proxy_fixture_has_what_the_layout_has() -> None:
    rs = load("kube-proxy", "list.txt")
    v4 = rs.table("ip", "kube-proxy")
    v6 = rs.table("ip6", "kube-proxy")
    assert v4 is not None and v6 is not None and v4.comment == "rules for kube-proxy"
    base = {c.name: (c.type, c.hook, c.priority, c.priority_text, c.policy) for c in v4.base_chains()}
    assert base == {
        "filter-prerouting-pre-dnat": ("filter", "prerouting", -110, "dstnat - 10", "accept"),
        "filter-output-pre-dnat": ("filter", "output", -110, "-110", "accept"),
        "filter-forward": ("filter", "forward", 0, "filter", "accept"),
        "filter-input": ("filter", "input", 0, "filter", "accept"),
        "filter-output": ("filter", "output", 0, "filter", "accept"),
        "nat-output": ("nat", "output", -100, "-100", "accept"),
        "nat-postrouting": ("nat", "postrouting", 100, "srcnat", "accept"),
        "nat-prerouting": ("nat", "prerouting", -100, "dstnat", "accept"),
    }
    svc = v4.sets["service-ips"]
    assert svc.kind == "map" and svc.key_type == ("ipv4_addr", "inet_proto", "inet_service")
    assert svc.data_type == ("verdict",) and len(svc.elements) == 6
    aff = v4.sets["affinity-VBJH2E7W-ns5/sticky/tcp/http__10.244.2.31/80"]
    assert aff.flags == ("dynamic", "timeout") and aff.timeout == 10800 and aff.size == 65535
    assert [e.key for e in aff.elements] == [("10.244.3.99",)] and aff.elements[0].expires is not None
    noep = v4.sets["no-endpoint-services"].elements[0]
    assert noep.comment == "ns3/empty:http" and noep.key == ("10.96.0.30", "tcp", 80)
    web = v4.chains["service-DK7ABAZC-ns1/web/tcp/http"].rules[1]
    assert web.text.startswith("numgen random mod 3 vmap { 0 : goto endpoint-XBVINTKS")
    assert v6.chains["services"].rules[1].text == ("fib daddr type local ip6 daddr != ::1 meta l4proto . th dport "
                                                    "vmap @service-nodeports")  # fmt: skip


def test_iptables_nft_tables_are_flagged_in_both_forms() -> None:
    for form in ("list.txt", "list.json"):
        rs = load("iptables-nft", form)
        assert [(t.name, t.iptables_nft) for t in rs.tables] == [("filter", True), ("nat", True)], form
        notes = [w for w in rs.warnings if "iptables-nft" in w.message]
        assert len(notes) == 2 and all("iptables-nft-save" in w.message for w in notes)
    text = load("iptables-nft", "list.txt").table("ip", "nat")
    assert text is not None
    sep = text.chains["KUBE-SEP-ONE"].rules[1]
    assert "xt match recent" in sep.text  # nft cannot translate -m recent: an xt expression in text too
