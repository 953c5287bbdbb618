"""Pitfall findings: each one triggered by a sample or a hand-edited dump, and absent where it must be."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset, parse_ruleset_bytes
from kptui.engine.kube import Finding, analyse_pitfalls, find_pitfalls, findings_for
from kptui.engine.kube.findings_checks import LONG_INFO, LONG_WARNING

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def text(name: str) -> str:
    return (SAMPLES / f"{name}.rules").read_text()


def load(name: str) -> Ruleset:
    return parse_ruleset_bytes((SAMPLES / f"{name}.rules").read_bytes(), source=f"{name}.rules")


def codes(rs: Ruleset) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in find_pitfalls(rs):
        out.setdefault(f.code, []).append(f)
    return out


def without(name: str, needle: str) -> Ruleset:
    lines = [line for line in text(name).splitlines(True) if needle not in line]
    return parse_ruleset("".join(lines))


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.rules")), ids=lambda p: p.stem)
def test_samples_have_no_errors_and_no_duplicates(path: Path) -> None:
    findings = find_pitfalls(parse_ruleset_bytes(path.read_bytes()))
    assert all(f.severity in ("warning", "info") for f in findings)
    keys = [(f.code, f.service, f.table, f.chain, f.index) for f in findings]
    assert len(keys) == len(set(keys))
    order = {"error": 0, "warning": 1, "info": 2}
    assert [order[f.severity] for f in findings] == sorted(order[f.severity] for f in findings)


def test_no_endpoints() -> None:
    found = codes(load("no-endpoints"))["no-endpoints"]
    assert sorted(f.service or "" for f in found) == ["default/broken:http", "kube-system/dead-dns:dns"]
    broken = next(f for f in found if f.service == "default/broken:http")
    assert (broken.severity, broken.table, broken.chain, broken.index, broken.line) == (
        "warning", "filter", "KUBE-SERVICES", 1, 44)
    assert "10.96.40.10:80" in broken.detail and "NodePort 30100" in broken.detail
    assert "kubernetes.io/service-name=broken" in broken.advice
    # every refusing rule of the service finds it
    pitfalls = analyse_pitfalls(load("no-endpoints"))
    ext = [r.index for r in load("no-endpoints").tables["filter"].chains["KUBE-EXTERNAL-SERVICES"].rules
           if "default/broken" in r.raw]  # fmt: skip
    assert ext and all(broken in pitfalls.for_rule("filter", "KUBE-EXTERNAL-SERVICES", i) for i in ext)
    assert "no-endpoints" not in codes(load("clusterip"))


def test_no_local_endpoints() -> None:
    (f,) = codes(load("nodeport-local"))["no-local-endpoints"]
    assert (f.service, f.chain, f.severity) == ("shop/legacy-api", "KUBE-EXTERNAL-SERVICES", "warning")
    assert "blackhole" in f.detail and "node port 32091" in f.detail
    (old,) = codes(load("kube-1.22-legacy"))["no-local-endpoints"]
    assert (old.table, old.chain, old.index) == ("nat", "KUBE-XLB-2Q4INF73LZQHRC4T", 4)
    assert "no-local-endpoints" not in codes(load("nodeport-cluster"))


def test_hairpin_is_one_aggregated_finding_found_from_every_sep() -> None:
    rs = load("clusterip")
    pitfalls = analyse_pitfalls(rs)
    (f,) = [f for f in pitfalls if f.code == "hairpin-masquerade"]
    seps = [(c.name, r.index) for c in rs.tables["nat"] if c.name.startswith("KUBE-SEP-")
            for r in c.rules if r.target_name == "KUBE-MARK-MASQ"]  # fmt: skip
    assert f.severity == "info" and f.count == len(seps) > 1 and f.service is None
    assert all(f in pitfalls.for_rule("nat", c, i) for c, i in seps)
    dnat = [(c.name, r.index) for c in rs.tables["nat"] if c.name.startswith("KUBE-SEP-")
            for r in c.rules if r.target_name == "DNAT"]  # fmt: skip
    assert not any(pitfalls.for_rule("nat", c, i) for c, i in dnat)
    gone = parse_ruleset("".join(line for line in text("clusterip").splitlines(True)
                                 if not (line.startswith("[") and "-A KUBE-SEP-" in line and "KUBE-MARK-MASQ" in line)))
    assert "hairpin-masquerade" not in codes(gone)


def test_localhost_nodeport() -> None:
    (f,) = codes(load("nodeport-cluster"))["localhost-nodeport"]
    assert f.severity == "warning" and f.chain == "KUBE-SERVICES" and "route_localnet" in f.title
    assert "block incoming localnet connections\" rule limits" in f.detail
    assert "localhost-nodeport" not in codes(load("ipv6"))  # ! -d ::1/128: IPv6 localhost NodePorts never work
    unguarded = without("nodeport-cluster", "block incoming localnet connections")
    assert "no KUBE-FIREWALL" in codes(unguarded)["localhost-nodeport"][0].detail


def test_ctstate_invalid_drop() -> None:
    (f,) = codes(load("mixed-all"))["ctstate-invalid-drop"]
    assert (f.severity, f.table, f.chain, f.index) == ("info", "filter", "KUBE-FORWARD", 1)
    assert "ctstate-invalid-drop" not in codes(without("mixed-all", "--ctstate INVALID"))


def test_lb_source_ranges() -> None:
    found = {f.service: f for f in codes(load("loadbalancer-sourceranges"))["lb-source-ranges"]}
    ingress = found["ingress-nginx/ingress-nginx-controller:http"]
    assert ingress.severity == "warning"  # the pod network 10.244.0.0/16 is outside the ranges
    assert "10.244.0.0/16 is not in the ranges" in ingress.detail and "KUBE-PROXY-FIREWALL" in ingress.detail
    assert (ingress.chain, ingress.index) == ("KUBE-FW-CG5I4G2RS3ZVWGLK", 2)  # the fall-through rule
    pf = analyse_pitfalls(load("loadbalancer-sourceranges"))
    drops = [r.index for r in load("loadbalancer-sourceranges").tables["filter"].chains["KUBE-PROXY-FIREWALL"].rules]
    assert any(ingress in pf.for_rule("filter", "KUBE-PROXY-FIREWALL", i) for i in drops)
    covered = text("loadbalancer-sourceranges").replace(
        '-A KUBE-FW-CG5I4G2RS3ZVWGLK -m comment --comment "other traffic',
        '-A KUBE-FW-CG5I4G2RS3ZVWGLK -s 10.0.0.0/8 -m comment --comment "ingress-nginx/ingress-nginx-controller:http '
        'loadbalancer IP" -j KUBE-EXT-CG5I4G2RS3ZVWGLK\n-A KUBE-FW-CG5I4G2RS3ZVWGLK -m comment --comment "other '
        'traffic', 1)  # fmt: skip
    f = next(f for f in codes(parse_ruleset(covered))["lb-source-ranges"] if f.service == ingress.service)
    assert f.severity == "info"
    old = codes(load("kube-1.22-legacy"))["lb-source-ranges"][0]
    assert "KUBE-MARK-DROP" in old.detail and old.index == 5
    assert "lb-source-ranges" not in codes(load("clusterip"))


def test_lb_source_ranges_say_what_a_trace_from_the_node_and_a_pod_shows() -> None:
    """Issue 10, item 7: the finding said pods and this node are dropped while payments' ranges hold the node's
    network (10.0.0.0/24) and a trace from the node is admitted by KUBE-FW. Its words now follow the trace."""
    from kptui.engine.packet import NodeContext, Packet
    from kptui.engine.trace import trace

    rs = load("loadbalancer-sourceranges")
    found = {f.service: f for f in codes(rs)["lb-source-ranges"]}
    node = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.0.0/16",))

    def verdicts(src: str, dst: str, port: int, origin: str) -> set[str]:
        return {p.verdict for p in trace(rs, Packet(src, dst, "tcp", None, port, origin), node).paths}

    payments, ingress = found["shop/payments:https"], found["ingress-nginx/ingress-nginx-controller:http"]
    # payments: from this node (10.0.0.2, inside 10.0.0.0/24) the connection is admitted and DNATed
    assert verdicts("10.0.0.2", "192.0.2.50", 443, "local") == {"ACCEPT"}
    assert "connections from this node's address are admitted" in payments.detail
    assert "KUBE-FW-BTVQPHN42D4J3FOU:3" in payments.detail  # the -s 192.0.2.50/32 rule kube-proxy adds then
    assert "dropped too" not in payments.detail and "this node's network" not in payments.advice
    # ingress (203.0.113.0/24 only): from this node the connection is dropped, and the finding says so
    assert verdicts("10.0.0.2", "192.0.2.51", 80, "local") == {"DROP"}
    assert "connections from this node's address are dropped too" in ingress.detail
    assert "this node's network" in ingress.advice
    # pods (10.244.0.0/16, in no range): dropped for both, as both say
    for f, (ip, port) in ((payments, ("192.0.2.50", 443)), (ingress, ("192.0.2.51", 80))):
        assert verdicts("10.244.1.5", ip, port, "pod") == {"DROP"}
        assert f"in-cluster clients of {ip} are dropped" in f.detail and f.severity == "warning"
    # ranges that hold the pod network: pods are admitted (the trace agrees), and it is no longer a warning
    rs = parse_ruleset(text("loadbalancer-sourceranges").replace("-s 10.0.0.0/24", "-s 10.0.0.0/8"))
    f = next(f for f in codes(rs)["lb-source-ranges"] if f.service == "shop/payments:https")
    assert verdicts("10.244.1.5", "192.0.2.50", 443, "pod") == {"ACCEPT"}
    assert "the pod network 10.244.0.0/16 is in the ranges, so pods are admitted" in f.detail
    assert f.severity == "info" and "pod CIDR" not in f.advice


def test_client_source_ip_lost() -> None:
    (f,) = codes(load("nodeport-cluster"))["client-source-ip-lost"]
    assert f.severity == "info" and f.count == 2 and f.chain is not None and f.chain.startswith("KUBE-EXT-")
    assert "shop/frontend:http" in f.detail
    assert "client-source-ip-lost" not in codes(load("nodeport-local"))  # externalTrafficPolicy Local only
    (old,) = codes(load("kube-1.22-legacy"))["client-source-ip-lost"]
    assert old.chain == "KUBE-NODEPORTS"  # 1.23 and older mark in KUBE-NODEPORTS


def test_mixed_backends() -> None:
    warned = parse_ruleset("# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n"
                           + text("clusterip"))  # fmt: skip
    (f,) = codes(warned)["mixed-backends"]
    assert f.severity == "error" and f.chain is None and f.location == "-"
    assert "mixed-backends" not in codes(load("clusterip"))


def test_stale_chain() -> None:
    head, nat = text("clusterip").split("*nat\n", 1)
    nat = nat.replace("COMMIT", "-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-MARK-MASQ\nCOMMIT", 1)
    t = head + "*nat\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n" + nat
    (f,) = codes(parse_ruleset(t))["unreferenced-chain"]
    assert (f.severity, f.chain, f.index) == ("warning", "KUBE-SVC-AAAAAAAAAAAAAAAA", None)
    assert f in analyse_pitfalls(parse_ruleset(t)).for_chain(f.table, f.chain)
    assert "unreferenced-chain" not in codes(load("clusterip"))


def test_dangling_jump_is_an_error() -> None:
    t = text("mixed-all").replace("-A KUBE-SERVICES -d 10.96.0.1/32",
                                  "-A KUBE-SERVICES -d 10.96.9.9/32 -p tcp -m tcp --dport 1 -j KUBE-SVC-ZZZZZZZZZZZZZZZZ\n"
                                  "[0:0] -A KUBE-SERVICES -d 10.96.0.1/32", 1)  # fmt: skip
    (f,) = codes(parse_ruleset(t))["dangling-jump"]
    assert (f.severity, f.table, f.chain) == ("error", "nat", "KUBE-SERVICES") and "KUBE-SVC-ZZZZZZZZZZZZZZZZ" in f.title
    assert find_pitfalls(parse_ruleset(t))[0] == f  # errors first


def test_uneven_shares_from_a_duplicate_probability() -> None:
    web = text("mixed-all").replace("--probability 0.33333333349 -j KUBE-SEP-ELX6N4Z5RGB67TLC",
                                    "--probability 0.50000000000 -j KUBE-SEP-ELX6N4Z5RGB67TLC")  # fmt: skip
    found = codes(parse_ruleset(web))
    (f,) = found["uneven-shares"]
    assert (f.severity, f.service, f.chain, f.index) == ("warning", "default/web:http", "KUBE-SVC-CDGGSHYLG3RE2FKL", 2)
    assert "50.0 %, 25.0 %, 25.0 %" in f.detail and "1/3, 1/2" in f.detail
    assert "low-precision-probabilities" not in found
    assert "uneven-shares" not in codes(load("mixed-all"))


def test_five_decimal_probabilities() -> None:
    old = text("mixed-all").replace("--probability 0.33333333349", "--probability 0.33332999982")
    found = codes(parse_ruleset(old))
    (f,) = found["low-precision-probabilities"]
    assert f.severity == "info" and "5 decimals" in f.detail and f.count == 2  # default/web and shop/cart
    assert "uneven-shares" not in found


def _long(n: int) -> Ruleset:
    rules = "".join(f"-A KUBE-SERVICES -d 10.96.{i // 250}.{i % 250}/32 -p tcp -m tcp --dport 80 "
                    "-j KUBE-SVC-AAAAAAAAAAAAAAAA\n" for i in range(n))  # fmt: skip
    return parse_ruleset("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n"
                         "-A PREROUTING -j KUBE-SERVICES\n" + rules + "COMMIT\n")  # fmt: skip


@pytest.mark.parametrize(("n", "severity"), [(LONG_INFO - 1, None), (LONG_INFO, "info"),
                                             (LONG_WARNING - 1, "info"), (LONG_WARNING, "warning")])  # fmt: skip
def test_long_kube_services(n: int, severity: str | None) -> None:
    found = codes(_long(n)).get("long-kube-services", [])
    assert [f.severity for f in found] == ([severity] if severity else [])
    if found:
        assert found[0].index is None and f"{n} rules" in found[0].title


def test_findings_for_rule_and_chain() -> None:
    rs = load("mixed-all")
    pitfalls = analyse_pitfalls(rs)
    (reject,) = findings_for(pitfalls, "filter", "KUBE-SERVICES", 1)
    assert reject.code == "no-endpoints"
    assert findings_for(pitfalls, "nat", "KUBE-SVC-CDGGSHYLG3RE2FKL", 2) == ()
    assert findings_for(pitfalls, "nat", "KUBE-SERVICES") == ()
    assert pitfalls.counts() == {"error": 0, "warning": 5, "info": 3}


def test_not_kube_proxy_gives_no_kube_findings() -> None:
    rs = parse_ruleset("*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -j DOCKER\nCOMMIT\n")
    assert find_pitfalls(rs) == ()
