"""The filter side of the service index: what kube-proxy refuses, and service ports that exist only there.

* filter KUBE-SERVICES: ``"S has no endpoints"`` REJECT (``"S has no local endpoints"`` DROP with
  internalTrafficPolicy Local) for a cluster IP;
* filter KUBE-EXTERNAL-SERVICES: the same for external and load-balancer IPs and (``--dst-type LOCAL``)
  NodePorts;
* filter KUBE-PROXY-FIREWALL: ``"S traffic not accepted by KUBE-FW-h"`` DROP for load-balancer IPs with
  loadBalancerSourceRanges (1.25+);
* filter KUBE-NODEPORTS: ``"S health check node port"`` ACCEPT.

A rule is matched to its service port by the name in its comment, else by address and port (a dump without
comments); a service port without endpoints has no nat chains at all, so it is created here.
"""

from __future__ import annotations

from ..model import Chain, Table
from .draft import Draft, Drafts
from .facts import facts_of, rows_of
from .hashes import split_chain

__all__ = ["FilterPass"]

_NO_EPS, _NO_LOCAL = " has no endpoints", " has no local endpoints"
_NOT_ACCEPTED = " traffic not accepted by "
_HEALTH = " health check node port"


class FilterPass:
    """Reads filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-PROXY-FIREWALL and KUBE-NODEPORTS into the
    drafts (after the nat pass and name resolution, so that comments can be matched by name)."""

    def __init__(self, filt: Table, drafts: Drafts) -> None:
        self.filt = filt
        self.drafts = drafts

    def run(self) -> None:
        chains = self.filt.chains
        self._refusals(chains.get("KUBE-SERVICES"), external=False)
        self._refusals(chains.get("KUBE-EXTERNAL-SERVICES"), external=True)
        self._firewall(chains.get("KUBE-PROXY-FIREWALL"))
        self._health_checks(chains.get("KUBE-NODEPORTS"))

    def _refusals(self, chain: Chain | None, *, external: bool) -> None:
        for i, row in enumerate(rows_of(chain)):
            target = row[4]
            if chain is None or target not in ("REJECT", "DROP"):
                continue
            f = facts_of(chain, i, row[1])
            name, reason = None, "no endpoints" if target == "REJECT" else "no local endpoints"
            if f.comment and f.comment.endswith(_NO_EPS):
                name, reason = f.comment[: -len(_NO_EPS)], "no endpoints"
            elif f.comment and f.comment.endswith(_NO_LOCAL):
                name, reason = f.comment[: -len(_NO_LOCAL)], "no local endpoints"
            elif f.comment:
                continue  # someone else's rule
            port = int(f.dport) if f.dport and f.dport.isdigit() else None
            ip = _host(f.dst) if f.dst and not f.dst_neg else None
            node_port = port if external and ip is None and f.dst_type == "LOCAL" else None
            if ip is None and node_port is None:
                continue
            draft = self.drafts.find(name, f.proto, ip, None if node_port else port, node_port)
            if draft is None:
                draft = self.drafts.chainless(name, f.proto, ip, None if node_port else port, node_port)
            self._learn(draft, external, ip, port, node_port, reason)
            where = f"{_hostport(ip, port)}" if ip is not None else f"*:{node_port}"
            draft.add_block(self.filt.name, chain.name, i + 1, row[0], target, reason, where)
            self.drafts.index(draft)

    @staticmethod
    def _learn(draft: Draft, external: bool, ip: str | None, port: int | None, node_port: int | None,
               reason: str) -> None:  # fmt: skip
        if reason == "no endpoints":
            draft.no_endpoints = True
        else:
            draft.no_local = True
        if node_port is not None:
            draft.node_ports.setdefault(node_port, None)
        elif ip is not None and not external:
            if draft.cluster_ip is None:
                draft.cluster_ip = ip
            if reason == "no local endpoints":
                draft.itp = "Local"
        elif ip is not None and ip not in draft.external and ip not in draft.lb:
            draft.ext_or_lb.setdefault(ip, None)
        if external and reason == "no local endpoints":
            draft.etp = "Local"
        if draft.port is None and node_port is None:
            draft.port = port

    def _firewall(self, chain: Chain | None) -> None:
        for i, row in enumerate(rows_of(chain)):
            if chain is None or row[4] != "DROP":
                continue
            f = facts_of(chain, i, row[1])
            draft = None
            name = None
            if f.comment and _NOT_ACCEPTED in f.comment:
                name, _, fw = f.comment.partition(_NOT_ACCEPTED)
                parts = split_chain(fw.strip())
                draft = self.drafts.known_hash(parts[1]) if parts else None
            elif f.comment:
                continue
            ip = _host(f.dst) if f.dst and not f.dst_neg else None
            port = int(f.dport) if f.dport and f.dport.isdigit() else None
            if draft is None:
                draft = self.drafts.find(name, f.proto, ip, port, None)
            if draft is None:
                continue  # a firewall rule for a service port the nat table does not know: not kube-proxy's
            if ip is not None and ip not in draft.lb:
                draft.ext_or_lb.pop(ip, None)
                draft.lb[ip] = None
            draft.add_block(self.filt.name, chain.name, i + 1, row[0], "DROP", "source ranges",
                            _hostport(ip, port) if ip else None)  # fmt: skip

    def _health_checks(self, chain: Chain | None) -> None:
        for i, row in enumerate(rows_of(chain)):
            if chain is None or row[4] != "ACCEPT":
                continue
            f = facts_of(chain, i, row[1])
            if not (f.comment and f.comment.endswith(_HEALTH)) or not (f.dport and f.dport.isdigit()):
                continue
            draft = self.drafts.find(f.comment[: -len(_HEALTH)], None, None, None, None)
            if draft is not None and draft.hc_port is None:
                draft.hc_port = int(f.dport)


def _host(addr: str) -> str:
    if addr.endswith(("/32", "/128")):
        return addr.rpartition("/")[0]
    return addr


def _hostport(ip: str | None, port: int | None) -> str:
    host = f"[{ip}]" if ip and ":" in ip else (ip or "*")
    return f"{host}:{port}" if port is not None else host
