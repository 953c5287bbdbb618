"""``kptui services`` / ``lint`` on nftables-mode sources: an nft listing (text, JSON, gzip, standard input), a capture
bundle of an nftables-mode node, a mixed node; ``--mode``; the messages when the mode asked for is not there."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from kptui.cli import main
from kptui.node.bundle import encode_bundle
from kptui.node.parts import Artifact, Collection

from .nft_kube import SAMPLES
from .test_kube_cli import ENDPOINT_KEYS, JSON_KEYS


def run(*args: str, stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def bundle(tmp_path: Path, proxy_mode: str, rules: bytes, nft: bytes) -> Path:
    arts = (
        Artifact("rules/iptables-nft-save.rules", "rules", rules, "ipv4", "nf_tables", ("iptables-nft-save", "-c")),
        Artifact("nft/ruleset.json", "nft-ruleset", nft, command=("nft", "-j", "list", "ruleset"), format="json"),
        Artifact("node/ip-addr.json", "ip-addr", b"[]", command=("ip", "-j", "-d", "addr", "show")),
    )  # fmt: skip
    facts = MappingProxyType({"hostname": "node-a", "created": "2025-06-02T12:00:00+00:00", "created_unix": 1748865600.0,
                              "proxy_mode": proxy_mode, "kernel": {"release": "6.1.0"}, "netns": None})  # fmt: skip
    path = tmp_path / "node.kptui"
    path.write_bytes(encode_bundle(Collection(arts, facts), mtime=1748865600))
    return path


@pytest.mark.parametrize("form", ["nft", "json"])
def test_services_of_an_nft_listing(form: str) -> None:
    code, out, err = run("services", str(SAMPLES / f"nft-nodeport-local.{form}"), "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert all(set(s) == JSON_KEYS and s["mode"] == "nftables" for s in data)
    assert all(set(e) == ENDPOINT_KEYS for s in data for e in s["endpoints"])
    checkout = data[0]
    assert checkout["chains"] == {"svc": "service-2EUJKCR2-shop/checkout/tcp/http",
                                  "svl": "local-2EUJKCR2-shop/checkout/tcp/http",
                                  "ext": "external-2EUJKCR2-shop/checkout/tcp/http"}  # fmt: skip
    assert [(e["address"], e["probability_exact"], e["local"]) for e in checkout["endpoints"]] == [
        ("10.244.1.31:8080", "1/2", True), ("10.244.2.32:8080", "1/2", False)]
    code, out, _ = run("services", str(SAMPLES / f"nft-nodeport-local.{form}"), "--filter", "legacy")
    assert code == 0 and out.splitlines()[1].startswith("shop/legacy-api ") and "no local: DROP" in out
    assert "nftables mode: shares are the numgen maps' exact 1/N" in out


def test_gzip_and_standard_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    raw = (SAMPLES / "nft-ipv6.json").read_bytes()
    gz = tmp_path / "ruleset.gz"
    gz.write_bytes(gzip.compress(raw))
    code, out, _ = run("services", str(gz))
    assert code == 0 and "[fd00:10:96::20]:80" in out
    code, out, _ = run("services", "-", stdin=raw, monkeypatch=monkeypatch)
    assert code == 0 and "default/web6:http" in out


def test_a_bundle_of_an_nftables_mode_node(tmp_path: Path) -> None:
    path = bundle(tmp_path, "nftables", b"", (SAMPLES / "nft-session-affinity.json").read_bytes())
    code, out, err = run("services", str(path))
    assert code == 0 and "shop/cart:http" in out and "10800s" in out, err
    code, out, _ = run("lint", str(path), "--json")
    assert code == 0 and {f["code"] for f in json.loads(out)} >= {"client-source-ip-lost", "hairpin-masquerade"}


def test_a_mixed_node_warns_and_mode_picks(tmp_path: Path) -> None:
    path = bundle(tmp_path, "", (SAMPLES / "clusterip.rules").read_bytes(), (SAMPLES / "nft-clusterip.json").read_bytes())
    code, out, err = run("services", str(path))
    assert code == 0 and "endpoint-7FUMELAF" in out  # nftables mode's chains
    assert "kube-proxy's iptables-mode rules in the iptables dump are live too (both modes DNAT): showing nftables mode; " \
           "--mode iptables shows the other" in err  # fmt: skip
    code, out, _ = run("services", str(path), "--mode", "iptables")
    assert code == 0 and "KUBE-SEP-" in out
    code, out, _ = run("lint", str(path))
    assert code == 1 and "[mixed-mode]" in out
    code, out, _ = run("lint", str(path), "--mode", "iptables")
    assert code == 1 and "[mixed-mode]" in out  # the iptables side's lint says it too


def test_what_a_source_does_not_hold(tmp_path: Path) -> None:
    code, _, err = run("services", str(SAMPLES / "clusterip.rules"), "--mode", "nftables")
    assert code == 2 and "holds no nft listing with kube-proxy's nftables table" in err
    code, _, err = run("services", str(SAMPLES / "nft-clusterip.nft"), "--mode", "iptables")
    assert code == 2 and err == f"kptui: {SAMPLES / 'nft-clusterip.nft'}: holds no iptables rules (--mode iptables)\n"
    code, _, err = run("services", str(SAMPLES / "mixed-node.nft"))
    assert code == 2 and "holds an nft listing without kube-proxy's nftables table" in err
    damaged = tmp_path / "cut.nft"
    damaged.write_text((SAMPLES / "nft-clusterip.nft").read_text()[:3000])
    code, _, err = run("services", str(damaged))
    assert code == 0 and "cut off?" in err and "Traceback" not in err
