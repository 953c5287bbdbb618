"""A service port's own chains in kube-proxy's nftables mode, read into its :class:`~.nft_draft.NftPort`:

* ``service-`` / ``local-``: the masquerade rule (``ip daddr C ip saddr != CIDR jump mark-for-masquerade``),
  the affinity shortcuts (``ip saddr @affinity-… goto endpoint-…``: a first packet finds the set empty; the
  set's ``timeout`` is the affinity timeout), then ``numgen random mod N vmap { 0 : goto endpoint-…, … }``:
  each value 1/N exactly, values sharing a verdict summed, values without an element falling through to the
  next rule; newer kube-proxies DNAT right there (``dnat … to numgen random mod N map { 0 : IP . PORT }``);
* ``external-``: externalTrafficPolicy (Cluster: ``jump mark-for-masquerade``, ``goto service-…``; Local: the
  short-circuit rules for pods and the node, then ``goto local-…`` when this node has local endpoints);
* ``firewall-``: ``ip saddr != { CIDR, … } drop``, the loadBalancerSourceRanges (kube-proxy adds the LB IP
  itself when a range covers the node);
* ``endpoint-``: ``meta l4proto P dnat to IP:PORT``, the endpoint's address.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache

from ..nft.exprs import (
    Concat,
    Fib,
    MapItem,
    MapLookup,
    Match,
    Nat,
    Numgen,
    Payload,
    Range,
    SetLit,
    SetRef,
    Value,  # fmt: skip
    Verdict,
    VMap,
)
from ..nft.model import NftChain, NftTable
from .model import BlockingRule
from .nft_draft import NftPort, hostport, is_l4proto, norm, target_of
from .nft_layout import cidrs_of, masq_form
from .nft_names import parse_chain

__all__ = ["ChainReader"]

Add = Callable[[str, "Fraction | None"], None]


def _key_count(key: Value) -> int:
    if isinstance(key, int):
        return 1
    if isinstance(key, Range) and isinstance(key.lo, int) and isinstance(key.hi, int):
        return max(0, key.hi - key.lo + 1)
    return 0


def _is_endpoint(name: str | None) -> bool:
    parsed = parse_chain(name or "")
    return parsed is not None and parsed.prefix == "endpoint"


@lru_cache(maxsize=4096)
def _frac(k: int, n: int) -> Fraction:
    return Fraction(k, n)


def spread(key: Numgen, data: SetLit, left: Fraction, add: Add, target: Callable[[Value], str | None]) -> Fraction:
    """``numgen … mod N`` over a map: each value 1/N of what reaches the rule (``left``); returns what values
    without an element leave for the next rule."""
    n = key.mod
    if n <= 0:
        return left
    counts: dict[str, int] = {}
    for item in data.items:
        if not isinstance(item, MapItem):
            continue
        lo = item.key if isinstance(item.key, int) else (item.key.lo if isinstance(item.key, Range) else None)
        if not isinstance(lo, int) or lo < key.offset or lo >= key.offset + n:
            continue
        ep = target(item.value)
        if ep:
            counts[ep] = counts.get(ep, 0) + _key_count(item.key)
    covered = 0
    one = left == 1
    for ep, k in counts.items():
        add(ep, _frac(k, n) if one else left * _frac(k, n))
        covered += k
    if covered >= n:
        return Fraction(0)
    return left * _frac(n - covered, n)


class ChainReader:
    """Reads the per-service chains of one table into the service ports' drafts."""

    def __init__(self, table: NftTable, where: str) -> None:
        self.table = table
        self.where = where  # "ip kube-proxy": the blocking rules' table

    def read(self, p: NftPort) -> None:
        chains = self.table.chains
        if "SVC" in p.chains:
            p.shares = self.endpoints(p, chains[p.chains["SVC"]])
        if "SVL" in p.chains:
            p.local_shares = self.endpoints(p, chains[p.chains["SVL"]])
        if "EXT" in p.chains:
            self.external(p, chains[p.chains["EXT"]])
        if "FW" in p.chains:
            self.firewall(p, chains[p.chains["FW"]])
        if p.affinity is None and p.base is not None:
            for st in self.table.sets.values():
                parsed = parse_chain(st.name) if st.name.startswith("affinity-") else None
                if parsed is not None and parsed.service_base == p.base and st.timeout is not None:
                    p.affinity = int(st.timeout)
                    break
        for ep in [*p.shares, *(p.local_shares or {})]:
            if ep not in p.addresses:
                p.addresses[ep] = self.endpoint_address(p, ep)

    def endpoints(self, p: NftPort, chain: NftChain) -> dict[str, Fraction | None]:
        """The endpoints a service-/local- chain picks from, with each one's exact share of a first packet
        (keyed by endpoint chain, or ``=IP:PORT`` for an inline DNAT)."""
        shares: dict[str, Fraction | None] = {}
        left = Fraction(1)

        def add(ep: str, share: Fraction | None) -> None:
            if ep not in shares:
                shares[ep] = share
                return
            prev = shares[ep]
            shares[ep] = None if prev is None or share is None else prev + share

        for rule in chain.rules:
            if left == 0:
                break
            exprs = rule.exprs
            matches = [s for s in exprs if isinstance(s, Match)]
            if masq_form(exprs) is not None:
                if p.cluster_ip is None:
                    p.cluster_ip = next((str(m.right) for m in matches if isinstance(m.left, Payload)
                                         and m.left.field == "daddr" and isinstance(m.right, str)), None)  # fmt: skip
                continue
            verdict = next((s for s in exprs if isinstance(s, Verdict)), None)
            vmap = next((s for s in exprs if isinstance(s, VMap)), None)
            nat = next((s for s in exprs if isinstance(s, Nat) and s.kind == "dnat"), None)
            sets = [m.right.name for m in matches if isinstance(m.right, SetRef) and m.right.name.startswith("affinity-")]
            if sets and verdict is not None:
                st = self.table.sets.get(sets[0])
                if st is not None and st.timeout is not None and p.affinity is None:
                    p.affinity = int(st.timeout)
                continue  # a returning client's shortcut: a first packet finds the set empty
            conditional = any(not is_l4proto(m, p.proto) for m in matches)
            if vmap is not None and isinstance(vmap.key, Numgen) and isinstance(vmap.data, SetLit) and not matches:
                left = spread(vmap.key, vmap.data, left, add, target_of)
            elif nat is not None and isinstance(nat.addr, MapLookup) and isinstance(nat.addr.key, Numgen) and \
                    isinstance(nat.addr.data, SetLit) and not conditional:  # fmt: skip
                left = spread(nat.addr.key, nat.addr.data, left, add, self._inline(p))
            elif nat is not None and isinstance(nat.addr, str) and not conditional:
                ep = "=" + hostport(nat.addr, nat.port if isinstance(nat.port, int) else None)
                p.addresses.setdefault(ep, ep[1:])
                add(ep, left)
                left = Fraction(0)
            elif verdict is not None and verdict.kind in ("goto", "jump") and _is_endpoint(verdict.target):
                add(verdict.target or "", None if conditional else left)
                if not conditional:
                    left = Fraction(0)
            elif verdict is not None or vmap is not None or nat is not None:
                p.notes.append(f"{chain.name}: rule {rule.index} ({rule.text}) is not one kube-proxy writes: the "
                               "shares after it are not known")  # fmt: skip
                return {ep: None for ep in shares} | self._rest(chain, rule.index)
        return shares

    def _rest(self, chain: NftChain, after: int) -> dict[str, Fraction | None]:
        """The endpoint chains the rules from ``after`` on lead to, shares unknown."""
        out: dict[str, Fraction | None] = {}
        for rule in chain.rules[after - 1:]:
            for s in rule.exprs:
                targets = [target_of(s)] if isinstance(s, Verdict) else []
                if isinstance(s, VMap) and isinstance(s.data, SetLit):
                    targets = [target_of(i.value) for i in s.data.items if isinstance(i, MapItem)]
                out.update({t: None for t in targets if t and _is_endpoint(t)})
        return out

    @staticmethod
    def _inline(p: NftPort) -> Callable[[Value], str | None]:
        def target(v: Value) -> str | None:
            items = v.items if isinstance(v, Concat) else (v,)
            if not items or not isinstance(items[0], str):
                return None
            port = items[1] if len(items) > 1 and isinstance(items[1], int) else None
            ep = "=" + hostport(items[0], port)
            p.addresses.setdefault(ep, ep[1:])
            return ep
        return target

    @staticmethod
    def external(p: NftPort, chain: NftChain) -> None:
        """externalTrafficPolicy from the external- chain."""
        local = cluster = False
        for rule in chain.rules:
            matches = [s for s in rule.exprs if isinstance(s, Match)]
            parsed = parse_chain(next((s.target for s in rule.exprs if isinstance(s, Verdict) and s.target), ""))
            kind = parsed.kind if parsed is not None else None
            if kind == "SVL" or any(isinstance(m.left, Fib) for m in matches) or (kind == "SVC" and matches):
                local = True  # the short-circuit rules and the local chain
            elif kind == "SVC":
                cluster = True
        p.etp = "Local" if local else "Cluster" if cluster else p.etp

    def firewall(self, p: NftPort, chain: NftChain) -> None:
        lbs = {norm(ip) for ip in [*p.lb, *p.ext_or_lb]}
        for rule in chain.rules:
            if not any(isinstance(s, Verdict) and s.kind == "drop" for s in rule.exprs):
                continue
            for m in rule.exprs:
                if isinstance(m, Match) and isinstance(m.left, Payload) and m.left.field == "saddr" and m.op == "!=":
                    for cidr in cidrs_of(m.right):
                        if norm(cidr) in lbs:
                            p.notes.append(f"the firewall chain also admits the load-balancer IP itself ({cidr}): a "
                                           "source range covers this node")  # fmt: skip
                        else:
                            p.ranges[cidr] = None
            for ip in p.lb or p.ext_or_lb:
                p.blocks.append(BlockingRule(self.where, chain.name, rule.index, rule.line or 0, "drop",
                                             "source ranges", hostport(ip, p.port)))  # fmt: skip
            break

    def endpoint_address(self, p: NftPort, ep: str) -> str | None:
        chain = self.table.chains.get(ep)
        for rule in chain.rules if chain is not None else ():
            for s in rule.exprs:
                if isinstance(s, Nat) and s.kind == "dnat" and isinstance(s.addr, str):
                    if p.proto is None:
                        p.proto = next((str(m.right) for m in rule.exprs if isinstance(m, Match)
                                        and is_l4proto(m, None)), None)  # fmt: skip
                    return hostport(s.addr, s.port if isinstance(s.port, int) else None)
        parsed = parse_chain(ep)
        if parsed is not None and parsed.endpoint is not None:
            p.notes.append(f"{ep}: no dnat rule; the endpoint's address is taken from the chain's name")
            return parsed.endpoint
        return None
