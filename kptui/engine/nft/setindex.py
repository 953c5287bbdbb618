"""Set and map lookups in the evaluation domain: a named set's (or an anonymous set's) elements indexed once.

Exact keys (``10.96.0.1 . tcp . 443``) go in a dict, so ``ip daddr . meta l4proto . th dport vmap
@service-ips`` on a 5000-service node is one hash lookup; interval components (prefixes, ranges, interface
names ending in ``*``) are tried in order after that.

A *dynamic* set (kube-proxy's ``affinity-…``; flag ``dynamic``, or updated by a rule) is empty for a
connection's first packet unless (a) this path added the key (``update @set { ip saddr }``, recorded in
:attr:`PacketState.dyn`), or (b) the node context says the set holds it: :attr:`NodeContext.recent` names the
set (plain ``affinity-…`` or qualified ``ip kube-proxy affinity-…``) or :attr:`NodeContext.recent_all` is set
(a returning client) — the same options that state iptables' ``-m recent`` membership. An element the listing
shows in a dynamic set (an earlier client's entry, which expires) makes the lookup undecidable under the key
``dynset SET ELEMENT``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..flow import Env, Undecidable
from ..trace_model import PacketState
from .evalcore import MISS, ConstError, Matcher, element_matcher
from .exprs import Value
from .model import NftElement
from .stmt_set import dyn_element
from .values import component

__all__ = ["SetIndex"]

_MISSING = object()


class SetIndex:
    """The elements of one set or map, ready for lookups by evaluation-domain key tuples."""

    def __init__(self, name: str, key_type: tuple[str, ...], elements: Iterable[NftElement], *,
                 dynamic: bool = False, qualified: str = "") -> None:  # fmt: skip
        self.name = name
        self.qualified = qualified or name
        self.key_type = key_type
        self.dynamic = dynamic
        self.exact: dict[tuple[Any, ...], Value | None] = {}
        self.intervals: list[tuple[tuple[Matcher, ...], Value | None]] = []
        self.error: str | None = None
        self.patterns: list[str] = []  # interface names as given (``veth*``), for one-component sets
        dtype: Any = key_type if len(key_type) > 1 else (key_type[0] if key_type else "integer")
        try:
            for el in elements:
                matchers = tuple(element_matcher(v, component(dtype, i)) for i, v in enumerate(el.key))
                if len(el.key) == 1 and isinstance(el.key[0], str):
                    self.patterns.append(el.key[0])
                if all(m.kind == "eq" for m in matchers):
                    self.exact.setdefault(tuple(m.a for m in matchers), el.value)
                else:
                    self.intervals.append((matchers, el.value))
        except ConstError as exc:
            self.error = f"@{name} has an element kptui cannot compare: {exc}"

    def __len__(self) -> int:
        return len(self.exact) + len(self.intervals)

    def _find(self, key: tuple[Any, ...]) -> Any:
        hit = self.exact.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
        for matchers, data in self.intervals:
            if len(matchers) == len(key) and all(m.test(v) for m, v in zip(matchers, key, strict=True)):
                return data
        return _MISSING

    def get(self, key: tuple[Any, ...], state: PacketState, env: Env) -> Any:
        """The data of the element for ``key`` (None for a set), :data:`MISS`, or an Undecidable."""
        if self.error is not None:
            return Undecidable(f"nft @{self.name}", self.error)
        if self.dynamic:
            return self._dynamic(key, state, env)
        hit = self._find(key)
        return MISS if hit is _MISSING else hit

    def could_match(self, key: tuple[Any, ...]) -> bool:
        """Whether some element matches every known (not None) part of ``key``."""
        known = [(i, v) for i, v in enumerate(key) if v is not None]
        for k in self.exact:
            if len(k) == len(key) and all(k[i] == v for i, v in known):
                return True
        return any(len(ms) == len(key) and all(ms[i].test(v) for i, v in known) for ms, _ in self.intervals)

    def contains(self, key: tuple[Any, ...], state: PacketState, env: Env) -> bool | Undecidable:
        got = self.get(key, state, env)
        if isinstance(got, Undecidable):
            return got
        return got is not MISS

    def _dynamic(self, key: tuple[Any, ...], state: PacketState, env: Env) -> Any:
        elem = dyn_element(key if len(key) > 1 else key[0])
        if (self.qualified, elem) in state.dyn:
            return None
        node = env.node
        if node.recent_all or self.name in node.recent or self.qualified in node.recent:
            return None
        if self._find(key) is not _MISSING:
            return Undecidable(f"dynset {self.qualified} {elem}",
                               f"the listing shows {elem} in dynamic set {self.name} (entries expire): whether it "
                               "is still there")  # fmt: skip
        return MISS
