"""Every sample against what it was built from (samples/scenarios.py), and kubegen's restore input against the
real kernel's save output: the same services must come back from either."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import parse_ruleset, parse_ruleset_bytes
from kptui.engine.kube import ServicePort, build_service_index
from kptui.engine.kube.report import service_to_dict
from samples.scenarios import SCENARIOS, Scenario
from tools.kubegen import ServicePort as Spec
from tools.kubegen import generate

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _expect(spec: Spec, sc: Scenario) -> dict[str, object]:
    """What kube-proxy's rules for ``spec`` say, following the generator's (and proxier.go's) logic."""
    modern = sc.layout == "modern"
    if modern:
        cluster = spec.endpoints if (not spec.itp_local or spec.externally_accessible) else []
        local = [e for e in spec.endpoints if e.local] if (spec.itp_local or spec.etp_local) else []
        reachable = [e for e in spec.endpoints if e in cluster or e in local]
    else:
        reachable = list(spec.endpoints)
        local = [e for e in spec.endpoints if e.local]
    has = bool(reachable)
    knows_local = (spec.etp_local or spec.itp_local) if modern else spec.etp_local
    ext = {"external_ips": spec.external_ips, "load_balancer_ips": spec.lb_ips, "external_or_lb_ips": []}
    if not has:  # only filter rules: external and load-balancer IPs look alike
        ext = {"external_ips": [], "load_balancer_ips": [], "external_or_lb_ips": [*spec.external_ips, *spec.lb_ips]}
    return {
        "name": spec.svc_port_name, "protocol": spec.proto, "cluster_ip": spec.cluster_ip, "port": spec.port,
        "node_port": spec.node_port or None, "health_check_node_port": spec.health_check_node_port or None,
        **ext, "source_ranges": spec.lb_source_ranges if has and spec.lb_ips else [],
        "external_traffic_policy": spec.external_policy if has and spec.externally_accessible else None,
        "internal_traffic_policy": spec.internal_policy if has and modern else None,
        "affinity_timeout": spec.affinity_timeout if has else None,
        "endpoints": sorted(e.addr for e in reachable),
        "local": {e.addr: (e.local if knows_local else None) for e in reachable},
        "no_endpoints": not has,
        "no_local_endpoints": bool(has and knows_local and not local),
    }


def _got(s: ServicePort) -> dict[str, object]:
    d = service_to_dict(s)
    out = {k: d[k] for k in ("name", "protocol", "cluster_ip", "port", "node_port", "health_check_node_port",
                             "external_ips", "load_balancer_ips", "external_or_lb_ips", "source_ranges",
                             "external_traffic_policy", "internal_traffic_policy", "affinity_timeout",
                             "no_endpoints", "no_local_endpoints")}  # fmt: skip
    out["endpoints"] = sorted(e.address for e in s.endpoints if e.address)
    out["local"] = {e.address: e.local for e in s.endpoints}
    return out


IPTABLES_MODE = [sc for sc in SCENARIOS if sc.layout != "ipvs"]  # IPVS mode: tests/test_kube_ipvs.py


@pytest.mark.parametrize("sc", IPTABLES_MODE, ids=lambda sc: sc.name)
def test_sample_matches_its_scenario(sc: Scenario) -> None:
    index = build_service_index(parse_ruleset_bytes((SAMPLES / f"{sc.name}.rules").read_bytes()))
    assert sorted(s.name or "?" for s in index) == sorted(spec.svc_port_name for spec in sc.services)
    for spec in sc.services:
        (svc,) = index.by_name(spec.svc_port_name) if ":" in spec.svc_port_name else [
            s for s in index.by_name(spec.svc_port_name) if s.name == spec.svc_port_name]
        assert _got(svc) == _expect(spec, sc), spec.svc_port_name
        n = len([e for e in svc.endpoints if e.probability is not None])
        assert all(abs(float(e.probability) - 1 / n) < 1e-9 for e in svc.endpoints if e.probability is not None)


def _comparable(s: ServicePort) -> dict[str, object]:
    d = service_to_dict(s)
    d["blocking_rules"] = [{k: v for k, v in b.items() if k not in ("line", "index")} for b in d["blocking_rules"]]
    return d


@pytest.mark.parametrize("sc", IPTABLES_MODE, ids=lambda sc: sc.name)
def test_restore_input_and_kernel_output_give_the_same_services(sc: Scenario) -> None:
    """kubegen writes kube-proxy's restore input (options in kube-proxy's order, no /32, 10-decimal
    probabilities); the kernel saved it back canonically. Both must give the same index."""
    restore = generate(sc.services, sc.node, sc.layout).render()
    from_restore = build_service_index(parse_ruleset(restore))
    from_kernel = build_service_index(parse_ruleset_bytes((SAMPLES / f"{sc.name}.rules").read_bytes()))
    assert [_comparable(s) for s in from_restore] == [_comparable(s) for s in from_kernel]
    assert from_restore.layout.era == from_kernel.layout.era
    assert from_restore.layout.local_detector == from_kernel.layout.local_detector
