"""The rule's own header fields (no ``-m``): ``-s``, ``-d``, ``-i``, ``-o``, ``-p``, ``-f``.

Addresses are read as iptables reads them (``10`` is 10.0.0.0, a mask may be dotted and need not be
contiguous) and compared as integers under their mask; interfaces are questions when the packet's interface
is not known (:func:`kptui.engine.flow.iface_question`).
"""

from __future__ import annotations

import ipaddress

from ...flow import Check, CheckFn, Env, Outcome, iface_question
from ...packet import PROTOCOLS
from ...spec import HEADER, Match, Option
from ...trace_model import PacketState
from ..unitbase import MatchUnit, Opt, negate, opt_text, undecidable
from ..values import IFACE, NETWORKS, PROTOCOL, Bad, parse_networks, parse_protocol

__all__ = ["HEADER_UNIT", "OPTION_ORDER", "SPELLINGS"]

# every spelling → the short form the decoder keeps, and the order iptables-save prints them in
SPELLINGS = {
    "-s": "-s", "--source": "-s", "--src": "-s",
    "-d": "-d", "--destination": "-d", "--dst": "-d",
    "-i": "-i", "--in-interface": "-i",
    "-o": "-o", "--out-interface": "-o",
    "-p": "-p", "--protocol": "-p",
    "-f": "-f", "--fragment": "-f", "--fragments": "-f",
}  # fmt: skip
OPTION_ORDER = {"-s": 0, "-d": 1, "-i": 2, "-o": 3, "-p": 4, "-f": 5}


def in_networks(field: str, text: str) -> CheckFn:
    nets = parse_networks(text, None)
    if isinstance(nets, Bad):  # never for a rule the parser loaded (the decoder checked the value)
        return undecidable(f"{field} {text}", f"'{text}' is not understood")

    def fn(s: PacketState, e: Env) -> Outcome:
        addr = ipaddress.ip_address(getattr(s, field))
        return any(n.contains(addr) for n in nets)

    return fn


def protocol_check(text: str) -> CheckFn:
    number = parse_protocol(text)
    if number == 0:
        return lambda s, e: True
    if number is None:
        return undecidable(f"-p {text}", f"protocol '{text}' is not understood")
    return lambda s, e: PROTOCOLS.get(s.proto) == number


def _one(opt: Option) -> CheckFn:
    name, arg = opt.name, (opt.args[0] if opt.args else "")
    if name == "-s":
        return in_networks("src", arg)
    if name == "-d":
        return in_networks("dst", arg)
    if name in ("-i", "-o"):
        which = "in" if name == "-i" else "out"
        return lambda s, e: iface_question(s, which, arg)
    if name == "-p":
        return protocol_check(arg)
    if name == "-f":
        return lambda s, e: False  # a connection's first packet is never a later fragment
    return undecidable(name, f"unknown option {name}")


def _compile(match: Match, recent: object) -> list[Check]:
    opt = match.options[0]
    fn = _one(opt)
    return [Check(negate(fn) if opt.negated else fn, opt_text("", opt))]


HEADER_UNIT = MatchUnit(
    name=HEADER,
    options=(
        Opt(("-s", "--source", "--src"), (NETWORKS,)),
        Opt(("-d", "--destination", "--dst"), (NETWORKS,)),
        Opt(("-i", "--in-interface"), (IFACE,)),
        Opt(("-o", "--out-interface"), (IFACE,)),
        Opt(("-p", "--protocol"), (PROTOCOL,)),
        Opt(("-f", "--fragment", "--fragments"), ()),
    ),
    compile=_compile,
    doc="the rule's header fields",
)
