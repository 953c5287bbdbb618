"""Which table an ``iptables -S`` listing belongs to, from what kube-proxy and the kernel fix.

``iptables -S`` prints one table without saying which. Each listing (a *block*: one command's output) is read
for evidence, strongest first:

- the command line pasted before it (``iptables -t nat -S``; ``-S`` without ``-t`` lists filter);
- targets that exist in one table only (DNAT, SNAT, MASQUERADE, REDIRECT: nat; NOTRACK, CT, TRACE: raw;
  TPROXY, TTL, …: mangle — :attr:`kptui.engine.xt.unitbase.TargetUnit.tables`);
- kube-proxy's chains: KUBE-SVC/SEP/EXT/FW/XLB/SVL, KUBE-MARK-MASQ/DROP, KUBE-POSTROUTING, the userspace
  proxy's KUBE-PORTALS-* and KUBE-NODEPORT-* are nat; KUBE-FORWARD, KUBE-EXTERNAL-SERVICES,
  KUBE-PROXY-FIREWALL, KUBE-IPVS-FILTER, … are filter; KUBE-SERVICES and KUBE-NODEPORTS exist in both and are
  told by what they jump to (service chains: nat; REJECT/DROP/ACCEPT: filter); KUBE-FIREWALL is filter unless
  it jumps to KUBE-MARK-DROP (IPVS mode's nat chain of that name, kube-proxy ≤ 1.2x);
- the ``-P`` lines: the built-in chains with a policy are exactly one table's (INPUT, FORWARD, OUTPUT:
  filter — the security table has the same chains but nobody's rules; PREROUTING, INPUT, OUTPUT, POSTROUTING:
  nat; PREROUTING, OUTPUT: raw; all five: mangle).

Evidence that disagrees at the same strength leaves the block unplaced (its table None): a trace refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .model import BUILTIN_CHAINS
from .xt.registry import TARGETS

__all__ = ["BlockFacts", "Placement", "place"]

_NAT_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-", "KUBE-SVL-")
_NAT_CHAINS = frozenset({"KUBE-MARK-MASQ", "KUBE-MARK-DROP", "KUBE-POSTROUTING", "KUBE-PORTALS-CONTAINER",
                         "KUBE-PORTALS-HOST", "KUBE-NODEPORT-CONTAINER", "KUBE-NODEPORT-HOST",
                         "KUBE-LOAD-BALANCER", "KUBE-LOOP-BACK"})  # fmt: skip
_FILTER_CHAINS = frozenset({"KUBE-FORWARD", "KUBE-EXTERNAL-SERVICES", "KUBE-PROXY-FIREWALL", "KUBE-IPVS-FILTER",
                            "KUBE-IPVS-OUT-FILTER", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-NODE-PORT-FILTER"})
_BOTH = frozenset({"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-NODE-PORT"})
_REFUSING = frozenset({"REJECT", "DROP", "ACCEPT"})


class BlockFacts(NamedTuple):
    """What one listing holds: its built-in chains with a ``-P`` line, and each chain's targets."""

    policies: frozenset[str]
    targets: Mapping[str, frozenset[str]]  # chain → the targets of its rules
    hint: tuple[str, str] | None = None  # (table, why) from a command line pasted before the listing


class Placement(NamedTuple):
    table: str | None
    reason: str  # why (or why not)


def _by_policies(policies: frozenset[str]) -> list[tuple[str, str]]:
    if not policies:
        return []
    names = ", ".join(sorted(policies))
    if policies == frozenset(BUILTIN_CHAINS["filter"]):
        return [("filter", f"-P lines for {names}: the filter table's built-in chains")]
    for table in ("raw", "nat", "mangle"):
        if policies == frozenset(BUILTIN_CHAINS[table]):
            return [(table, f"-P lines for {names}: the {table} table's built-in chains")]
    return []


def _evidence(facts: BlockFacts) -> list[tuple[int, str, str]]:
    """(strength, table, reason), strongest meaning most certain."""
    out: list[tuple[int, str, str]] = []
    for chain, targets in facts.targets.items():
        for t in sorted(targets):
            unit = TARGETS.get(t)
            if unit is not None and len(unit.tables) == 1:
                why = f"chain {chain} uses -j {t}, which only the {unit.tables[0]} table has"
                out.append((3, unit.tables[0], why))
        if chain.startswith(_NAT_PREFIXES) or chain in _NAT_CHAINS:
            out.append((2, "nat", f"{chain} is one of kube-proxy's nat chains"))
        elif chain in _FILTER_CHAINS:
            out.append((2, "filter", f"{chain} is one of kube-proxy's filter chains"))
        elif chain in _BOTH:
            if any(t.startswith(_NAT_PREFIXES) or t in ("KUBE-NODEPORTS", "KUBE-MARK-MASQ") for t in targets):
                out.append((2, "nat", f"{chain} jumps to service chains: the nat table's {chain}"))
            elif targets & _REFUSING:
                what = "/".join(sorted(targets & _REFUSING))
                out.append((2, "filter", f"{chain} holds {what} rules: the filter table's {chain}"))
        elif chain == "KUBE-FIREWALL":
            if "KUBE-MARK-DROP" in targets:
                out.append((2, "nat", "KUBE-FIREWALL jumps to KUBE-MARK-DROP: IPVS mode's nat KUBE-FIREWALL"))
            else:
                out.append((1, "filter", "KUBE-FIREWALL is kube-proxy's (and the kubelet's) filter chain"))
        elif chain == "KUBE-IPTABLES-HINT":
            out.append((2, "mangle", "KUBE-IPTABLES-HINT is the kubelet's mangle chain"))
        for t in targets:
            if t in _NAT_CHAINS or t.startswith(_NAT_PREFIXES):
                out.append((2, "nat", f"chain {chain} jumps to {t}, a nat chain"))
    out += [(2, t, why) for t, why in _by_policies(facts.policies)]
    return out


def place(facts: BlockFacts) -> Placement:
    """The table of one listing, with the reason; table None when the evidence is missing or disagrees."""
    if facts.hint is not None:
        return Placement(*facts.hint)
    ev = _evidence(facts)
    if not ev:
        chains = ", ".join(sorted(facts.targets)[:6]) or "no chains"
        return Placement(None, f"nothing in it tells the table ({chains})")
    top = max(s for s, _, _ in ev)
    best = [(t, why) for s, t, why in ev if s == top]
    tables = dict.fromkeys(t for t, _ in best)
    if len(tables) > 1:
        why = "; ".join(f"{t}: {next(w for tt, w in best if tt == t)}" for t in tables)
        return Placement(None, f"its chains disagree ({why})")
    table = next(iter(tables))
    return Placement(table, best[0][1])


def block_facts(policies: Iterable[str], targets: Mapping[str, Iterable[str]],
                hint: tuple[str, str] | None = None) -> BlockFacts:  # fmt: skip
    return BlockFacts(frozenset(policies), {c: frozenset(t) for c, t in targets.items()}, hint)
