"""Native nft tables of other components, and mixed nodes, for labs and samples (stdlib only).

- :func:`firewalld_table`: a firewalld-like ``table inet firewalld`` (its base chains at ``mangle + 10``,
  ``dstnat + 10``, ``filter + 10``, ``srcnat + 10``; zones chosen by interface; ``ct status dnat accept`` so
  service traffic passes; new connections to ports it does not open are rejected ``admin-prohibited``). The
  chain and rule shapes follow firewalld's nftables backend, condensed to one zone ("public" on the uplink,
  "trusted" for pod veths) and a few open ports.
- :func:`guard_table`: a ``table ip|ip6 guard`` that shares kube-proxy's hooks at other priorities: marks
  traffic to one service before kube-proxy sees it (prerouting, priority mangle), drops DNATed traffic to one
  endpoint (forward, priority -10: before kube-proxy 1.33's filter-forward at 0, after 1.31's at -110), adds a
  port forward of its own in a ``type nat`` chain at priority -90 and watches in a filter chain at -95 (which
  runs after every NAT chain: see :mod:`kptui.engine.kernel_trace`).
- :func:`mixed_node`: kube-proxy's iptables-mode rules (:func:`tools.kubegen.generate`, loaded with
  iptables-nft-restore) plus native tables of other components on one node.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.kubegen import NodeConfig, Ruleset, ServicePort, generate

__all__ = ["GUARD_FORWARD_PORT", "MixedNode", "firewalld_table", "guard_table", "mixed_node"]

GUARD_FORWARD_PORT = 30999  # the guard table's own port forward on the node address
_FIREWALLD_OPEN = "22, 6443, 30000-32767"


def firewalld_table(uplink: str = "eth0", pod_prefix: str = "veth", open_ports: str = _FIREWALLD_OPEN) -> str:
    """``nft -f`` text of the firewalld-like ``table inet firewalld`` (see the module docstring)."""
    return f"""table inet firewalld {{
	chain mangle_PREROUTING {{
		type filter hook prerouting priority mangle + 10; policy accept;
		jump mangle_PREROUTING_ZONES
	}}
	chain mangle_PREROUTING_ZONES {{
		iifname "{uplink}" goto mangle_PRE_public
		goto mangle_PRE_public
	}}
	chain mangle_PRE_public {{
	}}
	chain nat_PREROUTING {{
		type nat hook prerouting priority dstnat + 10; policy accept;
		jump nat_PREROUTING_ZONES
	}}
	chain nat_PREROUTING_ZONES {{
		iifname "{uplink}" goto nat_PRE_public
		goto nat_PRE_public
	}}
	chain nat_PRE_public {{
	}}
	chain nat_POSTROUTING {{
		type nat hook postrouting priority srcnat + 10; policy accept;
		jump nat_POSTROUTING_ZONES
	}}
	chain nat_POSTROUTING_ZONES {{
		oifname "{uplink}" goto nat_POST_public
		goto nat_POST_public
	}}
	chain nat_POST_public {{
	}}
	chain filter_INPUT {{
		type filter hook input priority filter + 10; policy accept;
		ct state {{ established, related }} accept
		ct status dnat accept
		iifname "lo" accept
		ct state invalid drop
		jump filter_INPUT_ZONES
		reject with icmpx admin-prohibited
	}}
	chain filter_FORWARD {{
		type filter hook forward priority filter + 10; policy accept;
		ct state {{ established, related }} accept
		ct status dnat accept
		iifname "lo" accept
		ct state invalid drop
		jump filter_FORWARD_ZONES
		reject with icmpx admin-prohibited
	}}
	chain filter_OUTPUT {{
		type filter hook output priority filter + 10; policy accept;
		ct state {{ established, related }} accept
		oifname "lo" accept
	}}
	chain filter_INPUT_ZONES {{
		iifname "{uplink}" goto filter_IN_public
		iifname "{pod_prefix}*" goto filter_IN_trusted
		goto filter_IN_public
	}}
	chain filter_IN_public {{
		jump filter_IN_public_allow
		meta l4proto {{ icmp, ipv6-icmp }} accept
	}}
	chain filter_IN_public_allow {{
		tcp dport {{ {open_ports} }} ct state {{ new, untracked }} accept
	}}
	chain filter_IN_trusted {{
		accept
	}}
	chain filter_FORWARD_ZONES {{
		iifname "{uplink}" goto filter_FWD_public
		iifname "{pod_prefix}*" goto filter_FWD_trusted
		goto filter_FWD_public
	}}
	chain filter_FWD_public {{
		oifname "{pod_prefix}*" accept
	}}
	chain filter_FWD_trusted {{
		accept
	}}
}}
"""


def guard_table(family: int, *, tagged: tuple[str, int], blocked: tuple[str, int], forward_to: tuple[str, int],
                node_ip: str, pod_cidr: str) -> str:  # fmt: skip
    """``nft -f`` text of the guard table (see the module docstring): mark 0x100 on ``tagged`` (address, port)
    before kube-proxy, drop DNATed connections to endpoint ``blocked``, forward ``node_ip``:30999 to
    ``forward_to``, and mark 0x200 what reaches prerouting priority -95 already DNATed into ``pod_cidr``."""
    fam = "ip6" if family == 6 else "ip"
    fwd = f"[{forward_to[0]}]:{forward_to[1]}" if family == 6 else f"{forward_to[0]}:{forward_to[1]}"
    return f"""table {fam} guard {{
	chain tag {{
		type filter hook prerouting priority mangle; policy accept;
		{fam} daddr {tagged[0]} tcp dport {tagged[1]} meta mark set meta mark | 0x00000100 comment "tag traffic to one service"
	}}
	chain port-forward {{
		type nat hook prerouting priority -90; policy accept;
		{fam} daddr {node_ip} tcp dport {GUARD_FORWARD_PORT} dnat to {fwd} comment "the guard's own port forward"
	}}
	chain after-nat {{
		type filter hook prerouting priority -95; policy accept;
		ct status dnat {fam} daddr {pod_cidr} meta mark set meta mark | 0x00000200 comment "runs after every nat chain"
	}}
	chain deny {{
		type filter hook forward priority -10; policy accept;
		ct status dnat {fam} daddr {blocked[0]} tcp dport {blocked[1]} drop comment "no service traffic to this endpoint"
	}}
}}
"""


@dataclass(frozen=True)
class MixedNode:
    """A node with kube-proxy in iptables mode (iptables-nft) and native nft tables of other components."""

    iptables: Ruleset
    nft: str  # ``nft -f`` text of the native tables
    tables: tuple[tuple[str, str], ...]  # (family, name) of each native table


def mixed_node(services: list[ServicePort], node: NodeConfig, *, layout: str = "modern",
               firewalld: bool = True, uplink: str = "eth0", pod_prefix: str = "veth") -> MixedNode:  # fmt: skip
    """kube-proxy's iptables rules for ``services`` plus (with ``firewalld``) the firewalld-like table."""
    rs = generate(services, node, layout)
    text = firewalld_table(uplink, pod_prefix) if firewalld else ""
    return MixedNode(rs, text, (("inet", "firewalld"),) if firewalld else ())
