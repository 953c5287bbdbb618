"""What an IPVS-mode node adds to its netfilter rules: its ipsets, its IPVS table, ``net.ipv4.vs.conntrack``, the
addresses on ``kube-ipvs0`` and the proxy mode kube-proxy reports. :func:`ipvs_context` is what the command layer
calls (with text it read from files, a capture bundle or the live node); everything here is pure.

The command layer's contract::

    node = ipvs_context(ipset_text, ipvs_text, ipset_source="node.ipset", ipvs_source="node.ipvs",
                        extra_ipvs=[(stats_text, "ipvsadm-stats.txt")],   # further listings, merged
                        sysctls={"net.ipv4.vs.conntrack": "1"},           # from the snapshot, when read
                        kube_ipvs0=("10.96.0.1", "10.96.0.10"),           # addresses of the link, when read
                        proxy_mode="ipvs")                                # kube-proxy's /proxyMode, when read

From a :class:`kptui.node.NodeSnapshot` ``snap`` (its parts are raw bytes, which are taken as they are)::

    ips, vs = snap.ipsets, snap.ipvs
    node = ipvs_context(ips.data if ips else None, vs.data if vs else None,
                        ipset_source=f"{snap.source}: {ips.name}" if ips else None,
                        ipvs_source=f"{snap.source}: {vs.name}" if vs else None,
                        sysctls=snap.sysctls,
                        kube_ipvs0=kube_ipvs0_addresses(snap.addresses.data) if snap.addresses else None,
                        proxy_mode=snap.proxy_mode)
    ctx = node.node_context(ctx)        # NodeContext with the parsed ipsets and the service addresses
    views = node.views                  # the IPVS step for the walker (kptui.engine.ipvs.step), or None

Every argument may be None (not known); a text that does not parse raises :class:`kptui.engine.ParseError`
located at the file and line.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from ..errors import Diagnostic, ParseError
from ..ipset import IpsetTable
from ..ipset_parse import parse_ipsets
from ..packet import NodeContext
from .model import IpvsTable
from .parse import parse_ipvsadm
from .step import IpvsViews

__all__ = ["CONNTRACK_SYSCTL", "KUBE_IPVS0", "IpvsNode", "ipvs_context", "kube_ipvs0_addresses"]

CONNTRACK_SYSCTL = "net.ipv4.vs.conntrack"
KUBE_IPVS0 = "kube-ipvs0"
_VIP_SETS = ("KUBE-IPVS-IPS", "KUBE-6-IPVS-IPS")
_CLUSTER_SETS = ("KUBE-CLUSTER-IP", "KUBE-6-CLUSTER-IP")


@dataclass(frozen=True, eq=False)
class IpvsNode:
    """The IPVS side of one node. ``None`` everywhere means: not given."""

    ipsets: IpsetTable | None = None
    table: IpvsTable | None = None
    conntrack: bool | None = None  # net.ipv4.vs.conntrack
    kube_ipvs0: tuple[str, ...] | None = None  # the addresses on kube-ipvs0 (ip addr); None: not read
    proxy_mode: str | None = None
    sysctls: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def views(self) -> IpvsViews | None:
        """The IPVS step of a trace (None without an IPVS table: IPVS is then not modelled at all)."""
        return IpvsViews(self.table, conntrack=self.conntrack) if self.table is not None else None

    @cached_property
    def vips(self) -> tuple[str, ...]:
        """Addresses known to be bound to kube-ipvs0 (so local): the link's addresses when read, the members of
        KUBE-IPVS-IPS (the set kube-proxy keeps of them), and the cluster IPs of KUBE-CLUSTER-IP (kube-proxy
        binds every one)."""
        out: dict[str, None] = dict.fromkeys(self.kube_ipvs0 or ())
        if self.ipsets is not None:
            for name in (*_VIP_SETS, *_CLUSTER_SETS):
                for member in self.ipsets.members(name):
                    addr = member.split(",", 1)[0]
                    try:
                        out[str(ipaddress.ip_address(addr))] = None
                    except ValueError:
                        continue
        return tuple(out)

    def node_context(self, base: NodeContext | None = None) -> NodeContext:
        """``base`` with this node's ipsets and service addresses (``vips``)."""
        base = base or NodeContext()
        vips = tuple(dict.fromkeys((*base.vips, *self.vips)))
        return replace(base, ipsets=self.ipsets if self.ipsets is not None else base.ipsets, vips=vips)


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def kube_ipvs0_addresses(ip_addr_json: str | bytes) -> tuple[str, ...] | None:
    """The addresses on kube-ipvs0 in ``ip -j [-d] addr show`` output; None when the node has no such link (or
    the text is not that JSON: then nothing is known)."""
    try:
        links = json.loads(_text(ip_addr_json))
    except ValueError:
        return None
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("ifname") == KUBE_IPVS0:
            infos = link.get("addr_info") or []
            return tuple(str(a["local"]) for a in infos if isinstance(a, dict) and isinstance(a.get("local"), str))
    return None


def ipvs_context(ipset_text: str | bytes | None = None, ipvs_text: str | bytes | None = None, *,
                 ipset_source: str | None = None, ipvs_source: str | None = None,
                 extra_ipvs: Iterable[tuple[str | bytes, str | None]] = (),
                 sysctls: Mapping[str, str] | None = None, kube_ipvs0: Iterable[str] | None = None,
                 proxy_mode: str | None = None) -> IpvsNode:  # fmt: skip
    """Parse what the command layer read (see the module doc); ParseError on bad input."""
    ipsets = parse_ipsets(_text(ipset_text), ipset_source) if ipset_text is not None else None
    table = parse_ipvsadm(_text(ipvs_text), ipvs_source) if ipvs_text is not None else None
    for text, source in extra_ipvs:
        more = parse_ipvsadm(_text(text), source)
        table = more if table is None else table.merged(more)
    sysctls = dict(sysctls or {})
    conntrack: bool | None = None
    raw = sysctls.get(CONNTRACK_SYSCTL)
    if raw is not None:
        if raw.strip() not in ("0", "1"):
            raise ParseError(Diagnostic(f"{CONNTRACK_SYSCTL} = {raw!r}: expected 0 or 1", source="sysctl"))
        conntrack = raw.strip() == "1"
    addrs = None
    if kube_ipvs0 is not None:
        addrs = tuple(str(ipaddress.ip_interface(a.strip()).ip) for a in kube_ipvs0 if a.strip())
    return IpvsNode(ipsets, table, conntrack, addrs, (proxy_mode or "").strip().lower() or None, sysctls)

