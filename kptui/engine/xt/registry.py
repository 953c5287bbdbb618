"""The registry of iptables match and target units, by name.

Adding a match module or a target is adding its unit (one entry in its family's module under
:mod:`kptui.engine.xt.matches` or :mod:`kptui.engine.xt.targets`) and listing it here. Everything else reads
the units through this module: the decoder (option sets, value types), the compile/apply dispatchers
(:func:`kptui.engine.matches.compile_match`, :func:`kptui.engine.targets.apply_target`), the parser's shape
blanking (:func:`blankable_options`) and the ``iptables -S`` table inference (:attr:`TargetUnit.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .matches.addr import ADDRTYPE, IPRANGE
from .matches.conntrack import CONNTRACK, STATE
from .matches.header import HEADER_UNIT
from .matches.icmp import ICMP, ICMP6
from .matches.l4 import DCCP, MULTIPORT, SCTP, TCP, UDP
from .matches.mark import CONNMARK, MARK
from .matches.meta import COMMENT, HASHLIMIT, LENGTH, LIMIT, MAC_UNIT, NFACCT, OPAQUE, PKTTYPE, RPFILTER
from .matches.recent import RECENT
from .matches.set import SET
from .matches.statistic import STATISTIC
from .targets.mark import CONNMARK_T, MARK_T
from .targets.nat import DNAT, MASQUERADE, NETMAP, REDIRECT, SNAT
from .targets.other import CONTINUING, CT, NOTRACK, UNMODELLED
from .targets.verdict import ACCEPT, DROP, NFQUEUE, QUEUE, REJECT, RETURN_UNIT
from .unitbase import MatchUnit, TargetUnit
from .values import CHAIN, PROTOCOL_NUMBERS, VType, parse_u32

__all__ = ["HEADER_UNIT", "MATCHES", "TARGETS", "blankable_options", "implicit_module", "match_unit"]

_MATCH_UNITS = (TCP, UDP, SCTP, DCCP, MULTIPORT, ICMP, ICMP6, COMMENT, NFACCT, MARK, CONNMARK, ADDRTYPE, IPRANGE,
                CONNTRACK, STATE, STATISTIC, RECENT, SET, LIMIT, HASHLIMIT, PKTTYPE, LENGTH, MAC_UNIT, RPFILTER,
                *OPAQUE)  # fmt: skip
_TARGET_UNITS = (ACCEPT, DROP, RETURN_UNIT, REJECT, QUEUE, NFQUEUE, MARK_T, CONNMARK_T, DNAT, SNAT, MASQUERADE,
                 REDIRECT, NETMAP, NOTRACK, CT, *CONTINUING, *UNMODELLED)  # fmt: skip


def _by_name(units: tuple[MatchUnit, ...]) -> Mapping[str, MatchUnit]:
    out: dict[str, MatchUnit] = {}
    for u in units:
        for n in (u.name, *u.aliases):
            out.setdefault(n, u)
    return MappingProxyType(out)


MATCHES: Mapping[str, MatchUnit] = _by_name(_MATCH_UNITS)
TARGETS: Mapping[str, TargetUnit] = MappingProxyType({u.name: u for u in _TARGET_UNITS})
_NAME_OF = {n: name for name, n in reversed(list(PROTOCOL_NUMBERS.items())) if name not in ("all", "ip")}
_NAME_OF[58] = "ipv6-icmp"


def match_unit(name: str, family: int | None = None) -> MatchUnit | None:
    """The unit of ``-m name`` (None: kptui does not know the module, or it does not exist for ``family``)."""
    unit = MATCHES.get(name)
    if unit is not None and family is not None and unit.family not in (None, family):
        return None
    return unit


def implicit_module(proto: str, family: int | None) -> MatchUnit | None:
    """The match ``-p PROTO`` loads for an option no loaded module knows (iptables' ``load_proto``)."""
    n = parse_u32(proto, 0, 255)
    name = _NAME_OF.get(n, "") if n is not None else proto.lower()
    return match_unit(name, family)


def blankable_options(family: int | None) -> dict[str, VType]:
    """Option spelling → the value type of its one argument, for every spelling all units agree on and whose
    type has a fast pattern for ``family``: the parser blanks such values out of rule shapes."""
    seen: dict[str, set[int]] = {}
    types: dict[str, VType] = {}
    units = [HEADER_UNIT, *_MATCH_UNITS]
    options = [o for u in units for o in u.options] + [o for t in _TARGET_UNITS for o in (t.options or ())]
    for o in options:
        for n in o.names:
            if len(o.args) == 1:
                seen.setdefault(n, set()).add(id(o.args[0]))
                types[n] = o.args[0]
            else:
                seen.setdefault(n, set()).add(-1)
    out = {n: types[n] for n, ids in seen.items() if len(ids) == 1 and -1 not in ids
           and types[n].fast(family) is not None}  # fmt: skip
    out.update(dict.fromkeys(("-j", "-g", "--jump", "--goto"), CHAIN))  # chain names (the parser keeps targets')
    return out
