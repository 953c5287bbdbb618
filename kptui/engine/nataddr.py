"""Where NAT sends a packet when the rule does not name the address: shared by the iptables targets
(MASQUERADE, REDIRECT) and the nft statements (``masquerade``, ``redirect``), so both front ends agree.

- masquerade: the new source is the outgoing interface's address (of the packet's family; for IPv6 a global
  one: when that interface has only link-local addresses, the node's address sharing the longest prefix with
  the destination, as IPv6 source address selection picks it). A packet to a local
  address (out through ``lo``, whose addresses are all of host scope) takes the node's first address of
  universe scope (``inet_select_addr``: in interface order; the node's first address when the interfaces are
  not known). When the context does not give
  the interface's addresses the new source is not known: the kernel takes that interface's address, not any
  other node address (issue 10.5), so the source stays in the simulation and the note is
  :data:`trace_model.MASQ_ADDRESS_UNKNOWN` (the reports then say the address is not known).
- redirect: a locally generated packet goes to the loopback address; an arriving one to the input interface's
  address (or the node's first address of the family).
"""

from __future__ import annotations

import ipaddress

from .packet import NodeContext
from .trace_model import MASQ_ADDRESS_UNKNOWN, PacketState

__all__ = ["iface_address", "masquerade_source", "node_address", "redirect_destination"]


def iface_address(node: NodeContext, iface: str | None, family: int, *, global_only: bool = False) -> str | None:
    """The first address of ``family`` (4 or 6) the context gives for interface ``iface`` (``global_only``:
    not a link-local one)."""
    for cidr in node.interfaces.get(iface or "", ()):
        ip = ipaddress.ip_interface(cidr).ip
        if ip.version == family and not (global_only and ip.is_link_local):
            return str(ip)
    return None


def node_address(node: NodeContext, family: int) -> str | None:
    """The node's first address of ``family``."""
    for a in node.addresses:
        if ipaddress.ip_address(a).version == family:
            return a
    return None


def masquerade_source(state: PacketState, node: NodeContext) -> tuple[str | None, str | None]:
    """(the new source address or None when unknown, a note when something was assumed)."""
    family = 6 if ":" in state.dst else 4
    addr = iface_address(node, state.out_iface, family, global_only=family == 6)
    if addr is None and family == 6 and state.out_iface != "lo" and state.out_iface in node.interfaces:
        addr = _v6_source(node, state.dst)  # the interface has only link-local addresses
    note = None
    if state.out_iface == "lo":
        # lo has only host-scope addresses: inet_select_addr(lo, …, RT_SCOPE_UNIVERSE) takes the first address
        # of universe scope on the node's other interfaces, in their order
        addr = _first_global(node, family)
        if addr is None:
            note = MASQ_ADDRESS_UNKNOWN
    elif addr is None:
        note = MASQ_ADDRESS_UNKNOWN
    return addr, note


def _v6_source(node: NodeContext, dst: str) -> str | None:
    """IPv6 masquerade picks its source by source address selection over every interface (the outgoing one
    only breaks ties, ``ipv6_dev_get_saddr``): with no global address there, the node address sharing the
    longest prefix with ``dst``."""
    target = int(ipaddress.IPv6Address(dst))
    best: tuple[int, str] | None = None
    for cidrs in node.interfaces.values():
        for cidr in cidrs:
            ip = ipaddress.ip_interface(cidr).ip
            if ip.version != 6 or ip.is_link_local or ip.is_loopback:
                continue
            common = 128 - (int(ip) ^ target).bit_length()
            if best is None or common > best[0]:
                best = (common, str(ip))
    return best[1] if best else None


def _first_global(node: NodeContext, family: int) -> str | None:
    for cidrs in node.interfaces.values():
        for cidr in cidrs:
            ip = ipaddress.ip_interface(cidr).ip
            if ip.version == family and not (ip.is_loopback or ip.is_link_local):
                return str(ip)
    for a in node.addresses:
        ip = ipaddress.ip_address(a)
        if ip.version == family and not (ip.is_loopback or ip.is_link_local):
            return a
    return None


def redirect_destination(state: PacketState, node: NodeContext) -> str | None:
    """The address a REDIRECT / ``redirect`` sends the packet to (None when the context does not say)."""
    family = 6 if ":" in state.dst else 4
    if state.hook.upper() == "OUTPUT":
        return "::1" if family == 6 else "127.0.0.1"
    return iface_address(node, state.in_iface, family) or node_address(node, family)
