"""An IPVS-mode node's ipsets and IPVS table in the shape of the rule model's tables, for the views that show
them next to the iptables (and nft) tables: the explorer's tree, its search and filter (:func:`with_ipvs`).

Two display tables, after every netfilter table: ``ipset`` (one chain per set, named as the set; its rows are
the members as ``ipset save`` writes them) and ``ipvsadm`` (one chain per virtual service, named as ipvsadm names
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

__all__ = ["IPSET_TABLE", "IPVS_TABLE", "ipvs_list_command", "ipvs_tables", "is_ipvs_table", "real_server_text",
           "with_ipvs"]

IPSET_TABLE, IPVS_TABLE = "ipset", "ipvsadm"  # not "ipvs": the trace's IPVS step has that namespace


def is_ipvs_table(name: str | None) -> bool:
    """A display table of the IPVS side (its rows are set members or real servers, not rules)."""
    return name in (IPSET_TABLE, IPVS_TABLE)


def ipvs_list_command(loc: object) -> str | None:
    """The read-only command that lists a place of the display tables (``loc``: table, chain, as the explorer's
    locations): ``ipset list NAME``, ``ipvsadm -L -n -t 10.96.0.10:80`` (``-u`` UDP, ``--sctp-service``, ``-f``
    firewall mark), the whole ``ipset list -t`` / ``ipvsadm -L -n`` on a table; None elsewhere."""
    import shlex

    table, chain = getattr(loc, "table", None), getattr(loc, "chain", None)
    if table == IPSET_TABLE:
        return f"ipset list {shlex.quote(chain)}" if chain else "ipset list -t"
    if table != IPVS_TABLE:
        return None
    if not chain:
        return "ipvsadm -L -n"
    kind, _, where = chain.partition(" ")
    flag = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service", "FWM": "-f"}.get(kind)
    if flag is None or not where:
        return "ipvsadm -L -n"
    if kind == "FWM":
        where = where.split(" ", 1)[0] + (" -6" if where.endswith("IPv6") else "")
        return f"ipvsadm -L -n {flag} {where}"
    return f"ipvsadm -L -n {flag} {shlex.quote(where)}"


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
