"""The node-level part of a diff: the detected layout, and kube-proxy's fixed chains rule by rule.

Fixed chains are the ``KUBE-*`` chains that belong to no one service port (KUBE-POSTROUTING, KUBE-FIREWALL,
KUBE-FORWARD, KUBE-MARK-MASQ, KUBE-SERVICES, KUBE-NODEPORTS, the canaries…), plus the built-in chains' jumps
into ``KUBE-*`` chains. Their rules are compared as a multiset of normalised texts: counters are not part of
a rule's text, and comments are left out (a dump whose comments were dropped is the same node). Rules about
one service port are left to the service part: jumps to per-service chains, the service index's blocking
rules, rules whose comment names a service port, and ``--dport`` rules in the four per-service-port chains.
"""

from __future__ import annotations

import re
from collections import Counter

from ..model import Chain, Ruleset
from .build import service_index_of
from .diff_model import FieldChange, NodeDiff, NodeRule, Value
from .era import layout_to_dict, nat_and_filter
from .facts import facts_of, rows_of
from .hashes import names_in, split_chain

__all__ = ["diff_node", "orphan_health_ports"]

_COMMENT = re.compile(r'\s+-m comment --comment (?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s"]+))')
_PER_PORT_CHAINS = frozenset({"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES", "KUBE-PROXY-FIREWALL"})
# Layout keys that are not node settings: why (evidence), how many service chains, and the localnet guard,
# which is found by its comment (the KUBE-FIREWALL rule itself is compared below, comment or not).
_LAYOUT_SKIP = frozenset({"evidence", "chains", "localnet_guard"})

Key = tuple[str | None, str, str]  # table, chain, normalised rule text


def diff_node(old: Ruleset, new: Ruleset) -> NodeDiff:
    """Layout changes, fixed chains added/removed and their rules added/removed (see the module doc)."""
    lo, ln = layout_to_dict(service_index_of(old).layout), layout_to_dict(service_index_of(new).layout)
    layout = tuple(FieldChange(k, _value(lo[k]), _value(ln.get(k))) for k in lo
                   if k not in _LAYOUT_SKIP and lo[k] != ln.get(k))  # fmt: skip
    chains_o, rules_o, text_o = _fixed(old)
    chains_n, rules_n, text_n = _fixed(new)
    return NodeDiff(
        layout=layout,
        chains_added=tuple(c for c in chains_n if c not in chains_o),
        chains_removed=tuple(c for c in chains_o if c not in chains_n),
        rules_added=_rules(rules_n - rules_o, text_n),
        rules_removed=_rules(rules_o - rules_n, text_o),
    )


def _value(v: object) -> Value:
    if isinstance(v, list):
        return tuple(str(x) for x in v)
    if v is None or isinstance(v, (str, int, bool)):
        return v
    return str(v)


def _rules(keys: Counter[Key], texts: dict[Key, str]) -> tuple[NodeRule, ...]:
    return tuple(NodeRule(k[0], k[1], texts[k], n) for k, n in sorted(keys.items(), key=lambda kv: (
        kv[0][0] or "", kv[0][1], kv[0][2])))  # fmt: skip


def _fixed(ruleset: Ruleset) -> tuple[dict[tuple[str | None, str], None], Counter[Key], dict[Key, str]]:
    """The fixed chains (in dump order), the multiset of their non-service rules, and a text for each."""
    blocking = {(b.table, b.chain, b.index) for s in service_index_of(ruleset) for b in s.blocking_rules}
    chains: dict[tuple[str | None, str], None] = {}
    keys: Counter[Key] = Counter()
    texts: dict[Key, str] = {}
    for tname, table in ruleset.tables.items():
        for name, chain in table.chains.items():
            fixed = name.startswith("KUBE-") and split_chain(name) is None
            if not fixed and not chain.builtin:
                continue
            if fixed:
                chains[(tname, name)] = None
            for i, row in enumerate(rows_of(chain)):
                target = row[4] or ""
                if not fixed and not target.startswith("KUBE-"):
                    continue  # a built-in chain's rule that is not a jump into kube-proxy's chains
                if split_chain(target) is not None or (tname, name, i + 1) in blocking:
                    continue
                raw = row[1]
                if any(names_in(q or b) for q, b in _COMMENT.findall(raw)):
                    continue
                bare = " ".join(_COMMENT.sub("", raw).split())
                if name in _PER_PORT_CHAINS and " --dport " in bare:
                    continue
                key = (tname, name, bare)
                keys[key] += 1
                texts.setdefault(key, raw)
    return chains, keys, texts


def orphan_health_ports(ruleset: Ruleset) -> frozenset[int]:
    """Ports of filter KUBE-NODEPORTS ACCEPT rules without a comment: health-check NodePorts whose service
    the dump cannot name (so a service's missing health-check port is unknown there, not absent)."""
    filt = nat_and_filter(ruleset)[1]
    chain: Chain | None = filt.chains.get("KUBE-NODEPORTS") if filt is not None else None
    ports: set[int] = set()
    for i, row in enumerate(rows_of(chain)):
        if chain is None or row[4] != "ACCEPT" or "--comment" in row[1]:
            continue
        dport = facts_of(chain, i, row[1]).dport
        if dport and dport.isdigit():
            ports.add(int(dport))
    return frozenset(ports)
