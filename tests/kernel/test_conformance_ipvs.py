"""Kernel conformance of kube-proxy's IPVS mode, up to the IPVS step (the ``ipvs-mode`` sample's lab).

The node has kube-proxy's IPVS-mode rules, its ipsets (loaded with ``ipset restore``) and ``kube-ipvs0`` with every
service address; it has no IPVS (these machines have no IPVS module), so a packet to a service address is
delivered to the node itself, as it would be until IPVS takes over in INPUT (after filter INPUT, before nat INPUT)
or OUTPUT (after nat OUTPUT). Every probe's kernel trace is compared hop for hop with the engine's, which gets the
node's ipsets as kptui parses ``ipset save``: each ``-m set`` match must be decided as the kernel decided it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.ipset_parse import parse_ipsets
from kptui.engine.ipvs import parse_ipvsadm
from kptui.engine.ipvs.step import PRIORITIES, IpvsViews
from kptui.engine.schedule import Netfilter, hook_schedule
from kptui.engine.trace_compare import kernel_steps
from samples.scenarios import BY_NAME
from tools.kubegen_ipvs import IpvsRuleset, ipvsadm_save

from .compare import check
from .harness import KernelLab, Send, kernel_lab

pytestmark = pytest.mark.kernel

NODE_IP = "10.0.0.2"
WEB = ("10.96.10.20", 80)  # default/web:http (rr, one real server draining)
DNS = ("10.96.0.10", 53)  # kube-system/kube-dns (UDP and TCP)
PAYMENTS_LB = ("192.0.2.50", 443)  # shop/payments: loadBalancerSourceRanges 203.0.113.0/24, 10.0.0.0/24
EXTERNAL = ("198.51.100.70", 80)  # default/legacy-ext external IP
PHYSDEV = ("physdev",)  # -m physdev ! --physdev-is-in: whether a packet came in on a bridge port is not modelled


# The sample's kube-proxy masquerades --random-fully, as kube-proxy does wherever iptables can; here without it:
# with no IPVS, the node's own connections to its service addresses are masqueraded on lo, where the kernel
# picks a random source port the engine cannot know (after IPVS they would leave by eth0 or a pod's veth).
SCENARIO = replace(BY_NAME["ipvs-mode"], node=replace(BY_NAME["ipvs-mode"].node, random_fully=False))
# (Without IPVS the node's connection to a cluster IP leaves with the cluster IP as its source and is masqueraded
# on lo; the kernel then takes the first global address of the node, 10.0.0.2 (inet_select_addr): so does the
# engine.)


@pytest.fixture(scope="module")
def klab(kernel_ok: None) -> Iterator[KernelLab]:
    with kernel_lab(SCENARIO) as k:
        yield k


def _checked(klab: KernelLab, sends: list[Send], **kw: object) -> list[tuple[str, str | None]]:
    out = []
    for obs in klab.observe(sends):
        path = check(obs, klab.context_for(obs), **kw)  # type: ignore[arg-type]
        out.append((path.verdict, path.delivery))
    return out


@pytest.mark.parametrize("who", ["pod", "outside", "node"])
def test_cluster_ip_tcp_and_udp(klab: KernelLab, who: str) -> None:
    got = _checked(klab, [Send(who, "tcp", *WEB), Send(who, "udp", *DNS), Send(who, "tcp", *DNS)])
    assert all(v == "ACCEPT" for v, _ in got)


@pytest.mark.parametrize("who", ["pod", "outside", "node"])
@pytest.mark.parametrize("node_port", [30080, 30090, 30600])  # eTP Cluster, eTP Local, persistent
def test_node_ports(klab: KernelLab, who: str, node_port: int) -> None:
    assert _checked(klab, [Send(who, "tcp", NODE_IP, node_port)])[0][0] == "ACCEPT"


def test_load_balancer_source_ranges(klab: KernelLab) -> None:
    sends = [Send("outside", "tcp", *PAYMENTS_LB, src="203.0.113.10"),  # KUBE-LOAD-BALANCER-SOURCE-CIDR: RETURN
             Send("outside", "tcp", *PAYMENTS_LB, src="198.51.100.20"),  # KUBE-SOURCE-RANGES-FIREWALL: DROP
             Send("pod", "tcp", *PAYMENTS_LB)]
    assert [v for v, _ in _checked(klab, sends)] == ["ACCEPT", "DROP", "DROP"]


def test_external_ip(klab: KernelLab) -> None:
    got = _checked(klab, [Send("outside", "tcp", *EXTERNAL), Send("pod", "tcp", *EXTERNAL)], undecidable_ok=PHYSDEV)
    assert [v for v, _ in got] == ["ACCEPT", "ACCEPT"]


def test_service_address_on_a_port_without_a_service_is_rejected(klab: KernelLab) -> None:
    got = _checked(klab, [Send("pod", "tcp", WEB[0], 22), Send("outside", "tcp", WEB[0], 22)])
    assert [v for v, _ in got] == ["REJECT", "REJECT"]  # KUBE-IPVS-FILTER: in KUBE-IPVS-IPS, in no service set


def test_health_check_node_port(klab: KernelLab) -> None:
    assert _checked(klab, [Send("outside", "tcp", NODE_IP, 32090)])[0] == ("ACCEPT", "local")


def test_ipvs_would_take_over_after_filter_input_and_before_nat_input(klab: KernelLab) -> None:
    """Where the IPVS step sits in the schedule the engine builds, against the hooks the kernel ran: for a
    connection to a cluster IP, every table of INPUT before nat INPUT ran first, and nat INPUT last."""
    (obs,) = klab.observe([Send("pod", "tcp", *WEB)])
    assert obs.kernel is not None
    input_tables = [s.table for s in kernel_steps(obs.kernel) if s.hook == "INPUT"]
    assert input_tables[-1] == "nat" and "filter" in input_tables
    rs = klab.ruleset
    assert isinstance(rs, IpvsRuleset)
    views = IpvsViews(parse_ipvsadm(ipvsadm_save(rs), "ipvsadm -S -n"), conntrack=True)
    sched = hook_schedule(Netfilter.of(parse_ruleset(obs.rules), 4), "INPUT", 4, views.base_chains("INPUT", 4))
    order = [b.table for b in sched]
    assert order.index("filter") < order.index("ipvs") < order.index("nat"), order
    assert [b.priority for b in sched if b.table == "ipvs"] == [PRIORITIES["INPUT"]]
    out = hook_schedule(Netfilter.of(parse_ruleset(obs.rules), 4), "OUTPUT", 4, views.base_chains("OUTPUT", 4))
    order = [b.table for b in out]
    assert order.index("nat") < order.index("ipvs") < order.index("filter"), order


def test_the_engine_reads_the_kernels_ipsets(klab: KernelLab) -> None:
    sets = parse_ipsets(klab.ipset_save(), "ipset save")
    rs = klab.ruleset
    assert isinstance(rs, IpvsRuleset)
    for name, members in rs.members.items():
        got = sets.get(name)
        assert got is not None and got.members_known, name
        assert sorted(e.text for e in got.elements) == sorted(members), name
