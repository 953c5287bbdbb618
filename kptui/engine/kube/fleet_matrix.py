"""The fleet comparison as a nodes × services table, for the explorer's fleet screen: one :class:`MatrixRow` per
service port, one :class:`Cell` per node, each cell saying in a word how the node's entry stands against the
majority (the same, missing, extra, other endpoints, other shares or settings, no majority, not compared) and
whether the service's NodePort drops there; plus the filter the screen offers (a port, an address or CIDR, text).
Pure: a :class:`~.fleet_model.FleetReport` in, values out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .fleet_model import FleetReport, ServiceRow

__all__ = ["Cell", "FleetMatrix", "MatrixRow", "fleet_matrix"]

_KIND_TEXT = {"missing": "missing", "extra": "extra", "endpoints": "≠ endpoints", "shares": "≠ shares",
              "setting": "≠ settings", "no-majority": "split"}  # fmt: skip
_REACH_TEXT = {"drop": "drops", "reject": "rejects", "partly": "partly", "unknown": "?"}


@dataclass(frozen=True, slots=True)
class Cell:
    """One node's entry of one service port."""

    state: str  # "same", "missing", "extra", "endpoints", "shares", "setting", "no-majority", "not-compared"
    text: str  # a word or two for the table: "=", "missing", "≠ endpoints", "= · drops"
    detail: str  # the whole story: what differs, why not compared, what its NodePort does here
    reach: str | None = None  # the NodePort / LB on this node: ok, drop, reject, absent, partly, unknown

    @property
    def differs(self) -> bool:
        return self.state not in ("same", "not-compared")

    @property
    def blackhole(self) -> bool:
        return self.reach in ("drop", "reject", "partly")


@dataclass(frozen=True)
class MatrixRow:
    service: str
    key: str
    frontends: tuple[str, ...]
    majority: str
    cells: tuple[Cell, ...]  # one per node, in FleetMatrix.nodes order
    search: str  # what text filters match (name, frontends, endpoints, differences), folded

    @property
    def differs(self) -> bool:
        return any(c.differs for c in self.cells)

    @property
    def blackholes(self) -> bool:
        return any(c.blackhole for c in self.cells)


@dataclass(frozen=True)
class FleetMatrix:
    nodes: tuple[str, ...]  # the columns
    headers: tuple[str, ...]  # per node: mode and sync in a few words
    rows: tuple[MatrixRow, ...]

    def filtered(self, query: str, *, differing_only: bool = False) -> FleetMatrix:
        """The rows ``query`` matches (as the tree filter reads it: a port, an address or CIDR, or text), and
        with ``differing_only`` only the rows where some node differs or a NodePort drops."""
        rows = [r for r in self.rows if _matches(r, query.strip())]
        if differing_only:
            rows = [r for r in rows if r.differs or r.blackholes]
        return FleetMatrix(self.nodes, self.headers, tuple(rows))


def _matches(row: MatrixRow, query: str) -> bool:
    if not query:
        return True
    if query.isdigit():
        port = query
        return any(f":{port}/" in f or f.startswith(f"*:{port}/") for f in row.frontends) or f":{port} " in row.search
    try:
        net = ipaddress.ip_network(query, strict=False)
    except ValueError:
        return query.casefold() in row.search
    for word in row.search.replace(",", " ").split():
        host = word.lstrip("+−(").rstrip(");").split("/")[0]
        host = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        try:
            if ipaddress.ip_address(host) in net:
                return True
        except ValueError:
            continue
    return False


def _cell(row: ServiceRow, node: str, compared: bool, note: str | None) -> Cell:
    reach = next((r for r in row.reach if r.node == node), None)
    reach_state = reach.state if reach is not None else None
    if not compared:
        return Cell("not-compared", "·", note or "not compared", reach_state)
    diff = row.difference(node)
    tail = f" · {_REACH_TEXT[reach_state]}" if reach_state in _REACH_TEXT else ""
    reach_detail = f"; {'NodePort' if row.node_port is not None else 'load balancer'} here: {reach.state} " \
                   f"({reach.detail})" if reach is not None else ""  # fmt: skip
    if diff is None:
        return Cell("same", "=" + tail, f"as the majority ({row.majority}){reach_detail}", reach_state)
    return Cell(diff.kind, _KIND_TEXT.get(diff.kind, diff.kind) + tail, diff.what + reach_detail, reach_state)


def fleet_matrix(report: FleetReport) -> FleetMatrix:
    nodes = tuple(n.name for n in report.nodes)
    headers = tuple(f"{n.node.mode or '?'}" + (" · failed" if n.node.error else f" · {n.differs} ≠" if n.differs
                                                 else "") for n in report.nodes)  # fmt: skip
    rows = []
    for s in report.services:
        cells = tuple(_cell(s, n.name, n.node.compared, n.node.services_note) for n in report.nodes)
        words = [s.service, *s.frontends, *(f"{e} " for e in s.endpoints), *(d.what for d in s.nodes_differing)]
        rows.append(MatrixRow(s.service, s.key, s.frontends, s.majority, cells, " ".join(words).casefold() + " "))
    return FleetMatrix(nodes, headers, tuple(rows))
