"""nft rules compiled to the walker's ops (:mod:`kptui.engine.flow`): one op per statement, in the rule's order.

A match compiles to a :class:`flow.Check`. Its key expression is read from the packet (the expression units'
``value``), its right-hand side turned into the evaluation domain once, and the outcome is:

- ``True``/``False``; False also when the key cannot be read from this packet (``tcp dport`` of a UDP packet);
- a :class:`flow.Chance` for a key that is a uniform choice (``numgen random mod 2 0``);
- the standard questions for an unknown interface (:func:`flow.iface_question`: key ``iface:in`` /
  ``iface:out DST``, pred ``("eq", name)``, ``("prefix", stem)``, or ``("in", "lo eth0 veth*")`` for a set of
  names) and for a node address (:func:`flow.local_question`: ``local ADDR``), asked exactly as the iptables
  side asks them;
- an :class:`flow.Undecidable` under ``nft TEXT`` (the match as printed) for a key the packet model does not
  carry (``meta skuid``, ``ip ttl``), an unknown symbol, or a statement kptui does not model; ``dynset SET
  ELEMENT`` for an element a dynamic set lists.

Statements compile through their units (see each ``stmt_*`` module for the effects). Nothing here raises for
a rule it cannot evaluate: such a statement becomes an undecidable check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ..flow import Chance, Check, Choices, Env, Outcome, Undecidable, iface_question
from ..trace_model import PacketState
from .build import element
from .evalcore import MISS, Broken, ConstError, Dist, Partial, Var, YesNo, const, element_matcher, is_marker
from .exprs import Binop, Concat, Flags, Match, Node, SetLit, SetRef, SetStmt, Value
from .model import NftElement, NftTable
from .printer import Printer
from .registry import EXPR_BY_NODE, STMT_BY_NODE
from .setindex import SetIndex
from .symbols import BITMASK_TYPES
from .unitbase import DType, Op, ValueFn
from .values import component

__all__ = ["TableCompiler"]

_SHIFT: dict[str, Callable[[int, int], int]] = {"&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b,
          "<<": lambda a, b: (a << b) & 0xFFFFFFFF, ">>": lambda a, b: a >> b}  # fmt: skip
_ORDER: dict[str, Callable[[Any, Any], bool]] = {"<": lambda a, b: a < b, ">": lambda a, b: a > b,
                                                 "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}  # fmt: skip
Lookup = Callable[[PacketState, Env], Any]


def _scalar(d: DType) -> str:
    return d if isinstance(d, str) else "integer"


def _items(set_lit: SetLit) -> list[NftElement]:
    return [element(item) for item in set_lit.items]


class TableCompiler:
    """Compiles the rules of one table; implements :class:`unitbase.EvalCtx`."""

    def __init__(self, table: NftTable) -> None:
        self.table = table
        self.family = table.family
        self.printer = Printer(table.family)
        self._sets: dict[str, SetIndex] = {}
        self._dynamic: set[str] | None = None

    # -- EvalCtx --------------------------------------------------------------------------------------
    def text(self, node: Node) -> str:
        return self.printer.stmt(node) if type(node) in STMT_BY_NODE else self.printer.expr(node)

    def dtype(self, e: Value) -> DType:
        return self.printer.dtype(e)

    def chain_exists(self, name: str) -> bool:
        return name in self.table.chains

    def set_key(self, name: str) -> str:
        return f"{self.table.family} {self.table.name} {name}"

    def value_fn(self, e: Value) -> ValueFn:
        if isinstance(e, Concat):
            fns = [self.value_fn(i) for i in e.items]

            def concat(s: PacketState, env: Env) -> Any:
                values = []
                for fn in fns:
                    v = fn(s, env)
                    if isinstance(v, Broken):
                        return v
                    values.append(v)
                unknown = [v for v in values if is_marker(v)]
                if unknown:
                    first = unknown[0]
                    reason = first.reason if isinstance(first, Undecidable) else "a part of the key is not known"
                    return Partial(tuple(None if is_marker(v) else v for v in values), reason)
                return tuple(values)

            return concat
        if isinstance(e, Binop):
            return self._binop(e)
        if isinstance(e, Node):
            unit = EXPR_BY_NODE.get(type(e))
            if unit is not None:
                return unit.value(self, e)
            q = Undecidable(f"nft {self.text(e)}", f"'{self.text(e)}' is not a value kptui can read")
            return lambda s, env: q
        return lambda s, env: e

    def _binop(self, e: Binop) -> ValueFn:
        left = self.value_fn(e.left)
        d = "integer" if e.op in ("<<", ">>") else _scalar(self.dtype(e.left))
        apply = _SHIFT[e.op]
        if isinstance(e.right, Node) and type(e.right) in EXPR_BY_NODE:
            right_fn = self.value_fn(e.right)
        else:
            try:
                r = const(e.right, d)
            except ConstError as exc:
                q = Undecidable(f"nft {self.text(e)}", str(exc))
                return lambda s, env: q

            def right_fn(s: PacketState, env: Env) -> Any:
                return r

        def fn(s: PacketState, env: Env) -> Any:
            a, b = left(s, env), right_fn(s, env)
            if isinstance(a, Dist) and isinstance(b, int):
                return Dist(tuple(apply(x, b) for x in a.values), a.note, a.caveat)
            if is_marker(a):
                return a
            if is_marker(b):
                return b
            if isinstance(a, int) and isinstance(b, int):
                return apply(a, b)
            return Undecidable(f"nft {self.text(e)}", f"'{self.text(e)}' is not a number kptui can compute")

        return fn

    # -- sets -----------------------------------------------------------------------------------------
    def dynamic_sets(self) -> set[str]:
        if self._dynamic is None:
            dyn = {n for n, st in self.table.sets.items() if "dynamic" in st.flags}
            for c in self.table.chains.values():
                for r in c.rules:
                    dyn.update(st.set for st in r.exprs if isinstance(st, SetStmt))
            self._dynamic = dyn
        return self._dynamic

    def named_set(self, name: str) -> SetIndex | None:
        idx = self._sets.get(name)
        if idx is None:
            st = self.table.sets.get(name)
            if st is None:
                return None
            dynamic = name in self.dynamic_sets()
            group = name.split("__")[0] + "__"
            siblings = tuple(sorted(n for n in self.dynamic_sets() if n.startswith(group))) if dynamic and \
                "__" in name else ()
            idx = self._sets[name] = SetIndex(name, st.key_type, st.elements, dynamic=dynamic,
                                              qualified=self.set_key(name), siblings=siblings)  # fmt: skip
        return idx

    def _index(self, data: Value, dtype: DType) -> SetIndex | Undecidable:
        if isinstance(data, SetRef):
            idx = self.named_set(data.name)
            if idx is None:
                return Undecidable(f"nft @{data.name}", f"set @{data.name} is not in the listing")
            return idx
        if isinstance(data, SetLit):
            types = dtype if isinstance(dtype, tuple) else (dtype,)
            return SetIndex("anonymous", types, _items(data))
        return Undecidable("nft map", "not a map")

    def lookup(self, key: Value, data: Value) -> Lookup:
        text = f"{self.printer.expr(key)} map {self.printer.value(data, self.dtype(key))}"
        key_fn = self.value_fn(key)
        idx = self._index(data, self.dtype(key))

        def fn(s: PacketState, env: Env) -> Any:
            if isinstance(idx, Undecidable):
                return idx
            v = key_fn(s, env)
            if isinstance(v, Broken):
                return MISS
            if isinstance(v, Dist):
                return Dist(tuple((x, idx.get(_key(x), s, env)) for x in v.values), v.note, v.caveat)
            if isinstance(v, Partial) and not idx.dynamic and idx.error is None and not idx.could_match(v.values):
                return MISS  # no element matches the parts that are known
            if isinstance(v, (Undecidable, Partial)):
                return Undecidable(f"nft {text}", v.reason)
            if is_marker(v):
                return Undecidable(f"nft {text}", "the lookup key is not known")
            return idx.get(_key(v), s, env)

        return fn

    # -- matches --------------------------------------------------------------------------------------
    def check(self, m: Node) -> Check:
        assert isinstance(m, Match)
        text = self.printer.stmt(m)
        try:
            test = self._test(m)
        except ConstError as exc:
            q = Undecidable(f"nft {text}", f"{exc}")
            return Check(lambda s, env: q, text)
        left = self.value_fn(m.left)

        membership = isinstance(m.right, (SetRef, SetLit)) and m.op in ("==", "!=")

        def fn(s: PacketState, env: Env) -> Outcome:
            v = left(s, env)
            if not is_marker(v):
                return test(v, s, env)
            if membership and isinstance(v, Partial):
                r = test(v, s, env)
                return Undecidable(f"nft {text}", r.reason) if isinstance(r, Undecidable) else r
            return self._marker(v, m, test, s, env, text)

        return Check(fn, text)

    def _test(self, m: Match) -> Callable[[Any, PacketState, Env], bool | Undecidable | Choices]:
        """How the right-hand side judges a concrete key value."""
        dtype = self.dtype(m.left)
        scalar = _scalar(dtype)
        op, right = m.op, m.right
        if op in _ORDER:
            c = const(right, scalar)
            order = _ORDER[op]
            return lambda v, s, env: _compare(order, v, c)
        if op in ("in", "!"):
            mask = const(right, scalar)
            if not isinstance(mask, int):
                raise ConstError(f"{right!r} is not a bitmask")
            zero = op == "!"
            return lambda v, s, env: isinstance(v, int) and ((v & mask) == 0) == zero
        negate = op == "!="
        if isinstance(right, (SetRef, SetLit)):
            idx = self._index(right, dtype)
            if isinstance(idx, Undecidable):
                q = idx
                return lambda v, s, env: q

            def member(v: Any, s: PacketState, env: Env) -> bool | Undecidable | Choices:
                if isinstance(v, Partial):
                    if idx.dynamic or idx.error is not None or idx.could_match(v.values):
                        return Undecidable("partial", v.reason)  # re-keyed to the match's text by the caller
                    return negate
                got = idx.contains(_key(v), s, env)
                if isinstance(got, Undecidable):
                    return got._replace(negated=got.negated != negate)
                if isinstance(got, Choices):  # a returning client's affinity: never under != in kube-proxy's rules
                    return got if not negate else Undecidable(got.key, got.reason, True)
                return got != negate

            return member
        if isinstance(right, Concat):
            ms = tuple(element_matcher(x, component(dtype, i)) for i, x in enumerate(right.items))
            return lambda v, s, env: (isinstance(v, tuple) and len(v) == len(ms)
                                      and all(mt.test(x) for mt, x in zip(ms, v, strict=True))) != negate  # fmt: skip
        if scalar == "fib_oif" and isinstance(right, bool):
            return lambda v, s, env: (bool(v) == right) != negate
        if scalar in BITMASK_TYPES or isinstance(right, Flags):
            c = const(right, scalar)
            return lambda v, s, env: (v == c) != negate
        mt = element_matcher(right, scalar)
        return lambda v, s, env: mt.test(v) != negate

    def _marker(self, v: Any, m: Match, test: Callable[[Any, PacketState, Env], bool | Undecidable | Choices],
                s: PacketState, env: Env, text: str) -> Outcome:  # fmt: skip
        if isinstance(v, Broken):
            return False
        if isinstance(v, (Undecidable, Partial)):
            return Undecidable(f"nft {text}", v.reason)
        if isinstance(v, Dist):
            hits = [test(x, s, env) for x in v.values]
            if any(isinstance(h, (Undecidable, Choices)) for h in hits):
                return Undecidable(f"nft {text}", "the set's contents are not known")
            n = sum(1 for h in hits if h is True)
            if n == 0:
                return False
            if n == len(hits):
                return True
            tail = f" ({v.caveat})" if v.caveat else ""
            return Chance(Fraction(n, len(hits)), f"{v.note}: {n} of {len(hits)} values match{tail}")
        if isinstance(v, YesNo):
            a, b = test(v.yes, s, env), test(v.no, s, env)
            if not isinstance(a, bool) or not isinstance(b, bool):
                return Undecidable(f"nft {text}", v.question.reason)
            if a == b:
                return a
            return v.question if a else v.question._replace(negated=not v.question.negated)
        if isinstance(v, Var):
            return self._iface(v.which, m, s, text)
        return Undecidable(f"nft {text}", "not known")

    def _iface(self, which: str, m: Match, s: PacketState, text: str) -> Outcome:
        """The standard interface question for ``iifname``/``oifname``/``iif``/``oif`` against m.right."""
        right, op = m.right, m.op
        if op not in ("==", "!="):
            return Undecidable(f"nft {text}", "the interface is not known")
        negated = op == "!="
        if isinstance(right, str):
            return iface_question(s, which, right, negated=negated)
        patterns: list[str] = []
        if isinstance(right, SetLit):
            for item in right.items:
                if not isinstance(item, str):
                    return Undecidable(f"nft {text}", "the interface is not known")
                patterns.append(item)
        elif isinstance(right, SetRef):
            idx = self.named_set(right.name)
            if idx is None or idx.dynamic or len(idx.patterns) != len(idx):
                return Undecidable(f"nft {text}", "the interface is not known")
            patterns = list(idx.patterns)
        else:
            return Undecidable(f"nft {text}", "the interface is not known")
        if not patterns:
            return negated
        if len(patterns) == 1:
            return iface_question(s, which, patterns[0], negated=negated)
        q = iface_question(s, which, patterns[0], negated=negated)
        if not isinstance(q, Undecidable):
            return q
        return q._replace(pred=("in", " ".join(patterns)),
                          reason=q.reason + f" (is it one of {', '.join(patterns)}?)")  # fmt: skip

    # -- rules ----------------------------------------------------------------------------------------
    def compile_stmt(self, st: Node) -> tuple[Op, ...]:
        unit = STMT_BY_NODE.get(type(st))
        text = self.text(st)
        if unit is None:
            q = Undecidable(f"nft {text}", f"'{text}' is not modelled by kptui")
            return (Check(lambda s, env: q, text),)
        try:
            ops = unit.compile(self, st)
        except _BAD_INPUT as exc:
            q = Undecidable(f"nft {text}", f"'{text}' cannot be evaluated: {exc}")
            return (Check(lambda s, env: q, text),)
        return tuple(_guarded(op, text) for op in ops)

    def compile_rule(self, stmts: tuple[Node, ...]) -> tuple[Op, ...]:
        ops: list[Op] = []
        for st in stmts:
            ops.extend(self.compile_stmt(st))
        return tuple(ops)


_BAD_INPUT = (ConstError, ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError)


def _guarded(op: Op, text: str) -> Op:
    """``op`` made safe against values from a damaged listing: an exception becomes an undecidable outcome."""
    fn = op.fn

    def safe(s: PacketState, env: Env) -> Any:
        try:
            return fn(s, env)
        except _BAD_INPUT as exc:
            return Undecidable(f"nft {text}", f"'{text}' cannot be evaluated: {exc}")

    return op._replace(fn=safe)


def _key(v: Any) -> tuple[Any, ...]:
    return v if isinstance(v, tuple) else (v,)


def _compare(order: Callable[[Any, Any], bool], v: Any, c: Any) -> bool:
    try:
        if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and isinstance(
                c, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and v.version != c.version:  # fmt: skip
            return False
        return bool(order(v, c))
    except TypeError:
        return False


