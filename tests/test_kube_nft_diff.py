"""``kptui diff`` with nftables mode: two nft listings (services and endpoints added, removed, scaled, with exact
shares; the node's layout and fixed chains) and an iptables-mode dump against an nftables-mode listing of the same
cluster (a mode switch: the same services and endpoints, or what differs), for every sample pair."""

from __future__ import annotations

import io
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from kptui.cli import main
from kptui.engine import parse_ruleset_bytes
from kptui.engine.kube import build_service_index
from kptui.engine.kube.nft_build import build_nft_service_index
from kptui.engine.kube.nft_diff import diff_kube
from kptui.engine.nft import NftRuleset

from .nft_kube import SAMPLES, edited, listing, sample_text
from .test_kube_nft_services import PAIRS

WEB3 = ("numgen random mod 3 vmap { 0 : goto endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080, 1 : goto "
        "endpoint-IT6PTZ7B-default/web/tcp/http__10.244.1.12/8080, 2 : goto "
        "endpoint-AEEJN5SZ-default/web/tcp/http__10.244.2.13/8080 }")  # fmt: skip
WEB2 = ("numgen random mod 2 vmap { 0 : goto endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080, 1 : goto "
        "endpoint-IT6PTZ7B-default/web/tcp/http__10.244.1.12/8080 }")  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def nft_diff(old: NftRuleset, new: NftRuleset):  # type: ignore[no-untyped-def]
    return diff_kube(build_nft_service_index(old), build_nft_service_index(new), old_nft=old, new_nft=new,
                     old_source="old", new_source="new")  # fmt: skip


def test_the_same_listing_twice_is_no_difference_even_in_another_form() -> None:
    for name in ("nft-clusterip", "nft-session-affinity", "nft-loadbalancer-sourceranges"):
        text = listing(sample_text(name))
        json_form = listing((SAMPLES / f"{name}.json").read_text())
        d = nft_diff(text, json_form)
        assert d.empty and not d.mode_switch, name


def test_a_scaled_service_with_exact_shares() -> None:
    old = listing(sample_text("nft-clusterip"))
    new = edited("nft-clusterip", WEB3, WEB2)
    d = nft_diff(old, new)
    (c,) = d.changed
    assert c.label == "default/web:http" and c.endpoints_removed == ("10.244.2.13:8080",) and c.scale == (3, 2)
    assert {(e.old, e.new) for e in c.endpoint_changes} == {(Fraction(1, 3), Fraction(1, 2))}
    assert not c.renames and d.node.empty


def test_services_added_and_removed_and_node_changes() -> None:
    d = nft_diff(listing(sample_text("nft-clusterip")), listing(sample_text("nft-no-endpoints")))
    assert {s.name for s in d.added} == {"default/broken:http", "default/ok", "kube-system/dead-dns:dns"}
    assert len(d.removed) == 5
    layout = {f.field: (f.old, f.new) for f in d.node.layout}
    assert layout["local_detector"] == ("cidr", "masquerade-all")


def test_a_changed_fixed_chain_rule_is_a_node_change() -> None:
    old = listing(sample_text("nft-clusterip"))
    new = edited("nft-clusterip", "masquerade fully-random", "masquerade")
    d = nft_diff(old, new)
    assert ("random_fully", True, False) in {(f.field, f.old, f.new) for f in d.node.layout}
    assert [r.text for r in d.node.rules_added] == ["masquerade"]
    assert [r.text for r in d.node.rules_removed] == ["masquerade fully-random"]


@pytest.mark.parametrize("name", PAIRS)
def test_a_mode_switch_keeps_every_service_of_every_sample_pair(name: str) -> None:
    ipt = build_service_index(parse_ruleset_bytes((SAMPLES / f"{name}.rules").read_bytes()))
    nft = build_nft_service_index(listing(sample_text(f"nft-{name}")))
    d = diff_kube(ipt, nft)
    assert d.mode_switch and (d.old_mode, d.new_mode) == ("iptables", "nftables")
    assert not d.added and not d.removed and not d.changed, [c.label for c in d.changed]
    assert len(d.unchanged) == len(ipt.services)
    assert ("mode", "iptables", "nftables") in {(f.field, f.old, f.new) for f in d.node.layout}
    back = diff_kube(nft, ipt)
    assert back.mode_switch and not back.changed


def test_a_mode_switch_that_lost_an_endpoint_says_so() -> None:
    ipt = build_service_index(parse_ruleset_bytes((SAMPLES / "clusterip.rules").read_bytes()))
    nft = build_nft_service_index(edited("nft-clusterip", WEB3, WEB2))
    d = diff_kube(ipt, nft)
    (c,) = d.changed
    assert c.label == "default/web:http" and c.endpoints_removed == ("10.244.2.13:8080",)
    assert all(e.field == "probability" for e in c.endpoint_changes) and not c.renames


def test_the_command_on_both_pairs(tmp_path: Path) -> None:
    code, out, err = run("diff", str(SAMPLES / "nodeport-local.rules"), str(SAMPLES / "nft-nodeport-local.nft"))
    assert code == 1 and err == ""  # the node differs (the mode)
    assert "~ node: kube-proxy mode iptables → nftables" in out
    assert "mode switch: iptables → nftables mode, the same 2 service ports, endpoints and shares" in out
    code, out, _ = run("diff", str(SAMPLES / "clusterip.rules"), str(SAMPLES / "nft-clusterip.json"), "--json")
    data = json.loads(out)
    assert data["mode_switch"] == {"old": "iptables", "new": "nftables", "same_services": True}
    assert data["old"]["mode"] == "iptables" and data["new"]["mode"] == "nftables"
    scaled = tmp_path / "scaled.nft"
    scaled.write_text(sample_text("nft-clusterip").replace(WEB3, WEB2))
    code, out, _ = run("diff", str(SAMPLES / "nft-clusterip.nft"), str(scaled))
    assert code == 1
    assert re.search(r"~ default/web:http: endpoints 3 → 2 \(-10\.244\.2\.13:8080\)", out)
    assert "~ default/web:http: shares 33.3 % → 50.0 % for 10.244.1.11:8080 10.244.1.12:8080" in out
    code, out, _ = run("diff", str(SAMPLES / "nft-clusterip.nft"), str(SAMPLES / "nft-clusterip.json"))
    assert code == 0 and out.splitlines()[-1].startswith("no differences")
