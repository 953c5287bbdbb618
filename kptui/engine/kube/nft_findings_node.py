"""Node-wide nftables-mode findings (:func:`node_findings`):

* ``mixed-mode`` (error): iptables-mode and nftables-mode rules both live (:mod:`.nft_mode`);
* ``iptables-leftovers`` / ``nftables-leftovers`` (warning): the other mode's rules, left behind;
* ``table-before-kube-proxy`` (warning; info for a mark that is not kube-proxy's bit): a rule of another table,
  hooked before kube-proxy's chain on the same hook (before its DNAT on prerouting/output, before its filter chain
  on input/forward), that drops, rejects or marks what may be service traffic (no destination condition, or one
  that holds a service address);
* ``cluster-ip-unallocated-drop`` and ``cluster-ip-unknown-port-reject`` (info): what ``cluster-ips-check`` does
  to addresses and ports no service has;
* ``masquerade-all`` (info): every connection to a cluster IP is masqueraded;
* ``dangling-jump`` (error) and ``unreferenced-chain`` (warning): a jump, goto or map element naming a chain the
  table lacks; a per-service chain nothing leads to (stale).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

from ..model import Ruleset
from ..nft.display import rule_targets
from ..nft.exprs import (
    Binop,
    Mangle,
    Match,
    Meta,
    Payload,
    Prefix,
    Range,
    Reject,
    SetLit,
    SetRef,
    Value,  # fmt: skip
    Verdict,
)
from ..nft.model import NftChain, NftRule, NftRuleset, NftTable
from .findings_model import Finding, Key
from .nft_build import nft_service_index_of
from .nft_layout import TABLE, kube_tables, nft_layout
from .nft_mode import KubeModes, kube_modes
from .nft_names import parse_chain

__all__ = ["mode_findings", "node_findings"]

Pair = tuple[Finding, Sequence[Key]]
CAP = 50
_FAMILIES = {"ip": ("ip", "inet"), "ip6": ("ip6", "inet")}


def node_findings(nft: NftRuleset, ruleset: Ruleset | None, proxy_mode: str | None) -> Iterator[Pair]:
    yield from mode_findings(kube_modes(ruleset, nft, proxy_mode))
    for table in kube_tables(nft):
        yield from _before_kube_proxy(nft, table)
        yield from _cluster_ips_check(table)
        lay = nft_layout(table)
        where = f"{table.family} {TABLE}"
        if lay.local_detector == "masquerade-all":
            chain = next((c for c in table.chains.values() if (pc := parse_chain(c.name)) is not None
                          and pc.prefix == "service" and c.rules), None)  # fmt: skip
            yield Finding(
                "masquerade-all", "info", "every connection to a cluster IP is masqueraded (masqueradeAll)",
                "The service chains mark every connection to their cluster IP for masquerade, pods' included (ip daddr "
                "C jump mark-for-masquerade, no source condition): endpoints never see a pod's own address.",
                "Intended with --masquerade-all; otherwise give kube-proxy its cluster CIDR (--cluster-cidr) or another "
                "local-traffic detector.",
                where, chain.name if chain else None, 1 if chain else None, (chain.rules[0].line or None)
                if chain and chain.rules else None,
            ), []  # fmt: skip
        yield from _capped(list(_dangling(table, where)))
        yield from _capped(list(_stale(nft, table, where)))


def _capped(pairs: list[Pair]) -> list[Pair]:
    if len(pairs) <= CAP:
        return pairs
    rest = pairs[CAP:]
    first = rest[0][0]
    also = [(f.table, f.chain, f.index) for f, _ in rest if f.chain is not None]
    return [*pairs[:CAP], (Finding(first.code, first.severity, f"{len(rest)} more like this ({first.code})",
                                   f"{len(rest)} further findings of the same kind, the first at {first.location}.",
                                   first.advice, count=len(rest)), also)]  # fmt: skip


def mode_findings(modes: KubeModes) -> Iterator[Pair]:
    """``mixed-mode`` and the leftovers findings of :func:`.nft_mode.kube_modes`' answer (both modes' lint)."""
    for lo in modes.leftovers:
        names = ", ".join(lo.names) + (" …" if lo.chains > len(lo.names) else "")
        if lo.live and modes.mixed:
            yield Finding(
                "mixed-mode", "error", f"both kube-proxy modes are live: {modes.mode} and {lo.mode} ({lo.where})",
                f"kube-proxy's {modes.mode}-mode rules and {lo.mode}-mode rules in {lo.where} ({lo.chains} chains, "
                f"{lo.rules} rules: {names}) both lead connections to services ({lo.services} entries in the "
                f"{lo.mode}-mode rules). Both DNAT at "
                "priority -100, in an order no listing shows: whichever runs first decides where a connection goes, "
                "and stale endpoints of the other mode can win.",
                "Run one kube-proxy mode only: remove the other mode's rules (kube-proxy --cleanup with that mode, "
                "or restart kube-proxy, which cleans up the mode it does not run).",
            ), []  # fmt: skip
            continue
        yield Finding(
            f"{lo.mode}-leftovers", "warning", f"{lo.mode}-mode rules left behind in {lo.where}",
            f"kube-proxy runs in {modes.mode or 'another'} mode, and {lo.where} still holds {lo.chains} chains and "
            f"{lo.rules} rules of its {lo.mode} mode ({names})"
            + (": still hooked in, but leading to no service." if lo.hooked else ", no longer hooked in."),
            f"Remove them (kube-proxy --cleanup --proxy-mode {lo.mode} on the node, or delete the chains) so they "
            "cannot come back into play.",
        ), []  # fmt: skip


def _cluster_ips_check(table: NftTable) -> Iterator[Pair]:
    chain = table.chains.get("cluster-ips-check")
    where = f"{table.family} {TABLE}"
    for rule in chain.rules if chain is not None else ():
        if any(isinstance(s, Match) and isinstance(s.right, SetRef) and s.right.name == "cluster-ips"
               for s in rule.exprs) and any(isinstance(s, Reject) for s in rule.exprs):  # fmt: skip
            yield Finding(
                "cluster-ip-unknown-port-reject", "info", "connections to a cluster IP on a port no service has are "
                "rejected (pings too)",
                "cluster-ips-check rejects what reaches a cluster IP without matching a service port: a wrong port, and "
                "ICMP: a ping to a cluster IP gets an ICMP error in nftables mode, never an echo reply.",
                "Check the Service's port when a client is refused; use the endpoints' addresses to ping pods.",
                where, chain.name if chain else None, rule.index, rule.line or None,
            ), []  # fmt: skip
        elif any(isinstance(s, Verdict) and s.kind == "drop" for s in rule.exprs):
            yield Finding(
                "cluster-ip-unallocated-drop", "info", "connections to unallocated addresses of the ServiceCIDR are "
                "dropped",
                "cluster-ips-check drops connections to an address of the service range that no Service has: a client "
                "that uses a stale or mistyped cluster IP times out instead of being refused.",
                "When a connection to a cluster IP times out, check the Service still has that address "
                "(kubectl get svc -A | grep ADDRESS).",
                where, chain.name if chain else None, rule.index, rule.line or None,
            ), []  # fmt: skip


def _dangling(table: NftTable, where: str) -> Iterator[Pair]:
    chains = table.chains
    for chain in chains.values():
        for rule in chain.rules:
            for t in rule_targets(rule):
                if t not in chains:
                    yield Finding("dangling-jump", "error", f"{chain.name}:{rule.index} jumps to {t}, which the table "
                                  "lacks", f"The rule names chain {t}, not in table {where}: nft would not load this "
                                  "ruleset as it is (a listing cut or edited?).",
                                  "Take the listing again (nft list ruleset) and compare.", where, chain.name,
                                  rule.index, rule.line or None), []  # fmt: skip
    for st in table.sets.values():
        for i, el in enumerate(st.elements):
            target = el.value.target if isinstance(el.value, Verdict) else None
            if target and target not in chains:
                yield Finding("dangling-jump", "error", f"@{st.name} sends to {target}, which the table lacks",
                              f"Element {i + 1} of @{st.name} goes to chain {target}, not in table {where}.",
                              "Take the listing again (nft list ruleset) and compare.", where, f"@{st.name}", i + 1,
                              None), []  # fmt: skip


def _stale(nft: NftRuleset, table: NftTable, where: str) -> Iterator[Pair]:
    used: set[str] = set()
    for chain in table.chains.values():
        for rule in chain.rules:
            used.update(rule_targets(rule))
    for st in table.sets.values():
        used.update(el.value.target for el in st.elements if isinstance(el.value, Verdict) and el.value.target)
    for chain in table.chains.values():
        parsed = parse_chain(chain.name)
        if parsed is None or parsed.prefix == "affinity" or chain.name in used:
            continue
        svc = nft_service_index_of(nft, table.family).by_chain(chain.name)
        yield Finding("unreferenced-chain", "warning", f"{chain.name} is not used (stale)",
                      f"No rule and no map element of {where} leads to this per-service chain: it is left over from a "
                      "service port or endpoint that is gone (kube-proxy removes such chains on a later sync).",
                      "Harmless while nothing leads to it; if it stays, kube-proxy's syncs are failing (see its logs).",
                      where, chain.name, None, chain.line, svc.label if svc else None), []  # fmt: skip


# -- another table before kube-proxy's -------------------------------------------------------------------
def _service_addresses(nft: NftRuleset, table: NftTable) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    index = nft_service_index_of(nft, table.family)
    nets = [ipaddress.ip_network(c, strict=False) for c in nft_layout(table).service_cidrs if _valid(c)]
    for s in index:
        nets += [ipaddress.ip_network(ip) for ip in s.all_ips() if _valid(ip)]
    return nets


def _valid(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _nets_of(v: Value, table: NftTable) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    items: Sequence[Value] = v.items if isinstance(v, SetLit) else (v,)
    if isinstance(v, SetRef):
        st = table.sets.get(v.name)
        if st is None:
            return None
        items = [e.key[0] for e in st.elements if e.key]
    out = []
    for i in items:
        if isinstance(i, Prefix):
            text = f"{i.addr}/{i.length}"
        elif isinstance(i, Range):
            return None
        else:
            text = str(i)
        if not _valid(text):
            return None
        out.append(ipaddress.ip_network(text, strict=False))
    return out


def _hits_services(rule: NftRule, table: NftTable, services: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
                   ) -> bool:  # fmt: skip
    """The rule may match service traffic: it has no destination address condition, or one that meets a service
    address (for ``!=``: unless it excludes every service address)."""
    for s in rule.exprs:
        if not (isinstance(s, Match) and isinstance(s.left, Payload) and s.left.field == "daddr"):
            continue
        nets = _nets_of(s.right, table)
        if nets is None:
            return True
        meets = any(a.version == b.version and a.overlaps(b) for a in nets for b in services)
        return meets if s.op in ("==", "in") else not all(
            any(a.version == b.version and b.subnet_of(a) for a in nets) for b in services)  # type: ignore[arg-type]
    return True


def _what(rule: NftRule, mark: int) -> tuple[str, str] | None:
    """(severity, what it does) for a rule that drops, rejects or marks; None for any other."""
    for s in rule.exprs:
        if isinstance(s, Verdict) and s.kind == "drop":
            return "warning", "drops"
        if isinstance(s, Reject):
            return "warning", "rejects"
        if isinstance(s, Mangle) and isinstance(s.key, Meta) and s.key.key == "mark":
            bits = s.value.right if isinstance(s.value, Binop) and isinstance(s.value.right, int) else s.value
            if isinstance(bits, int) and bits & mark:
                return "warning", f"sets the packet mark's bit {hex(mark)} (kube-proxy's masquerade bit) on"
            return "info", "sets the packet mark of"
    return None


def _reachable(table: NftTable, base: NftChain) -> Iterator[NftChain]:
    seen = {base.name}
    todo = [base]
    while todo:
        chain = todo.pop(0)
        yield chain
        for rule in chain.rules:
            for t in rule_targets(rule):
                if t not in seen and t in table.chains and len(seen) < 256:
                    seen.add(t)
                    todo.append(table.chains[t])


def _before_kube_proxy(nft: NftRuleset, kube: NftTable) -> Iterator[Pair]:
    mark = int(nft_layout(kube).masquerade_mark or "0x4000", 16)
    first: dict[str, int] = {}
    for c in kube.base_chains():
        if c.hook is not None and c.priority is not None:
            first[c.hook] = min(first.get(c.hook, c.priority), c.priority)
    dnat: dict[str, int] = {h: -100 for h in ("prerouting", "output") if h in first}
    services: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    for t in nft.tables:
        if t is kube or t.family not in _FAMILIES.get(kube.family, ()):
            continue
        for base in t.base_chains():
            limit = dnat.get(base.hook or "", first.get(base.hook or ""))
            if limit is None or base.priority is None or base.priority >= limit:
                continue
            for chain in _reachable(t, base):
                for rule in chain.rules:
                    what = _what(rule, mark)
                    if what is None:
                        continue
                    if services is None:
                        services = _service_addresses(nft, kube)
                    if not _hits_services(rule, t, services):
                        continue
                    severity, verb = what
                    before = "its DNAT" if base.hook in dnat else f"its {base.hook} chain"
                    yield Finding(
                        "table-before-kube-proxy", severity,
                        f"table {t.family} {t.name} {verb.split(' (')[0].removesuffix(' on').removesuffix(' of')} "
                        f"service traffic before kube-proxy ({base.hook}, priority {base.priority})",
                        f"{t.family} {t.name} {chain.name}:{rule.index} ({rule.text}) {verb} packets that may be "
                        f"service traffic, in base chain {base.name} at priority {base.priority} of hook {base.hook}: "
                        f"before kube-proxy's {before} (priority {limit}), so it sees the service address itself.",
                        "Make sure the rule does not catch service addresses (cluster IPs, NodePorts, load-balancer IPs), "
                        "or hook it after kube-proxy's chains (a higher priority).",
                        f"{t.family} {t.name}", chain.name, rule.index, rule.line or None,
                    ), []  # fmt: skip
