"""Era, mode, backend and node settings from the rules alone: every sample, and hand-built older layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import parse_ruleset, parse_ruleset_bytes
from kptui.engine.kube import build_service_index, chain_hash, detect_layout
from samples.scenarios import BY_NAME
from tools.kubegen import NodeConfig, generate

from .conftest import sample_paths

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / f"{name}.rules").read_text()


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_era_of_every_sample(path: Path) -> None:  # the IPVS-mode sample: tests/test_kube_ipvs.py
    layout = detect_layout(parse_ruleset_bytes(path.read_bytes()))
    assert layout.kube_proxy and layout.mode == "iptables" and not layout.ipvs_leftovers
    if path.stem == "kube-1.22-legacy":
        assert layout.era == "1.21-1.23"
        assert (layout.backend, layout.drop_mark) == ("legacy", "0x8000")
        assert "KUBE-MARK-DROP" in layout.kubelet_chains
    else:
        assert layout.era == "1.25+"
        assert layout.backend == "nf_tables" and layout.drop_mark is None
    assert layout.masquerade_mark == "0x4000"
    if path.stem == "no-endpoints":
        assert (layout.local_detector, layout.local_detector_values, layout.random_fully) == ("masquerade-all", (), True)
    elif path.stem == "ipv6":
        assert (layout.local_detector, layout.local_detector_values) == ("cidr", ("fd00:10:244::/56",))
        assert layout.localhost_nodeports is False  # IPv6 localhost NodePorts never work
        assert not layout.localnet_guard  # the localnet rule is IPv4-only
    else:
        assert (layout.local_detector, layout.local_detector_values) == ("cidr", ("10.244.0.0/16",))
        assert layout.localhost_nodeports is True and layout.localnet_guard
    assert layout.nodeport_addresses is None


def test_1_24_has_ext_and_svl_but_no_proxy_firewall() -> None:
    text = "".join(line for line in sample("mixed-all").splitlines(True) if "KUBE-PROXY-FIREWALL" not in line)
    assert detect_layout(parse_ruleset(text)).era == "1.24"


NFACCT = ('-A KUBE-NODEPORTS -d 127.0.0.0/8 -p tcp -m comment --comment "shop/frontend:http" -m tcp --dport 30080 '
          "-m nfacct --nfacct-name  localhost_nps_accepted_pkts -j KUBE-EXT-PY4JZH2ITZYEO4CN\n")  # fmt: skip


def test_1_31_nfacct_counters() -> None:
    text = sample("nodeport-cluster").replace("-A KUBE-NODEPORTS ", NFACCT + "-A KUBE-NODEPORTS ", 1)
    text = text.replace("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
                        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  "
                        "ct_state_invalid_dropped_pkts -j DROP")  # fmt: skip
    rs = parse_ruleset(text)
    layout = detect_layout(rs)
    assert layout.era == "1.31+"
    assert layout.nfacct == ("localhost_nps_accepted_pkts", "ct_state_invalid_dropped_pkts")
    (frontend,) = build_service_index(rs).by_node_port(30080)
    assert frontend.name == "shop/frontend:http" and frontend.notes == ()  # the localhost variant is the same port


def test_legacy_tables_present_means_both_backends() -> None:
    text = "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n" + sample("clusterip")
    layout = detect_layout(parse_ruleset(text))
    assert layout.backend == "nf_tables" and layout.backends_present == ("nf_tables", "legacy")


def test_not_kube_proxy() -> None:
    text = "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\nCOMMIT\n"
    rs = parse_ruleset(text)
    layout = detect_layout(rs)
    assert (layout.kube_proxy, layout.mode, layout.era, layout.local_detector) == (False, None, None, None)
    assert len(build_service_index(rs)) == 0


IPVS = """*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES ! -s 10.244.0.0/16 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
COMMIT
"""


def test_ipvs_mode() -> None:
    rs = parse_ruleset(IPVS)
    layout = detect_layout(rs)
    assert (layout.kube_proxy, layout.mode, layout.era, layout.ipvs_leftovers) == (True, "ipvs", None, False)
    assert len(build_service_index(rs)) == 0


def test_ipvs_leftovers_next_to_iptables_mode() -> None:
    text = sample("clusterip").replace(":KUBE-SERVICES - [0:0]", ":KUBE-SERVICES - [0:0]\n:KUBE-IPVS-FILTER - [0:0]", 1)
    layout = detect_layout(parse_ruleset(text))
    assert (layout.mode, layout.ipvs_leftovers, layout.era) == ("iptables", True, "1.25+")


@pytest.mark.parametrize(("replace", "expected"), [
    ("! -i cbr0", ("bridge", ("cbr0",))),
    ("! -i veth+", ("interface-prefix", ("veth+",))),
])  # fmt: skip
def test_interface_detectors(replace: str, expected: tuple[str, tuple[str, ...]]) -> None:
    text = sample("clusterip").replace("! -s 10.244.0.0/16", replace)
    layout = detect_layout(parse_ruleset(text))
    assert (layout.local_detector, layout.local_detector_values) == expected


def test_no_detector_and_masquerade_all_from_kubegen() -> None:
    specs = BY_NAME["clusterip"].services
    none = generate(specs, NodeConfig(cluster_cidr=None)).render()
    assert detect_layout(parse_ruleset(none)).local_detector == "none"
    every = generate(specs, NodeConfig(masquerade_all=True)).render()
    assert detect_layout(parse_ruleset(every)).local_detector == "masquerade-all"


@pytest.mark.parametrize(("rule", "localhost", "addresses"), [
    ("! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL", False, None),
    ("-d 10.0.0.2/32", False, ("10.0.0.2/32",)),
])  # fmt: skip
def test_nodeport_addresses(rule: str, localhost: bool, addresses: tuple[str, ...] | None) -> None:
    text = sample("nodeport-cluster").replace(
        '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" '
        "-m addrtype --dst-type LOCAL",
        f'{rule} -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"',
    )
    layout = detect_layout(parse_ruleset(text))
    assert (layout.localhost_nodeports, layout.nodeport_addresses) == (localhost, addresses)


# -- kube-proxy 1.20 and older: masquerade rules in KUBE-SERVICES, physdev external IPs, FW → MARK-DROP --------
def _h(name: str, proto: str = "tcp", ep: str = "") -> str:
    return chain_hash(name, proto, ep)


def old_dump() -> str:
    """A kube-proxy 1.16-era nat/filter dump (5-decimal probabilities, unnamed port hashed as "ns/name:")."""
    web, ext, lb, local = "default/web:http", "default/legacy-ext", "shop/frontend:http", "shop/checkout:http"
    w, e, f, c = _h(web), _h(ext + ":"), _h(lb), _h(local)
    wseps = [(ip, "KUBE-SEP-" + _h(web, "tcp", f"{ip}:8080")) for ip in ("10.244.1.11", "10.244.1.12", "10.244.2.13")]
    eseps = [("10.244.2.73", "KUBE-SEP-" + _h(ext + ":", "tcp", "10.244.2.73:80"))]
    fseps = [("10.244.1.21", "KUBE-SEP-" + _h(lb, "tcp", "10.244.1.21:8080"))]
    cseps = [(ip, "KUBE-SEP-" + _h(local, "tcp", f"{ip}:8080")) for ip in ("10.244.1.31", "10.244.2.32")]
    seps = [*wseps, *eseps, *fseps, *cseps]
    chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-MARK-MASQ", "KUBE-MARK-DROP", "KUBE-POSTROUTING",
              f"KUBE-SVC-{w}", f"KUBE-SVC-{e}", f"KUBE-SVC-{f}", f"KUBE-FW-{f}", f"KUBE-SVC-{c}", f"KUBE-XLB-{c}",
              *(s for _, s in seps)]  # fmt: skip
    m = '-m comment --comment "{}"'.format
    rules = [
        f'-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.96.10.20/32 -p tcp {m(web + " cluster IP")} -m tcp --dport 80 -j KUBE-MARK-MASQ',
        f'-A KUBE-SERVICES -d 10.96.10.20/32 -p tcp {m(web + " cluster IP")} -m tcp --dport 80 -j KUBE-SVC-{w}',
        f'-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.96.70.20/32 -p tcp {m(ext + " cluster IP")} -m tcp --dport 80 -j KUBE-MARK-MASQ',
        f'-A KUBE-SERVICES -d 10.96.70.20/32 -p tcp {m(ext + " cluster IP")} -m tcp --dport 80 -j KUBE-SVC-{e}',
        f'-A KUBE-SERVICES -d 198.51.100.70/32 -p tcp {m(ext + " external IP")} -m tcp --dport 80 -j KUBE-MARK-MASQ',
        f'-A KUBE-SERVICES -d 198.51.100.70/32 -p tcp {m(ext + " external IP")} -m tcp --dport 80 -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j KUBE-SVC-{e}',
        f'-A KUBE-SERVICES -d 198.51.100.70/32 -p tcp {m(ext + " external IP")} -m tcp --dport 80 -m addrtype --dst-type LOCAL -j KUBE-SVC-{e}',
        f'-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.96.20.10/32 -p tcp {m(lb + " cluster IP")} -m tcp --dport 80 -j KUBE-MARK-MASQ',
        f'-A KUBE-SERVICES -d 10.96.20.10/32 -p tcp {m(lb + " cluster IP")} -m tcp --dport 80 -j KUBE-SVC-{f}',
        f'-A KUBE-SERVICES -d 192.0.2.20/32 -p tcp {m(lb + " loadbalancer IP")} -m tcp --dport 80 -j KUBE-FW-{f}',
        f'-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.96.30.10/32 -p tcp {m(local + " cluster IP")} -m tcp --dport 80 -j KUBE-MARK-MASQ',
        f'-A KUBE-SERVICES -d 10.96.30.10/32 -p tcp {m(local + " cluster IP")} -m tcp --dport 80 -j KUBE-SVC-{c}',
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        f"-A KUBE-NODEPORTS -p tcp {m(lb)} -m tcp --dport 30080 -j KUBE-MARK-MASQ",
        f"-A KUBE-NODEPORTS -p tcp {m(lb)} -m tcp --dport 30080 -j KUBE-SVC-{f}",
        f"-A KUBE-NODEPORTS -s 127.0.0.0/8 -p tcp {m(local)} -m tcp --dport 30090 -j KUBE-MARK-MASQ",
        f"-A KUBE-NODEPORTS -p tcp {m(local)} -m tcp --dport 30090 -j KUBE-XLB-{c}",
        f"-A KUBE-FW-{f} {m(lb + ' loadbalancer IP')} -j KUBE-MARK-MASQ",
        f"-A KUBE-FW-{f} {m(lb + ' loadbalancer IP')} -j KUBE-SVC-{f}",
        f"-A KUBE-FW-{f} {m(lb + ' loadbalancer IP')} -j KUBE-MARK-DROP",
        f'-A KUBE-XLB-{c} -s 10.244.0.0/16 {m("Redirect pods trying to reach external loadbalancer VIP to clusterIP")} -j KUBE-SVC-{c}',
        f"-A KUBE-XLB-{c} {m('Balancing rule 0 for ' + local)} -j {cseps[0][1]}",
        "-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE',
    ]  # fmt: skip
    for chain, name, eps, probs in ((w, web, wseps, ["0.33332999982", "0.50000000000"]), (e, ext, eseps, []),
                                    (f, lb, fseps, []), (c, local, cseps, ["0.50000000000"])):  # fmt: skip
        for i, (_, sep) in enumerate(eps):
            stat = f" -m statistic --mode random --probability {probs[i]}" if i < len(probs) else ""
            rules.append(f"-A KUBE-SVC-{chain} {m(name)}{stat} -j {sep}")
    for (ip, sep), name in zip(seps, [web] * 3 + [ext, lb] + [local] * 2):
        port = 80 if name == ext else 8080
        rules.append(f"-A {sep} -s {ip}/32 {m(name)} -j KUBE-MARK-MASQ")
        rules.append(f"-A {sep} -p tcp {m(name)} -m tcp -j DNAT --to-destination {ip}:{port}")
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    nat += [f":{c} - [0:0]" for c in chains]
    nat += ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING', *rules, "COMMIT"]
    filt = ["*filter", ":INPUT ACCEPT [0:0]", ":KUBE-FIREWALL - [0:0]", ":KUBE-SERVICES - [0:0]",
            "-A INPUT -j KUBE-FIREWALL",
            ('-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" '
             "-m mark --mark 0x8000/0x8000 -j DROP"),
            ('-A KUBE-SERVICES -d 10.96.40.10/32 -p tcp -m comment --comment "default/broken:http has no endpoints" '
             "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"), "COMMIT"]  # fmt: skip
    return "\n".join([*nat, *filt, ""])


def test_old_layout_era_and_detector() -> None:
    layout = detect_layout(parse_ruleset(old_dump()))
    assert layout.era == "<=1.20"
    assert (layout.local_detector, layout.local_detector_values) == ("cidr", ("10.244.0.0/16",))
    assert layout.drop_mark == "0x8000" and layout.localhost_nodeports is True


def test_old_layout_services() -> None:
    index = build_service_index(parse_ruleset(old_dump()))
    names = [s.name for s in index]
    assert names == ["default/broken:http", "default/legacy-ext", "default/web:http", "shop/checkout:http",
                     "shop/frontend:http"]  # fmt: skip
    (web,) = index.by_name("default/web:http")
    assert (web.cluster_ip, web.port, web.protocol, web.hash_verified) == ("10.96.10.20", 80, "tcp", True)
    shares = [e.probability for e in web.endpoints]
    assert sum(p for p in shares if p is not None) == 1
    assert abs(float(shares[0]) - 1 / 3) < 1e-4  # 1.16's 5 decimals: 0.33332999982, not 1/3 within 1e-9
    assert web.internal_traffic_policy is None  # the old layouts cannot tell
    (ext,) = index.by_name("default/legacy-ext")
    assert ext.hash_verified is True  # hashed as "default/legacy-ext:" before 1.19
    assert ext.external_ips == ("198.51.100.70",) and ext.load_balancer_ips == ()
    (lb,) = index.by_name("shop/frontend:http")
    assert (lb.load_balancer_ips, lb.node_port, lb.external_traffic_policy, lb.source_ranges) == (
        ("192.0.2.20",), 30080, "Cluster", ())
    assert lb.blocking_rules == ()  # no source ranges: the trailing KUBE-MARK-DROP is never reached
    (local,) = index.by_name("shop/checkout:http")
    assert local.external_traffic_policy == "Local"
    assert [(e.address, e.local, e.local_probability) for e in local.endpoints] == [
        ("10.244.1.31:8080", True, 1), ("10.244.2.32:8080", False, None)]
    (broken,) = index.by_name("default/broken:http")
    assert broken.no_endpoints and broken.chains == {} and broken.cluster_ip == "10.96.40.10"
