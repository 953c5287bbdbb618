"""``kptui explain`` in nftables mode: every kind of chain, rule, set and element of kube-proxy's table explained in
kube-proxy's terms (service, endpoint and share, why masquerade, where a verdict map sends), other tables
neutrally, untrusted text kept harmless."""

from __future__ import annotations

import io
import json

import pytest

from kptui.cli import main
from kptui.engine.kube.nft_explain import NftExplainer

from .nft_kube import SAMPLES, listing, sample_text

KP = ("ip", "kube-proxy")


def explainer(name: str) -> NftExplainer:
    return NftExplainer(listing(sample_text(name), f"{name}.nft"))


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_every_rule_set_and_element_of_every_sample_gets_kube_proxys_words() -> None:
    """No rule of kube-proxy's own table falls back to the neutral description (kptui knows every shape kube-proxy
    writes), and every set and element has an explanation."""
    for name in ("nft-clusterip", "nft-nodeport-cluster", "nft-nodeport-local", "nft-no-endpoints",
                 "nft-loadbalancer-sourceranges", "nft-session-affinity", "nft-ipv6"):  # fmt: skip
        ex = explainer(name)
        for table in ex.ruleset.tables:
            fam = table.family
            assert ex.table(fam, table.name).kind == "nft-table"
            for chain in table.chains.values():
                assert ex.chain(fam, table.name, chain.name).kind != "kube-chain-unknown", (name, chain.name)
                for rule in chain.rules:
                    e = ex.rule(fam, table.name, chain.name, rule.index)
                    assert e.kind != "generic" and e.kube, (name, chain.name, rule.text)
            for st in table.sets.values():
                assert ex.set(fam, table.name, st.name).text
                for i in range(len(st.elements)):
                    assert ex.element(fam, table.name, st.name, i + 1).kind != "nft-element", (name, st.name, i)


def test_service_chain_endpoint_share_and_masquerade_reason() -> None:
    ex = explainer("nft-clusterip")
    chain = "service-SUSTUHLJ-default/web/tcp/http"
    assert ex.chain(*KP, chain).text.startswith("the service chain of default/web:http (ClusterIP 10.96.10.20:80/tcp): "
                                                "it picks one of 3 endpoints")  # fmt: skip
    masq, spread = ex.rule(*KP, chain, 1), ex.rule(*KP, chain, 2)
    assert masq.kind == "cluster-ip-masquerade" and "because they do not come from the pod CIDR 10.244.0.0/16" in masq.text
    assert spread.kind == "endpoint-spread" and spread.service == "default/web:http"
    assert "10.244.1.11:8080 (1 in 3), 10.244.1.12:8080 (1 in 3), 10.244.2.13:8080 (1 in 3)" in spread.text
    dnat = ex.rule(*KP, "endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080", 2)
    assert dnat.text == "DNATs the connection to the endpoint 10.244.1.11:8080 — 33.3 % of the service's new connections"


def test_external_chains_say_the_traffic_policy() -> None:
    ex = explainer("nft-nodeport-local")
    local = "external-2EUJKCR2-shop/checkout/tcp/http"
    assert "outside clients go to this node's endpoints only" in ex.chain(*KP, local).text
    assert [ex.rule(*KP, local, i).kind for i in range(1, 5)] == [
        "external-pod-shortcut", "external-local-masquerade", "external-local-shortcut", "external-to-local"]
    assert "this node has none" in ex.chain(*KP, "external-MRQAX62O-shop/legacy-api/tcp/").text
    cluster = explainer("nft-nodeport-cluster")
    ext = next(c for c in cluster.ruleset.tables[0].chains if c.startswith("external-"))
    assert cluster.rule(*KP, ext, 1).kind == "external-masquerade"
    assert "externalTrafficPolicy Cluster" in cluster.chain(*KP, ext).text


def test_maps_and_their_elements() -> None:
    ex = explainer("nft-no-endpoints")
    assert ex.element(*KP, "no-endpoint-services", 2).text.startswith("default/broken:http has no endpoints: new "
                                                                      "connections to 10.96.40.10:80/tcp are rejected")
    assert "NodePort 30100/tcp are rejected" in ex.element(*KP, "no-endpoint-nodeports", 1).text
    local = explainer("nft-nodeport-local")
    assert "dropped (clients time out)" in local.element(*KP, "no-endpoint-nodeports", 1).text
    lb = explainer("nft-loadbalancer-sourceranges")
    assert lb.element(*KP, "firewall-ips", 1).kind == "firewall-element"
    fw = next(c for c in lb.ruleset.tables[0].chains if c.startswith("firewall-H6X75Q44"))
    assert "outside loadBalancerSourceRanges (10.0.0.0/24, 203.0.113.0/24)" in lb.rule(*KP, fw, 1).text
    aff = explainer("nft-session-affinity")
    st = next(s for s in aff.ruleset.tables[0].sets if s.startswith("affinity-"))
    assert aff.set(*KP, st).kind == "affinity-set" and "in the last 10800 s" in aff.set(*KP, st).text
    assert "goes back to 10.244.1.61:8080 (shop/cart:http)" in aff.element(*KP, st, 1).text
    with pytest.raises(LookupError, match="there is no element 9"):
        aff.element(*KP, st, 9)


def test_other_tables_are_described_neutrally() -> None:
    ex = explainer("mixed-node")
    e = ex.rule("inet", "firewalld", "filter_IN_public_allow", 1)
    assert not e.kube and e.kind == "generic"
    assert e.text == "packets tcp to port { 22, 6443, 30000-32767 } and in conntrack state { new, untracked }: it accepts it"
    assert not ex.table("inet", "firewalld").kube and not ex.chain("inet", "firewalld", "filter_INPUT").kube


def test_the_command_text_and_json() -> None:
    path = str(SAMPLES / "nft-clusterip.nft")
    code, out, err = run("explain", path, "service-SUSTUHLJ-default/web/tcp/http:2")
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "ip kube-proxy/service-SUSTUHLJ-default/web/tcp/http  (service default/web:http)"
    code, out, _ = run("explain", path, "@service-ips", "--json")
    data = json.loads(out)
    assert data["schema"] == "kptui.explain/1" and data["mode"] == "nftables" and data["set"] == "service-ips"
    assert data["element_count"] == 5 and data["elements"][0]["explanation"]
    code, out, _ = run("explain", path, "cluster-ips-check", "--json")
    data = json.loads(out)
    assert [r["kind"] for r in data["rules"]] == ["cluster-ip-unknown-port", "cluster-ip-unallocated"]
    assert [f["code"] for f in data["rules"][1]["findings"]] == ["cluster-ip-unallocated-drop"]
    code, _, err = run("explain", path, "nothing-here")
    assert code == 2 and err == "kptui: no chain (or set) nothing-here in the listing\n"
    code, _, err = run("explain", path, "services:7")
    assert code == 2 and "has 2 rules: there is no rule 7" in err
    code, _, err = run("explain", path, "services", "--table", "inet nothing")
    assert code == 2 and "no table inet nothing in the listing (tables: ip kube-proxy)" in err


def test_listing_text_cannot_inject_terminal_escapes(tmp_path: object) -> None:
    import pathlib

    text = sample_text("nft-no-endpoints").replace('comment "default/broken:http"',
                                                   'comment "default/broken:http\x1b[2J\x1b]52;c;eA==\x07"')
    path = pathlib.Path(str(tmp_path)) / "evil.nft"
    path.write_text(text)
    for args in (["explain", str(path), "@no-endpoint-services"], ["lint", str(path)], ["services", str(path)]):
        code, out, err = run(*args)
        assert code in (0, 1) and "\x1b" not in out and "\x07" not in out and "\x1b" not in err, args
