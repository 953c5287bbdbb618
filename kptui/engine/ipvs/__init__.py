"""kube-proxy's IPVS mode: the IPVS table (``ipvsadm -S -n`` / ``-L -n``), the shares its schedulers give, and the
IPVS step of a trace (modelled from the kernel's source: :mod:`.step`). Pure and stdlib-only like the engine."""

from .model import IpvsTable, RealServer, VirtualService
from .node import IpvsNode, ipvs_context, kube_ipvs0_addresses
from .parse import parse_ipvsadm
from .shares import Shares, shares
from .step import IPVS_NS, PRIORITIES, IpvsViews

__all__ = ["IPVS_NS", "PRIORITIES", "IpvsNode", "IpvsTable", "IpvsViews", "RealServer", "Shares", "VirtualService",
           "ipvs_context", "kube_ipvs0_addresses", "parse_ipvsadm", "shares"]
