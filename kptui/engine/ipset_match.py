"""``test_set(sets, match, state, env)``: does a packet match ``-m set [!] --match-set NAME FLAGS``?

The packet side of an ipset match, as the kernel takes it (see :mod:`kptui.engine.ipset` for the rules): each
dimension's value from the side its direction flag names, the family check, the flag count, ``list:set``
members in order. Undecidable, with the question ``set NAME FLAGS``, when the members are not known or a value
the packet state does not carry is needed.
"""

from __future__ import annotations

import ipaddress

from .flow import CheckFn, Env, Outcome, Undecidable
from .ipset import ADDRESS_DIMS, IpSet, IpsetTable, SetMatch, legacy_sets
from .packet import PROTOCOLS
from .spec import Match, Option
from .trace_model import PacketState

__all__ = ["packet_values", "set_check", "test_set"]

_PORT_PROTOS = frozenset({6, 17, 132, 136})  # tcp, udp, sctp, udplite: ip_set_proto_with_ports
_ICMP = (1, 58)
_MAX_DEPTH = 8  # list:set inside list:set


_NO_EFFECT = frozenset({"--return-nomatch", "--update-counters", "--update-subcounters"})
_COUNTERS = frozenset({"--packets-eq", "--packets-lt", "--packets-gt", "--bytes-eq", "--bytes-lt", "--bytes-gt"})


def set_check(match: Match, opt: Option) -> CheckFn:
    """The check of one option of ``-m set``. It applies its own ``!``: ``! --update-counters`` only stops the
    counters being updated, it does not negate the match."""
    if opt.name in ("--match-set", "--set"):
        flags = tuple((opt.args[1] if len(opt.args) > 1 else "src").split(","))
        m = SetMatch(opt.args[0] if opt.args else "", flags, opt.negated,
                     any(o.name == "--return-nomatch" for o in match.options))  # fmt: skip

        def fn(s: PacketState, e: Env) -> Outcome:
            sets = e.node.ipsets
            if sets is None:
                return Undecidable(m.key, f"the members of ipset {m.name} are not known", m.negated)
            return test_set(sets if isinstance(sets, IpsetTable) else legacy_sets(sets), m, s, e)

        return fn
    if opt.name in _NO_EFFECT:
        return lambda s, e: True
    text = f"-m set {'! ' if opt.negated else ''}{opt.name} {' '.join(opt.args)}".rstrip()
    why = ("the element counters it compares are only known to the kernel" if opt.name in _COUNTERS
           else f"-m set {opt.name} is not known to kptui")  # fmt: skip
    return lambda s, e: Undecidable(text, why, opt.negated)


def test_set(sets: IpsetTable, m: SetMatch, state: PacketState, env: Env) -> Outcome:
    """Whether the packet matches ``m`` (``!`` applied), or the question when it cannot be told."""
    result = _test(sets, m.name, m.flags, state, env, m.return_nomatch, 0)
    if isinstance(result, Undecidable):
        return result._replace(key=m.key, negated=m.negated)
    return result != m.negated


def _test(sets: IpsetTable, name: str, flags: tuple[str, ...], s: PacketState, e: Env, return_nomatch: bool,
          depth: int) -> bool | Undecidable:  # fmt: skip
    ipset = sets.get(name)
    if ipset is None or not ipset.members_known:
        why = "not given" if ipset is None else "not listed (ipset list -t)"
        return Undecidable("", f"the members of ipset {name} are {why}")
    if ipset.type == "list:set":
        return _list_set(sets, ipset, flags, s, e, return_nomatch, depth)
    dims = ipset.dimensions
    if not dims:
        return Undecidable("", f"ipset {name} has type {ipset.type}, which kptui does not model")
    if not ipset.known_type and len(flags) != 1:
        return Undecidable("", f"the type of ipset {name} is not known (only its members were given)")
    if len(flags) < len(dims):
        return False  # the kernel never matches with fewer direction flags than dimensions
    version = 6 if ":" in s.src else 4
    if ipset.version is not None and ipset.version != version:
        return False
    values = packet_values(ipset, flags, s, e)
    if values is None:
        return False
    if isinstance(values, Undecidable):
        return Undecidable("", f"ipset {name}: {values.reason}")
    hit = ipset.lookup(values, version)
    if hit is None:
        return False
    return hit.nomatch if return_nomatch else not hit.nomatch


def _list_set(sets: IpsetTable, ipset: IpSet, flags: tuple[str, ...], s: PacketState, e: Env,
              return_nomatch: bool, depth: int) -> bool | Undecidable:  # fmt: skip
    if depth >= _MAX_DEPTH:
        return Undecidable("", f"list:set {ipset.name} nests more than {_MAX_DEPTH} deep")
    pending: Undecidable | None = None
    for el in ipset.elements:
        member = str(el.parts[0].value) if el.parts else el.text
        r = _test(sets, member, flags, s, e, return_nomatch, depth + 1)
        if r is True:
            return True  # whatever an earlier, undecidable member holds: one member matching is enough
        if isinstance(r, Undecidable) and pending is None:
            pending = r
    return pending if pending is not None else False


def packet_values(ipset: IpSet, flags: tuple[str, ...], s: PacketState, e: Env
                  ) -> tuple[int | str, ...] | Undecidable | None:  # fmt: skip
    """The packet's value for each dimension of ``ipset`` as :meth:`IpSet.lookup` takes them; None when the
    kernel cannot take one from this packet (it then does not match), or the question a value leaves open."""
    out: list[int | str] = []
    for dim, flag in zip(ipset.dimensions, flags, strict=False):
        v = _value(ipset, dim, flag == "src", s, e)
        if v is None or isinstance(v, Undecidable):
            return v
        out.append(v)
    return tuple(out)


def _value(ipset: IpSet, dim: str, src: bool, s: PacketState, e: Env) -> int | str | Undecidable | None:
    if dim in ADDRESS_DIMS:
        return int(ipaddress.ip_address(s.src if src else s.dst))
    if dim == "port":
        proto = PROTOCOLS.get(s.proto, 0)
        port = (s.sport if src else s.dport) or 0
        if ipset.type == "bitmap:port":  # ip_set_get_ip_port: TCP and UDP only
            return -1 << 16 | port if proto in (6, 17) else None
        if proto in _PORT_PROTOS:
            return proto << 16 | port
        if proto in _ICMP:
            if e.icmp_type not in (0, 8, 128, 129):  # echo request/reply: code 0; other types: code not known
                return Undecidable("", "the ICMP code of the packet is not known")
            return proto << 16 | (e.icmp_type << 8)
        return proto << 16
    if dim == "mark":
        return s.mark & int(ipset.option("markmask") or "0xffffffff", 0)
    if dim == "iface":
        name = s.in_iface if src else s.out_iface
        if name is None:
            return Undecidable("", f"the {'input' if src else 'output'} interface is not known")
        return name
    if dim == "mac":
        if not src:
            return Undecidable("", "the destination MAC is not known")
        if e.mac is None:
            return Undecidable("", "the source MAC is not known")
        return e.mac.lower()
    return None
