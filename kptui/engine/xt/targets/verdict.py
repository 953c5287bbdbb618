"""Verdicts: ACCEPT (this table's base chain is done), DROP and REJECT (the packet ends), RETURN (back to the
caller), QUEUE/NFQUEUE (handed to userspace, whose verdict is not in the rules)."""

from __future__ import annotations

from ...flow import END, RETURN, STOP_TABLE, Effect
from ...packet import NodeContext
from ...spec import Target
from ...trace_model import PacketState
from ..unitbase import Apply, Opt, TargetUnit
from ..values import ANY, Bad, VType, number

__all__ = ["ACCEPT", "DROP", "NFQUEUE", "QUEUE", "REJECT", "RETURN_UNIT", "prefix_choice"]


def _fixed(verdict: str, flow: str, note: str | None = None) -> Apply:
    def apply(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
        return Effect(verdict, flow, state, note)

    return apply


ACCEPT = TargetUnit("ACCEPT", (), _fixed("ACCEPT", STOP_TABLE), doc="accept: the hook's next table runs")
DROP = TargetUnit("DROP", (), _fixed("DROP", END), doc="drop the packet")
RETURN_UNIT = TargetUnit("RETURN", (), _fixed("RETURN", RETURN), doc="back to the calling chain")
_QUEUED = "handed to a userspace queue: its verdict is not in the rules"
QUEUE = TargetUnit("QUEUE", (), _fixed("QUEUE", END, _QUEUED), doc="to userspace")
NFQUEUE = TargetUnit(
    "NFQUEUE",
    (Opt(("--queue-num",), (number("--queue-num", 0, 65535),), invert=False),
     Opt(("--queue-balance",), (ANY,), invert=False), Opt(("--queue-bypass",), (), invert=False),
     Opt(("--fail-open",), (), invert=False), Opt(("--queue-cpu-fanout",), (), invert=False)),
    _fixed("QUEUE", END, _QUEUED),
    doc="to a userspace queue",
)


def prefix_choice(name: str, table: tuple[tuple[str, ...], ...]) -> VType:
    """A value iptables looks up by any case-insensitive prefix of a name or its alias, first row first."""

    def check(text: str, family: int | None) -> Bad | None:
        low = text.lower()
        if text and any(n.lower().startswith(low) for row in table for n in row):
            return None
        return Bad(f"{name}: unknown value '{text}' (known: {', '.join(row[0] for row in table)})")

    return VType(name, check)


_REJECT4 = (("icmp-net-unreachable", "net-unreach"), ("icmp-host-unreachable", "host-unreach"),
            ("icmp-proto-unreachable", "proto-unreach"), ("icmp-port-unreachable", "port-unreach"),
            ("icmp-net-prohibited", "net-prohib"), ("icmp-host-prohibited", "host-prohib"), ("tcp-reset", "tcp-rst"),
            ("icmp-admin-prohibited", "admin-prohib"))  # fmt: skip
_REJECT6 = (("icmp6-no-route", "no-route"), ("icmp6-adm-prohibited", "adm-prohibited"),
            ("icmp6-addr-unreachable", "addr-unreach"), ("icmp6-port-unreachable", "port-unreach"),
            ("tcp-reset", "tcp-rst"), ("icmp6-policy-fail", "policy-fail"), ("icmp6-reject-route", "reject-route"))
_R4, _R6 = prefix_choice("--reject-with", _REJECT4), prefix_choice("--reject-with", _REJECT6)


def _reject_with(text: str, family: int | None) -> Bad | None:
    if family == 6:
        return _R6.check(text, family)
    if family == 4:
        return _R4.check(text, family)
    return _R4.check(text, family) and _R6.check(text, family)


REJECT = TargetUnit("REJECT", (Opt(("--reject-with",), (VType("reject type", _reject_with),), invert=False),),
                    _fixed("REJECT", END),
                    doc="refuse with an ICMP error or a TCP reset")  # fmt: skip
