"""Rules of other components in front of kube-proxy's: what can decide a packet's fate before kube-proxy's own
rules see it, on the hooks kube-proxy uses.

- iptables: every rule of the raw and mangle tables' built-in chains (they run before nat and filter on every
  hook), and in nat PREROUTING/OUTPUT/POSTROUTING and filter INPUT/FORWARD/OUTPUT the rules before kube-proxy's
  first jump (to a ``KUBE-`` chain).
- nft: base chains of other tables (not iptables-nft's own, not kube-proxy's) on those hooks at a priority at
  or before kube-proxy's first chain there (equal priorities run in registration order, which no listing shows).

Only rules that can change what happens count: a verdict (drop, reject, accept, return), NAT, a jump into the
component's own chains, a mark or notrack. Logging and counting rules do not. Pure: rules in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..graph import KNOWN_TARGETS
from ..model import Ruleset
from ..nft.model import NftRuleset
from .fleet_model import ForeignRule

__all__ = ["IPTABLES_PRIORITIES", "foreign_in_front", "kube_nft_priorities"]

HARMLESS = frozenset({"LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "NFACCT"})
_EARLY = (("raw", ("PREROUTING", "OUTPUT")), ("mangle", ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")))
_KUBE_CHAINS = (("nat", "PREROUTING"), ("nat", "OUTPUT"), ("nat", "POSTROUTING"), ("filter", "INPUT"),
                ("filter", "FORWARD"), ("filter", "OUTPUT"))  # fmt: skip
# kube-proxy's first chain per hook in iptables mode: nat (dstnat) on prerouting and output, filter on input and
# forward, nat (srcnat) on postrouting
IPTABLES_PRIORITIES: Mapping[str, int] = {"prerouting": -100, "input": 0, "forward": 0, "output": -100,
                                          "postrouting": 100}  # fmt: skip
_XTABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
_NFT_EFFECTS = ("drop", "reject", "accept", "return", "dnat", "snat", "masquerade", "redirect", "queue", "notrack",
                "jump", "goto")  # fmt: skip
_WORD = re.compile(r"[a-z]+")
MAX_PER_CHAIN = 50


def _effect(target: str | None, goto: bool) -> str | None:
    if target is None or target in HARMLESS:
        return None
    if target in KNOWN_TARGETS and not target.startswith("KUBE-"):
        return target
    return f"{'goto' if goto else 'jump'} {target}"


def _iptables(rs: Ruleset) -> list[ForeignRule]:
    out: list[ForeignRule] = []
    for table, chains in _EARLY:
        for name in chains:
            chain = rs.chain(table, name)
            if chain is None:
                continue
            for rule in list(chain.rules)[:MAX_PER_CHAIN]:
                effect = _effect(rule.target_name, rule.goto)
                if effect is not None and not (rule.target_name or "").startswith("KUBE-"):
                    out.append(ForeignRule(f"{table} {name}", rule.index, rule.raw, effect,
                                           f"kube-proxy's rules on {name} (the {table} table runs before nat and "
                                           "filter)"))  # fmt: skip
    for table, name in _KUBE_CHAINS:
        chain = rs.chain(table, name)
        if chain is None:
            continue
        rules = list(chain.rules)
        first = next((r for r in rules if (r.target_name or "").startswith("KUBE-")), None)
        if first is None:
            continue
        for rule in rules[: first.index - 1][:MAX_PER_CHAIN]:
            effect = _effect(rule.target_name, rule.goto)
            if effect is not None:
                out.append(ForeignRule(f"{table} {name}", rule.index, rule.raw, effect,
                                       f"{first.target_name} (rule {first.index})"))  # fmt: skip
    return out


def kube_nft_priorities(nft: NftRuleset | None) -> dict[str, int]:
    """The priority of kube-proxy's first nft base chain on each hook (its nftables mode), or {}."""
    out: dict[str, int] = {}
    for t in nft.tables if nft is not None else ():
        if t.name != "kube-proxy" or t.family not in ("ip", "ip6"):
            continue
        for c in t.chains.values():
            if c.hook and c.priority is not None:
                out[c.hook] = min(c.priority, out.get(c.hook, c.priority))
    return out


def _nft_effect(text: str) -> str | None:
    words: list[str] = _WORD.findall(text.split(' comment "', 1)[0])
    for w in words:
        if w in _NFT_EFFECTS:
            return w
    if "mark set" in text:
        return "mark"
    return None


def _nft(nft: NftRuleset, kube: Mapping[str, int]) -> list[ForeignRule]:
    out: list[ForeignRule] = []
    for t in nft.tables:
        if t.iptables_nft or (t.family in ("ip", "ip6") and (t.name in _XTABLES or t.name == "kube-proxy")):
            continue
        for c in t.chains.values():
            hook = c.hook or ""
            if hook not in kube or c.priority is None or c.priority > kube[hook]:
                continue
            tie = " (the same priority: which runs first, no listing shows)" if c.priority == kube[hook] else ""
            where = f"nft {t.family} {t.name} {c.name} (hook {hook}, priority {c.priority})"
            ahead = f"kube-proxy's first chain on {hook} (priority {kube[hook]}){tie}"
            if (c.policy or "accept") == "drop":
                out.append(ForeignRule(where, None, "policy drop", "policy drop", ahead))
            for r in c.rules[:MAX_PER_CHAIN]:
                effect = _nft_effect(r.text)
                if effect is not None:
                    out.append(ForeignRule(where, r.index, r.text, effect, ahead))
    return out


def foreign_in_front(ruleset: Ruleset | None, nft: NftRuleset | None, mode: str | None) -> tuple[ForeignRule, ...]:
    """Every rule of another component in front of kube-proxy's on the node (see the module doc): iptables rules
    of the dump in use, and nft base chains ahead of kube-proxy's priorities (its nft table's in nftables mode,
    iptables-nft's nat and filter otherwise)."""
    out = _iptables(ruleset) if ruleset is not None else []
    if nft is not None:
        kube = kube_nft_priorities(nft) if mode == "nftables" else dict(IPTABLES_PRIORITIES)
        if kube:
            out += _nft(nft, kube)
    return tuple(out)
