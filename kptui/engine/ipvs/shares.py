"""Which real server gets a new connection: each one's share, exactly, by scheduler and weight.

What the schedulers do (``net/netfilter/ipvs/ip_vs_rr.c``, ``ip_vs_wrr.c``, …): every scheduler skips a real
server of weight 0 (draining: no new connections, existing ones go on). ``rr`` takes the others in turn, so over
many connections each gets the same share, whatever its weight; ``wrr`` gives each a share proportional to its
weight. The other schedulers choose by load (``lc``, ``wlc``, ``sed``, ``nq``, ``lblc``, ``lblcr``, ``ovf``,
``twos``) or by a hash of the addresses (``sh``, ``dh``, ``mh``): kptui gives the weight shares and says that
the real choice depends on the load or the hash; ``fo`` (weighted failover) always takes the available real
server of the highest weight. A listing without weights (``--stats``) gets equal shares, said so.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

from .model import RealServer, VirtualService

__all__ = ["Shares", "shares"]

_BY_LOAD = {"lc": "least-connection", "wlc": "weighted least-connection", "sed": "shortest expected delay",
            "nq": "never queue", "lblc": "locality-based least-connection",
            "lblcr": "locality-based least-connection with replication", "ovf": "weighted overflow",
            "twos": "weighted random twos choice"}  # fmt: skip
_BY_HASH = {"sh": "source hashing", "dh": "destination hashing", "mh": "maglev hashing"}


class Shares(NamedTuple):
    """The real servers that can get a new connection, each with its share (summing to 1, or empty when none
    is available), the draining ones, and a note on how exact the shares are."""

    servers: tuple[tuple[RealServer, Fraction], ...]
    draining: tuple[RealServer, ...]
    note: str
    exact: bool  # the shares are what the scheduler does (rr, wrr, fo), not an estimate

    def share(self, rs: RealServer) -> Fraction:
        """``rs``'s share (0: draining, or not one of this service's real servers)."""
        for r, p in self.servers:
            if r is rs:
                return p
        return Fraction(0)


def shares(vs: VirtualService) -> Shares:
    """The shares of ``vs``'s real servers for a new connection (see the module doc)."""
    sched = vs.scheduler
    draining = tuple(r for r in vs.real_servers if r.weight == 0)
    known = [r for r in vs.real_servers if r.weight is not None]
    if len(known) < len(vs.real_servers):  # no weights in the listing
        servers = tuple(r for r in vs.real_servers if r.weight != 0)
        n = len(servers)
        if not n:
            return Shares((), draining, "no real server can take a new connection", True)
        return Shares(tuple((r, Fraction(1, n)) for r in servers), draining,
                      "the listing shows no weights (ipvsadm --stats/--rate): equal shares assumed", False)
    available = [r for r in vs.real_servers if (r.weight or 0) > 0]
    if not available:
        return Shares((), draining, "no real server can take a new connection", True)
    if sched == "rr":
        n = len(available)
        return Shares(tuple((r, Fraction(1, n)) for r in available), draining,
                      "round-robin: each available real server in turn", True)
    if sched == "fo":
        top = max(r.weight or 0 for r in available)
        best = [r for r in available if r.weight == top]
        exact = len(best) == 1
        note = ("weighted failover: the available real server of the highest weight" if exact else
                "weighted failover: the first of the real servers of the highest weight, in an order no "
                "listing shows (equal shares assumed)")  # fmt: skip
        return Shares(tuple((r, Fraction(1, len(best))) for r in best), draining, note, exact)
    total = sum(r.weight or 0 for r in available)
    weighted = tuple((r, Fraction(r.weight or 0, total)) for r in available)
    if sched == "wrr":
        return Shares(weighted, draining, "weighted round-robin: shares by weight", True)
    if sched in _BY_HASH:
        note = (f"{_BY_HASH[sched]}: a given client always gets the same real server, which depends on a hash of "
                "its address; shares by weight over many clients")  # fmt: skip
    elif sched in _BY_LOAD:
        note = (f"{_BY_LOAD[sched]}: the choice depends on the real servers' current load; shares by weight "
                "(as under equal load)")  # fmt: skip
    else:
        note = f"scheduler {sched or 'not listed'}: shares by weight, the real choice may differ"
    return Shares(weighted, draining, note, False)
