"""What netfilter holds on a node, and which base chains run, in which order, at each hook.

:class:`Netfilter` is the whole of a node's rules as kptui read them: the iptables dump of each family, and the
nft ruleset (whose tables the iptables dump does not already show). :func:`hook_schedule` lists, for one hook
and one packet family, every base chain that sees the packet, in the kernel's order:

- the xtables tables at their fixed priorities (raw −300, mangle −150, nat, filter 0, security 50) and every nft
  base chain of a table of the packet's family (``ip`` for IPv4, ``ip6`` for IPv6, ``inet`` for both) at its
  own priority; conntrack looks the packet up at −200;
- nat chains (iptables' nat table and nft ``type nat`` chains alike) do not run at their own priority: the
  kernel's NAT core hook runs them, ordered by their priorities, at −100 (prerouting, output) or +100 (input,
  postrouting), and stops once one of them has set up a mapping (``nf_nat_inet_fn``). They see only the first
  packet of a connection.
- equal priorities run in registration order, which no listing shows: such entries are flagged ``tie``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from .model import Ruleset

__all__ = ["CONNTRACK_PRIORITY", "NAT_CORE_PRIORITY", "XT_PRIORITY", "BaseChain", "Netfilter", "hook_schedule"]

XT_PRIORITY: Mapping[str, int] = MappingProxyType({"raw": -300, "mangle": -150, "filter": 0, "security": 50})
NAT_CORE_PRIORITY: Mapping[str, int] = MappingProxyType({"PREROUTING": -100, "OUTPUT": -100, "INPUT": 100,
                                                         "POSTROUTING": 100})  # fmt: skip
CONNTRACK_PRIORITY = -200
_XT_TABLES: Mapping[str, tuple[str, ...]] = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "security", "nat"),
    "FORWARD": ("mangle", "filter", "security"),
    "OUTPUT": ("raw", "mangle", "nat", "filter", "security"),
    "POSTROUTING": ("mangle", "nat"),
}


class BaseChain(NamedTuple):
    """One base chain on a hook, where it runs and what a hop in it shows."""

    priority: int  # the chain's own priority
    ns: tuple[str, ...]  # its namespace of chains: ("xt", TABLE) or ("nft", FAMILY, TABLE)
    chain: str
    table: str  # what a hop shows as the table: "nat", or the nft table's name ("kube-proxy")
    family: str  # "ip", "ip6" or "inet"
    nat: bool  # a nat chain: first packets only, run by the NAT core (module docstring)
    tie: bool = False  # another base chain of this hook has the same place: their order is not known


@dataclass(frozen=True, eq=False)
class Netfilter:
    """A node's netfilter rules: the iptables dump of each family ("ipv4", "ipv6"), and an nft ruleset."""

    xtables: Mapping[str, Ruleset] = field(default_factory=dict)
    nft: Any = None  # kptui.engine.nft's ruleset, or None
    ipvs: Any = None  # the IPVS step (kptui.engine.ipvs.step.IpvsViews) of an IPVS-mode node, or None

    @classmethod
    def of(cls, rules: Ruleset | Netfilter, family: int) -> Netfilter:
        """``rules`` as a Netfilter; a lone iptables dump is taken as the packet's family's (a paste of a v4 and
        a v6 dump brings the other family's as a companion)."""
        if isinstance(rules, Netfilter):
            return rules
        found = {rules.family or ("ipv6" if family == 6 else "ipv4"): rules}
        for other in rules.companions:
            found.setdefault(other.family or "", other)
        return cls(found)

    def ruleset(self, family: int) -> Ruleset | None:
        """The iptables dump of ``family`` (4 or 6); a dump whose family is unknown stands for either."""
        want = "ipv6" if family == 6 else "ipv4"
        rs = self.xtables.get(want)
        if rs is None and len(self.xtables) == 1:
            only = next(iter(self.xtables.values()))
            rs = only if only.family is None else None
        return rs


def _xt_entries(rs: Ruleset | None, hook: str, family: int) -> list[BaseChain]:
    if rs is None:
        return []
    fam = "ip6" if family == 6 else "ip"
    out = []
    for table in _XT_TABLES[hook]:
        if rs.chain(table, hook) is None:
            continue
        prio = NAT_CORE_PRIORITY[hook] if table == "nat" else XT_PRIORITY[table]
        out.append(BaseChain(prio, ("xt", table), hook, table, fam, table == "nat"))
    return out


def hook_schedule(rules: Netfilter, hook: str, family: int, extra: list[BaseChain] | None = None
                  ) -> tuple[BaseChain, ...]:  # fmt: skip
    """The base chains of ``hook`` (PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING) for a packet of
    ``family`` (4 or 6), in the order the kernel runs them. ``extra`` are base chains of other front ends."""
    entries = _xt_entries(rules.ruleset(family), hook, family) + list(extra or ())
    core = NAT_CORE_PRIORITY.get(hook, 0)

    def key(e: BaseChain) -> tuple[int, int]:
        return (core, e.priority) if e.nat else (e.priority, e.priority)

    ordered = sorted(enumerate(entries), key=lambda ie: (key(ie[1]), ie[0]))
    keys = [key(e) for _, e in ordered]
    return tuple(e._replace(tie=keys.count(key(e)) > 1) for _, e in ordered)
