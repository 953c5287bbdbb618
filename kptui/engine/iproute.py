"""The node as ``ip -j -d addr show`` and ``ip -j route show`` describe it, as a trace :class:`NodeContext`.

Pure: JSON text in, a frozen :class:`NodeFacts` out. What the node's addresses and routes cannot tell is left
unknown and said so in ``notes`` (a trace then branches on it rather than guessing):

- addresses and interfaces: every address of every interface (global scope first, so MASQUERADE picks the
  address the kernel would);
- uplink: the device of the default route of the chosen family (the first next hop of a multipath route);
- this node's pod subnet, when something on the node names it: the address of a CNI bridge (cni0, cbr0, …,
  with its veth ports as pod interfaces), Calico's blackhole route for its IPAM block, Cilium's routes via
  ``cilium_host``; pods routed one by one (``/32`` routes to veths, Calico/ptp style) give no subnet;
- the cluster's pod CIDR, from the rules' local-traffic detector (``! -s CIDR … -j KUBE-MARK-MASQ``), and
  the pod bridge from an interface detector (``! -i cni0``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Ruleset
from .packet import NodeContext

__all__ = ["NodeFacts", "detector_hints", "node_facts", "parse_ip_json"]

_NOT_POD_BRIDGES = re.compile(r"^(?:docker\d*|virbr\d+|br-[0-9a-f]{12}|lxcbr\d+|podman\d*)$")
_POD_BRIDGES = frozenset({"cni0", "cbr0", "kube-bridge", "weave", "cni-podman0"})
_POD_VETH = re.compile(r"^(?:cali|lxc|veth|vxlan|azv|eni|gke|tap)")
_DETECTOR = re.compile(r"(?:^| )! -s (\S+)(?= )")
_IFACE_DETECTOR = re.compile(r"(?:^| )! -i (\S+)(?= )")


@dataclass(frozen=True)
class NodeFacts:
    """A :class:`NodeContext` and how each part of it was found."""

    context: NodeContext
    family: int  # 4 or 6
    notes: tuple[str, ...]  # what was derived from what, and what stays unknown
    cluster_cidrs: tuple[str, ...] = ()  # from the rules' local-traffic detector
    node_pod_cidrs: tuple[str, ...] = ()  # this node's pod subnet(s), when the node's links/routes name them
    pod_ips: int = 0  # pods routed one by one (/32 or /128 routes to pod interfaces)

    def to_dict(self) -> dict[str, Any]:
        c = self.context
        return {"family": f"ipv{self.family}", "addresses": list(c.addresses),
                "interfaces": {k: list(v) for k, v in c.interfaces.items()}, "uplink": c.uplink,
                "pod_cidrs": list(c.pod_cidrs), "pod_iface": c.pod_iface, "cluster_cidrs": list(self.cluster_cidrs),
                "node_pod_cidrs": list(self.node_pod_cidrs), "notes": list(self.notes)}  # fmt: skip


def parse_ip_json(text: str | bytes | None, what: str) -> list[dict[str, Any]]:
    """``ip -j …`` output → a list of objects; ValueError (naming ``what``) for anything else."""
    if text is None or not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what}: not the JSON `ip -j` prints ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise ValueError(f"{what}: expected a JSON list of objects")
    return data


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _version(family: str | None) -> int | None:
    return {"inet": 4, "inet6": 6}.get(family or "")


def node_facts(addrs: Sequence[Mapping[str, Any]], routes: Sequence[Mapping[str, Any]], family: int = 4,
               ruleset: Ruleset | None = None) -> NodeFacts:  # fmt: skip
    """Build the node context from parsed ``ip -j -d addr show`` and ``ip -j -<family> route show``."""
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, not {family}")
    notes: list[str] = []
    interfaces: dict[str, list[tuple[int, str]]] = {}
    kinds: dict[str, str | None] = {}
    masters: dict[str, str] = {}
    for link in addrs:
        name = str(link.get("ifname") or "")
        if not name:
            continue
        info = link.get("linkinfo")
        kinds[name] = str(info.get("info_kind")) if isinstance(info, dict) and info.get("info_kind") else None
        if link.get("master"):
            masters[name] = str(link["master"])
        cidrs = interfaces.setdefault(name, [])
        for a in link.get("addr_info") or ():
            local, plen = a.get("local"), a.get("prefixlen")
            if local is None or plen is None or _version(a.get("family")) is None:
                continue
            scope = {"global": 0, "site": 1, "link": 2, "host": 3}.get(str(a.get("scope")), 1)
            cidrs.append((scope, f"{local}/{plen}"))
    ifaces = {n: tuple(c for _, c in sorted(v, key=lambda x: x[0])) for n, v in interfaces.items() if v}
    every = sorted(((s, c.split("/")[0]) for v in interfaces.values() for s, c in v), key=lambda x: x[0])
    addresses = tuple(dict.fromkeys(a for _, a in every))  # global scope first, then interface order

    # the uplink: the default route of this family
    uplink = None
    defaults = [r for r in routes if r.get("dst") == "default" and r.get("type", "unicast") == "unicast"]
    if defaults:
        r = defaults[0]
        hops = r.get("nexthops")
        uplink = str(r.get("dev") or (hops[0].get("dev") if hops else "") or "") or None
        via = f" via {r['gateway']}" if r.get("gateway") else ""
        notes.append(f"uplink {uplink}: the IPv{family} default route{via}"
                     + (f" (a multipath route; its first next hop of {len(hops)})" if hops else ""))
        if len(defaults) > 1:
            notes.append(f"{len(defaults)} IPv{family} default routes: the first (lowest metric) is used")
    else:
        notes.append(f"no IPv{family} default route in the main table: the uplink is unknown")

    # this node's pod subnet
    node_pod: list[str] = []
    pod_iface = None
    veth_bridges = {m for port, m in masters.items() if kinds.get(port) == "veth"}
    for name, kind in kinds.items():
        if kind != "bridge" or _NOT_POD_BRIDGES.match(name):
            continue
        nets = [c for c in ifaces.get(name, ()) if ipaddress.ip_interface(c).version == family
                and not ipaddress.ip_interface(c).is_link_local]  # fmt: skip
        if not nets or (name not in _POD_BRIDGES and (name not in veth_bridges or name == uplink)):
            continue
        subnet = str(ipaddress.ip_interface(nets[0]).network)
        node_pod.append(subnet)
        pod_iface = pod_iface or name
        notes.append(f"pod subnet {subnet} from bridge {name}'s address; pods arrive on {name}")
    for r in routes:
        dst = str(r.get("dst") or "")
        net = _net(dst)
        if net is None or net.version != family:
            continue
        if r.get("type") == "blackhole":
            node_pod.append(str(net))
            notes.append(f"pod block {net} from a blackhole route (Calico IPAM block"
                         + (f", proto {r['protocol']})" if r.get("protocol") else ")"))  # fmt: skip
        elif r.get("dev") == "cilium_host" and net.prefixlen < net.max_prefixlen:
            node_pod.append(str(net))
            notes.append(f"pod subnet {net} from the route via cilium_host")
    host_routes: dict[str, int] = {}
    for r in routes:
        net = _net(str(r.get("dst") or ""))
        dev = str(r.get("dev") or "")
        if net is None or net.version != family or net.prefixlen != net.max_prefixlen or not dev:
            continue
        if r.get("scope") == "link" and (kinds.get(dev) == "veth" or _POD_VETH.match(dev)):
            host_routes[dev] = host_routes.get(dev, 0) + 1
    pod_ips = sum(host_routes.values())
    if pod_ips:
        notes.append(f"{pod_ips} pod(s) routed one by one (/{32 if family == 4 else 128} routes) on "
                     f"{len(host_routes)} interface(s): no node pod subnet to read from them")
        if pod_iface is None and len(host_routes) == 1:
            pod_iface = next(iter(host_routes))
            notes.append(f"pods arrive on {pod_iface} (the only interface with pod routes)")
        elif pod_iface is None:
            notes.append("pods arrive on several interfaces: give --in-iface (or --pod-iface) to trace "
                         "interface-dependent rules")  # fmt: skip
    node_pod = list(dict.fromkeys(node_pod))

    cluster: tuple[str, ...] = ()
    if ruleset is not None:
        cluster, bridges = detector_hints(ruleset, family)
        if cluster:
            notes.append(f"cluster pod CIDR {', '.join(cluster)} from the rules' local-traffic detector "
                         f"(! -s … -j KUBE-MARK-MASQ)")  # fmt: skip
        for b in bridges:
            if pod_iface is None and not b.endswith("+"):
                pod_iface = b
                notes.append(f"pods arrive on {b} (the rules' interface detector ! -i {b})")
    if not node_pod:
        notes.append("this node's pod subnet: not derivable from its links and routes"
                     + (" (the cluster CIDR stands in)" if cluster else ""))
    pod_cidrs = [*node_pod, *(c for c in cluster if c not in node_pod)]
    ctx = NodeContext(addresses=addresses, pod_cidrs=tuple(pod_cidrs), interfaces=ifaces, uplink=uplink,
                      pod_iface=pod_iface)  # fmt: skip
    return NodeFacts(ctx, family, tuple(notes), cluster, tuple(node_pod), pod_ips)


def detector_hints(ruleset: Ruleset, family: int | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(cluster CIDRs, pod interfaces) named by kube-proxy's local-traffic detector in the nat table:
    ``! -s CIDR`` / ``! -i IFACE`` on the rules that jump to KUBE-MARK-MASQ in KUBE-SVC-* (or, before 1.21,
    KUBE-SERVICES). Only a sample of chains is read: kube-proxy writes the same detector everywhere."""
    nat = ruleset.table("nat")
    if nat is None:
        return (), ()
    cidrs: dict[str, None] = {}
    ifaces: dict[str, None] = {}
    seen = 0
    for name, chain in nat.chains.items():
        if not (name.startswith("KUBE-SVC-") or name == "KUBE-SERVICES"):
            continue
        seen += 1
        for raw in _raws(chain.rules):
            if "KUBE-MARK-MASQ" not in raw:
                continue
            for m in _DETECTOR.finditer(raw):
                net = _net(m.group(1))
                if net is not None and (family is None or net.version == family) and net.prefixlen > 0:
                    cidrs[str(net)] = None
            for m in _IFACE_DETECTOR.finditer(raw):
                ifaces[m.group(1)] = None
        if seen >= 50:
            break
    return tuple(cidrs), tuple(ifaces)


def _raws(rules: Iterable[Any]) -> Iterable[str]:
    rows = getattr(rules, "rows", None)
    if rows is not None:
        return (row[1] for row in rows)
    return (r.raw for r in rules)
