"""An IPVS-mode node's ipsets and IPVS table in the shape of the rule model's tables, for the views that show
them next to the iptables (and nft) tables: the explorer's tree, its search and filter (:func:`with_ipvs`).

Two display tables, after every netfilter table: ``ipset`` (one chain per set, named as the set; its rows are
the members as ``ipset save`` writes them) and ``ipvs`` (one chain per virtual service, named as ipvsadm names
it: ``TCP 10.96.0.10:80``, ``FWM 1``; its rows are the real servers with forwarding, weight and exact share;
the ``InPkts``/``InBytes`` of ``--stats`` as the row's counters). These rows are for showing: they are no
iptables rules and must never be decoded as such (the views look at :func:`is_ipvs_table` first). Neither name
can clash with an iptables table (raw, mangle, nat, filter, security) nor an nft one (``FAMILY NAME``).
"""

from __future__ import annotations

from dataclasses import replace

from ..model import Chain, Ruleset, Table
from ..rulelist import Row, RuleList
from .model import RealServer, VirtualService
from .node import IpvsNode
from .shares import shares

__all__ = ["IPSET_TABLE", "IPVS_TABLE", "ipvs_tables", "is_ipvs_table", "real_server_text", "with_ipvs"]

IPSET_TABLE, IPVS_TABLE = "ipset", "ipvs"


def is_ipvs_table(name: str | None) -> bool:
    """A display table of the IPVS side (its rows are set members or real servers, not rules)."""
    return name in (IPSET_TABLE, IPVS_TABLE)


def real_server_text(vs: VirtualService, rs: RealServer) -> str:
    """``-> 10.244.1.5:8080 Masq weight 1 share 1/3`` (``draining`` for weight 0)."""
    weight = "?" if rs.weight is None else str(rs.weight)
    got = shares(vs).share(rs)
    share = "draining" if rs.weight == 0 else f"share {got.numerator}/{got.denominator}"
    return f"-> {rs.hostport} {rs.forward or '?'} weight {weight} {share}"


def _stat(rs: RealServer, name: str) -> str | None:
    """A ``--stats`` column as a counter: digits only (``--exact``; ipvsadm abbreviates big ones as ``12K``)."""
    value = next((v for k, v in rs.stats if k == name), None)
    return value if value is not None and value.isdigit() else None


def ipvs_tables(node: IpvsNode) -> dict[str, Table]:
    """The ``ipset`` and ``ipvs`` display tables of what the node gives (none when it gives neither)."""
    out: dict[str, Table] = {}
    if node.ipsets is not None:
        chains: dict[str, Chain] = {}
        for name, s in node.ipsets.sets.items():
            rows: list[Row] = [(e.line or s.line or 0, e.text + (" nomatch" if e.nomatch else ""), None, None, None,
                                False) for e in s.elements]  # fmt: skip
            chains[name] = Chain(name, IPSET_TABLE, None, None, RuleList(IPSET_TABLE, name, rows), s.line)
        out[IPSET_TABLE] = Table(IPSET_TABLE, chains, None)
    if node.table is not None:
        chains = {}
        for vs in node.table:
            rows = []
            for rs in vs.real_servers:
                pk, by = _stat(rs, "InPkts"), _stat(rs, "InBytes")
                if pk is None or by is None:
                    pk = by = None
                rows.append((rs.line or vs.line or 0, real_server_text(vs, rs), pk, by, None, False))
            chains[vs.key] = Chain(vs.key, IPVS_TABLE, None, None, RuleList(IPVS_TABLE, vs.key, rows), vs.line)
        out[IPVS_TABLE] = Table(IPVS_TABLE, chains, None)
    return out


def with_ipvs(display: Ruleset, node: IpvsNode | None) -> Ruleset:
    """``display`` with the node's ipset and IPVS tables after its own (``display`` itself without them)."""
    extra = ipvs_tables(node) if node is not None else {}
    if not extra:
        return display
    tables: dict[str | None, Table] = dict(display.tables)
    tables.update(extra)
    return replace(display, tables=tables)
