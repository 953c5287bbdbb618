"""A ruleset prepared for tracing: rules compiled to checks on first use, and a per-chain prefilter.

The prefilter makes a trace through KUBE-SERVICES (thousands of ``-d CLUSTER-IP/32 … --dport P`` rules) cost
microseconds: for each rule it reads, from the rule text, the destination host and destination port the rule
requires when they can be read *soundly* (``-d`` among the header options before any ``-m``; ``--dport N``
right after ``-m tcp``/``udp``/``sctp``). A rule whose requirement the packet does not meet cannot match, so the
walk records it as a miss without decoding it. Everything else is evaluated in full, strictly in order.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from .flow import Action, Check, Effect, Env, RuleRow
from .matches import RecentLists, compile_match
from .model import Target
from .targets import apply_target
from .trace_model import PacketState
from .xt.compile import not_understood_check, rule_not_understood

if TYPE_CHECKING:
    from .model import Chain, Ruleset

__all__ = ["ChainIndex", "CompiledRule", "CompiledRuleset", "compiled_ruleset"]

_HEADER_END = re.compile(r"(?:^| )(?:-m|-j|-g|--[a-z])")
_DST = re.compile(r"(?:^| )(! )?-d (\S+)")
_DPORT = re.compile(r" -m (?:tcp|udp|sctp) (?:--sport \S+ )?--dport (\d+)(?: |$)")


class CompiledRule(NamedTuple):
    checks: tuple[Check, ...]
    target: Target | None
    recent_set: str | None  # ``-m recent --set --name X``: the list this rule adds the source to
    ops: tuple[Check | Action, ...]  # what the walker runs: the checks, then the recent --set, then the target


class _Key(NamedTuple):
    dst: str | None  # the destination host the rule requires (normalised), or None
    dport: int | None


_V4_HOST = re.compile(r"(?:[1-9]?\d|1\d\d|2[0-4]\d|25[0-5])(?:\.(?:[1-9]?\d|1\d\d|2[0-4]\d|25[0-5])){3}")


def _host(text: str) -> str | None:
    """The host a ``-d`` argument names (canonical text), or None for a network or anything odd."""
    addr, _, plen = text.partition("/")
    if _V4_HOST.fullmatch(addr):  # the common case, without the cost of ipaddress
        return addr if plen in ("", "32") else None
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if plen and int(plen) != ip.max_prefixlen:
        return None
    return str(ip)


def _key(raw: str) -> _Key:
    body = raw.split('"', 1)[0] if "\\" not in raw else ""
    dst = dport = None
    if body:
        # the header region: "-A CHAIN" and -s/-d/-i/-o/-p before the first module, target or long option
        rest = body[3:]
        m = _HEADER_END.search(rest, rest.find(" "))
        head = rest[: m.start()] if m else rest
        d = _DST.search(head)
        if d and not d.group(1):
            dst = _host(d.group(2))
    if "\\" not in raw:
        tail = raw.rsplit('"', 1)[-1] if raw.count('"') % 2 == 0 else ""
        p = _DPORT.search(tail)
        if p and not (p.start() > 0 and tail[p.start() - 1 : p.start()] == "!"):
            dport = int(p.group(1))
    return _Key(dst, dport)


class ChainIndex:
    """One chain, ready for walking."""

    def __init__(self, chain: Chain, table_chains: Mapping[str, Chain]) -> None:
        self.chain = chain
        self.name = chain.name
        self.table_chains = table_chains  # the chains of its table: what a -j name can jump to
        self.rows = getattr(chain.rules, "rows", None) or [
            (r.line, r.raw, None if r.counters is None else str(r.counters.packets),
             None if r.counters is None else str(r.counters.bytes), r.target_name, r.goto)
            for r in chain.rules
        ]  # fmt: skip
        self._compiled: list[CompiledRule | None] = [None] * len(self.rows)
        self._rows: list[RuleRow | None] = [None] * len(self.rows)
        self._keys: list[_Key] | None = None
        self._candidates: dict[tuple[str, int | None], list[int]] = {}
        self._recent: RecentLists | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def compiled(self, i: int) -> CompiledRule:
        c = self._compiled[i]
        if c is None:
            spec = self.chain.rules[i].spec
            checks: list[Check] = []
            recent_set = None
            for m in spec.matches:
                if m.module == "recent" and self._recent is None:
                    self._recent = _recent_lists(self.chain, self.table_chains)
                checks.extend(compile_match(m, self._recent or RecentLists(self.name)))
                if m.module == "recent" and m.option("--set") is not None:
                    name = m.option("--name")
                    recent_set = name.value if name else "DEFAULT"
            ops: list[Check | Action] = list(checks)
            why = rule_not_understood(spec, self.table_chains)
            if why is not None:  # iptables-restore would refuse this rule: the trace takes both ways, and says so
                ops.insert(0, not_understood_check(self.chain.rules[i].line, why))
            if recent_set is not None:
                ops.append(_recent_action(recent_set))
            if spec.target is not None:
                ops.append(_target_action(spec.target, self.chain.table or "", self.table_chains))
            c = self._compiled[i] = CompiledRule(tuple(checks), spec.target, recent_set, tuple(ops))
        return c

    def ops(self, i: int) -> tuple[Check | Action, ...]:
        return self.compiled(i).ops

    def row(self, i: int) -> RuleRow:
        got = self._rows[i]
        if got is None:
            r = self.rows[i]
            got = self._rows[i] = RuleRow(r[0], r[1], (int(r[2]), int(r[3] or 0)) if r[2] is not None else None)
        return got

    def key(self, i: int) -> _Key:
        if self._keys is None:
            self._keys = [_key(row[1]) for row in self.rows]
        return self._keys[i]

    def next_candidate(self, start: int, dst: str, dport: int | None) -> int:
        """The first rule at or after ``start`` that the prefilter cannot rule out (len(self) if none)."""
        cache_key = (dst, dport)
        cands = self._candidates.get(cache_key)
        if cands is None:
            if self._keys is None:
                self._keys = [_key(row[1]) for row in self.rows]
            cands = [
                i for i, k in enumerate(self._keys)
                if (k.dst is None or k.dst == dst) and (k.dport is None or k.dport == dport)
            ]  # fmt: skip
            if len(self._candidates) > 256:
                self._candidates.clear()
            self._candidates[cache_key] = cands
        j = bisect.bisect_left(cands, start)
        return cands[j] if j < len(cands) else len(self.rows)

    def miss_reason(self, i: int, dst: str, dport: int | None) -> str:
        k = self.key(i)
        if k.dst is not None and k.dst != dst:
            return f"-d {k.dst}"
        return f"--dport {k.dport}"


def _target_action(target: Target, table: str, chains: Mapping[str, Chain]) -> Action:
    def fn(s: PacketState, e: Env) -> Effect:
        return apply_target(target, s, e.node, table, chains)._replace(target=target.name)

    return Action(fn, f"-{'g' if target.goto else 'j'} {target.name}")


def _recent_action(name: str) -> Action:
    def fn(s: PacketState, e: Env) -> Effect:
        return Effect("CONTINUE", "continue", s.with_(recent=s.recent | {name}))

    return Action(fn, f"-m recent --set --name {name}")


def _recent_lists(chain: Chain, chains: Mapping[str, Chain]) -> RecentLists:
    """The recent lists ``chain`` checks, in order, each with the endpoint its namesake chain DNATs to."""
    names: list[str] = []
    for rule in chain.rules:
        for m in rule.spec.matches:
            if m.module == "recent" and (m.option("--rcheck") or m.option("--update")):
                opt = m.option("--name")
                name = opt.value if opt else "DEFAULT"
                if name not in names:
                    names.append(name)
    endpoints: list[str | None] = []
    for name in names:
        ep = None
        for rule in getattr(chains.get(name), "rules", ()):
            t = rule.spec.target
            if t is not None and t.name == "DNAT":
                to = t.option("--to-destination")
                ep = to.value if to else None
        endpoints.append(ep)
    return RecentLists(chain.name, tuple(names), tuple(endpoints))


_VIP = re.compile(r"(?:^| )-d ([0-9a-fA-F.:]+)(?:/(?:32|128))? ")


class CompiledRuleset:
    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self._chains: dict[tuple[str | None, str], ChainIndex] = {}
        self._vips: frozenset[str] | None = None

    @property
    def cluster_ips(self) -> frozenset[str]:
        """The cluster IPs kube-proxy's rules name (nat KUBE-SERVICES "… cluster IP" rules, filter
        KUBE-SERVICES "… has no endpoints" rules): virtual addresses, never the node's in iptables mode."""
        if self._vips is None:
            out: set[str] = set()
            for table, needle in (("nat", "cluster IP"), ("filter", "has no endpoints")):
                chain = self.ruleset.chain(table, "KUBE-SERVICES")
                rows = getattr(chain.rules, "rows", None) if chain is not None else None
                raws = (r[1] for r in rows) if rows is not None else (r.raw for r in chain.rules) if chain else ()
                for raw in raws:
                    if needle in raw:
                        m = _VIP.search(raw)
                        if m:
                            out.add(m.group(1))
            self._vips = frozenset(out)
        return self._vips

    def chain(self, table: str | None, name: str) -> ChainIndex | None:
        key = (table, name)
        idx = self._chains.get(key)
        if idx is None:
            t = self.ruleset.table(table)
            chain = t.chains.get(name) if t else None
            if t is None or chain is None:
                return None
            idx = self._chains[key] = ChainIndex(chain, t.chains)
        return idx


def compiled_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    """``ruleset`` prepared for tracing, once per ruleset (kept with it: :meth:`Ruleset.derived`)."""
    return ruleset.derived("compiled", CompiledRuleset)
