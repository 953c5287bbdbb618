"""Set and map lookups in the evaluation domain: a named set's (or an anonymous set's) elements indexed once.

Exact keys (``10.96.0.1 . tcp . 443``) go in a dict, so ``ip daddr . meta l4proto . th dport vmap
@service-ips`` on a 5000-service node is one hash lookup; interval components (prefixes, ranges, interface
names ending in ``*``) are tried in order after that.

A *dynamic* set (kube-proxy's ``affinity-…``; flag ``dynamic``, or updated by a rule) is empty for a
connection's first packet unless (a) this path added the key (``update @set { ip saddr }``, recorded in
:attr:`PacketState.dyn`), or (b) the node context says the set holds it: :attr:`NodeContext.recent` names the
set (plain ``affinity-…`` or qualified ``ip kube-proxy affinity-…``), or :attr:`NodeContext.affinity` says the client
is a returning one — bound to the endpoint it names, or (``"any"``) to one of the service port's endpoints, not
known which: the lookup is then a :class:`~kptui.engine.flow.Choices` over the affinity sets of that service port
(kube-proxy names them ``affinity-HASH-ns/name/proto/port__IP/PORT``), as iptables' ``-m recent`` is. An element the listing
shows in a dynamic set (an earlier client's entry, not yet expired when the listing was taken) is there: the
trace is of the node as listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..flow import Choices, Env, Undecidable
from ..trace_model import PacketState
from .evalcore import MISS, ConstError, Matcher, element_matcher
from .exprs import Value
from .model import NftElement
from .stmt_set import dyn_element
from .values import component

__all__ = ["SetIndex", "affinity_endpoint", "affinity_label"]

_MISSING = object()


def affinity_endpoint(name: str) -> str | None:
    """The endpoint a kube-proxy affinity set is named after: ``affinity-…__10.180.0.1/80`` → ``10.180.0.1:80``
    (IPv6 addresses have their ``:`` written as ``.``: ``fd00.10..1/80`` → ``[fd00:10::1]:80``)."""
    _, sep, tail = name.rpartition("__")
    addr, slash, port = tail.partition("/")
    if not sep or not slash or not port.isdigit():
        return None
    if addr.count(".") == 3 and all(p.isdigit() for p in addr.split(".")):
        return f"{addr}:{port}"
    return f"[{addr.replace('.', ':')}]:{port}"


def affinity_label(name: str) -> str:
    """``10.180.0.1:80 (affinity-…)``, or the set's name when it names no endpoint."""
    ep = affinity_endpoint(name)
    return f"{ep} ({name})" if ep else name


class SetIndex:
    """The elements of one set or map, ready for lookups by evaluation-domain key tuples."""

    def __init__(self, name: str, key_type: tuple[str, ...], elements: Iterable[NftElement], *,
                 dynamic: bool = False, qualified: str = "", siblings: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.name = name
        self.qualified = qualified or name
        self.siblings = siblings  # the affinity sets of the same service port (kube-proxy: ``…__IP/PORT``)
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

    def contains(self, key: tuple[Any, ...], state: PacketState, env: Env) -> bool | Undecidable | Choices:
        got = self.get(key, state, env)
        if isinstance(got, (Undecidable, Choices)):
            return got
        return got is not MISS

    def _dynamic(self, key: tuple[Any, ...], state: PacketState, env: Env) -> Any:
        elem = dyn_element(key if len(key) > 1 else key[0])
        if (self.qualified, elem) in state.dyn:
            return None
        node = env.node
        if self.name in node.recent or self.qualified in node.recent:
            return None
        want = node.affinity
        if want is not None:  # a returning client: bound to one endpoint of the service
            if not self.siblings:
                return None if want == "any" else MISS
            if want == "any":
                options = tuple((affinity_label(n), f"the client is bound to {affinity_label(n)}")
                                for n in self.siblings)  # fmt: skip
                return Choices(f"affinity {self.name.split('__')[0]}", affinity_label(self.name), options,
                               "which endpoint a returning client is bound to is not known")  # fmt: skip
            ep = affinity_endpoint(self.name)
            return None if ep is not None and want in (ep, ep.rsplit(":", 1)[0].strip("[]")) else MISS
        found = self._find(key)
        if found is not _MISSING:  # the listing shows it there (an earlier client's entry, not yet expired)
            return found
        return MISS
