"""The evaluation domain of nft expressions: what reading an expression from a packet can give, and constants
turned into that domain.

Reading a key expression (a unit's ``value`` function) gives a plain value (an ``ipaddress`` address, an
``int`` for ports, protocols, marks and bitmasks, a ``str`` for interface names), or one of:

- :data:`BROKEN` (:class:`Broken`): the expression cannot be read from this packet (``tcp dport`` of a UDP
  packet, ``iifname`` of a locally generated one, ``ct mark`` of an untracked one). nft stops the rule there:
  the rule does not match, whatever the operator (``tcp dport != 80`` does not match a UDP packet either).
- :class:`YesNo`: the value is ``yes`` or ``no`` depending on one yes/no question the node context cannot
  answer (``fib daddr type``: local or unicast, asked as :func:`flow.local_question` asks it).
- :class:`Var`: an interface name the context does not know; a check asks :func:`flow.iface_question`.
- :class:`Partial`: a concatenation with parts not known (a set lookup may still be a sure miss);
- :class:`Dist`: uniformly one of several values (``numgen random mod 3``: 0, 1 or 2, each 1/3).
- an :class:`flow.Undecidable`: something else unknown, named by its key.
"""

from __future__ import annotations

import ipaddress
from fractions import Fraction
from typing import Any, NamedTuple

from ..flow import Undecidable
from .exprs import Flags, Prefix, Range, Value
from .symbols import BITMASK_TYPES, SYMBOLS, number_of, parse_time

__all__ = ["BROKEN", "MAX_DIST", "MISS", "Broken", "ConstError", "Dist", "Partial", "Var", "YesNo", "const",
           "element_matcher", "is_marker"]  # fmt: skip


class Broken(NamedTuple):
    reason: str


BROKEN = Broken("the expression does not apply to this packet")


class YesNo(NamedTuple):
    question: Undecidable  # true: the value is ``yes``
    yes: Any
    no: Any


class Partial(NamedTuple):
    """A concatenation some of whose parts are not known (None there): a set lookup can still tell a miss when
    no element matches the known parts (``ip daddr . meta l4proto . th dport`` of an ICMP packet)."""

    values: tuple[Any, ...]
    reason: str


class Var(NamedTuple):
    which: str  # "in" or "out": the interface variable flow.iface_question asks about


MAX_DIST = 65536  # values of a numgen/hash kptui enumerates (kube-proxy's mod is the number of endpoints)


class Dist(NamedTuple):
    values: tuple[Any, ...]  # each equally likely
    note: str  # what chooses: ``numgen random mod 3``
    caveat: str = ""  # what kptui assumed, if anything


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS = _Miss()  # a map lookup found no element


def is_marker(v: Any) -> bool:
    return isinstance(v, (Broken, YesNo, Var, Dist, Undecidable, Partial))


class ConstError(ValueError):
    """A constant kptui cannot put in the evaluation domain (an unknown symbol)."""


_ADDR = frozenset({"ipv4_addr", "ipv6_addr"})
_NAME = frozenset({"ifname", "iface_index", "string", "fib_oif", "classid", "ct_label", "realm", "devgroup"})


def const(v: Value, dtype: str) -> Any:
    """The evaluation-domain form of constant ``v`` of ``dtype`` (addresses as ``ipaddress`` objects,
    symbols as numbers, bitmask lists as one mask)."""
    if isinstance(v, bool):
        return v
    if dtype in _ADDR:
        if isinstance(v, str):
            try:
                return ipaddress.ip_address(v)
            except ValueError:
                raise ConstError(f"'{v}' is not an address") from None
        raise ConstError(f"{v!r} is not an address")
    if isinstance(v, Flags):
        mask = 0
        for item in v.items:
            bit = const(item, dtype)
            if not isinstance(bit, int):
                raise ConstError(f"{item!r} is not a flag of {dtype}")
            mask |= bit
        return mask
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        if dtype in _NAME:
            return v
        if dtype == "ether_addr":
            return v.lower()
        if dtype == "time":
            t = parse_time(v)
            if t is None:
                raise ConstError(f"'{v}' is not a time")
            return t
        if dtype in SYMBOLS or dtype == "inet_service":
            n = number_of(dtype, v)
            if n is None:
                raise ConstError(f"'{v}' is not a known {dtype} name")
            return n
        try:
            return int(v, 0)
        except ValueError:
            raise ConstError(f"'{v}' is not a value kptui can compare ({dtype})") from None
    if isinstance(v, float):
        return v
    raise ConstError(f"{v!r} is not a constant")


class Matcher(NamedTuple):
    """One component of a set element (or a match's right-hand side): eq, net, range, or an interface prefix."""

    kind: str  # "eq", "net", "range", "prefix"
    a: Any
    b: Any = None

    def test(self, v: Any) -> bool:
        if self.kind == "eq":
            return bool(v == self.a)
        if self.kind == "net":
            return isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and v.version == \
                self.a.version and v in self.a  # fmt: skip
        if self.kind == "range":
            try:
                return bool(self.a <= v <= self.b)
            except TypeError:
                return False
        return isinstance(v, str) and v.startswith(self.a)


def element_matcher(v: Value, dtype: str) -> Matcher:
    """A matcher for one component: a constant, a Prefix, a Range, or an interface name ending in ``*``."""
    if isinstance(v, Prefix):
        try:
            net = ipaddress.ip_network(f"{v.addr}/{v.length}", strict=False)
        except ValueError:
            raise ConstError(f"'{v.addr}/{v.length}' is not a network") from None
        return Matcher("net", net)
    if isinstance(v, Range):
        return Matcher("range", const(v.lo, dtype), const(v.hi, dtype))
    if isinstance(v, str) and dtype in ("ifname", "iface_index") and v.endswith("*"):
        return Matcher("prefix", v[:-1])
    return Matcher("eq", const(v, dtype))


def bitmask(dtype: str) -> bool:
    return dtype in BITMASK_TYPES


def fraction(count: int, total: int) -> Fraction:
    return Fraction(count, total) if total else Fraction(0)
