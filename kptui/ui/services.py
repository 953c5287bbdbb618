"""Which Kubernetes service a chain belongs to, the ways into each service (for packet presets), and the
extension point for the kube engine's explanations and findings.

:class:`Insights` is what the UI asks. :func:`load_insights` returns the kube engine's answers when
``kptui.engine.kube`` provides them (see :mod:`kptui.ui.kube_adapter`), and otherwise
:class:`CommentInsights`, which reads what the dump itself says: kube-proxy's rule comments
(``"ns/name:port cluster IP"``, ``"ns/name:port -> 10.244.1.21:8080"``, …) and, for chains without comments
(large-cluster mode), the comments of the rules that jump to them. It never invents text: no explanation,
no findings.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from kptui.engine import Rule, Ruleset
from kptui.engine.comments import comment_of  # the one reader of kube-proxy's rule comments
from kptui.engine.graph import graph_of

from .locs import Loc, rows_of
from .service_info import Finding, Frontend, ServiceInfo

__all__ = ["CommentInsights", "Finding", "Frontend", "Insights", "ServiceInfo", "comment_of", "load_insights"]

# ns/name[:port] as kube-proxy writes it (DNS labels; the port name may be empty or absent).
_SERVICE = re.compile(r"(?<![\w/.:-])([a-z0-9](?:[-a-z0-9]*[a-z0-9])?/[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
                      r"(?::[-a-z0-9]*)?)(?![\w/])")  # fmt: skip
_HASHED = re.compile(r"^KUBE-(?:SVC|SVL|EXT|FW|SEP|XLB)-[A-Z0-9]{16}$")
_DST = re.compile(r"(?<!! )-d (\S+)")
_PROTO = re.compile(r"(?<!! )-p (\w+)")
_DPORT = re.compile(r"(?<!! )--dport (\d+)")
_NOT_SRC = re.compile(r"! -s (\S+)")


def service_in_comment(comment: str | None) -> str | None:
    if not comment:
        return None
    m = _SERVICE.search(comment)
    return m.group(1) if m else None


class Insights(Protocol):
    """What the UI asks about a dump beyond its rules. Implementations must be cheap per call."""

    @property
    def services(self) -> Mapping[str, ServiceInfo]: ...  # label → what the panes show of the service

    @property
    def pod_cidr(self) -> str | None: ...  # the local-traffic detector's pod CIDR (``! -s CIDR`` masquerade rules)

    def service_of(self, table: str | None, chain: str) -> str | None: ...

    def explain(self, rule: Rule) -> str | None: ...

    def explain_chain(self, table: str | None, chain: str) -> str | None: ...

    def findings(self, loc: Loc) -> Sequence[Finding]: ...


def _host(addr: str) -> str | None:
    try:
        return str(ipaddress.ip_interface(addr).ip)
    except ValueError:
        return None


class CommentInsights:
    """Service names from the dump's own comments and jump graph; no explanations, no findings."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.services: dict[str, ServiceInfo] = {}
        self.pod_cidr: str | None = None
        self._by_chain: dict[tuple[str | None, str], str] = {}
        self._cache: dict[tuple[str | None, str], str | None] = {}
        self.problem: str | None = None  # why the kube engine's index is not used, when it failed
        self._scan()

    # -- building -------------------------------------------------------------------------------------
    def _frontend(self, name: str, kind: str, raw: str, target: str | None, table: str | None,
                  ip_required: bool = True) -> None:  # fmt: skip
        dst, proto, dport = _DST.search(raw), _PROTO.search(raw), _DPORT.search(raw)
        if dport is None or proto is None or (ip_required and dst is None):
            return
        ip = _host(dst.group(1)) if dst is not None and ip_required else None
        if ip_required and ip is None:
            return
        self.services.setdefault(name, ServiceInfo(name)).add(Frontend(kind, ip, int(dport.group(1)),
                                                                        proto.group(1).lower()))
        if target and _HASHED.match(target):
            self._by_chain.setdefault((table, target), name)

    def _scan(self) -> None:
        rs = self.ruleset
        kinds = {" cluster IP": "cluster-ip", " external IP": "external-ip", " loadbalancer IP": "loadbalancer"}
        for table, chain_name in (("nat", "KUBE-SERVICES"), ("filter", "KUBE-SERVICES"),
                                  ("filter", "KUBE-EXTERNAL-SERVICES"), ("nat", "KUBE-NODEPORTS")):  # fmt: skip
            chain = rs.chain(table, chain_name) or (rs.chain(None, chain_name) if None in rs.tables else None)
            if chain is None:
                continue
            for _line, raw, _pk, _by, target, _goto in rows_of(chain):
                comment = comment_of(raw)
                name = service_in_comment(comment)
                if name is None or comment is None:
                    continue
                if chain_name == "KUBE-NODEPORTS" or "--dst-type LOCAL" in raw:
                    if "-d 127.0.0.0/8" not in raw:
                        self._frontend(name, "nodeport", raw, target, chain.table, ip_required=False)
                    continue
                kind = next((k for suffix, k in kinds.items() if suffix in comment), None)
                if kind is None and chain_name == "KUBE-SERVICES" and "has no endpoints" in comment:
                    kind = "cluster-ip"
                if kind is None and chain_name == "KUBE-EXTERNAL-SERVICES":
                    kind = "external-ip"
                if kind is not None and (target is None or target != "KUBE-MARK-MASQ"):
                    self._frontend(name, kind, raw, target, chain.table)
        for tbl in rs.tables.values():  # the local-traffic detector, from the first SVC masquerade rule
            for svc in tbl:
                if svc.name.startswith("KUBE-SVC-"):
                    for _line, raw, *_rest, target, _goto in rows_of(svc)[:2]:
                        m = _NOT_SRC.search(raw)
                        if m and target == "KUBE-MARK-MASQ":
                            self.pod_cidr = m.group(1)
                            return

    # -- answers --------------------------------------------------------------------------------------
    def service_of(self, table: str | None, chain: str) -> str | None:
        return self._service_of(table, chain, set())

    def _service_of(self, table: str | None, chain: str, visiting: set[tuple[str | None, str]]) -> str | None:
        """Only final answers go into the cache: the UI thread and workers (palette, search index, filter)
        ask at the same time, and a placeholder seen by another thread would be a wrong answer."""
        key = (table, chain)
        if key in self._cache:
            return self._cache[key]
        if key in visiting:  # a jump loop
            return None
        visiting.add(key)
        found = self._resolve(table, chain, visiting)
        self._cache[key] = found
        return found

    def _resolve(self, table: str | None, chain_name: str, visiting: set[tuple[str | None, str]]) -> str | None:
        if not _HASHED.match(chain_name):
            return None
        if (table, chain_name) in self._by_chain:
            return self._by_chain[(table, chain_name)]
        chain = self.ruleset.chain(table, chain_name)
        if chain is not None:
            for row in rows_of(chain)[:4]:
                name = service_in_comment(comment_of(row[1]))
                if name:
                    return name
        for ref in graph_of(self.ruleset).callers_of(table, chain_name)[:3]:
            name = self._service_of(ref.table, ref.chain, visiting)
            if name:
                return name
            caller = self.ruleset.chain(ref.table, ref.chain)
            if caller is not None:
                name = service_in_comment(comment_of(rows_of(caller)[ref.index - 1][1]))
                if name:
                    return name
        return None

    def explain(self, rule: Rule) -> str | None:
        return None

    def explain_chain(self, table: str | None, chain: str) -> str | None:
        return None

    def findings(self, loc: Loc) -> Sequence[Finding]:
        return ()


def load_insights(ruleset: Ruleset) -> Insights:
    """The kube engine's insights (:mod:`kptui.ui.kube_adapter`), else what the comments say."""
    from .kube_adapter import kube_insights

    try:
        found = kube_insights(ruleset)
    except Exception as exc:  # noqa: BLE001 - a bug in the service index must not take the explorer down
        fallback = CommentInsights(ruleset)
        fallback.problem = f"the kube service index failed ({type(exc).__name__}: {exc}); names come from comments"
        return fallback
    return found or CommentInsights(ruleset)
