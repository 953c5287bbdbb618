"""Small matches: ``comment`` and ``nfacct`` (always true), ``limit``/``hashlimit`` (a first packet finds the
bucket full), ``pkttype``, ``length``, ``mac``, ``rpfilter``, and the modules kptui knows the options of but
does not model (``owner``, ``physdev``, ``u32``, ``string``, ``socket``, ``policy``, …: their checks are
questions, never guesses)."""

from __future__ import annotations

import ipaddress

from ...flow import Check, CheckFn, Env, Outcome, Undecidable
from ...spec import Match, Option
from ...trace_model import PacketState
from ..unitbase import MatchUnit, Opt, RuleFacts, Validate, always, opt_text, per_option, undecidable
from ..values import (
    ANY,
    IFACE,
    MAC,
    RATE,
    Bad,
    VType,
    enum,
    number,
    parse_u32,
    range_of,
    single_network,
    string,
)

__all__ = ["COMMENT", "HASHLIMIT", "LENGTH", "LIMIT", "MAC_UNIT", "NFACCT", "OPAQUE", "PKTTYPE", "RPFILTER"]


def _always(match: Match, recent: object) -> list[Check]:
    return [Check(always, opt_text(match.module, o)) for o in match.options] or [Check(always, f"-m {match.module}")]


def _unmodelled(match: Match, recent: object) -> list[Check]:
    module = match.module

    def one(opt: Option) -> CheckFn:
        return undecidable(opt_text(module, opt), f"-m {module} {opt.name} cannot be decided from the packet and node")

    return per_option(module, match, one) or [
        Check(undecidable(f"-m {module}", f"-m {module} cannot be decided from the packet and node"), f"-m {module}")
    ]


COMMENT = MatchUnit("comment", (Opt(("--comment",), (string("--comment", fast=True),), invert=False, mandatory=True),),
                    _always, doc="a comment (always true)")  # fmt: skip
NFACCT = MatchUnit("nfacct", (Opt(("--nfacct-name",), (string("--nfacct-name", 31),), invert=False,
                                  mandatory=True),), _always, doc="an accounting object (always true)")  # fmt: skip
LIMIT = MatchUnit(
    "limit",
    (Opt(("--limit",), (RATE,), invert=False), Opt(("--limit-burst",), (number("--limit-burst", 0, 10000),),
                                                   invert=False)),
    _always, doc="a rate limit (a first packet finds the bucket full)",
)  # fmt: skip
_HL = ("--hashlimit-upto", "--hashlimit-above", "--hashlimit-mode", "--hashlimit-srcmask", "--hashlimit-dstmask",
       "--hashlimit-name", "--hashlimit-burst", "--hashlimit-htable-size", "--hashlimit-htable-max",
       "--hashlimit-htable-gcinterval", "--hashlimit-htable-expire", "--hashlimit-rate-match",
       "--hashlimit-rate-interval", "--hashlimit")  # fmt: skip
HASHLIMIT = MatchUnit(
    "hashlimit",
    tuple(Opt((n,), () if n == "--hashlimit-rate-match" else (ANY,), invert=False) for n in _HL),
    _always, doc="a per-flow rate limit (a first packet finds its bucket full)",
)
_PKT_TYPES = ("unicast", "broadcast", "multicast", "host", "otherhost", "outgoing", "loopback")


def _pkttype(match: Match, recent: object) -> list[Check]:
    def one(opt: Option) -> CheckFn:
        kind = opt.args[0].lower() if opt.args else ""
        return lambda s, e: kind == ("multicast" if ipaddress.ip_address(s.dst).is_multicast else "unicast")

    return per_option("pkttype", match, one)


PKTTYPE = MatchUnit("pkttype", (Opt(("--pkt-type",), (enum("--pkt-type", _PKT_TYPES, fold=True),),
                                    mandatory=True),), _pkttype, doc="link-layer packet type")  # fmt: skip


def _length(match: Match, recent: object) -> list[Check]:
    def one(opt: Option) -> CheckFn:
        arg = opt.args[0] if opt.args else ""
        lo, sep, hi = arg.partition(":")
        a = parse_u32(lo) if lo else 0
        b = (parse_u32(hi) if hi else 65535) if sep else a
        if a is None or b is None:
            return undecidable(f"length {arg}", f"length '{arg}' is not understood")

        def fn(s: PacketState, e: Env) -> Outcome:
            if e.length is None:
                return Undecidable(f"length {arg}", "the packet length is not known")
            return a <= e.length <= b

        return fn

    return per_option("length", match, one)


LENGTH = MatchUnit("length", (Opt(("--length",), (range_of("--length", 0, 65535),), mandatory=True),), _length,
                   doc="IP packet length")  # fmt: skip


def _mac(match: Match, recent: object) -> list[Check]:
    def one(opt: Option) -> CheckFn:
        arg = opt.args[0] if opt.args else ""
        return lambda s, e: (Undecidable(f"mac {arg}", "the source MAC is not known") if e.mac is None
                             else e.mac.lower() == arg.lower())  # fmt: skip

    return per_option("mac", match, one)


MAC_UNIT = MatchUnit("mac", (Opt(("--mac-source",), (MAC,), mandatory=True),), _mac, doc="source MAC address")


def _rpfilter(match: Match, recent: object) -> list[Check]:
    """One question (does the reverse path of the source lead back through the input interface?), which the
    node context cannot answer; ``--invert`` is its negation, not a second question."""
    flags = sorted(o.name.removeprefix("--") for o in match.options if o.name != "--invert")
    invert = any(o.name == "--invert" for o in match.options)
    how = f" ({', '.join(flags)})" if flags else ""

    def fn(s: PacketState, e: Env) -> Outcome:
        return Undecidable(f"rpfilter {s.src} via {s.in_iface or 'the input interface'}{how}",
                           f"whether the reverse path of {s.src} is valid needs the node's routes", invert)

    return [Check(fn, "-m rpfilter " + " ".join(opt_text("", o) for o in match.options))]


RPFILTER = MatchUnit(
    "rpfilter",
    tuple(Opt((n,), (), invert=False) for n in ("--loose", "--validmark", "--accept-local", "--invert")),
    _rpfilter, doc="reverse-path filter (needs the node's routes: a question)",
)


def _owner_validate(match: Match, facts: RuleFacts) -> Bad | None:
    names = {o.name for o in match.options}
    if "--suppl-groups" in names and "--gid-owner" not in names:
        return Bad("owner: --suppl-groups needs --gid-owner")
    return None


def _opaque(name: str, options: tuple[Opt, ...], doc: str, validate: Validate | None = None) -> MatchUnit:
    return MatchUnit(name, options, _unmodelled, validate=validate, doc=doc)


def _opts(*names: str, flags: tuple[str, ...] = (), invert: bool = True) -> tuple[Opt, ...]:
    return tuple(Opt((n,), (ANY,), invert=invert) for n in names) + tuple(Opt((f,), (), invert=invert) for f in flags)


_ID = VType("id[-id]", lambda t, f: None)
OPAQUE = (
    _opaque("owner", (Opt(("--uid-owner",), (_ID,)), Opt(("--gid-owner",), (_ID,)), Opt(("--socket-exists",), ()),
                      Opt(("--suppl-groups",), (), invert=False)), "the local socket's owner",
            _owner_validate),
    _opaque("physdev", (Opt(("--physdev-in",), (IFACE,)), Opt(("--physdev-out",), (IFACE,)),
                        *(Opt((f,), ()) for f in ("--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged"))),
            "bridge ports"),
    _opaque("u32", _opts("--u32"), "u32 tests on packet bytes"),
    _opaque("string", _opts("--string", "--hex-string") + _opts("--algo", "--from", "--to", invert=False)
            + (Opt(("--icase",), (), invert=False),), "a string in the payload"),
    _opaque("socket", tuple(Opt((f,), (), invert=False) for f in ("--transparent", "--nowildcard",
                                                                   "--restore-skmark")), "a local socket"),
    _opaque("policy", _opts("--dir", "--pol", invert=False) + _opts("--reqid", "--spi", "--proto", "--mode")
            + (Opt(("--tunnel-src",), (single_network("--tunnel-src"),)),
               Opt(("--tunnel-dst",), (single_network("--tunnel-dst"),)),
               Opt(("--strict",), (), invert=False), Opt(("--next",), (), invert=False, repeat=True)),
            "IPsec policy"),
    _opaque("ttl", _opts("--ttl-eq") + _opts("--ttl-lt", "--ttl-gt", invert=False), "IP TTL"),
    _opaque("hl", _opts("--hl-eq") + _opts("--hl-lt", "--hl-gt", invert=False), "IPv6 hop limit"),
    _opaque("connlimit", _opts("--connlimit-upto", "--connlimit-above", "--connlimit-mask", invert=False)
            + tuple(Opt((f,), (), invert=False) for f in ("--connlimit-saddr", "--connlimit-daddr")),
            "connections per host"),
    _opaque("helper", _opts("--helper"), "the connection's helper"),
    _opaque("tos", _opts("--tos"), "IP TOS"),
    _opaque("dscp", _opts("--dscp", "--dscp-class"), "DSCP codepoint"),
    _opaque("time", _opts("--datestart", "--datestop", "--timestart", "--timestop", invert=False)
            + _opts("--monthdays", "--weekdays") + (Opt(("--kerneltz",), (), invert=False),
                                                    Opt(("--contiguous",), (), invert=False)), "time of day"),
    _opaque("quota", _opts("--quota"), "a byte quota"),
)
