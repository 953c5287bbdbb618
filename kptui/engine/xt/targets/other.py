"""Targets that let the packet go on: conntrack's (NOTRACK, ``CT --notrack`` make it untracked, so nat never
sees it; other CT options only attach helpers or zones), logging (LOG, NFLOG, TRACE, AUDIT, …), header and
mark rewrites kptui does not follow (TCPMSS, DSCP, TOS, TTL, HL, CLASSIFY, …), and the targets iptables has
that kptui does not model (TPROXY, SYNPROXY, …: the hop says the packet was assumed to go on)."""

from __future__ import annotations

from ...flow import CONTINUE, Effect
from ...packet import NodeContext
from ...spec import Target
from ...trace_model import PacketState
from ..unitbase import Opt, TargetUnit
from ..values import ANY, Bad, VType, enum, number, string

__all__ = ["CONTINUING", "CT", "LOG", "NFLOG", "NOTRACK", "UNMODELLED"]


def _continue(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    return Effect("CONTINUE", CONTINUE, state)


def _untrack(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    return Effect("CONTINUE", CONTINUE, state.with_(ctstate="UNTRACKED"), "untracked: nat will not see it")


def _ct(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    if target.option("--notrack") is not None:
        return _untrack(target, state, node, table)
    return _continue(target, state, node, table)


def _unmodelled(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    return Effect("UNKNOWN", CONTINUE, state, f"target {target.name} is not modelled; assumed to let the packet on")


def _flag(*names: str) -> tuple[Opt, ...]:
    return tuple(Opt((n,), (), invert=False) for n in names)


def _args(*names: str, vtype: VType = ANY) -> tuple[Opt, ...]:
    return tuple(Opt((n,), (vtype,), invert=False) for n in names)


NOTRACK = TargetUnit("NOTRACK", (), _untrack, tables=("raw",), doc="make the connection untracked")
CT = TargetUnit("CT", _flag("--notrack") + _args("--helper", "--ctevents", "--expevents", "--zone-orig",
                                                 "--zone-reply", "--zone", "--timeout"),
                _ct, tables=("raw",), doc="untrack, or attach a helper / zone / timeout")  # fmt: skip


def _log_level(text: str, family: int | None) -> Bad | None:
    names = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug", "panic", "warn", "err")
    if text.lower() in names or (text.isdigit() and int(text) <= 7):
        return None
    return Bad(f"--log-level: '{text}' is not a log level (0..7 or a name)")


LOG = TargetUnit("LOG", _args("--log-level", vtype=VType("log level", _log_level))
                 + _args("--log-prefix", vtype=string("--log-prefix", 29))
                 + _flag("--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--log-uid",
                         "--log-macdecode"), _continue, doc="log the packet")  # fmt: skip
NFLOG = TargetUnit("NFLOG", _args("--nflog-group", vtype=number("--nflog-group", 0, 65535))
                   + _args("--nflog-prefix", vtype=string("--nflog-prefix", 63))
                   + _args("--nflog-range", "--nflog-size", "--nflog-threshold", vtype=number("nflog size")),
                   _continue, doc="log the packet through netlink")  # fmt: skip
CONTINUING = (
    LOG, NFLOG,
    TargetUnit("ULOG", _args("--ulog-nlgroup", "--ulog-prefix", "--ulog-cprange", "--ulog-qthreshold"), _continue),
    TargetUnit("TRACE", (), _continue, tables=("raw",), doc="trace the packet"),
    TargetUnit("AUDIT", _args("--type", vtype=enum("--type", ("accept", "drop", "reject"), fold=True)), _continue),
    TargetUnit("TCPMSS", _args("--set-mss", vtype=number("--set-mss", 0, 65535)) + _flag("--clamp-mss-to-pmtu"),
               _continue),
    TargetUnit("DSCP", _args("--set-dscp", "--set-dscp-class"), _continue, tables=("mangle",)),
    TargetUnit("TOS", _args("--set-tos", "--and-tos", "--or-tos", "--xor-tos"), _continue, tables=("mangle",)),
    TargetUnit("TTL", _args("--ttl-set", "--ttl-dec", "--ttl-inc", vtype=number("ttl", 0, 255)), _continue,
               tables=("mangle",)),
    TargetUnit("HL", _args("--hl-set", "--hl-dec", "--hl-inc", vtype=number("hop limit", 0, 255)), _continue,
               tables=("mangle",)),
    TargetUnit("CLASSIFY", _args("--set-class"), _continue, tables=("mangle",)),
    TargetUnit("CHECKSUM", _flag("--checksum-fill"), _continue, tables=("mangle",)),
    TargetUnit("SECMARK", _args("--selctx"), _continue, tables=("mangle", "security")),
    TargetUnit("CONNSECMARK", _flag("--save", "--restore"), _continue, tables=("mangle", "security")),
    TargetUnit("IDLETIMER", _args("--timeout", "--label", "--alarm"), _continue),
    TargetUnit("LED", _args("--led-trigger-id", "--led-delay") + _flag("--led-always-blink"), _continue),
    TargetUnit("RATEEST", _args("--rateest-name", "--rateest-interval", "--rateest-ewmalog"), _continue),
    TargetUnit("TEE", _args("--gateway", "--oif"), _continue, tables=("mangle",)),
    TargetUnit("SET", _args("--add-set", "--del-set", "--map-set", "--timeout") + _flag("--exist"), _continue),
    TargetUnit("TCPOPTSTRIP", _args("--strip-options"), _continue, tables=("mangle",)),
    TargetUnit("ECN", _flag("--ecn-tcp-remove") + _args("--ecn-tcp-cwr", "--ecn-tcp-ece", "--ecn-ip-ect"), _continue,
               tables=("mangle",)),
)
UNMODELLED = (
    TargetUnit("TPROXY", _args("--on-port", "--on-ip", "--tproxy-mark"), _unmodelled, tables=("mangle",)),
    TargetUnit("SYNPROXY", _args("--mss", "--wscale") + _flag("--sack-perm", "--timestamp", "--ecn"), _unmodelled),
    TargetUnit("HMARK", None, _unmodelled, tables=("mangle",)),
    TargetUnit("CLUSTERIP", None, _unmodelled, tables=("mangle",)),
    TargetUnit("DNPT", _args("--src-pfx", "--dst-pfx"), _unmodelled, tables=("mangle",)),
    TargetUnit("SNPT", _args("--src-pfx", "--dst-pfx"), _unmodelled, tables=("mangle",)),
    TargetUnit("MIRROR", None, _unmodelled),
    TargetUnit("SAME", None, _unmodelled, tables=("nat",)),
)
