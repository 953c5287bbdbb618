"""What the trace walker reads of nft chains: :class:`NftChainView` (a :class:`flow.ChainView`) and the
per-ruleset cache :class:`NftCompiled` that hands them out by ``(family, table, chain)``.

A view compiles rule ``i`` on first use and keeps the ops. nft mode dispatches through maps (``vmap
@service-ips`` is one lookup), so there is no prefilter: :meth:`NftChainView.next_candidate` returns its
``start``.
"""

from __future__ import annotations

from ..flow import RuleRow
from .compile import TableCompiler
from .model import NftChain, NftRuleset
from .unitbase import Op

__all__ = ["NftChainView", "NftCompiled"]


class NftChainView:
    """One nft chain ready for walking (implements :class:`flow.ChainView`)."""

    def __init__(self, compiler: TableCompiler, chain: NftChain) -> None:
        self.compiler = compiler
        self.chain = chain
        self.name = chain.name
        self.family = chain.family
        self.table = chain.table
        self._ops: list[tuple[Op, ...] | None] = [None] * len(chain.rules)

    def __len__(self) -> int:
        return len(self.chain.rules)

    def row(self, i: int) -> RuleRow:
        r = self.chain.rules[i]
        return RuleRow(r.line, r.text, r.counter, r.handle)

    def ops(self, i: int) -> tuple[Op, ...]:
        ops = self._ops[i]
        if ops is None:
            ops = self._ops[i] = self.compiler.compile_rule(self.chain.rules[i].exprs)
        return ops

    def next_candidate(self, start: int, dst: str, dport: int | None) -> int:
        return start

    def miss_reason(self, i: int, dst: str, dport: int | None) -> str:
        return ""  # never asked: next_candidate skips nothing

    @property
    def policy(self) -> str | None:
        return self.chain.policy

    @property
    def is_base(self) -> bool:
        return self.chain.is_base


class NftCompiled:
    """Chain views of one ruleset, made on first request and kept."""

    def __init__(self, ruleset: NftRuleset) -> None:
        self.ruleset = ruleset
        self._tables: dict[tuple[str, str], TableCompiler] = {}
        self._views: dict[tuple[str, str, str], NftChainView] = {}

    def compiler(self, family: str, table: str) -> TableCompiler | None:
        key = (family, table)
        c = self._tables.get(key)
        if c is None:
            t = self.ruleset.table(family, table)
            if t is None:
                return None
            c = self._tables[key] = TableCompiler(t)
        return c

    def chain(self, family: str, table: str, name: str) -> NftChainView | None:
        key = (family, table, name)
        view = self._views.get(key)
        if view is None:
            comp = self.compiler(family, table)
            chain = comp.table.chains.get(name) if comp is not None else None
            if comp is None or chain is None:
                return None
            view = self._views[key] = NftChainView(comp, chain)
        return view

    def base_chains(self) -> tuple[NftChain, ...]:
        return self.ruleset.base_chains()
