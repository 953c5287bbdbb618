"""The nft rule AST: expressions and statements as frozen values, the same whichever listing they came from.

The shapes follow libnftables-json(5), which is nft's own structured form of a rule: a rule is a tuple of
statements (:class:`Match`, :class:`Verdict`, :class:`Nat`, …); a match compares a *key expression*
(:class:`Payload`, :class:`Meta`, :class:`Ct`, :class:`Fib`, :class:`Numgen`, :class:`Hash`, a
:class:`Concat` or :class:`Binop` of them) with a *value*.

Values are canonical so that ``nft list ruleset``, ``nft -nn list ruleset`` and ``nft -j list ruleset`` give
equal trees: a symbolic constant is the name nft prints by default (``"tcp"``, ``"new"``, ``"echo-request"``,
``"local"``) even where ``-nn`` printed a number, a number is an ``int`` (``0x00004000`` → 16384), an address
or an interface name is the string nft printed, ``fib … oif missing`` is ``False``. Composite values are
:class:`Prefix`, :class:`Range`, :class:`Flags` (a bitmask written as a list: ``established,related``),
:class:`Concat`, :class:`SetLit` (an anonymous set ``{ … }``; :class:`MapItem` for an anonymous map) and
:class:`SetRef` (``@name``).

Anything kptui does not model is kept, never dropped: :class:`OtherExpr` and :class:`OtherStmt` hold it
verbatim (the evaluation treats it as undecidable), :class:`Xt` is an iptables-nft compat expression.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Binop",
    "Concat",
    "Counter",
    "Ct",
    "CtCount",
    "ElemOpts",
    "Expr",
    "Fib",
    "Flags",
    "Hash",
    "Limit",
    "Log",
    "Mangle",
    "MapItem",
    "MapLookup",
    "Match",
    "Meta",
    "Nat",
    "Node",
    "Notrack",
    "Numgen",
    "OtherExpr",
    "OtherStmt",
    "Payload",
    "Prefix",
    "Queue",
    "Quota",
    "Range",
    "RawPayload",
    "Reject",
    "SetLit",
    "SetRef",
    "SetStmt",
    "Stmt",
    "VMap",
    "Value",
    "Verdict",
    "Xt",
]


class Node:
    """Base of every AST node (expressions and statements)."""

    __slots__ = ()


# -- key expressions: what a match reads from the packet ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class Payload(Node):
    """A header field: ``ip saddr``, ``tcp dport``, ``th dport`` (the transport header of any protocol)."""

    proto: str
    field: str


@dataclass(frozen=True, slots=True)
class RawPayload(Node):
    """``@nh,16,16``: bits at an offset of a header base (ll, nh, th)."""

    base: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Meta(Node):
    """``meta KEY`` (``iifname``, ``mark``, ``l4proto`` are also written without ``meta``)."""

    key: str


@dataclass(frozen=True, slots=True)
class Ct(Node):
    """``ct KEY``, ``ct original ip saddr`` (dir ``original``/``reply``, key ``ip saddr`` as nft 1.0 names it)."""

    key: str
    dir: str | None = None


@dataclass(frozen=True, slots=True)
class Fib(Node):
    """``fib saddr . iif oif``: a routing lookup; ``result`` is oif, oifname or type."""

    result: str
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Numgen(Node):
    """``numgen random mod N [offset M]`` (mode random or inc)."""

    mode: str
    mod: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Hash(Node):
    """``jhash EXPR mod N [seed S] [offset M]`` or ``symhash mod N [offset M]``."""

    kind: str
    mod: int
    expr: Value | None = None
    seed: int | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class OtherExpr(Node):
    """An expression kptui does not model (exthdr, socket, osf, rt, ipsec, …), as the listing wrote it."""

    kind: str
    text: str


# -- composite values and combinators ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Concat(Node):
    """``a . b . c``: a concatenation of key expressions or of values."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Binop(Node):
    """``left OP right`` with OP one of ``&`` ``|`` ``^`` ``<<`` ``>>``."""

    op: str
    left: Value
    right: Value


@dataclass(frozen=True, slots=True)
class Prefix(Node):
    """``10.0.0.0/8``."""

    addr: str
    length: int


@dataclass(frozen=True, slots=True)
class Range(Node):
    """``80-90``, ``10.0.0.1-10.0.0.9``."""

    lo: Value
    hi: Value


@dataclass(frozen=True, slots=True)
class Flags(Node):
    """A bitmask value written as a list of names: ``established,related`` / ``fin,syn,rst,ack``."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class MapItem(Node):
    """One ``key : value`` of an anonymous map (``value`` a :class:`Verdict` for a verdict map)."""

    key: Value
    value: Value


@dataclass(frozen=True, slots=True)
class ElemOpts(Node):
    """A value with element options: ``10.0.0.5 timeout 10s``, ``1.2.3.4 comment "x"``."""

    val: Value
    timeout: float | None = None
    expires: float | None = None
    comment: str | None = None
    counter: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class SetLit(Node):
    """An anonymous set ``{ a, b }`` (items :class:`MapItem` for an anonymous map)."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class SetRef(Node):
    """``@name``: a named set or map of the same table."""

    name: str


@dataclass(frozen=True, slots=True)
class MapLookup(Node):
    """``KEY map @m`` / ``KEY map { … }``: the data a map holds for the key (nat addresses)."""

    key: Value
    data: Value


Value = str | int | float | bool | Node
Expr = Node

# -- statements ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match(Node):
    """``LEFT [OP] RIGHT``. ``op``: ``==`` ``!=`` ``<`` ``>`` ``<=`` ``>=`` or ``in`` (a flag test, the implicit
    operator of a bitmask such as ``ct state new``)."""

    op: str
    left: Value
    right: Value


@dataclass(frozen=True, slots=True)
class Verdict(Node):
    """accept, drop, continue, return, jump CHAIN, goto CHAIN."""

    kind: str
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Reject(Node):
    """``reject [with TYPE [CODE]]``: type icmp/icmpv6/icmpx/"tcp reset" (None: the default)."""

    type: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Queue(Node):
    """``queue [flags …] [num N]``."""

    num: Value | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Counter(Node):
    """``counter [packets P bytes B]`` or a named counter ``counter name "x"``."""

    packets: int | None = None
    bytes: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Log(Node):
    """``log [prefix "…"] [level L] [group G] [snaplen N] [queue-threshold N] [flags …]`` in listing order."""

    opts: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True)
class Limit(Node):
    """``limit rate [over] RATE[/unit]/PER [burst N unit]``; ``unit`` None means packets."""

    rate: int
    per: str
    burst: int | None = None
    unit: str | None = None
    burst_unit: str | None = None
    inv: bool = False


@dataclass(frozen=True, slots=True)
class Quota(Node):
    """``quota [over] N UNIT [used N UNIT]`` (bytes as listed: value and unit), or a named quota object
    ``quota name "q"``."""

    val: int
    unit: str
    used: int | None = None
    used_unit: str | None = None
    inv: bool = False
    name: str | None = None


@dataclass(frozen=True, slots=True)
class CtCount(Node):
    """``ct count [over] N``."""

    val: int
    inv: bool = False


@dataclass(frozen=True, slots=True)
class Mangle(Node):
    """``KEY set VALUE``: ``meta mark set meta mark | 0x4000``, ``ct mark set …``, ``ip daddr set …``."""

    key: Value
    value: Value


@dataclass(frozen=True, slots=True)
class Nat(Node):
    """``dnat``/``snat``/``masquerade``/``redirect`` ``[ip|ip6] [to ADDR[:PORT]] [FLAGS]``.

    ``addr`` and ``port`` are values (an address, a :class:`Range`, a :class:`Prefix`, a :class:`MapLookup`
    whose data is ``ADDR . PORT``); ``flags`` are random, fully-random, persistent, netmap."""

    kind: str
    family: str | None = None
    addr: Value | None = None
    port: Value | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Notrack(Node):
    """``notrack``: the packet is not tracked (ct state untracked)."""


@dataclass(frozen=True, slots=True)
class SetStmt(Node):
    """``add|update|delete @set { ELEM }``: the packet's key added to (or refreshed in) a dynamic set."""

    op: str
    set: str
    elem: Value


@dataclass(frozen=True, slots=True)
class VMap(Node):
    """``KEY vmap @m`` / ``KEY vmap { v : verdict, … }``: the verdict the map holds for the key (a miss goes
    on with the next rule)."""

    key: Value
    data: Value


@dataclass(frozen=True, slots=True)
class Xt(Node):
    """An iptables-nft compat expression (``xt match recent``, ``xt target MARK``): not listable in full."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class OtherStmt(Node):
    """A statement kptui does not model, kept verbatim (``kind``: its first word, or the JSON key)."""

    kind: str
    text: str


Stmt = Node
