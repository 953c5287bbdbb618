"""Which of kube-proxy's modes a node's rules are in: iptables (``KUBE-*`` chains) or nftables (``table ip|ip6
kube-proxy``), what the other mode left behind, and whether both are live at once.

A node that switched modes can keep the old mode's rules: ``KUBE-*`` chains in the iptables tables after a
switch to nftables mode (kubelet's own ``KUBE-FIREWALL``, ``KUBE-KUBELET-CANARY``, ``KUBE-IPTABLES-HINT`` and
``KUBE-MARK-DROP`` are not kube-proxy's and do not count), or a ``kube-proxy`` table after a switch back. They
are **leftovers** while nothing sends packets into them with services behind; when both modes' rules are
hooked in and hold services, the node is **mixed**: both DNAT at the same priority (−100), in an order no
listing shows, and the first to DNAT a connection wins.

The mode in use is what kube-proxy says (``/proxyMode`` of the live node or a bundle) when it says it, else
the mode whose rules hold service ports (the one with more of them when both do; nftables on a tie). The
iptables side is read from the dump (``Ruleset``) and from iptables-nft's tables inside an nft listing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..model import Ruleset
from ..nft.exprs import Verdict
from ..nft.model import NftRuleset, NftTable
from .facts import rows_of
from .nft_layout import kube_tables

__all__ = ["IPTABLES_CHAINS", "KubeModes", "Leftover", "kube_modes"]

IPTABLES_CHAINS = frozenset({"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
                             "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL",
                             "KUBE-PROXY-CANARY"})  # fmt: skip
_PER_SERVICE = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-", "KUBE-SEP-")
_TO_SERVICE = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")
_MODES = ("iptables", "nftables", "ipvs")


@dataclass(frozen=True, slots=True)
class Leftover:
    """The rules of the mode not in use: where, how many, and whether packets still reach them."""

    mode: str  # "iptables" or "nftables"
    where: str  # "the iptables dump", "table ip nat (iptables-nft)", "table ip kube-proxy"
    chains: int
    rules: int
    services: int  # service ports they still send packets to (iptables: jumps from KUBE-SERVICES; nft: map entries)
    hooked: bool  # the built-in or base chains still lead into them
    names: tuple[str, ...]  # a few of the chains, for the message

    @property
    def live(self) -> bool:
        return self.hooked and self.services > 0


@dataclass(frozen=True, slots=True)
class KubeModes:
    """What the rules (and kube-proxy, when asked) say about the proxy mode."""

    mode: str | None  # the mode in use: "iptables", "nftables" ("ipvs" when kube-proxy says so), or None
    source: str | None  # "proxyMode" (kube-proxy said it) or "rules"
    iptables_services: int  # service ports the iptables-mode rules lead to (jumps from nat KUBE-SERVICES)
    nftables_services: int  # service ports the nftables table leads to (its maps' entries)
    leftovers: tuple[Leftover, ...]  # the other mode's rules
    mixed: bool  # both modes' rules are hooked in and hold services
    evidence: tuple[str, ...]


def _ipt_side(tables: Iterable[tuple[str, dict[str, list[str]]]]) -> tuple[int, int, int, bool, list[str]]:
    """(chains, rules, service jumps, hooked, names) over tables given as name → chain → jump targets."""
    chains = rules = services = 0
    hooked = False
    names: list[str] = []
    for _, table in tables:
        for name, targets in table.items():
            if name in IPTABLES_CHAINS or name.startswith(_PER_SERVICE):
                chains += 1
                rules += len(targets)
                if len(names) < 4:
                    names.append(name)
                if name == "KUBE-SERVICES":
                    services += sum(1 for t in targets if t.startswith(_TO_SERVICE))
            elif name in ("PREROUTING", "OUTPUT") and "KUBE-SERVICES" in targets:
                hooked = True
    return chains, rules, services, hooked, names


def _from_dump(ruleset: Ruleset) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for tname, table in ruleset.tables.items():
        if tname not in (None, "nat", "filter"):
            continue
        out[tname or ""] = {c.name: [row[4] or "" for row in rows_of(c)] for c in table.chains.values()}
    return out


def _from_nft(table: NftTable) -> dict[str, list[str]]:
    return {c.name: [s.target or "" for r in c.rules for s in r.exprs if isinstance(s, Verdict) and s.target]
            for c in table.chains.values()}  # fmt: skip


def _nft_services(table: NftTable) -> int:
    return sum(len(st.elements) for name in ("service-ips", "service-nodeports", "no-endpoint-services",
                                             "no-endpoint-nodeports") if (st := table.sets.get(name)) is not None)


def kube_modes(ruleset: Ruleset | None, nft: NftRuleset | None, proxy_mode: str | None = None) -> KubeModes:
    """The mode in use, the other mode's leftovers and whether the node is mixed (see the module doc)."""
    evidence: list[str] = []
    ipt: list[tuple[str, tuple[int, int, int, bool, list[str]]]] = []
    if ruleset is not None:
        side = _ipt_side(_from_dump(ruleset).items())
        if side[0]:
            ipt.append(("the iptables dump", side))
    for t in nft.tables if nft is not None else ():
        if t.name == "kube-proxy" or not any(n in IPTABLES_CHAINS or n.startswith(_PER_SERVICE) for n in t.chains):
            continue
        side = _ipt_side([(t.name, _from_nft(t))])
        if side[0] and not (ruleset is not None and t.iptables_nft):  # the dump already shows that table
            ipt.append((f"table {t.family} {t.name}" + (" (iptables-nft)" if t.iptables_nft else ""), side))
    ipt_services = sum(s[2] for _, s in ipt)
    ipt_hooked = any(s[3] for _, s in ipt)
    kube = kube_tables(nft)
    nft_services = sum(_nft_services(t) for t in kube)
    nft_hooked = any(c.is_base and c.rules for t in kube for c in t.chains.values())
    mode: str | None
    told = proxy_mode if proxy_mode in _MODES else None
    if told is not None:
        mode, source = told, "proxyMode"
        evidence.append(f"kube-proxy reports proxy mode {told} (/proxyMode)")
    elif kube and (nft_services or not ipt_services):
        mode, source = ("nftables" if nft_services >= ipt_services or not ipt else "iptables"), "rules"
    elif ipt:
        mode, source = "iptables", "rules"
    else:
        mode, source = None, None
    if source == "rules" and mode is not None:
        counts = {"iptables": ipt_services, "nftables": nft_services}
        evidence.append(f"{mode} mode: its rules lead to {counts[mode]} service port entries")
    leftovers: list[Leftover] = []
    if mode != "iptables":
        for where, (chains, rules, services, hooked, names) in ipt:
            leftovers.append(Leftover("iptables", where, chains, rules, services, hooked, tuple(names)))
    if mode != "nftables":
        for t in kube:
            leftovers.append(Leftover("nftables", f"table {t.family} kube-proxy", len(t.chains), t.rule_count,
                                      _nft_services(t), any(c.is_base and c.rules for c in t.chains.values()),
                                      tuple(list(t.chains)[:4])))  # fmt: skip
    mixed = any(lo.live for lo in leftovers) and (
        (mode == "nftables" and nft_hooked and nft_services > 0) or (mode == "iptables" and ipt_hooked
                                                                       and ipt_services > 0))  # fmt: skip
    for lo in leftovers:
        state = "still hooked in, leading to services" if lo.live else "not in use"
        evidence.append(f"{lo.mode}-mode rules in {lo.where}: {lo.chains} chains, {lo.rules} rules ({state})")
    if mixed:
        evidence.append("both modes' rules are live: they DNAT at the same priority, in an order no listing shows")
    return KubeModes(mode, source, ipt_services, nft_services, tuple(leftovers), mixed, tuple(evidence))
