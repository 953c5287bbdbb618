"""Map ``nft monitor trace`` events of iptables-nft tables back to the iptables rules they are.

``nft monitor trace`` prints an iptables-nft rule in its nft translation (``meta mark set mark or 0x4000``,
the comment gone), and ``xtables-monitor --trace`` cannot trace IPv6 rules with ports (it aborts). With
``nft -a`` both the trace and ``nft -a list table …`` carry each rule's handle, and iptables-nft-save lists a
chain's rules in the same order as nft: :func:`rule_handles` reads the handles of a listing, and
:func:`with_iptables_rules` gives each rule event the iptables text of the rule with its handle, so the kernel's
walk compares with kptui's rule by rule. Pure: text in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from .kernel_trace import KernelTrace
from .model import Ruleset

__all__ = ["rule_handles", "with_iptables_rules"]

_TABLE = re.compile(r"^\s*table (\S+) (\S+) \{")
_CHAIN = re.compile(r"^\s*chain (\S+) \{")
_RULE = re.compile(r"# handle (\d+)\s*$")

Handles = Mapping[tuple[int, str, str], Mapping[int, int]]  # (family, table, chain) → handle → rule index
_FAMILIES = {"ip": 2, "ip6": 10, "inet": 1, "arp": 3, "bridge": 7, "netdev": 5}  # as trace events number them


def rule_handles(listing: str) -> dict[tuple[int, str, str], dict[int, int]]:
    """(family, table, chain) → handle → rule index (1-based) from ``nft -a list table …`` / ``list ruleset``
    (family as :class:`~kptui.engine.kernel_trace.KernelEvent` numbers it: 2 ip, 10 ip6)."""
    out: dict[tuple[int, str, str], dict[int, int]] = {}
    key: tuple[int, str, str] | None = None
    family, table = 0, ""
    for line in listing.splitlines():
        if m := _TABLE.match(line):
            family, table, key = _FAMILIES.get(m.group(1), 0), m.group(2), None
        elif m := _CHAIN.match(line):
            key = (family, table, m.group(1))
            out.setdefault(key, {})
        elif key is not None and (m := _RULE.search(line)) and not line.strip().startswith(("type ", "#")):
            rules = out[key]
            rules[int(m.group(1))] = len(rules) + 1
        elif line.strip() == "}" and key is not None:
            key = None
    return out


def with_iptables_rules(k: KernelTrace, handles: Handles, ruleset: Ruleset) -> KernelTrace:
    """``k`` with every rule event whose handle names a rule of ``ruleset`` (the same tables as iptables-nft-save
    printed them) carrying that rule's iptables text; other events unchanged."""
    events = []
    for e in k.events:
        index = handles.get((e.family, e.table, e.chain), {}).get(e.handle or -1) if e.kind == "rule" else None
        chain = ruleset.chain(e.table, e.chain) if index is not None else None
        if chain is not None and index is not None and index <= len(chain.rules):
            e = replace(e, rule_text=chain.rules[index - 1].raw)
        events.append(e)
    return replace(k, events=tuple(events))
