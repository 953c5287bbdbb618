"""The labs of the nft kernel tests (module-scoped fixtures, registered by conftest.py) and their addresses.

Each lab is a :func:`tests.kernel.nft_harness.nft_lab` of one ``samples/scenarios.py`` nft scenario; the guard
lab adds :func:`tools.nft_foreign.guard_table` to the NodePort scenario.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from samples.scenarios import NFT_BY_NAME
from tools.nft_foreign import guard_table

from .nft_harness import NftKernelLab, nft_lab

NODE = "10.0.0.2"
OUTSIDE = "10.0.0.1"
POD = "10.244.1.100"  # the client pod
POD_GW = "10.244.1.1"  # the node's address on every pod veth
ALLOWED, DENIED = "203.0.113.10", "198.51.100.20"  # inside / outside loadBalancerSourceRanges
WEB = ("10.96.10.20", 80)  # default/web:http
WEB_EPS = {"10.244.1.11:8080", "10.244.1.12:8080", "10.244.2.13:8080"}
API = ("10.96.0.1", 443)  # default/kubernetes:https -> the node itself, 10.0.0.2:6443
DNS = ("10.96.0.10", 53)  # kube-dns (UDP and TCP)
DNS_EPS = {"10.244.1.2:53", "10.244.2.3:53"}
FRONTEND_NP, FRONTEND_EPS = 30080, {"10.244.1.21:8080", "10.244.2.22:8080"}  # shop/frontend, eTP=Cluster
SYSLOG_NP, SYSLOG_EPS = 30514, {"10.244.1.23:5514", "10.244.2.24:5514"}  # shop/syslog, UDP
CHECKOUT_NP, CHECKOUT_LOCAL = 30090, "10.244.1.31:8080"  # eTP=Local, one local endpoint of two
LEGACY_NP, LEGACY_EPS = 30091, {"10.244.2.33:8080", "10.244.2.34:8080"}  # eTP=Local, no local endpoint
BROKEN = ("10.96.40.10", 80)  # default/broken: no endpoints (also NodePort 30100, LB 192.0.2.40)
BROKEN_NP = 30100
DEAD_DNS = ("10.96.40.53", 53)  # UDP, no endpoints
OK = ("10.96.40.20", 80)  # default/ok, with masquerade-all
UNALLOCATED = ("10.96.99.99", 80)  # in the ServiceCIDR 10.96.0.0/12, no service
PAYMENTS_LB, PAYMENTS_NP = ("192.0.2.50", 443), 30443  # eTP=Cluster, ranges 203.0.113.0/24 + the node's /24
INGRESS_LB, INGRESS_LOCAL = ("192.0.2.51", 80), "10.244.1.55:80"  # eTP=Local, range 203.0.113.0/24
CART = ("10.96.60.10", 80)  # shop/cart, ClientIP affinity, 3 endpoints
MATCHMAKER = ("10.96.60.20", 7777)  # UDP, ClientIP affinity
WEB6 = ("fd00:10:96::20", 80)
GUARD_BLOCKED = ("10.244.2.22", 8080)  # the guard table drops DNATed traffic to this frontend endpoint
GUARD_FORWARD_TO = ("10.244.1.21", 8080)


def guard(_klab: NftKernelLab) -> str:
    """The guard table on the NodePort node: tags frontend's cluster IP, blocks one frontend endpoint."""
    return guard_table(4, tagged=("10.96.20.10", 80), blocked=GUARD_BLOCKED, forward_to=GUARD_FORWARD_TO,
                       node_ip=NODE, pod_cidr="10.244.0.0/16")  # fmt: skip


def _lab(name: str, **kw: Any) -> Any:
    @pytest.fixture(scope="module")
    def fixture(nft_kernel_ok: None) -> Iterator[NftKernelLab]:
        with nft_lab(NFT_BY_NAME[name], **kw) as lab:
            yield lab
    fixture.__doc__ = f"The {name} lab{' ' + str(kw) if kw else ''}, once per test module."
    return fixture


clusterip_nft = _lab("nft-clusterip")
clusterip_nft_131 = _lab("nft-clusterip", layout="1.31")
nodeport_nft = _lab("nft-nodeport-cluster")
local_nft = _lab("nft-nodeport-local")
noep_nft = _lab("nft-no-endpoints")
lb_nft = _lab("nft-loadbalancer-sourceranges")
affinity_nft = _lab("nft-session-affinity")
ipv6_nft = _lab("nft-ipv6")
mixed_nft = _lab("mixed-node")
guard_nft = _lab("nft-nodeport-cluster", extra=guard, extra_tables=(("ip", "guard"),))
