"""What the explorer shows of an IPVS-mode node, as plain data (no Textual here): the tree's ipset and virtual
service sections (filled lazily: :func:`tree_children`), the detail pane's text for a set or a virtual service,
and packet presets for a virtual service in the packet builder's field names.

The explorer wires it (``kptui/ui``): two top-level tree nodes from :func:`tree_sections`, each expanded with
:func:`tree_children`; a highlighted :class:`TreeEntry` shows :func:`set_detail` or :func:`service_detail`;
:func:`presets` fills the packet builder. Texts come from dumps: the UI passes them through ``printable``.
"""

from __future__ import annotations

from typing import NamedTuple

from ..ipset import IpSet
from ..model import Ruleset
from .model import VirtualService
from .node import IpvsNode
from .shares import shares

__all__ = ["MEMBERS_SHOWN", "Preset", "TreeEntry", "node_addresses", "presets", "service_detail", "set_detail",
           "tree_children", "tree_sections"]

MEMBERS_SHOWN = 200  # members listed in a set's detail (the tree lists them all, lazily)
OUTSIDE_CLIENT = "203.0.113.10"
OUTSIDE_CLIENT6 = "2001:db8::10"


class TreeEntry(NamedTuple):
    """One tree node: ``kind`` ipsets / ipset / member / ipvs / virtual-service / real-server; ``key`` finds it
    again (a set's name, a virtual service's key); ``expandable``: it has children (:func:`tree_children`)."""

    kind: str
    key: str
    label: str
    expandable: bool = False


class Preset(NamedTuple):
    label: str
    fields: dict[str, str]  # packet builder field id → value (origin, src, dst, proto, dport, …)


def tree_sections(node: IpvsNode) -> list[TreeEntry]:
    """The top-level sections: ipsets and the IPVS table, when given."""
    out = []
    if node.ipsets is not None:
        out.append(TreeEntry("ipsets", "", f"ipsets ({len(node.ipsets)})", bool(len(node.ipsets))))
    if node.table is not None:
        out.append(TreeEntry("ipvs", "", f"IPVS virtual services ({len(node.table)})", bool(len(node.table))))
    return out


def tree_children(node: IpvsNode, parent: TreeEntry) -> list[TreeEntry]:
    """The children of ``parent`` (asked when it is first expanded)."""
    if parent.kind == "ipsets" and node.ipsets is not None:
        return [TreeEntry("ipset", name, _set_label(s), bool(len(s))) for name, s in node.ipsets.sets.items()]
    if parent.kind == "ipset" and node.ipsets is not None:
        s = node.ipsets.get(parent.key)
        return [TreeEntry("member", f"{parent.key} {e.text}", e.text + (" nomatch" if e.nomatch else ""))
                for e in (s.elements if s is not None else ())]  # fmt: skip
    if parent.kind == "ipvs" and node.table is not None:
        return [TreeEntry("virtual-service", vs.key, _vs_label(vs), bool(vs.real_servers)) for vs in node.table]
    if parent.kind == "virtual-service":
        vs = _find(node, parent.key)
        if vs is None:
            return []
        sh = shares(vs)
        return [TreeEntry("real-server", f"{vs.key} {rs.hostport}",
                          f"-> {rs.hostport} {rs.forward or '?'} weight {_w(rs.weight)} "
                          f"({'draining' if rs.weight == 0 else _frac(sh.share(rs))})")
                for rs in vs.real_servers]  # fmt: skip
    return []


def _set_label(s: IpSet) -> str:
    count = f"{len(s)} member{'s' if len(s) != 1 else ''}" if s.members_known else "members not listed"
    return f"{s.name}  {s.type}  {count}"


def _vs_label(vs: VirtualService) -> str:
    n = len(vs.real_servers)
    persist = f" persistent {vs.persistence}" if vs.persistence is not None else ""
    return f"{vs.key}  {vs.scheduler or '?'}{persist}  {n} real server{'s' if n != 1 else ''}"


def _w(weight: int | None) -> str:
    return "?" if weight is None else str(weight)


def _frac(p: object) -> str:
    num, den = getattr(p, "numerator", 0), getattr(p, "denominator", 1)
    return f"share {num}/{den}"


def _find(node: IpvsNode, key: str) -> VirtualService | None:
    return next((vs for vs in node.table or () if vs.key == key), None)


def set_detail(node: IpvsNode, name: str, ruleset: Ruleset | None = None) -> str:
    """A set's detail: what kube-proxy keeps in it, its header, the rules that match it, its first members."""
    from ..kube.explain_ipvs import explain_set

    s = node.ipsets.get(name) if node.ipsets is not None else None
    lines = [explain_set(name, s).text]
    if s is None:
        return "\n".join([*lines, "(not in the ipsets given)"])
    header = " ".join(f"{k} {v}".rstrip() for k, v in s.options)
    lines.append(f"type {s.type}" + (f", {header}" if header else "") + (f" (line {s.line})" if s.line else ""))
    if ruleset is not None:
        users = _rules_matching(ruleset, name)
        lines.append(f"matched by {len(users)} rule{'s' if len(users) != 1 else ''}" + (":" if users else ""))
        lines += [f"  {where}" for where in users[:20]]
    if not s.members_known:
        lines.append("members: not listed (ipset list -t)")
    else:
        lines.append(f"members ({len(s)}):")
        lines += [f"  {e.text}{' nomatch' if e.nomatch else ''}" for e in s.elements[:MEMBERS_SHOWN]]
        if len(s) > MEMBERS_SHOWN:
            lines.append(f"  … and {len(s) - MEMBERS_SHOWN} more (the tree lists them all)")
    return "\n".join(lines)


def _rules_matching(ruleset: Ruleset, name: str) -> list[str]:
    needle = f"--match-set {name} "
    out = []
    for table_name, table in ruleset.tables.items():
        for chain in table:
            for i, rule in enumerate(chain.rules, 1):
                if needle in rule.raw + " ":
                    out.append(f"{table_name or '?'}/{chain.name}:{i} (line {rule.line})")
    return out


def service_detail(node: IpvsNode, key: str) -> str:
    """A virtual service's detail: scheduler, persistence, real servers with their shares, and how the trace
    models it."""
    vs = _find(node, key)
    if vs is None:
        return f"{key}: not in the IPVS table given"
    sh = shares(vs)
    lines = [f"IPVS virtual service {vs.key}" + (f" (line {vs.line} of {node.table.source})"
                                                 if vs.line and node.table is not None and node.table.source else "")]
    lines.append(f"scheduler {vs.scheduler or 'not listed'}; {sh.note}")
    if vs.persistence is not None:
        mask = f", clients grouped by {vs.netmask}" if vs.netmask else ""
        lines.append(f"persistent {vs.persistence} s{mask}: a returning client goes back to its real server "
                     "(kube-proxy: sessionAffinity ClientIP)")  # fmt: skip
    for flag in vs.flags:
        lines.append(f"flag: {flag}")
    if not vs.real_servers:
        lines.append("no real servers: IPVS answers new connections with ICMP port unreachable (ip_vs_leave)")
    for rs in vs.real_servers:
        conns = "" if rs.active is None else f", {rs.active} active / {rs.inactive} inactive connections"
        stats = "" if not rs.stats else ", " + " ".join(f"{k} {v}" for k, v in rs.stats)
        share = "draining (weight 0: no new connections)" if rs.weight == 0 else _frac(sh.share(rs))
        lines.append(f"  -> {rs.hostport}  {rs.forward or 'forwarding not listed'}  weight {_w(rs.weight)}  "
                     f"{share}{conns}{stats}")  # fmt: skip
    lines.append("The trace models IPVS from the kernel's source (ip_vs_core.c, ip_vs_xmit.c): it runs after filter "
                 "INPUT (connections from elsewhere) or after nat OUTPUT (the node's own), DNATs to the chosen real "
                 "server, then the packet goes through OUTPUT and POSTROUTING. Not checked against a kernel here.")
    return "\n".join(lines)


def node_addresses(node: IpvsNode) -> list[str]:
    """The node's own addresses as the IPVS table shows them: those of its NodePort virtual services (kube-proxy
    makes one per node address), for the NodePort presets."""
    if node.table is None or node.ipsets is None:
        return []
    ports = {(p.lower(), int(m)) for p in ("TCP", "UDP") for name in (f"KUBE-NODE-PORT-{p}", f"KUBE-6-NODE-PORT-{p}")
             for m in node.ipsets.members(name) if m.isdigit()}  # fmt: skip
    return list(dict.fromkeys(vs.address for vs in node.table
                              if vs.address and (vs.protocol, vs.port) in ports))  # fmt: skip


def presets(node: IpvsNode, key: str, *, pod_source: str = "") -> list[Preset]:
    """Packets to trace to a virtual service: from a pod, from outside, from the node itself."""
    vs = _find(node, key)
    if vs is None or vs.address is None or vs.protocol is None or vs.port is None:
        return []
    v6 = vs.family == 6
    base = {"proto": vs.protocol, "dport": str(vs.port), "sport": "", "in_iface": "", "mark": "0", "ctstate": "NEW",
            "dst": vs.address}  # fmt: skip
    out = []
    if pod_source:
        out.append(Preset(f"pod → {vs.key}", {**base, "origin": "pod", "src": pod_source}))
    out.append(Preset(f"outside → {vs.key}", {**base, "origin": "external",
                                              "src": OUTSIDE_CLIENT6 if v6 else OUTSIDE_CLIENT}))
    # a connection of the node to one of its own addresses (kube-ipvs0's or a NodePort's) leaves from that address
    out.append(Preset(f"node → {vs.key}", {**base, "origin": "local", "src": vs.address}))
    return out

