"""The nft side of the hook schedule: which nft base chains a packet of a family meets at a hook, their views
and their policies, for the one trace walker (:mod:`kptui.engine.trace`).

A table of family ``ip`` sees IPv4 packets, ``ip6`` IPv6 ones, ``inet`` both; ``arp``, ``bridge`` and ``netdev``
tables are not on the IP hooks (their chains are listed and explained, not traced; :attr:`NftHooks.untraced`
says which). A table that iptables-nft manages (``table ip nat`` holding ``xt`` expressions, or marked by nft's
"managed by iptables-nft" warning) is skipped when the iptables dump of its family is there too: the dump
holds the same rules at full fidelity (``skip``).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..schedule import BaseChain
from .model import NftChain, NftRuleset
from .view import NftChainView, NftCompiled

__all__ = ["NftHooks"]

_HOOKS = {"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward", "OUTPUT": "output",
          "POSTROUTING": "postrouting"}  # fmt: skip
_FAMILIES = {4: ("ip", "inet"), 6: ("ip6", "inet")}


class NftHooks:
    """Base chains, views and policies of one nft ruleset, as the walker asks for them."""

    def __init__(self, ruleset: NftRuleset, skip: Iterable[tuple[str, str]] = ()) -> None:
        self.ruleset = ruleset
        self.compiled = NftCompiled(ruleset)
        self.skip = frozenset(skip)  # (family, table) read from the iptables dump instead

    @property
    def untraced(self) -> tuple[str, ...]:
        """``bridge filter``-style names of tables whose chains no IP hook runs."""
        return tuple(f"{t.family} {t.name}" for t in self.ruleset.tables
                     if t.family not in ("ip", "ip6", "inet") and any(c.hook for c in t.chains.values()))  # fmt: skip

    def tables_skipped(self) -> tuple[str, ...]:
        return tuple(f"{f} {t}" for f, t in sorted(self.skip))

    def base_chains(self, hook: str, family: int) -> list[BaseChain]:
        want = _HOOKS.get(hook)
        fams = _FAMILIES[6 if family == 6 else 4]
        out = []
        for chain in self.ruleset.base_chains():
            if chain.hook != want or chain.family not in fams or (chain.family, chain.table) in self.skip:
                continue
            out.append(BaseChain(int(chain.priority or 0), ("nft", chain.family, chain.table), chain.name,
                                 chain.table, chain.family, chain.type == "nat"))  # fmt: skip
        return out

    def chain(self, ns: tuple[str, ...], name: str) -> NftChainView | None:
        return self.compiled.chain(ns[1], ns[2], name)

    def policy(self, base: BaseChain) -> str:
        chain: NftChain | None = self.ruleset.chain(base.ns[1], base.ns[2], base.chain)
        return (chain.policy or "accept").upper() if chain is not None else "ACCEPT"
