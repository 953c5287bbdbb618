"""The nft lab and harness on a real kernel: KERNEL facts only, independent of the engine.

For kube-proxy's nftables mode (tools/kubegen_nft.py, layout 1.33 unless named), a guard table sharing its
hooks, and a mixed node (kube-proxy in iptables mode through iptables-nft next to a firewalld-like table), each
test sends real packets and asserts what the kernel did: the endpoint the echo server answered from, whether it
saw the client's address (masquerade) where kube-proxy's design says, drops and rejects in the chains that do
them, and the order in which the kernel ran the base chains (``nft monitor trace``).
"""

from __future__ import annotations

import re

import pytest

from kptui.engine.kernel_trace import KernelEvent, KernelTrace, first_packet, parse_kernel_trace
from tools.netlab import Probe
from tools.netlab_nft import NftLab

from .nft_fixtures import (
    ALLOWED,
    API,
    BROKEN,
    BROKEN_NP,
    CART,
    CHECKOUT_LOCAL,
    CHECKOUT_NP,
    DEAD_DNS,
    DENIED,
    DNS,
    DNS_EPS,
    FRONTEND_EPS,
    FRONTEND_NP,
    GUARD_BLOCKED,
    GUARD_FORWARD_TO,
    INGRESS_LB,
    INGRESS_LOCAL,
    LEGACY_EPS,
    LEGACY_NP,
    MATCHMAKER,
    NODE,
    OK,
    OUTSIDE,
    PAYMENTS_LB,
    PAYMENTS_NP,
    POD,
    POD_GW,
    SYSLOG_EPS,
    SYSLOG_NP,
    UNALLOCATED,
    WEB,
    WEB6,
    WEB_EPS,
)
from .nft_harness import NftKernelLab, NftObservation, Send, base_chains_of

pytestmark = pytest.mark.kernel


# -- helpers ---------------------------------------------------------------------------------------------------
def walk(obs: object) -> KernelTrace:
    assert isinstance(obs, NftObservation)
    assert obs.kernel is not None, f"not captured: {obs.describe()} warnings {obs.warnings}\n{obs.capture[:3000]}"
    return obs.kernel


def visits(k: KernelTrace) -> list[str]:
    """``HOOK table/base-chain`` of every base chain visit, in order (see NftObservation.visits)."""
    out: dict[tuple[str, int | None], str] = {}
    for e in k.events:
        out.setdefault((e.trace_id, e.packet.line if e.packet else None), f"{e.hook} {e.table}/{e.chain}")
    return list(out.values())


def rules(k: KernelTrace, chain_prefix: str = "") -> list[KernelEvent]:
    return [e for e in k.events if e.kind == "rule" and e.chain.startswith(chain_prefix)]


def has_rule(k: KernelTrace, text: str, verdict: str | None = None) -> bool:
    return any(text in (e.rule_text or "") and verdict in (None, e.verdict) for e in rules(k))


def served(obs: NftObservation) -> str | None:
    """``IP:PORT`` ([IP]:PORT) of the echo server that answered."""
    if not obs.result.served:
        return None
    ip, port = obs.result.served
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def answered_from_endpoint(obs: object) -> KernelTrace:
    """The kernel DNATed to an endpoint and that endpoint's echo server answered."""
    k = walk(obs)
    assert isinstance(obs, NftObservation)
    assert k.verdict == "ACCEPT" and k.endpoint is not None, obs.describe()
    assert obs.result.ok and served(obs) == k.endpoint, f"{obs.describe()}: kernel DNATed to {k.endpoint}"
    return k


def stopped(obs: object, verdict: str, chain: str, hook: str) -> KernelEvent:
    """The kernel ended the walk with ``verdict`` in a chain starting with ``chain`` at ``hook``."""
    k = walk(obs)
    assert k.verdict == verdict, f"{obs.describe()}: kernel {k.verdict}"  # type: ignore[attr-defined]
    last = k.events[-1]
    assert last.chain.startswith(chain) and last.hook == hook and last.verdict == "DROP", last
    return last


# -- ClusterIP -------------------------------------------------------------------------------------------------
def test_pod_to_cluster_ip_reaches_several_endpoints_unmasqueraded(clusterip_nft: NftKernelLab) -> None:
    seen = clusterip_nft.observe_until(Send("pod", "tcp", *WEB),
                                       lambda obs: len({o.kernel.endpoint for o in obs if o.kernel}) >= 2, batch=6)
    assert len({o.kernel.endpoint for o in seen if o.kernel}) >= 2, "numgen picked one endpoint only"
    for obs in seen:
        k = answered_from_endpoint(obs)
        assert k.endpoint in WEB_EPS and not k.masquerade and obs.result.peer and obs.result.peer[0] == POD
        assert visits(k) == ["PREROUTING kube-proxy/filter-prerouting-pre-dnat", "PREROUTING kube-proxy/nat-prerouting",
                             "FORWARD kube-proxy/filter-forward", "POSTROUTING kube-proxy/nat-postrouting"]
        (lb,) = [e for e in rules(k) if "numgen random mod 3 vmap" in (e.rule_text or "")]
        assert lb.verdict == "GOTO" and lb.target and lb.target.endswith(k.endpoint.replace(":", "/"))
        assert not rules(k, "mark-for-masquerade"), "pod traffic is not marked"


def test_pod_to_cluster_ip_udp(clusterip_nft: NftKernelLab) -> None:
    (obs,) = clusterip_nft.observe([Send("pod", "udp", *DNS)])
    k = answered_from_endpoint(obs)
    assert k.endpoint in DNS_EPS and obs.result.peer and obs.result.peer[0] == POD


def test_node_to_cluster_ip_is_masqueraded(clusterip_nft: NftKernelLab) -> None:
    (obs,) = clusterip_nft.observe([Send("node", "tcp", *WEB)])
    k = answered_from_endpoint(obs)
    assert k.masquerade and obs.result.peer and obs.result.peer[0] in (NODE, POD_GW)
    assert has_rule(k, "ip daddr 10.96.10.20 ip saddr != 10.244.0.0/16 jump mark-for-masquerade", "JUMP")
    assert visits(k)[:3] == ["OUTPUT kube-proxy/filter-output-pre-dnat", "OUTPUT kube-proxy/nat-output",
                             "OUTPUT kube-proxy/filter-output"]


def test_node_to_its_own_api_server_loops_through_lo(clusterip_nft: NftKernelLab) -> None:
    (obs,) = clusterip_nft.observe([Send("node", "tcp", *API)])
    k = answered_from_endpoint(obs)
    assert k.endpoint == "10.0.0.2:6443" and k.delivery == "local" and k.masquerade
    assert len(k.ids) == 2, "the lo half has a trace id of its own"
    lo = [e for e in k.events if e.trace_id == k.ids[1]]
    assert {e.hook for e in lo} == {"PREROUTING", "INPUT"} and not any(e.chain == "nat-prerouting" for e in lo)
    assert k.packets[-1].sport != k.packets[0].sport, "masquerade fully-random gave the lo half a new source port"
    assert obs.result.peer and obs.result.peer[0] == NODE


def test_unknown_port_is_rejected_and_unallocated_address_dropped(clusterip_nft: NftKernelLab) -> None:
    port81, unalloc, node81 = clusterip_nft.observe([Send("pod", "tcp", WEB[0], 81), Send("pod", "tcp", *UNALLOCATED),
                                                     Send("node", "tcp", WEB[0], 81)])  # fmt: skip
    last = stopped(port81, "REJECT", "cluster-ips-check", "FORWARD")
    assert last.rule_text == 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'
    assert port81.result.error == "refused"
    last = stopped(unalloc, "DROP", "cluster-ips-check", "FORWARD")
    assert last.rule_text == 'ip daddr 10.96.0.0/12 drop comment "Drop traffic to unallocated ClusterIPs"'
    assert unalloc.result.error == "timeout"
    stopped(node81, "REJECT", "cluster-ips-check", "OUTPUT")
    assert visits(walk(node81))[-1] == "OUTPUT kube-proxy/filter-output"


def test_layout_131_runs_its_filter_chains_where_it_hooked_them(clusterip_nft_131: NftKernelLab) -> None:
    pod, node81 = clusterip_nft_131.observe([Send("pod", "tcp", *WEB), Send("node", "tcp", WEB[0], 81)])
    k = answered_from_endpoint(pod)
    assert visits(k) == ["PREROUTING kube-proxy/filter-prerouting", "PREROUTING kube-proxy/nat-prerouting",
                         "FORWARD kube-proxy/filter-forward", "POSTROUTING kube-proxy/nat-postrouting"]
    assert next(e.order for e in k.events if e.chain == "filter-forward") == (-110, -110)
    stopped(node81, "REJECT", "cluster-ips-check", "OUTPUT")
    assert visits(walk(node81)) == ["OUTPUT kube-proxy/filter-output", "OUTPUT kube-proxy/nat-output",
                                    "OUTPUT kube-proxy/filter-output-post-dnat"]


# -- NodePort --------------------------------------------------------------------------------------------------
def test_nodeport_etp_cluster_is_masqueraded(nodeport_nft: NftKernelLab) -> None:
    out_tcp, out_udp, node, pod = nodeport_nft.observe([
        Send("outside", "tcp", NODE, FRONTEND_NP), Send("outside", "udp", NODE, SYSLOG_NP),
        Send("node", "tcp", NODE, FRONTEND_NP), Send("pod", "tcp", NODE, FRONTEND_NP)])  # fmt: skip
    for obs, eps in ((out_tcp, FRONTEND_EPS), (out_udp, SYSLOG_EPS), (node, FRONTEND_EPS), (pod, FRONTEND_EPS)):
        k = answered_from_endpoint(obs)
        assert k.endpoint in eps and k.masquerade, obs.describe()
        assert obs.result.peer and obs.result.peer[0] in (NODE, POD_GW), "the endpoint sees the node"
        assert has_rule(k, "meta l4proto . th dport vmap @service-nodeports", "GOTO")
        assert any(e.chain.startswith("external-") and e.rule_text == "jump mark-for-masquerade" for e in rules(k))


def test_nodeport_is_not_served_on_localhost(nodeport_nft: NftKernelLab) -> None:
    (obs,) = nodeport_nft.observe([Send("node", "tcp", "127.0.0.1", FRONTEND_NP)])
    k = walk(obs)
    assert k.endpoint is None and k.verdict == "ACCEPT" and k.delivery == "local"
    assert obs.result.error == "refused", "nodeport-ips holds only the node IP: no DNAT, no listener"


def test_nodeport_etp_local_keeps_the_client_address(local_nft: NftKernelLab) -> None:
    seen = local_nft.observe([Send("outside", "tcp", NODE, CHECKOUT_NP)] * 4)
    for obs in seen:
        k = answered_from_endpoint(obs)
        assert k.endpoint == CHECKOUT_LOCAL and not k.masquerade, "only the local endpoint, never masqueraded"
        assert obs.result.peer and obs.result.peer[0] == OUTSIDE
        assert any(e.verdict == "GOTO" and (e.target or "").startswith("local-") for e in rules(k, "external-"))


def test_nodeport_etp_local_without_local_endpoints(local_nft: NftKernelLab) -> None:
    outside, pod, node = local_nft.observe([Send("outside", "tcp", NODE, LEGACY_NP), Send("pod", "tcp", NODE, LEGACY_NP),
                                            Send("node", "tcp", NODE, CHECKOUT_NP)])  # fmt: skip
    last = stopped(outside, "DROP", "nodeport-endpoints-check", "INPUT")
    assert last.rule_text == "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"
    assert walk(outside).endpoint is None and outside.result.error == "timeout"
    k = answered_from_endpoint(pod)
    assert k.endpoint in LEGACY_EPS and not k.masquerade and pod.result.peer and pod.result.peer[0] == POD
    assert has_rule(k, 'comment "short-circuit pod traffic"', "GOTO")
    k = answered_from_endpoint(node)
    assert k.masquerade and has_rule(k, 'comment "masquerade local traffic"', "JUMP")
    assert has_rule(k, 'comment "short-circuit local traffic"', "GOTO")


# -- no endpoints ----------------------------------------------------------------------------------------------
def test_services_without_endpoints_are_rejected(noep_nft: NftKernelLab) -> None:
    pod, outside_np, node = noep_nft.observe([Send("pod", "tcp", *BROKEN), Send("outside", "tcp", NODE, BROKEN_NP),
                                              Send("node", "tcp", *BROKEN)])  # fmt: skip
    (udp,) = noep_nft.observe([Send("pod", "udp", *DEAD_DNS)])
    for obs, hook in ((pod, "FORWARD"), (outside_np, "INPUT"), (node, "OUTPUT"), (udp, "FORWARD")):
        last = stopped(obs, "REJECT", "reject-chain", hook)
        assert last.rule_text == "reject" and obs.result.error == "refused", obs.describe()
        assert any(e.verdict == "GOTO" and e.target == "reject-chain" for e in walk(obs).events)


def test_masquerade_all_masquerades_pod_traffic(noep_nft: NftKernelLab) -> None:
    (obs,) = noep_nft.observe([Send("pod", "tcp", *OK)])
    k = answered_from_endpoint(obs)
    assert k.masquerade and obs.result.peer and obs.result.peer[0] == POD_GW
    assert has_rule(k, "ip daddr 10.96.40.20 jump mark-for-masquerade", "JUMP")


# -- loadBalancerSourceRanges ----------------------------------------------------------------------------------
def test_load_balancer_source_ranges(lb_nft: NftKernelLab) -> None:
    allowed, denied, pod, node, np_denied, ingress, ingress_denied = lb_nft.observe([
        Send("outside", "tcp", *PAYMENTS_LB, src=ALLOWED), Send("outside", "tcp", *PAYMENTS_LB, src=DENIED),
        Send("pod", "tcp", *PAYMENTS_LB), Send("node", "tcp", *PAYMENTS_LB),
        Send("outside", "tcp", NODE, PAYMENTS_NP, src=DENIED), Send("outside", "tcp", *INGRESS_LB, src=ALLOWED),
        Send("outside", "tcp", *INGRESS_LB, src=DENIED)])  # fmt: skip
    for obs in (allowed, node, np_denied):
        k = answered_from_endpoint(obs)
        assert k.masquerade, "eTP=Cluster"
    assert has_rule(walk(allowed), "ip daddr . meta l4proto . th dport vmap @firewall-ips", "GOTO")
    for obs in (denied, pod, ingress_denied):
        last = stopped(obs, "DROP", "firewall-", "PREROUTING")
        assert last.rule_text and last.rule_text.startswith("ip saddr != ")
        assert not any(e.chain == "nat-prerouting" for e in walk(obs).events), "dropped before DNAT"
    k = answered_from_endpoint(ingress)
    assert k.endpoint == INGRESS_LOCAL and not k.masquerade and ingress.result.peer == (ALLOWED, ingress.sport)


# -- session affinity ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("proto", "service"), [("tcp", CART), ("udp", MATCHMAKER)])
def test_session_affinity_sticks_until_the_set_is_flushed(affinity_nft: NftKernelLab, proto: str,
                                                          service: tuple[str, int]) -> None:  # fmt: skip
    (first,) = affinity_nft.observe([Send("pod", proto, *service)])
    k = answered_from_endpoint(first)
    assert any("numgen random" in (e.rule_text or "") for e in rules(k)), "a first packet is balanced"
    assert any(e.rule_text and e.rule_text.startswith("update @affinity-") for e in rules(k, "endpoint-"))
    assert re.search(r"set affinity-[^{]*\{[^}]*elements = \{ " + re.escape(POD), first.nft), "the set learnt it"
    assert first.nft_before.count("elements = {") < first.nft.count("elements = {")
    for obs in affinity_nft.observe([Send("pod", proto, *service)] * 3, fresh=False):
        again = answered_from_endpoint(obs)
        assert again.endpoint == k.endpoint, "sticks to the first endpoint"
        hit = [e for e in rules(again, "service-") if e.rule_text and e.rule_text.startswith("ip saddr @affinity-")]
        assert hit and hit[0].verdict == "GOTO" and not any("numgen" in (e.rule_text or "") for e in rules(again))
    assert affinity_nft.nftlab.flush_dynamic_sets(), "the affinity sets are dynamic sets"
    (fresh,) = affinity_nft.observe([Send("pod", proto, *service)])
    assert any("numgen random" in (e.rule_text or "") for e in rules(walk(fresh))), "forgotten: balanced again"


# -- a second native table at the same hooks -------------------------------------------------------------------
def test_guard_table_drops_one_endpoint_before_kube_proxys_forward_chain(guard_nft: NftKernelLab) -> None:
    blocked = f"{GUARD_BLOCKED[0]}:{GUARD_BLOCKED[1]}"
    seen = guard_nft.observe_until(Send("outside", "tcp", NODE, FRONTEND_NP),
                                   lambda obs: {o.kernel.endpoint for o in obs if o.kernel} >= FRONTEND_EPS, batch=6)
    assert {o.kernel.endpoint for o in seen if o.kernel} >= FRONTEND_EPS
    for obs in seen:
        k = walk(obs)
        assert not any(e.chain == "port-forward" for e in k.events), "no nat chain runs after kube-proxy's DNAT"
        assert has_rule(k, 'comment "runs after every nat chain"'), "priority -95 sees the DNATed address"
        if k.endpoint == blocked:
            last = stopped(obs, "DROP", "deny", "FORWARD")
            assert last.table == "guard" and not any(e.chain == "filter-forward" for e in k.events)
        else:
            answered_from_endpoint(obs)
            fwd = [v for v in visits(k) if v.startswith("FORWARD")]
            assert fwd == ["FORWARD guard/deny", "FORWARD kube-proxy/filter-forward"], "-10 before 0"


def test_guard_table_marks_before_kube_proxy_and_nat_chains_run_at_the_nat_hook(guard_nft: NftKernelLab) -> None:
    tagged, forwarded = guard_nft.observe([Send("outside", "tcp", "10.96.20.10", 80),
                                           Send("outside", "tcp", NODE, 30999)])  # fmt: skip
    k = walk(tagged)  # answered, or dropped by the guard when DNATed to the blocked endpoint
    assert k.endpoint in FRONTEND_EPS and has_rule(k, "meta mark set meta mark | 0x00000100", "CONTINUE")
    assert re.search(rf"trace id {k.id} ip kube-proxy filter-prerouting-pre-dnat policy accept meta mark 0x00000100",
                     tagged.capture), "kube-proxy's chain saw the guard's mark"
    k = answered_from_endpoint(forwarded)
    assert k.endpoint == f"{GUARD_FORWARD_TO[0]}:{GUARD_FORWARD_TO[1]}" and not k.masquerade
    pre = [v for v in visits(k) if v.startswith("PREROUTING")]
    assert pre == ["PREROUTING guard/tag", "PREROUTING kube-proxy/filter-prerouting-pre-dnat",
                   "PREROUTING kube-proxy/nat-prerouting", "PREROUTING guard/port-forward",
                   "PREROUTING guard/after-nat"], "the nat chain at -90 ran before the filter chain at -95"


# -- a mixed node: iptables-nft and a native inet table --------------------------------------------------------
def test_mixed_node_service_traffic_passes_both(mixed_nft: NftKernelLab) -> None:
    pod, outside = mixed_nft.observe([Send("pod", "tcp", *WEB), Send("outside", "tcp", NODE, FRONTEND_NP)])
    k = answered_from_endpoint(pod)
    assert k.endpoint in WEB_EPS and not k.masquerade
    assert any(e.table == "nat" and e.hook == "PREROUTING" and "dnat to" in (e.rule_text or "") for e in k.events)
    fwd = [v for v in visits(k) if v.startswith("FORWARD")]
    assert fwd == ["FORWARD mangle/FORWARD", "FORWARD filter/FORWARD", "FORWARD firewalld/filter_FORWARD"]
    assert has_rule(k, "ct status dnat accept", "ACCEPT")
    assert not any(e.chain == "nat_PREROUTING" for e in k.events), "the iptables DNAT came first"
    k = answered_from_endpoint(outside)
    assert k.masquerade and k.endpoint in FRONTEND_EPS
    assert not any(e.chain == "nat_POSTROUTING" for e in k.events), "nor does firewalld's srcnat run after MASQUERADE"


def test_mixed_node_firewalld_rejects_what_it_does_not_open(mixed_nft: NftKernelLab) -> None:
    outside, pod = mixed_nft.observe([Send("outside", "tcp", NODE, 9999), Send("pod", "tcp", NODE, 9999)])
    last = stopped(outside, "REJECT", "filter_INPUT", "INPUT")
    assert last.table == "firewalld" and last.rule_text == "reject with icmpx admin-prohibited"
    assert outside.result.error == "ehostunreach"
    pre = [v for v in visits(walk(outside)) if v.startswith("PREROUTING")]
    assert pre == ["PREROUTING mangle/PREROUTING", "PREROUTING firewalld/mangle_PREROUTING", "PREROUTING nat/PREROUTING",
                   "PREROUTING firewalld/nat_PREROUTING"], "no DNAT: firewalld's nat chain runs too"
    k = walk(pod)
    assert k.verdict == "ACCEPT" and k.delivery == "local" and pod.result.error == "refused"
    assert has_rule(k, "accept", "ACCEPT") and any(e.chain == "filter_IN_trusted" for e in k.events)


# -- IPv6 ------------------------------------------------------------------------------------------------------
def test_ipv6_cluster_ip_and_nodeport(ipv6_nft: NftKernelLab) -> None:
    pod, outside = ipv6_nft.observe([Send("pod", "tcp", *WEB6), Send("outside", "tcp", "fd00:10::2", 30080)])
    k = answered_from_endpoint(pod)
    assert k.family == 10 and {e.family for e in k.events} == {10}
    assert k.endpoint in ("[fd00:10:244:1::11]:8080", "[fd00:10:244:2::12]:8080") and not k.masquerade
    k = answered_from_endpoint(outside)
    assert k.masquerade and outside.result.peer and outside.result.peer[0] != "fd00:10::1"


# -- hook order on its own -------------------------------------------------------------------------------------
NAT_ORDER = """table ip order {
	chain f150 { type filter hook prerouting priority -150; policy accept; counter comment "filter -150"; }
	chain n90 { type nat hook prerouting priority -90; policy accept; counter comment "nat -90"; }
	chain n80 { type nat hook prerouting priority -80; policy accept; ip daddr 10.0.0.99 dnat to 10.0.0.2 comment "nat -80"; }
	chain n70 { type nat hook prerouting priority -70; policy accept; counter comment "nat -70"; }
	chain f95 { type filter hook prerouting priority -95; policy accept; counter comment "filter -95"; }
	chain in_f50 { type filter hook input priority 50; policy accept; counter comment "filter input 50"; }
	chain in_n200 { type nat hook input priority 200; policy accept; counter comment "nat input 200"; }
	chain in_f150 { type filter hook input priority 150; policy accept; counter comment "filter input 150"; }
}
"""


def test_nat_chains_run_at_the_nat_hooks_priority_and_stop_after_a_binding(nft_kernel_ok: None) -> None:
    with NftLab("natorder") as lab:
        out = lab.add_uplink_host("out", node_cidrs=[f"{NODE}/24"], host_cidrs=[f"{OUTSIDE}/24"])
        lab.add_route(out, "10.0.0.99/32", via=NODE)
        lab.start_echo(lab.node, [("tcp", NODE, 9000)], tag="node")
        lab.load_nft(NAT_ORDER)
        chains = base_chains_of(lab.ruleset_json())
        lab.nft_trace_start("tcp", (41000, 41000))
        result = lab.probe(out, [Probe("tcp", "10.0.0.99", 9000, None, 41000, 0.5)])[0]
        lab.nft_trace_wait_idle()
        text = lab.nft_trace_stop()
    k = first_packet(parse_kernel_trace(text, base_chains=chains), "tcp", 41000)
    assert k is not None and result.ok and k.endpoint == NODE and k.delivery == "local"
    ran = [e.chain for e in k.events if e.table == "order" and e.kind == "rule"]
    assert ran == ["f150", "n90", "n80", "f95", "in_f50", "in_n200", "in_f150"], (
        "nat chains at the NAT hook's priority (-100, input 100) in their own order; n70 skipped after n80's DNAT")
