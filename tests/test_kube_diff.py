"""The service-level diff (kptui.engine.kube.diff): matching, every kind of change, noise that must not show.

Test dumps come from tools/kubegen.py (kube-proxy's own restore input for given services) and from the
real-kernel samples with text edits.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from fractions import Fraction
from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset
from kptui.engine.kube import ServiceDiff, diff_services, service_index_of
from kptui.engine.kube.diff_report import diff_text, diff_to_dict
from kptui.engine.kube.hashes import chain_hash
from kptui.engine.kube.report import matches_filter
from kptui.engine.matches import probability_of
from tools.kubegen import Endpoint as GenEndpoint
from tools.kubegen import NodeConfig, generate, port_proto_hash
from tools.kubegen import ServicePort as GenPort

from .conftest import SAMPLES, sample_paths
from .test_kube_services import strip_comments

MIXED = SAMPLES / "mixed-all.rules"


def web(n: int = 3, cluster_ip: str = "10.96.10.20", **kw: object) -> GenPort:
    """default/web:http with ``n`` endpoints 10.244.1.10, .11, … (even ones local)."""
    eps = [GenEndpoint(f"10.244.1.{10 + i}", 8080, i % 2 == 0) for i in range(n)]
    return GenPort("default", "web", cluster_ip, 80, port_name="http", endpoints=eps, **kw)  # type: ignore[arg-type]


def dns() -> GenPort:
    return GenPort("kube-system", "kube-dns", "10.96.0.10", 53, port_name="dns", protocol="UDP",
                   endpoints=[GenEndpoint("10.244.1.2", 53, True), GenEndpoint("10.244.2.3", 53)])  # fmt: skip


def dump(*services: GenPort, node: NodeConfig | None = None, source: str = "gen.rules") -> Ruleset:
    return parse_ruleset(generate(list(services), node or NodeConfig()).render(), source=source)


def diff(old: Ruleset | str, new: Ruleset | str) -> ServiceDiff:
    a = parse_ruleset(old, source="old.rules") if isinstance(old, str) else old
    b = parse_ruleset(new, source="new.rules") if isinstance(new, str) else new
    return diff_services(a, b)


def only_change(d: ServiceDiff):  # type: ignore[no-untyped-def]
    assert not d.added and not d.removed and len(d.changed) == 1, diff_text(d)
    return d.changed[0]


def kernel_share_cascade(n: int) -> list[Fraction]:
    """Shares of kube-proxy's n-endpoint cascade, computed here from scratch: p_i = 1/(n-i) as kube-proxy
    prints it (%0.10f), stored by the kernel as round(p·2^31)/2^31; share_i = p_i · Π_{j<i}(1 − p_j)."""
    left, out = Fraction(1), []
    for i in range(n):
        p = Fraction(1) if i == n - 1 else Fraction(round(float(f"{1.0 / (n - i):0.10f}") * 2**31), 2**31)
        out.append(left * p)
        left -= left * p
    return out


# -- added, removed ---------------------------------------------------------------------------------------
def test_added_and_removed_service_ports() -> None:
    one, two = dump(web()), dump(web(), dns())
    d = diff(one, two)
    assert [s.name for s in d.added] == ["kube-system/kube-dns:dns"] and not d.removed and not d.changed
    assert [(o.name, n.name) for o, n in d.unchanged] == [("default/web:http", "default/web:http")]
    assert d.node.empty and not d.empty
    back = diff(two, one)
    assert [s.name for s in back.removed] == ["kube-system/kube-dns:dns"] and not back.added
    text = diff_text(d)
    assert "+ kube-system/kube-dns:dns  udp 10.96.0.10:53, 2 endpoints" in text.splitlines()
    assert "- kube-system/kube-dns:dns  udp 10.96.0.10:53, 2 endpoints" in diff_text(back).splitlines()


# -- scale ------------------------------------------------------------------------------------------------
def test_scale_up_gives_new_endpoints_and_exact_shares() -> None:
    c = only_change(diff(dump(web(3)), dump(web(5))))
    assert c.scale == (3, 5) and c.matched_by == "name"
    assert c.endpoints_added == ("10.244.1.13:8080", "10.244.1.14:8080") and c.endpoints_removed == ()
    old3, new5 = kernel_share_cascade(3), kernel_share_cascade(5)
    assert [(d.endpoint, d.field, d.old, d.new) for d in c.endpoint_changes] == [
        (f"10.244.1.{10 + i}:8080", "probability", old3[i], new5[i]) for i in range(3)]
    assert all(abs(float(d.old) - 1 / 3) < 1e-9 and abs(float(d.new) - 1 / 5) < 1e-9  # type: ignore[arg-type]
               for d in c.endpoint_changes)  # fmt: skip
    assert sum(old3) == 1 and sum(new5) == 1
    assert {e.address: e.probability for e in c.new.endpoints}["10.244.1.14:8080"] == new5[4]
    assert c.renames == () and c.fields == ()
    lines = diff_text(diff(dump(web(3)), dump(web(5)))).splitlines()
    assert "~ default/web:http: endpoints 3 → 5 (+10.244.1.13:8080 +10.244.1.14:8080)" in lines
    # 10.14: the share change names the endpoints whose shares changed
    assert "~ default/web:http: shares 33.3 % → 20.0 % for 10.244.1.10:8080 10.244.1.11:8080 10.244.1.12:8080" in lines


def test_scale_down_removes_endpoints_and_shares_grow() -> None:
    c = only_change(diff(dump(web(5)), dump(web(2))))
    assert c.scale == (5, 2)
    assert c.endpoints_removed == ("10.244.1.12:8080", "10.244.1.13:8080", "10.244.1.14:8080")
    assert c.endpoints_added == ()
    five = kernel_share_cascade(5)
    assert [(d.endpoint, d.old, d.new) for d in c.endpoint_changes] == [
        ("10.244.1.10:8080", five[0], Fraction(1, 2)), ("10.244.1.11:8080", five[1], Fraction(1, 2))]
    text = diff_text(diff(dump(web(5)), dump(web(2))))
    assert "~ default/web:http: endpoints 5 → 2 (-10.244.1.12:8080 -10.244.1.13:8080 -10.244.1.14:8080)" in text
    assert "~ default/web:http: shares 20.0 % → 50.0 % for 10.244.1.10:8080 10.244.1.11:8080\n" in text


def test_replaced_endpoint_keeps_the_count_and_the_shares() -> None:
    old = web(3)
    new = web(3)
    new.endpoints[1] = GenEndpoint("10.244.3.99", 8080, False)
    c = only_change(diff(dump(old), dump(new)))
    assert (c.endpoints_added, c.endpoints_removed) == (("10.244.3.99:8080",), ("10.244.1.11:8080",))
    assert c.endpoint_changes == () and c.scale == (3, 3)


def test_probability_edit_is_reported_per_endpoint() -> None:
    text = MIXED.read_text()
    edited = text.replace("0.33333333349", "0.25000000000", 1)
    c = next(c for c in diff(text, edited).changed)
    quarter = Fraction(1, 4)
    third = probability_of("0.33333333349")
    shares = {d.endpoint: (d.old, d.new) for d in c.endpoint_changes}
    first = c.old.endpoints[0].address
    assert first is not None and shares[first] == (third, quarter)
    assert sum(e.probability for e in c.new.endpoints) == 1  # type: ignore[misc]
    assert f"share of {first} 33.3 % → 25.0 %" in diff_text(diff(text, edited))


# -- renames ----------------------------------------------------------------------------------------------
def test_protocol_change_is_the_same_port_under_new_chains() -> None:
    c = only_change(diff(dump(web(2)), dump(web(2, protocol="UDP"))))
    assert c.matched_by == "name"
    assert [(f.field, f.old, f.new) for f in c.fields] == [("protocol", "tcp", "udp")]
    h_tcp, h_udp = port_proto_hash("default/web:http", "tcp"), port_proto_hash("default/web:http", "udp")
    own = [(r.kind, r.old, r.new) for r in c.renames if r.endpoint is None]
    assert own == [("SVC", f"KUBE-SVC-{h_tcp}", f"KUBE-SVC-{h_udp}")]
    seps = {r.endpoint: (r.old, r.new) for r in c.renames if r.kind == "SEP"}
    assert seps == {
        ep: ("KUBE-SEP-" + port_proto_hash("default/web:http", "tcp", ep),
             "KUBE-SEP-" + port_proto_hash("default/web:http", "udp", ep))
        for ep in ("10.244.1.10:8080", "10.244.1.11:8080")
    }  # fmt: skip
    assert c.endpoint_changes == () and not c.endpoints_added and not c.endpoints_removed
    text = diff_text(diff(dump(web(2)), dump(web(2, protocol="UDP"))))
    assert f"~ default/web:http: chain KUBE-SVC-{h_tcp} → KUBE-SVC-{h_udp}" in text
    assert "~ default/web:http: 2 endpoint chains renamed (10.244.1.10:8080: KUBE-SEP-" in text


def test_unnamed_port_hashed_the_old_way_is_a_rename() -> None:
    """Before 1.19 an unnamed port hashed as ``ns/name:``; the name recovered is the same, the chains not."""
    svc = GenPort("default", "plain", "10.96.5.5", 80, endpoints=[GenEndpoint("10.244.1.5", 80, True)])
    new_text = generate([svc], NodeConfig()).render()
    old_text = new_text
    for kind, h_new, h_old in (("SVC", chain_hash("default/plain", "tcp"), chain_hash("default/plain:", "tcp")),
                               ("SEP", chain_hash("default/plain", "tcp", "10.244.1.5:80"),
                                chain_hash("default/plain:", "tcp", "10.244.1.5:80"))):  # fmt: skip
        assert f"KUBE-{kind}-{h_new}" in old_text
        old_text = old_text.replace(f"KUBE-{kind}-{h_new}", f"KUBE-{kind}-{h_old}")
    c = only_change(diff(old_text, new_text))
    assert c.matched_by == "name" and c.old.name == c.new.name == "default/plain"
    assert {(r.kind, r.old[-16:], r.new[-16:]) for r in c.renames} == {
        ("SVC", chain_hash("default/plain:", "tcp"), chain_hash("default/plain", "tcp")),
        ("SEP", chain_hash("default/plain:", "tcp", "10.244.1.5:80"), chain_hash("default/plain", "tcp", "10.244.1.5:80")),
    }  # fmt: skip
    assert c.fields == () and c.endpoint_changes == ()


# -- policies ---------------------------------------------------------------------------------------------
def fields(d: ServiceDiff) -> dict[str, tuple[object, object]]:
    return {f.field: (f.old, f.new) for f in only_change(d).fields}


def test_external_traffic_policy_cluster_to_local() -> None:
    old = web(2, node_port=30080, external_policy="Cluster")
    new = web(2, node_port=30080, external_policy="Local", health_check_node_port=32000)
    d = diff(dump(old), dump(new))
    f = fields(d)
    assert f["external_traffic_policy"] == ("Cluster", "Local")
    assert f["health_check_node_port"] == (None, 32000)
    assert f["chains"] == (("SVC", "EXT"), ("SVC", "SVL", "EXT"))
    assert "internal_traffic_policy" not in f and "node_port" not in f
    text = diff_text(d)
    assert "~ default/web:http: externalTrafficPolicy Cluster → Local" in text
    assert "~ default/web:http: health-check NodePort none → 32000" in text


def test_session_affinity_on_and_off() -> None:
    on = diff(dump(web(2)), dump(web(2, affinity_timeout=10800)))
    assert fields(on) == {"affinity_timeout": (None, 10800)}
    assert only_change(on).endpoint_changes == ()  # affinity lookups are not part of the shares
    assert "~ default/web:http: session affinity off → ClientIP 10800 s" in diff_text(on)
    off = diff(dump(web(2, affinity_timeout=60)), dump(web(2)))
    assert fields(off) == {"affinity_timeout": (60, None)}
    assert "session affinity ClientIP 60 s → off" in diff_text(off)


def test_node_port_change() -> None:
    d = diff(dump(web(2, node_port=30080)), dump(web(2, node_port=30081)))
    assert fields(d) == {"node_port": (30080, 30081)}
    assert "~ default/web:http: NodePort 30080 → 30081" in diff_text(d)


def test_addresses_source_ranges_and_internal_policy() -> None:
    old = web(2, node_port=30080, lb_ips=["192.0.2.20"], external_ips=["198.51.100.7"])
    new = web(2, node_port=30080, lb_ips=["192.0.2.21"], lb_source_ranges=["203.0.113.0/24"],
              internal_policy="Local")  # fmt: skip
    f = fields(diff(dump(old), dump(new)))
    assert f["load_balancer_ips"] == (("192.0.2.20",), ("192.0.2.21",))
    assert f["external_ips"] == (("198.51.100.7",), ())
    assert f["source_ranges"] == ((), ("203.0.113.0/24",))
    assert f["internal_traffic_policy"] == ("Cluster", "Local")
    text = diff_text(diff(dump(old), dump(new)))
    assert "~ default/web:http: load-balancer IPs +192.0.2.21 -192.0.2.20" in text
    assert "~ default/web:http: loadBalancerSourceRanges +203.0.113.0/24" in text


def test_cluster_ip_and_no_endpoints_state() -> None:
    d = diff(dump(web(2)), dump(web(0, cluster_ip="10.96.10.21")))
    c = only_change(d)
    f = {x.field: (x.old, x.new) for x in c.fields}
    assert f["cluster_ip"] == ("10.96.10.20", "10.96.10.21") and f["no_endpoints"] == (False, True)
    assert c.endpoints_removed == ("10.244.1.10:8080", "10.244.1.11:8080") and c.scale == (2, 0)


def test_endpoint_locality_change() -> None:
    old = web(2, external_policy="Local", node_port=30080)
    new = web(2, external_policy="Local", node_port=30080)
    new.endpoints[0] = GenEndpoint("10.244.1.10", 8080, False)
    c = only_change(diff(dump(old), dump(new)))
    assert [(d.endpoint, d.field, d.old, d.new) for d in c.endpoint_changes
            if d.field == "local"] == [("10.244.1.10:8080", "local", True, False)]  # fmt: skip
    assert "~ default/web:http: endpoint 10.244.1.10:8080 local → remote" in diff_text(
        diff(dump(old), dump(new)))  # fmt: skip


# -- noise that must not show -----------------------------------------------------------------------------
def _noisy(text: str, seed: int) -> str:
    """``text`` with every counter changed and the rules of nat and filter KUBE-SERVICES shuffled (each within
    its own table)."""
    rng = random.Random(seed)
    text = re.sub(r"^\[\d+:\d+\]", lambda _: f"[{rng.randrange(10**6)}:{rng.randrange(10**9)}]", text, flags=re.MULTILINE)
    text = re.sub(r"^(:\S+ \S+) \[\d+:\d+\]", lambda m: f"{m.group(1)} [{rng.randrange(99)}:{rng.randrange(9999)}]",
                  text, flags=re.MULTILINE)  # fmt: skip
    lines = text.splitlines(keepends=True)
    tables = [i for i, line in enumerate(lines) if line.startswith("*")] + [len(lines)]
    for start, end in itertools.pairwise(tables):
        idx = [i for i in range(start, end) if re.match(r"(\[\d+:\d+\] )?-A KUBE-SERVICES ", lines[i])]
        moved = [lines[i] for i in idx]
        rng.shuffle(moved)
        for i, line in zip(idx, moved):
            lines[i] = line
    return "".join(lines)


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_rule_order_and_counters_are_noise(path: Path) -> None:
    text = path.read_text()
    noisy = _noisy(text, seed=len(text))

    def portals(t: str) -> list[str]:
        return [line.partition("] ")[2] for line in t.splitlines() if "] -A KUBE-SERVICES " in line]

    assert portals(noisy) != portals(text) and sorted(portals(noisy)) == sorted(portals(text))
    assert noisy.count("[0:0]") < text.count("[0:0]")
    d = diff(text, noisy)
    assert d.empty, diff_text(d)
    assert len(d.unchanged) == d.old_count == d.new_count > 0


@pytest.mark.parametrize("large_cluster", [False, True], ids=["no-comments", "large-cluster"])
@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_comment_stripped_copy_is_the_same_node(path: Path, large_cluster: bool) -> None:
    text = path.read_text()
    stripped = strip_comments(text, large_cluster=large_cluster)
    assert stripped != text
    ports = len(service_index_of(parse_ruleset(text)))
    for d in (diff(text, stripped), diff(stripped, text)):
        assert d.empty, diff_text(d)
        # every port is matched; a nameless port without endpoints may come in several pieces (one per address)
        assert len(d.unchanged) == ports


def test_nameless_ports_are_matched_by_hash_and_changes_still_show() -> None:
    text = (SAMPLES / "clusterip.rules").read_text()
    grown = strip_comments(text.replace('-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> '
                                        '10.244.2.13:8080" -j KUBE-SEP', "-A KUBE-SVC-CDGGSHYLG3RE2FKL -j KUBE-SEP"))
    grown = re.sub(r"(-A KUBE-SVC-CDGGSHYLG3RE2FKL -m statistic --mode random) --probability 0.50000000000",
                   r"\1 --probability 0.60000000000", grown)
    assert grown.count("0.60000000000") == 1
    d = diff(text, grown)
    c = only_change(d)
    assert c.matched_by == "hash" and c.new.name is None and c.label == "default/web:http"
    assert {x.endpoint for x in c.endpoint_changes} == {"10.244.1.12:8080", "10.244.2.13:8080"}


def test_nameless_ports_with_new_chains_fall_back_to_the_cluster_ip() -> None:
    text = strip_comments((SAMPLES / "clusterip.rules").read_text())
    renamed = text.replace("CDGGSHYLG3RE2FKL", "AAAAAAAAAAAAAAAA")
    c = only_change(diff(text, renamed))
    assert c.matched_by == "address" and c.old.cluster_ip == c.new.cluster_ip == "10.96.10.20"
    assert [(r.kind, r.old, r.new) for r in c.renames] == [
        ("SVC", "KUBE-SVC-CDGGSHYLG3RE2FKL", "KUBE-SVC-AAAAAAAAAAAAAAAA")]
    assert c.label == "?AAAAAAAAAAAAAAAA"


def test_two_named_ports_on_one_address_are_not_matched() -> None:
    old = web(2)
    new = GenPort("default", "site", "10.96.10.20", 80, port_name="http",
                  endpoints=[GenEndpoint("10.244.1.10", 8080, True)])  # fmt: skip
    d = diff(dump(old), dump(new))
    assert [s.name for s in d.removed] == ["default/web:http"] and [s.name for s in d.added] == ["default/site:http"]


# -- node level -------------------------------------------------------------------------------------------
def test_node_level_rules_and_layout() -> None:
    old = dump(web(2))
    new_text = generate([web(2)], NodeConfig(random_fully=True)).render()
    new_text = new_text.replace("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n", "")
    d = diff(old, new_text)
    assert not d.added and not d.removed and not d.changed
    assert [(f.field, f.old, f.new) for f in d.node.layout] == [("random_fully", False, True)]
    masquerade = '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
    assert [(r.table, r.chain, r.text) for r in d.node.rules_added] == [
        ("nat", "KUBE-POSTROUTING", masquerade + " --random-fully")]
    assert [(r.table, r.chain, r.text.endswith("-j MASQUERADE")) for r in d.node.rules_removed] == [
        ("filter", "KUBE-FORWARD", False), ("nat", "KUBE-POSTROUTING", True)]
    text = diff_text(d)
    assert "- node: filter KUBE-FORWARD: -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP" in text
    assert "~ node: MASQUERADE --random-fully no → yes" in text


def test_era_change_and_fixed_chains() -> None:
    d = diff((SAMPLES / "kube-1.22-legacy.rules").read_text(), MIXED.read_text())
    layout = {f.field: (f.old, f.new) for f in d.node.layout}
    assert layout["era"] == ("1.21-1.23", "1.25+") and layout["backend"] == ("legacy", "nf_tables")
    assert ("filter", "KUBE-PROXY-FIREWALL") in d.node.chains_added
    assert ("nat", "KUBE-MARK-DROP") in d.node.chains_removed
    assert any(r.chain == "KUBE-FIREWALL" and "0x8000/0x8000" in r.text for r in d.node.rules_removed)
    # the 1.22 layout cannot tell internalTrafficPolicy: unknown is not a change
    assert all(f.field != "internal_traffic_policy" for c in d.changed for f in c.fields)


def test_duplicate_node_rules_count_as_a_multiset() -> None:
    text = MIXED.read_text()
    rule = next(line for line in text.splitlines() if "-A KUBE-MARK-MASQ " in line)
    doubled = text.replace(rule + "\n", rule + "\n" + rule + "\n")
    d = diff(text, doubled)
    assert [(r.chain, r.count) for r in d.node.rules_added] == [("KUBE-MARK-MASQ", 1)] and not d.node.rules_removed


# -- reports ----------------------------------------------------------------------------------------------
def test_json_form_is_stable_and_exact() -> None:
    d = diff(dump(web(3), dns()), dump(web(5)))
    data = json.loads(json.dumps(diff_to_dict(d)))
    assert data["format"] == "kptui.diff/1"
    assert set(data) == {"format", "old", "new", "identical", "filtered", "counts", "added", "removed", "changed",
                         "node", "mode_switch"}  # fmt: skip
    assert data["mode_switch"] is None and data["old"]["mode"] == data["new"]["mode"] == "iptables"
    assert data["counts"] == {"added": 0, "removed": 1, "changed": 1, "unchanged": 0}
    assert data["identical"] is False and data["removed"][0]["name"] == "kube-system/kube-dns:dns"
    (c,) = data["changed"]
    assert set(c) == {"label", "name", "protocol", "chain_hash", "old_chain_hash", "matched_by", "endpoints",
                      "endpoint_changes", "renames", "changes"}  # fmt: skip
    assert c["endpoints"] == {"old": 3, "new": 5, "added": ["10.244.1.13:8080", "10.244.1.14:8080"], "removed": []}
    three, five = kernel_share_cascade(3), kernel_share_cascade(5)
    first = c["endpoint_changes"][0]
    assert first["old_exact"] == f"{three[0].numerator}/{three[0].denominator}"
    assert first["new_exact"] == f"{five[0].numerator}/{five[0].denominator}"
    assert first["old"] == float(three[0]) and set(first) == {"endpoint", "field", "old", "new", "old_exact",
                                                               "new_exact"}  # fmt: skip
    assert set(data["node"]) == {"layout", "chains_added", "chains_removed", "rules_added", "rules_removed"}


def test_filter_keeps_matching_ports_and_drops_the_node_section() -> None:
    d = diff(dump(web(3), dns()), dump(web(5), node=NodeConfig(random_fully=True)))
    assert not d.node.empty and len(d.removed) == 1 and len(d.changed) == 1
    web_only = d.only(lambda s: matches_filter(s, "web"))
    assert web_only.removed == () and len(web_only.changed) == 1 and web_only.node.empty and web_only.filtered
    by_ip = d.only(lambda s: matches_filter(s, "10.96.0.10"))
    assert [s.name for s in by_ip.removed] == ["kube-system/kube-dns:dns"] and by_ip.changed == ()
    assert d.only(lambda s: matches_filter(s, "nothing-like-this")).empty


def test_text_never_carries_terminal_escapes() -> None:
    text = MIXED.read_text()
    rule = next(line for line in text.splitlines() if "-A KUBE-MARK-MASQ " in line)
    evil = text.replace(rule + "\n", rule + '\n-A KUBE-MARK-MASQ -m comment --comment "\x1b[31mSNAT\x07" -j RETURN\n')
    d = diff(text, evil)
    assert [r.chain for r in d.node.rules_added] == ["KUBE-MARK-MASQ"]
    out = diff_text(d)
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[31mSNAT\\x07" in out
