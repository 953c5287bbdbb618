"""The kernel's routing decisions between the hooks, from the node context and its sysctls (REFERENCE §4a).

Input routing (``ip_route_input_slow``, after PREROUTING, for a packet that arrived on an interface):

- a destination (or source) in 127.0.0.0/8 on an interface other than ``lo`` is a *martian* and is dropped,
  unless ``route_localnet`` is on for that interface (``conf.all`` or the interface's own: either enables it);
- then, for a local destination, and for one to be forwarded, the reverse-path filter: with ``rp_filter`` 1
  (strict; the larger of ``conf.all`` and the interface's counts) the route back to the source must leave by
  the interface the packet came in on; with 2 (loose) some route back must exist;
- a destination that is not local needs a route (else: not delivered, ICMP unreachable), and forwarding on
  (``net.ipv4.ip_forward``; IPv6 ``conf.all.forwarding``).

Output routing of a packet the node sends: no route means the packet is never sent; once nat OUTPUT changed the
destination the packet is routed again (``ip_route_me_harder``), and a source in 127.0.0.0/8 may then leave by
a non-loopback interface only with ``route_localnet`` on it (``__mkroute_output``: the localhost NodePort case).

What the context does not say is not guessed silently: routes unknown means "a route exists"; a sysctl
unknown is the kernel's default, except ``route_localnet``, which kube-proxy turns on when it serves NodePorts
on localhost and then guards with its "block incoming localnet connections" rule — when the rules hold that
rule it is taken as on, and the decision says so.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from .packet import NodeContext

__all__ = ["Decision", "input_route", "lookup", "output_reroute", "route_known", "sysctl_flag"]


class Decision(NamedTuple):
    """A routing step worth a hop: a drop (``drop`` True) with its cause, or a note on what was taken."""

    drop: bool
    text: str  # "dropped as martian destination (route_localnet=0 on eth0)"
    note: str | None = None  # what a sysctl was taken to be, when the context did not say


def _ip(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(addr)


def sysctl_flag(node: NodeContext, family: int, name: str, iface: str | None) -> tuple[int | None, str]:
    """The value the kernel uses for per-interface setting ``name`` (route_localnet, rp_filter,
    forwarding) on ``iface``: ``conf.all`` and the interface's combined as the kernel combines them (OR for
    route_localnet, the larger for rp_filter, the interface's own for forwarding), and where it came from."""
    fam = "ipv6" if family == 6 else "ipv4"
    values: dict[str, int] = {}
    for scope in ("all", iface or ""):
        raw = node.sysctls.get(f"net.{fam}.conf.{scope}.{name}") if scope else None
        if raw is not None and raw.strip().lstrip("-").isdigit():
            values[scope] = int(raw)
    if name == "forwarding" and family == 4:
        raw = node.sysctls.get("net.ipv4.ip_forward")
        if raw is not None and raw.strip().isdigit():
            values.setdefault("all", int(raw))
    if not values:
        return None, ""
    if name == "route_localnet":
        return int(any(values.values())), _where(values)
    if name == "rp_filter":
        return max(values.values()), _where(values)
    return values.get(iface or "", values.get("all")), _where(values)


def _where(values: dict[str, int]) -> str:
    return ", ".join(f"conf.{k}={v}" for k, v in values.items())


def route_known(node: NodeContext) -> bool:
    return node.routes is not None


def lookup(node: NodeContext, addr: str) -> tuple[bool, str | None]:
    """With the node's routes known: (a route exists, the device it leaves by); else (True, None)."""
    if node.routes is None:
        return True, None
    ip = _ip(addr)
    best: tuple[int, str] | None = None
    for dst, dev in node.routes:
        try:
            net = ipaddress.ip_network("0.0.0.0/0" if ip.version == 4 else "::/0") if dst == "default" else \
                ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.version == ip.version and ip in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, dev)
    if best is None or not best[1]:  # none, or a blackhole/unreachable/prohibit route
        return False, None
    return True, best[1]


def _localnet(node: NodeContext, family: int, iface: str | None, guard: bool) -> tuple[bool, str, str | None]:
    """(route_localnet on, how it reads, a note when it was taken rather than read)."""
    value, where = sysctl_flag(node, family, "route_localnet", iface)
    if value is not None:
        return bool(value), f"route_localnet={value} on {iface or 'the interface'} ({where})", None
    if guard:
        return True, "route_localnet taken as 1", ("route_localnet not known: taken as 1, as kube-proxy sets it "
                                                   "(its 'block incoming localnet connections' rule is in the dump)")
    return False, f"route_localnet=0 on {iface or 'the interface'} (taken: the kernel's default)", \
        "route_localnet not known: taken as 0, the kernel's default (the rules show no sign kube-proxy set it)"


def input_route(node: NodeContext, src: str, dst: str, in_iface: str | None, local: bool,
                *, guard: bool = False) -> Decision | None:  # fmt: skip
    """The input routing of a packet that arrived on ``in_iface`` (None: not known), after PREROUTING:
    a drop with its cause, a note, or None (routed without remark)."""
    family = _ip(dst).version
    if in_iface != "lo" and family == 4:
        for which, addr in (("destination", dst), ("source", src)):
            if _ip(addr).is_loopback:
                on, how, note = _localnet(node, family, in_iface, guard)
                if not on:
                    return Decision(True, f"dropped as martian {which} {addr} ({how})", note)
                if note:
                    return Decision(False, f"{which} {addr} in 127.0.0.0/8 allowed ({how})", note)
                break
    rp, where = sysctl_flag(node, family, "rp_filter", in_iface)
    if rp and in_iface not in (None, "lo") and node.routes is not None:
        exists, dev = lookup(node, src)
        if rp == 1 and dev != in_iface:
            back = f"leaves by {dev}" if dev else "does not exist"
            return Decision(True, f"dropped by strict reverse-path filtering: the route back to {src} {back}, "
                                  f"not {in_iface} (rp_filter=1: {where})")  # fmt: skip
        if rp == 2 and not exists:
            return Decision(True, f"dropped by loose reverse-path filtering: no route back to {src} "
                                  f"(rp_filter=2: {where})")  # fmt: skip
    if local:
        return None
    exists, _ = lookup(node, dst)
    if not exists:
        return Decision(True, f"not delivered: no route to {dst} (ICMP unreachable)")
    fwd, where = sysctl_flag(node, family, "forwarding", in_iface)
    if fwd == 0:
        knob = "net.ipv4.ip_forward=0" if family == 4 else "net.ipv6.conf.all.forwarding=0"
        return Decision(True, f"not forwarded: forwarding is off ({knob}; {where})")
    return None


def output_reroute(node: NodeContext, src: str, dst: str, out_iface: str | None, *, first: bool,
                   guard: bool = False) -> Decision | None:  # fmt: skip
    """The output routing of a packet the node sends (``first``: before OUTPUT, else after nat OUTPUT changed
    its destination): a drop with its cause, or None."""
    exists, _ = lookup(node, dst)
    if not exists:
        if first:
            return Decision(True, f"never sent: no route to {dst} (the sender gets 'network unreachable')")
        return Decision(True, f"dropped when routed again after NAT: no route to {dst}")
    family = _ip(dst).version
    if family == 4 and _ip(src).is_loopback and out_iface not in (None, "lo"):
        on, how, note = _localnet(node, family, out_iface, guard)
        if not on:
            return Decision(True, f"dropped: source {src} may not leave by {out_iface} ({how})", note)
        if note:
            return Decision(False, f"source {src} leaves by {out_iface} ({how})", note)
    return None
