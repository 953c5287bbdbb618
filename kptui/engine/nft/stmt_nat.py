"""NAT statements: ``dnat``, ``snat``, ``masquerade``, ``redirect`` (``[ip|ip6] to ADDR[:PORT] [flags]``).

A NAT statement ends the base chain like an accept (flow STOP_TABLE, as nft's nat expression sets the verdict):

- ``dnat to A:P`` → verdict DNAT: destination A (port P), ``dnat`` set; ``snat to A:P`` → SNAT likewise for the
  source; a range or prefix of addresses or ports: its first one, with a note.
- ``masquerade`` → MASQUERADE: the source becomes the outgoing interface's address, exactly as the iptables
  target computes it (:mod:`kptui.engine.nataddr`); ``redirect`` → REDIRECT to the node itself.
- ``dnat ip to numgen random mod N map { 0 : A . P, … }`` → a :class:`flow.Spread` of N DNAT effects, 1/N each
  (a value with no element: the rule goes on without NAT); a map keyed by a packet field gives one effect, or
  a miss (an empty Spread: nft stops the rule, no NAT).
- ``dnat ip to`` on an IPv6 packet (inet tables) does not apply: an empty Spread, the rule goes on.
"""

from __future__ import annotations

import ipaddress
from fractions import Fraction
from typing import Any

from ..flow import STOP_TABLE, Action, Effect, Env, Spread, Undecidable
from ..nataddr import masquerade_source, redirect_destination
from ..trace_model import PacketState
from .evalcore import MISS, Dist
from .exprs import Concat, MapLookup, Nat, Prefix, Range, Value
from .unitbase import EvalCtx, JsonCtx, Op, PrintCtx, StmtUnit, TextCtx

__all__ = ["NAT"]

FLAGS = ("random", "fully-random", "persistent", "netmap", "prefix")
_VERDICT = {"dnat": "DNAT", "snat": "SNAT", "masquerade": "MASQUERADE", "redirect": "REDIRECT"}


def _split(word: str) -> tuple[str | None, str | None]:
    """``10.0.0.1:80`` / ``[fd00::1]:80`` / ``:80`` / ``fd00::1`` / ``10.0.0.1-10.0.0.9`` → (address, port)."""
    if word.startswith("["):
        addr, _, rest = word[1:].partition("]")
        return addr, rest[1:] if rest.startswith(":") else None
    if word.startswith(":"):
        return None, word[1:]
    if word.count(":") == 1:
        addr, _, port = word.partition(":")
        return addr, port
    return word, None


def _addr_value(word: str, family: str | None) -> Value:
    if "/" in word:
        a, _, n = word.partition("/")
        if n.isdigit():
            return Prefix(a, int(n))
    if "-" in word:
        lo, _, hi = word.partition("-")
        return Range(lo, hi)
    return word


def _port_value(word: str) -> Value:
    if "-" in word:
        lo, _, hi = word.partition("-")
        if lo.isdigit() and hi.isdigit():
            return Range(int(lo), int(hi))
    return int(word) if word.isdigit() else word


def _parse(ctx: TextCtx, word: str) -> Nat:
    cur = ctx.cur
    family = cur.word() if cur.peek() in ("ip", "ip6") and cur.peek(1) == "to" else None
    addr: Value | None = None
    port: Value | None = None
    if cur.accept("to"):
        w = cur.peek()
        if w is None:
            raise cur.error("expected an address after 'to'")
        if _looks_like_address(w):
            cur.pos += 1
            a, p = _split(w)
            addr = _addr_value(a, family) if a else None
            port = _port_value(p) if p else None
        else:
            key = ctx.expr()
            cur.expect("map")
            data = ctx.value(ctx.dtype(key))
            addr = MapLookup(key, data)
    flags: list[str] = []
    while cur.peek() is not None and all(f in FLAGS for f in (cur.peek() or "").split(",")):
        flags.extend(cur.word().split(","))
    return Nat(word, family, addr, port, tuple(flags))


def _looks_like_address(text: str) -> bool:
    return text.startswith((":", "[")) or text[:1].isdigit() or (":" in text and text[:1] in "abcdefABCDEF")


def _from_json(ctx: JsonCtx, key: str, obj: Any) -> Nat:
    if obj is None:
        return Nat(key)
    if not isinstance(obj, dict):
        raise ctx.error(f"{key} takes an object")
    family = obj.get("family")
    addr = ctx.value(obj["addr"], "ipv6_addr" if family == "ip6" else "ipv4_addr") if "addr" in obj else None
    port = ctx.value(obj["port"], "inet_service") if "port" in obj else None
    flags = obj.get("flags", [])
    if isinstance(flags, str):
        flags = [flags]
    return Nat(key, str(family) if family else None, addr, port, tuple(str(f) for f in flags))


def _text(ctx: PrintCtx, n: Nat) -> str:
    out = n.kind + (f" {n.family}" if n.family else "")
    if n.addr is not None or n.port is not None:
        out += " to "
        if isinstance(n.addr, MapLookup):
            out += f"{ctx.expr(n.addr.key)} map {ctx.value(n.addr.data, ctx.dtype(n.addr.key))}"
        else:
            a = ctx.value(n.addr, "ipv4_addr") if n.addr is not None else ""
            if n.port is not None:
                v6 = isinstance(n.addr, str) and ":" in n.addr
                out += (f"[{a}]" if v6 else a) + ":" + ctx.value(n.port, "inet_service")
            else:
                out += a
    if n.flags:
        out += " " + ",".join(n.flags)
    return out


def _first(v: Value | None) -> tuple[Any, bool]:
    """The first address or port of a value, and whether it was a range (or prefix) of several."""
    if isinstance(v, Range):
        return v.lo, True
    if isinstance(v, Prefix):
        net = ipaddress.ip_network(f"{v.addr}/{v.length}", strict=False)
        return str(net.network_address), net.num_addresses > 1
    return v, False


def _apply(n: Nat, state: PacketState, e: Env, addr: Value | None, port: Value | None) -> Effect:
    verdict = _VERDICT[n.kind]
    a, a_many = _first(addr)
    p, p_many = _first(port)
    notes = []
    if a_many or p_many:
        notes.append("the first address/port of the range is shown (the kernel picks one)")
    pnum = p if isinstance(p, int) else None
    if n.kind == "dnat":
        new = state.with_(dst=str(a) if a else state.dst, dport=pnum if pnum is not None else state.dport,
                          dnat=True)  # fmt: skip
    elif n.kind == "snat":
        new = state.with_(src=str(a) if a else state.src, sport=pnum if pnum is not None else state.sport,
                          snat=True)  # fmt: skip
    elif n.kind == "masquerade":
        src, note = masquerade_source(state, e.node)
        if note:
            notes.append(note)
        new = state.with_(src=src or state.src, sport=pnum if pnum is not None else state.sport, snat=True,
                          masquerade=True)  # fmt: skip
    else:
        dst = redirect_destination(state, e.node)
        new = state.with_(dst=dst or state.dst, dport=pnum if pnum is not None else state.dport, dnat=True)
    return Effect(verdict, STOP_TABLE, new, "; ".join(notes) or None)


def _data_parts(data: Any) -> tuple[Value | None, Value | None]:
    if isinstance(data, Concat) and len(data.items) == 2:
        return data.items[0], data.items[1]
    return data, None


def _compile(ctx: EvalCtx, n: Nat) -> tuple[Op, ...]:
    text = ctx.text(n)
    want = {"ip": 4, "ip6": 6}.get(n.family or "")

    if isinstance(n.addr, MapLookup):
        lookup = ctx.lookup(n.addr.key, n.addr.data)

        def mapped(s: PacketState, e: Env) -> Effect | Spread | Undecidable:
            if want and (6 if ":" in s.dst else 4) != want:
                return Spread((), f"{n.kind} {n.family} does not apply to this packet")
            got = lookup(s, e)
            if isinstance(got, Undecidable):
                return got
            if got is MISS:
                return Spread((), "no map element for the packet: no NAT, the rule goes on")
            if isinstance(got, Dist):
                branches = []
                for value, data in got.values:
                    if data is MISS:
                        continue
                    a, p = _data_parts(data)
                    eff = _apply(n, s, e, a, p if p is not None else n.port)
                    tail = f" ({got.caveat})" if got.caveat else ""
                    branches.append((Fraction(1, len(got.values)), eff, f"{got.note} = {value}{tail}"))
                return Spread(tuple(branches), f"{got.note}: a value with no map element, no NAT")
            a, p = _data_parts(got)
            return _apply(n, s, e, a, p if p is not None else n.port)

        return (Action(mapped, text),)

    def fn(s: PacketState, e: Env) -> Effect | Spread:
        if want and (6 if ":" in s.dst else 4) != want:
            return Spread((), f"{n.kind} {n.family} does not apply to this packet")
        return _apply(n, s, e, n.addr, n.port)

    return (Action(fn, text),)


NAT = StmtUnit(
    name="nat",
    nodes=(Nat,),
    keywords=("dnat", "snat", "masquerade", "redirect"),
    json_keys=("dnat", "snat", "masquerade", "redirect"),
    parse=_parse,
    from_json=_from_json,
    text=_text,
    compile=_compile,
)
