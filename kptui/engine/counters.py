"""Counter deltas between two snapshots of the same node's rules (``kptui top``, ``kptui deltas``).

A rule is identified by its table, its chain, its text without counters and an occurrence number (0 for the
first rule with that text in the chain, 1 for the second identical one, …), never by its position: when
kube-proxy re-syncs and inserts or removes rules, the rules after them are renumbered but keep their identity.
Rules are matched in two passes: first by their text as saved (the common case, cheap), then the rules left
over on both sides by their canonical text (decoded and printed back in iptables-save order), so a dump in
kube-proxy's restore spelling still matches the same rules saved by iptables-save.

A counter that went down means the rule's counters were zeroed in between (kube-proxy rewrote the chain, or
``iptables -Z``): the delta is then counted from zero and the rule is marked ``reset``.

A chain's figure is the packets that entered it, a service's the packets that entered it, the total the
packets that entered the rules (:mod:`kptui.engine.entries`): a packet is counted once, not once per rule it
crossed.

Pure: two rulesets (or :class:`CounterSnapshot` s) in, a frozen :class:`CounterDiff` out.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, count
from operator import itemgetter, ne
from types import MappingProxyType
from typing import NamedTuple, Protocol

from .entries import Entered, ServiceDelta, Total, builtin_entered, service_deltas, total
from .errors import ParseError
from .model import Counters, Ruleset
from .render import render_rule
from .rules import decode_rule

__all__ = [
    "DROP_TARGETS",
    "ChainDelta",
    "CounterDiff",
    "CounterSnapshot",
    "RuleDelta",
    "RuleKey",
    "ServiceDelta",
    "Total",
    "counter_snapshot",
    "diff_counters",
]

# Targets whose rising counters mean packets are being refused.
DROP_TARGETS = frozenset({"DROP", "REJECT", "KUBE-MARK-DROP"})

_RAW = itemgetter(1)
_COUNTERS = itemgetter(2, 3)
Row = tuple[int, str, "str | None", "str | None", "str | None", bool]  # as kptui.engine.rulelist.Row


class RuleKey(NamedTuple):
    table: str | None
    chain: str
    text: str  # the rule as saved (``-A CHAIN …``), without counters
    occurrence: int  # 0: the first rule with this text in its chain; 1: the second identical one; …


class RuleDelta(NamedTuple):
    key: RuleKey
    status: str  # "moved", "reset" (counters were zeroed in between), "appeared", "vanished"
    index: int  # type: ignore[assignment]  # 1-based position in the new snapshot (the old one if vanished)
    line: int  # line in the new dump (the old one for a vanished rule)
    target: str | None
    packets: int  # the delta (for "appeared": the counters since it appeared; "vanished": 0)
    bytes: int
    total_packets: int  # the counters in the new snapshot (the last seen ones for a vanished rule)
    total_bytes: int

    @property
    def drops(self) -> bool:
        """A DROP/REJECT (or KUBE-MARK-DROP) rule whose counters rose."""
        return self.target in DROP_TARGETS and self.packets > 0


class ChainDelta(NamedTuple):
    table: str | None
    chain: str
    packets: int  # the packets that entered the chain (kptui.engine.entries), each once
    bytes: int
    rules_moved: int
    policy_packets: int | None  # built-in chains: the policy counter's delta; None for a user chain
    policy_bytes: int | None
    policy: str | None  # ACCEPT / DROP for a built-in chain
    exact: bool = True  # False: packets and bytes are a lower bound (what the counters cannot tell apart)

    @property
    def drops(self) -> bool:
        """A built-in chain with a DROP policy whose policy counter rose."""
        return self.policy == "DROP" and bool(self.policy_packets)


class ChainCounters(NamedTuple):
    rows: Sequence[Row]
    policy: str | None
    policy_counters: Counters | None  # built-in chains only


class TableCounters(NamedTuple):
    """One table's rules, flattened in chain order (so an unchanged table is compared in a few C loops)."""

    chains: Mapping[str, ChainCounters]
    raws: list[str]  # every rule's text, chain after chain
    counters: list[tuple[str | None, str | None]]  # every rule's (packets, bytes)
    starts: list[int]  # where each chain's rules begin in ``raws``


class CounterSnapshot(NamedTuple):
    """What a delta needs from a ruleset: per table the parser's compact rows and the policies.

    It references the ruleset's rows (no copy): keeping a snapshot instead of the :class:`Ruleset` lets the
    decoded Rule objects and the structure graph go."""

    tables: Mapping[str | None, TableCounters]
    has_counters: bool
    rule_count: int


def counter_snapshot(ruleset: Ruleset) -> CounterSnapshot:
    tables: dict[str | None, TableCounters] = {}
    has = False
    n_rules = 0
    for tname, table in ruleset.tables.items():
        chains: dict[str, ChainCounters] = {}
        starts: list[int] = []
        flat: list[Row] = []
        for chain in table.chains.values():
            rows: Sequence[Row] | None = getattr(chain.rules, "rows", None)
            if rows is None:
                rows = [(r.line, r.raw, _s(r.counters, 0), _s(r.counters, 1), r.target_name, r.goto)
                        for r in chain.rules]  # fmt: skip
            if rows and not has:
                has = rows[0][2] is not None
            starts.append(len(flat))
            flat.extend(rows)
            policy_counters = chain.counters if chain.policy is not None else None
            chains[chain.name] = ChainCounters(rows, chain.policy, policy_counters)
        n_rules += len(flat)
        tables[tname] = TableCounters(MappingProxyType(chains), list(map(_RAW, flat)), list(map(_COUNTERS, flat)),
                                      starts)  # fmt: skip
    return CounterSnapshot(MappingProxyType(tables), has, n_rules)


def _s(c: Counters | None, i: int) -> str | None:
    return None if c is None else str(c[i])


class _Labels(Protocol):
    def rule(self, table: str | None, chain: str, raw: str) -> str | None: ...
    def chain(self, table: str | None, chain: str) -> str | None: ...


@dataclass(frozen=True)
class CounterDiff:
    """What moved between two snapshots ``seconds`` apart (hottest first everywhere)."""

    seconds: float
    rules: tuple[RuleDelta, ...]  # rules in both snapshots whose counters moved (status moved/reset)
    appeared: tuple[RuleDelta, ...]  # rules only in the new snapshot
    vanished: tuple[RuleDelta, ...]  # rules only in the old snapshot
    chains: tuple[ChainDelta, ...]  # chains whose rules or policy counter moved
    compared: int  # rules present in both snapshots
    counters: bool  # both snapshots carry counters (saved with -c); without, there are no deltas at all
    notes: tuple[str, ...] = ()
    old_counters: bool = True  # the old snapshot carries counters (or has no rules)
    new_counters: bool = True
    unchanged: bool = False  # the same tables, chains and rules in the same order: only counters may differ

    def rate(self, value: int) -> float:
        """``value`` per second over this diff's interval (0 when the interval is unknown)."""
        return value / self.seconds if self.seconds > 0 else 0.0

    @property
    def total(self) -> Total:
        """The packets that entered the rules (counted in the busiest table's entry chains)."""
        return total(self.chains)

    @property
    def packets(self) -> int:
        return self.total.packets

    @property
    def bytes(self) -> int:
        return self.total.bytes

    def services(self, labels: _Labels) -> tuple[ServiceDelta, ...]:
        """Per service (port) the packets that entered it, busiest first."""
        return service_deltas((*self.rules, *self.appeared), labels)

    @property
    def drops(self) -> tuple[RuleDelta, ...]:
        """Refusing rules whose counters rose (moved and appeared ones)."""
        return tuple(d for d in (*self.rules, *self.appeared) if d.drops)


def diff_counters(old: Ruleset | CounterSnapshot, new: Ruleset | CounterSnapshot,
                  seconds: float) -> CounterDiff:  # fmt: skip
    """The counter deltas from ``old`` to ``new`` (taken ``seconds`` apart; 0 if unknown)."""
    a = old if isinstance(old, CounterSnapshot) else counter_snapshot(old)
    b = new if isinstance(new, CounterSnapshot) else counter_snapshot(new)
    moved: list[RuleDelta] = []
    appeared: list[RuleDelta] = []
    vanished: list[RuleDelta] = []
    chains: list[ChainDelta] = []
    policy: dict[tuple[str | None, str], tuple[int, int]] = {}
    compared = 0
    unchanged = list(a.tables) == list(b.tables)
    # A side without rules has no counters to lack; a side whose rules have none gives no deltas: a rule's
    # counters then cannot be told from zero, and nothing moved, rose or was dropped as far as anyone knows.
    old_counters, new_counters = a.has_counters or not a.rule_count, b.has_counters or not b.rule_count
    counters = old_counters and new_counters
    notes = []
    if not counters:
        which = "neither snapshot has" if not (old_counters or new_counters) else \
            "the old snapshot has no" if not old_counters else "the new snapshot has no"
        notes.append(f"{which} rule counters (save with iptables-save -c): no counter deltas, only the rules "
                     "that appeared or vanished")  # fmt: skip
        if any(t is not None and " " in t for t in b.tables):  # nft tables (kptui.engine.nft.display)
            notes.append("nft rules count only with a counter statement, and kube-proxy's nftables mode writes none: "
                         "its rules have no counters to watch")  # fmt: skip
    for tname, nt in b.tables.items():
        ot = a.tables.get(tname)
        if ot is None:
            for chain, nc in nt.chains.items():
                appeared.extend(_whole(tname, chain, nc.rows, "appeared"))
            continue
        m0, a0 = len(moved), len(appeared)
        same = list(ot.chains) == list(nt.chains) and ot.raws == nt.raws
        unchanged = unchanged and same
        if same:  # the common case: the same rules in the same order; find the moved counters in C
            compared += len(nt.raws)
            names = list(nt.chains)
            occs: dict[int, list[int]] = {}
            for i in compress(count(), map(ne, ot.counters, nt.counters)):
                c = bisect_right(nt.starts, i) - 1
                nc = nt.chains[names[c]]
                j = i - nt.starts[c]
                occ = occs.get(c)
                if occ is None:
                    occ = occs[c] = _occurrences(list(map(_RAW, nc.rows)))
                if counters:
                    _moved(tname, names[c], ot.chains[names[c]].rows[j], nc.rows[j], j, occ[j], moved)
        for chain, nc in nt.chains.items():
            oc = ot.chains.get(chain)
            if not same:
                if oc is None:
                    appeared.extend(_whole(tname, chain, nc.rows, "appeared"))
                else:
                    compared += _diff_chain(tname, chain, oc.rows, nc.rows, moved, appeared, vanished)
            if counters and nc.policy_counters is not None and oc is not None and oc.policy_counters is not None:
                o, n = oc.policy_counters, nc.policy_counters
                pp, pb, _ = _delta(o[0], n[0], o[1], n[1])
                if pp or pb:
                    policy[(tname, chain)] = (pp, pb)
        if not same:
            for chain, oc in ot.chains.items():
                if chain not in nt.chains:
                    vanished.extend(_whole(tname, chain, oc.rows, "vanished"))
        chains.extend(_chain_deltas(tname, nt.chains, moved[m0:] + appeared[a0:], policy))
    for tname, ot in a.tables.items():
        if tname not in b.tables:
            for chain, oc in ot.chains.items():
                vanished.extend(_whole(tname, chain, oc.rows, "vanished"))
    if not counters:  # no deltas: appeared rules keep what they hold, but it is no delta; chains moved nothing
        moved.clear()
        chains.clear()
        appeared = [d._replace(packets=0, bytes=0) for d in appeared]
    hot = _hottest
    return CounterDiff(
        seconds=max(0.0, seconds), rules=tuple(sorted(moved, key=hot)), appeared=tuple(sorted(appeared, key=hot)),
        vanished=tuple(sorted(vanished, key=_place)), compared=compared, counters=counters, notes=tuple(notes),
        old_counters=old_counters, new_counters=new_counters, unchanged=unchanged,
        chains=tuple(sorted(chains, key=lambda c: (-c.packets, -c.bytes, c.table or "", c.chain))),
    )  # fmt: skip


def _chain_deltas(table: str | None, chains: Mapping[str, ChainCounters], deltas: list[RuleDelta],
                  policy: Mapping[tuple[str | None, str], tuple[int, int]]) -> Iterable[ChainDelta]:  # fmt: skip
    """The chains of ``table`` that were entered, or whose rules or policy moved, with what entered them."""
    per_chain: dict[str, list[RuleDelta]] = {}
    into: dict[str, list[int]] = {}  # chain → packets, bytes of the jumps (and gotos) to it
    for d in deltas:
        per_chain.setdefault(d.key.chain, []).append(d)
        if d.target is not None and d.target in chains:
            acc = into.setdefault(d.target, [0, 0])
            acc[0] += d.packets
            acc[1] += d.bytes
    for chain in {**per_chain, **into, **{c: [] for t, c in policy if t == table}}:
        ds = per_chain.get(chain, [])
        pp_pb = policy.get((table, chain))
        nc = chains[chain]
        if nc.policy is not None:
            entered = builtin_entered(nc.rows, ds, pp_pb or (0, 0))
        elif chain in into:
            entered = Entered(into[chain][0], into[chain][1], True)
        else:  # nothing that leads here moved (or nothing leads here): at least its busiest rule's packets
            top = max(ds, key=lambda d: (d.packets, d.bytes))
            entered = Entered(top.packets, top.bytes, False)
        yield ChainDelta(table, chain, entered.packets, entered.bytes, len(ds),
                         pp_pb[0] if pp_pb else (0 if nc.policy else None),
                         pp_pb[1] if pp_pb else (0 if nc.policy else None), nc.policy, entered.exact)  # fmt: skip


def _hottest(d: RuleDelta) -> tuple[int, int, str, str, int]:
    return (-d.packets, -d.bytes, d.key.table or "", d.key.chain, d.index)


def _place(d: RuleDelta) -> tuple[str, str, int]:
    return (d.key.table or "", d.key.chain, d.index)


def _int(text: str | None) -> int:
    return int(text) if text else 0


def _delta(o_p: int, n_p: int, o_b: int, n_b: int) -> tuple[int, int, bool]:
    """(packets, bytes, reset) from the old and new counters."""
    if n_p < o_p or n_b < o_b:  # zeroed in between: count from zero
        return n_p, n_b, True
    return n_p - o_p, n_b - o_b, False


def _occurrences(raws: Sequence[str]) -> list[int]:
    if len(set(raws)) == len(raws):
        return [0] * len(raws)
    seen: dict[str, int] = {}
    out = []
    for r in raws:
        n = seen.get(r, 0)
        seen[r] = n + 1
        out.append(n)
    return out


def _whole(table: str | None, chain: str, rows: Sequence[Row], status: str) -> Iterable[RuleDelta]:
    occ = _occurrences([r[1] for r in rows])
    for i, row in enumerate(rows):
        pk, by = _int(row[2]), _int(row[3])
        d_pk, d_by = (pk, by) if status == "appeared" else (0, 0)
        yield RuleDelta(RuleKey(table, chain, row[1], occ[i]), status, i + 1, row[0], row[4], d_pk, d_by, pk, by)


def _diff_chain(table: str | None, chain: str, old: Sequence[Row], new: Sequence[Row], moved: list[RuleDelta],
                appeared: list[RuleDelta], vanished: list[RuleDelta]) -> int:  # fmt: skip
    """Append the chain's moved/appeared/vanished rules; return how many rules both snapshots have."""
    old_raws = list(map(_RAW, old))
    new_raws = list(map(_RAW, new))
    if old_raws == new_raws:  # the common case: same rules, same order
        pairs: Iterable[tuple[int, int]] = (
            (i, i) for i, (o, n) in enumerate(zip(old, new)) if o[2] != n[2] or o[3] != n[3]
        )
        occ: list[int] | None = None
        for i, j in pairs:
            occ = occ or _occurrences(new_raws)
            _moved(table, chain, old[i], new[j], j, occ[j], moved)
        return len(new)
    old_occ, new_occ = _occurrences(old_raws), _occurrences(new_raws)
    by_key = {(r, o): i for i, (r, o) in enumerate(zip(old_raws, old_occ))}
    left_new: list[int] = []
    used: set[int] = set()
    for j, key in enumerate(zip(new_raws, new_occ)):
        hit = by_key.get(key)
        if hit is None:
            left_new.append(j)
        else:
            used.add(hit)
            if old[hit][2] != new[j][2] or old[hit][3] != new[j][3]:
                _moved(table, chain, old[hit], new[j], j, new_occ[j], moved)
    left_old = [i for i in range(len(old)) if i not in used]
    matched = len(used)
    if left_new and left_old:  # second pass: the same rule spelled differently?
        canon_old: dict[tuple[str, int], int] = {}
        old_counts: dict[str, int] = {}
        for i in left_old:
            c = _canonical(chain, old_raws[i])
            if c is not None:
                n = old_counts.get(c, 0)
                old_counts[c] = n + 1
                canon_old[(c, n)] = i
        still: list[int] = []
        counts: dict[str, int] = {}
        for j in left_new:
            c = _canonical(chain, new_raws[j])
            found: int | None = None
            if c is not None:
                n = counts.get(c, 0)
                counts[c] = n + 1
                found = canon_old.pop((c, n), None)
            if found is None:
                still.append(j)
            else:
                used.add(found)
                matched += 1
                if old[found][2] != new[j][2] or old[found][3] != new[j][3]:
                    _moved(table, chain, old[found], new[j], j, new_occ[j], moved)
        left_new = still
        left_old = [i for i in left_old if i not in used]
    for j in left_new:
        row = new[j]
        pk, by = _int(row[2]), _int(row[3])
        appeared.append(RuleDelta(RuleKey(table, chain, row[1], new_occ[j]), "appeared", j + 1, row[0], row[4],
                                  pk, by, pk, by))  # fmt: skip
    for i in left_old:
        row = old[i]
        vanished.append(RuleDelta(RuleKey(table, chain, row[1], old_occ[i]), "vanished", i + 1, row[0], row[4],
                                  0, 0, _int(row[2]), _int(row[3])))  # fmt: skip
    return matched


def _moved(table: str | None, chain: str, o: Row, n: Row, j: int, occ: int, out: list[RuleDelta]) -> None:
    pk, by, reset = _delta(_int(o[2]), _int(n[2]), _int(o[3]), _int(n[3]))
    if pk or by or reset:
        out.append(RuleDelta(RuleKey(table, chain, n[1], occ), "reset" if reset else "moved", j + 1, n[0], n[4],
                             pk, by, _int(n[2]), _int(n[3])))  # fmt: skip


_HOST = re.compile(r"(?<= -[sd] )([0-9a-fA-F.:]+)(?= |$)")


def _canonical(chain: str, raw: str) -> str | None:
    """The rule as iptables-save prints it: canonical option order, host addresses with /32 (/128)."""
    try:
        text = render_rule(chain, decode_rule(raw))
    except (ParseError, ValueError):
        return None
    return _HOST.sub(lambda m: m.group(1) + ("/128" if ":" in m.group(1) else "/32"), text)
