"""``kptui lint`` in nftables mode: every finding with a listing that triggers it and one that does not."""

from __future__ import annotations

import pytest

from kptui.engine import parse_ruleset, parse_ruleset_bytes
from kptui.engine.kube.findings_model import Finding
from kptui.engine.kube.nft_findings import nft_pitfalls
from kptui.engine.nft import NftRuleset

from .nft_kube import SAMPLES, edited, listing, sample_text

SAMPLE = {n: listing(sample_text(n), f"{n}.nft") for n in (
    "nft-clusterip", "nft-nodeport-cluster", "nft-nodeport-local", "nft-no-endpoints", "nft-loadbalancer-sourceranges",
    "nft-session-affinity", "nft-ipv6")}  # fmt: skip
EP_11 = "endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080"
GUARD = ("table inet guard {{\n\tchain pre {{\n\t\ttype filter hook {hook} priority {prio}; policy accept;\n"
         "\t\t{rule}\n\t}}\n}}\n")


def codes(rs: NftRuleset, ruleset: object = None) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in nft_pitfalls(rs, ruleset):  # type: ignore[arg-type]
        out.setdefault(f.code, []).append(f)
    return out


def with_guard(hook: str, prio: int, rule: str, name: str = "nft-clusterip") -> NftRuleset:
    return listing(sample_text(name) + GUARD.format(hook=hook, prio=prio, rule=rule))


def without(name: str, line: str) -> NftRuleset:
    return edited(name, line + "\n", "")


CASES = [
    # code, triggering, not triggering
    ("no-endpoints", lambda: SAMPLE["nft-no-endpoints"], lambda: SAMPLE["nft-clusterip"]),
    ("no-local-endpoints", lambda: SAMPLE["nft-nodeport-local"], lambda: SAMPLE["nft-nodeport-cluster"]),
    ("lb-source-ranges", lambda: SAMPLE["nft-loadbalancer-sourceranges"], lambda: SAMPLE["nft-nodeport-cluster"]),
    ("client-source-ip-lost", lambda: SAMPLE["nft-nodeport-cluster"], lambda: SAMPLE["nft-nodeport-local"]),
    ("hairpin-masquerade", lambda: SAMPLE["nft-clusterip"],
     lambda: edited("nft-no-endpoints", "\t\tip saddr 10.244.1.41 jump mark-for-masquerade\n", "")),
    ("masquerade-all", lambda: SAMPLE["nft-no-endpoints"], lambda: SAMPLE["nft-clusterip"]),
    ("cluster-ip-unallocated-drop", lambda: SAMPLE["nft-clusterip"],
     lambda: without("nft-clusterip", '\t\tip daddr 10.96.0.0/12 drop comment "Drop traffic to unallocated ClusterIPs"')),
    ("cluster-ip-unknown-port-reject", lambda: SAMPLE["nft-clusterip"],
     lambda: without("nft-clusterip", '\t\tip daddr @cluster-ips reject comment "Reject traffic to invalid ports of '
                     'ClusterIPs"')),
    ("uneven-shares",
     lambda: edited("nft-nodeport-cluster", "numgen random mod 2 vmap { 0 : goto endpoint-4IC5JHRQ",
                    "numgen random mod 3 vmap { 2 : goto endpoint-4IC5JHRQ-shop/frontend/tcp/http__10.244.1.21/8080, "
                    "0 : goto endpoint-4IC5JHRQ"),
     lambda: SAMPLE["nft-nodeport-cluster"]),
    ("dangling-jump", lambda: edited("nft-clusterip", "\tchain services {\n", "\tchain services {\n\t\tjump nowhere\n"),
     lambda: SAMPLE["nft-clusterip"]),
    ("unreferenced-chain",
     lambda: edited("nft-clusterip", "\tchain services {\n", "\tchain service-ABCDEFGH-gone/svc/tcp/p {\n\t}\n\n"
                    "\tchain services {\n"), lambda: SAMPLE["nft-clusterip"]),
    ("table-before-kube-proxy", lambda: with_guard("prerouting", -150, "ip daddr 10.96.0.0/12 drop"),
     lambda: with_guard("prerouting", -50, "ip daddr 10.96.0.0/12 drop")),
]  # fmt: skip


@pytest.mark.parametrize(("code", "yes", "no"), CASES, ids=[c[0] for c in CASES])
def test_each_finding_triggers_and_does_not(code: str, yes: object, no: object) -> None:
    found = codes(yes())  # type: ignore[operator]
    assert code in found, sorted(found)
    assert code not in codes(no()), code  # type: ignore[operator]
    f = found[code][0]
    assert f.title and f.detail and f.advice and f.severity in ("error", "warning", "info")


def test_findings_name_their_rule_and_their_map_elements() -> None:
    p = nft_pitfalls(SAMPLE["nft-no-endpoints"])
    broken = next(f for f in p if f.code == "no-endpoints" and f.service == "default/broken:http")
    assert (broken.table, broken.chain, broken.index) == ("ip kube-proxy", "service-endpoints-check", 1)
    assert "10.96.40.10:80" in broken.detail and "NodePort 30100" in broken.detail
    assert broken in p.for_rule("ip kube-proxy", "@no-endpoint-services", 2)  # its element of the map
    assert broken in p.for_rule("ip kube-proxy", "@no-endpoint-nodeports", 1)
    ranges = nft_pitfalls(SAMPLE["nft-loadbalancer-sourceranges"])
    payments = next(f for f in ranges if f.code == "lb-source-ranges" and f.service == "shop/payments:https")
    assert payments.severity == "warning" and "10.244.0.0/16 is not in the ranges" in payments.detail


def test_a_table_before_kube_proxy_only_matters_for_service_traffic() -> None:
    other = codes(with_guard("prerouting", -150, "ip daddr 192.168.99.0/24 drop"))
    assert "table-before-kube-proxy" not in other  # no service address behind it
    everything = codes(with_guard("prerouting", -150, "tcp dport 22 drop"))["table-before-kube-proxy"]
    assert everything[0].severity == "warning" and everything[0].table == "inet guard"
    masq = codes(with_guard("output", -200, "meta mark set meta mark | 0x00004000"))["table-before-kube-proxy"]
    assert masq[0].severity == "warning" and "masquerade bit" in masq[0].detail
    other_mark = codes(with_guard("prerouting", -150, "meta mark set 0x00000010"))["table-before-kube-proxy"]
    assert other_mark[0].severity == "info"
    assert "table-before-kube-proxy" not in codes(with_guard("forward", 10, "drop"))  # after kube-proxy's filter


def test_mixed_modes_and_leftovers() -> None:
    nft = SAMPLE["nft-clusterip"]
    both = codes(nft, parse_ruleset_bytes((SAMPLES / "clusterip.rules").read_bytes()))
    assert both["mixed-mode"][0].severity == "error"
    text = (SAMPLES / "clusterip.rules").read_text()
    unhooked = "\n".join(ln for ln in text.splitlines() if not ln.partition("] ")[2].startswith(
        ("-A PREROUTING", "-A OUTPUT")))  # fmt: skip
    left = codes(nft, parse_ruleset(unhooked))
    assert "mixed-mode" not in left and left["iptables-leftovers"][0].severity == "warning"
    assert "iptables-leftovers" not in codes(nft) and "mixed-mode" not in codes(nft)


def test_every_sample_lints_without_an_error() -> None:
    for name, rs in SAMPLE.items():
        assert not [f for f in nft_pitfalls(rs) if f.severity == "error"], name
