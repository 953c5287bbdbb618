"""Match modules: each decoded :class:`Match` compiles to checks ``(state, env) -> outcome``.

An outcome is ``True`` / ``False``, a :class:`Chance` (true with a probability: ``statistic``), or an
:class:`Undecidable` (the context cannot tell: an ipset's contents, a MAC, an unknown module). The trace
branches on the last two and says so. Adding a module is adding one function to ``MODULES``.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import NamedTuple

from .flow import Chance, Check, CheckFn, Choices, Env, Outcome, Undecidable, iface_question, local_question
from .ipset_match import set_check
from .model import HEADER, Match, Option
from .packet import PROTOCOLS
from .trace_model import PacketState

__all__ = ["NO_RECENT", "Chance", "Check", "Env", "RecentLists", "Undecidable", "compile_match", "probability_of"]


def _opt_text(module: str, opt: Option) -> str:
    head = f"-m {module} " if module else ""
    neg = "! " if opt.negated else ""
    return f"{head}{neg}{opt.name} {' '.join(opt.args)}".rstrip()


def _negate(fn: CheckFn) -> CheckFn:
    def neg(s: PacketState, e: Env) -> Outcome:
        r = fn(s, e)
        if r is True or r is False:
            return not r
        if isinstance(r, Chance):
            return Chance(1 - r.p, f"not ({r.note})")
        if isinstance(r, Undecidable):
            return r._replace(negated=not r.negated)
        return r  # Choices are never negated: their checks are compiled as they are

    return neg


def _undecidable(key: str, reason: str) -> CheckFn:
    return lambda s, e: Undecidable(key, reason)


# -- addresses, ports, interfaces -------------------------------------------------------------------------
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def _in_net(field: str, text: str) -> CheckFn:
    nets = [_network(t) for t in text.split(",")]

    def fn(s: PacketState, e: Env) -> Outcome:
        addr = ipaddress.ip_address(getattr(s, field))
        return any(addr.version == n.version and addr in n for n in nets)

    return fn


def _iface(field: str, pattern: str) -> CheckFn:
    which = "in" if field == "in_iface" else "out"
    return lambda s, e: iface_question(s, which, pattern)


def _proto(text: str) -> CheckFn:
    want = text.lower()
    if want in ("all", "0"):
        return lambda s, e: True
    if want.isdigit():
        number = int(want)
        return lambda s, e: PROTOCOLS.get(s.proto) == number
    if want == "ipv6-icmp":
        want = "icmpv6"
    return lambda s, e: s.proto == want


def _ports(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        out.append((int(lo or 0), int(hi or 65535) if _ else int(lo)))
    return out


def _port_match(field: str, text: str) -> CheckFn:
    ranges = _ports(text)

    def fn(s: PacketState, e: Env) -> Outcome:
        port = getattr(s, field)
        return port is not None and any(lo <= port <= hi for lo, hi in ranges)

    return fn


def _header(opt: Option) -> CheckFn:
    name, arg = opt.name, (opt.args[0] if opt.args else "")
    if name == "-s":
        return _in_net("src", arg)
    if name == "-d":
        return _in_net("dst", arg)
    if name == "-i":
        return _iface("in_iface", arg)
    if name == "-o":
        return _iface("out_iface", arg)
    if name == "-p":
        return _proto(arg)
    if name == "-f":
        return lambda s, e: False  # a connection's first packet is never a later fragment
    return _undecidable(name, f"unknown option {name}")


# -- module checks --------------------------------------------------------------------------------------
def _l4(module: str, opt: Option) -> CheckFn | None:
    protos = {"tcp": ("tcp",), "udp": ("udp",), "sctp": ("sctp",), "dccp": ("dccp",), "udplite": ("udplite",),
              "multiport": ("tcp", "udp", "sctp", "dccp", "udplite")}[module]  # fmt: skip
    arg = opt.args[0] if opt.args else ""
    name = opt.name
    if name in ("--sport", "--source-port", "--sports", "--source-ports"):
        check = _port_match("sport", arg)
    elif name in ("--dport", "--destination-port", "--dports", "--destination-ports"):
        check = _port_match("dport", arg)
    elif name == "--ports":
        sp, dp = _port_match("sport", arg), _port_match("dport", arg)
        check = lambda s, e: sp(s, e) is True or dp(s, e) is True
    elif name in ("--tcp-flags", "--syn"):
        mask, comp = (opt.args[0], opt.args[1]) if name == "--tcp-flags" else ("SYN,RST,ACK,FIN", "SYN")
        m, c = _tcp_flags(mask), _tcp_flags(comp)
        check = lambda s, e: (set(e.tcp_flags) & m) == c
    else:
        return None
    return lambda s, e: s.proto in protos and check(s, e) is True


def _tcp_flags(text: str) -> set[str]:
    if text == "ALL":
        return {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
    return set() if text == "NONE" else set(text.split(","))


def _mark(field: str, arg: str) -> CheckFn:
    value, _, mask = arg.partition("/")
    v, m = int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF
    return lambda s, e: (getattr(s, field) & m) == v


def _addrtype(field: str, arg: str) -> CheckFn:
    types = set(arg.upper().split(","))

    def fn(s: PacketState, e: Env) -> Outcome:
        addr = getattr(s, field)
        ip = ipaddress.ip_address(addr)
        if ip.is_multicast:
            return "MULTICAST" in types
        if addr == "255.255.255.255":
            return "BROADCAST" in types
        local = local_question(addr, e.node)
        if isinstance(local, Undecidable):  # one question, whichever type the rule asks for
            if "LOCAL" in types:
                return local if "UNICAST" not in types else True
            return local._replace(negated=True) if "UNICAST" in types else False
        kind = "LOCAL" if local else "UNICAST"
        return kind in types

    return fn


_CT_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"}


def _ctstate(arg: str) -> CheckFn:
    states = set(arg.upper().split(","))

    def fn(s: PacketState, e: Env) -> Outcome:
        if s.ct in states:
            return True
        if s.pre_ct:  # before conntrack looked the packet up: no entry, only the INVALID bit
            return False
        if "DNAT" in states and s.dnat and not s.untracked:
            return True
        return "SNAT" in states and s.snat and not s.untracked

    return fn


def _conntrack(opt: Option) -> CheckFn:
    arg = opt.args[0] if opt.args else ""
    name = opt.name
    if name == "--ctstate":
        return _ctstate(arg)
    if name == "--ctproto":
        p = _proto(arg)
        return lambda s, e: not s.untracked and p(s, e) is True
    fields = {"--ctorigsrc": "orig_src", "--ctorigdst": "orig_dst", "--ctreplsrc": "dst", "--ctrepldst": "src"}
    if name in fields:
        check = _in_net(fields[name], arg)
        return lambda s, e: not s.untracked and check(s, e) is True
    ports = {"--ctorigsrcport": "orig_sport", "--ctorigdstport": "orig_dport", "--ctreplsrcport": "dport",
             "--ctrepldstport": "sport"}  # fmt: skip
    if name in ports:
        check = _port_match(ports[name], arg)
        return lambda s, e: not s.untracked and check(s, e) is True
    if name == "--ctstatus":
        wanted = set(arg.upper().split(","))
        return lambda s, e: "NONE" in wanted and not s.untracked  # a first packet: no status bits yet
    if name == "--ctdir":
        return lambda s, e: arg.upper() == "ORIGINAL"
    return _undecidable(f"conntrack {name} {arg}", f"conntrack {name} cannot be evaluated for a first packet")


def probability_of(text: str) -> Fraction:
    """The kernel's probability for ``--probability TEXT``: it stores round(p·2³¹) and compares a 31-bit
    random number against it, so the exact probability is that integer over 2³¹."""
    try:
        p = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"probability '{text}' is not a number") from None
    stored = int((p * (1 << 31)).to_integral_value())
    return Fraction(max(0, min(stored, 1 << 31)), 1 << 31)


def _statistic(match: Match) -> CheckFn:
    mode = match.option("--mode")
    if mode is not None and mode.value == "nth":
        every = match.option("--every")
        n = int(every.value) if every else 1
        neg = bool(every and every.negated)
        p = Fraction(1, n)
        note = f"statistic nth every {n}: one packet in {n}"
        return lambda s, e: Chance(1 - p if neg else p, note)
    prob = match.option("--probability")
    if prob is None:
        return _undecidable("statistic", "statistic without --probability")
    p = probability_of(prob.value)
    if prob.negated:
        p = 1 - p
    note = f"statistic random p={prob.value}"
    return lambda s, e: Chance(p, note)


def _recent(match: Match, bound: RecentLists) -> CheckFn:
    """``-m recent --rcheck/--update --name N``: true when this source is in list N. A first packet is in no
    list, unless this path added it (``--set``), the node says so (``NodeContext.recent``), or the client is a
    returning one (``NodeContext.affinity``): bound to one endpoint of the service — the one given, or, with
    ``"any"``, one of the endpoints whose lists this chain checks (the walk forks, one path per endpoint)."""
    name_opt = match.option("--name")
    name = name_opt.value if name_opt else "DEFAULT"
    if match.option("--set") is not None:
        return lambda s, e: True  # --set always matches (the rule records the source)
    negated = any(o.negated for o in match.options if o.name in ("--rcheck", "--update", "--remove"))

    def fn(s: PacketState, e: Env) -> Outcome:
        if name in e.node.recent or name in s.recent:
            return not negated
        want = e.node.affinity
        if want is None:
            return negated
        if want == "any" and not negated and bound.lists:
            options = tuple((bound.label(n), f"the client is bound to {bound.label(n)}") for n in bound.lists)
            return Choices(f"affinity {bound.chain}", bound.label(name), options,
                           "which endpoint a returning client is bound to is not known")  # fmt: skip
        hit = name == want or bound.endpoint_matches(name, want)
        return hit != negated

    return fn


class RecentLists(NamedTuple):
    """The recent lists one chain checks (``--rcheck``/``--update``), in order, and the endpoint each belongs
    to (the DNAT of the chain of the same name: kube-proxy names each list after its KUBE-SEP chain)."""

    chain: str
    lists: tuple[str, ...] = ()
    endpoints: tuple[str | None, ...] = ()

    def endpoint(self, name: str) -> str | None:
        for n, ep in zip(self.lists, self.endpoints, strict=True):
            if n == name:
                return ep
        return None

    def label(self, name: str) -> str:
        """``10.244.1.61:8080 (KUBE-SEP-…)``, or the list's name when its endpoint is not known."""
        ep = self.endpoint(name)
        return f"{ep} ({name})" if ep else name

    def endpoint_matches(self, name: str, want: str) -> bool:
        """``want`` (IP:PORT, [IPv6]:PORT or an IP) names the endpoint of list ``name``."""
        ep = self.endpoint(name)
        if ep is None:
            return False
        return want == ep or want == ep.rsplit(":", 1)[0].strip("[]")


NO_RECENT = RecentLists("")


def _rpfilter(match: Match) -> CheckFn:
    """``-m rpfilter [--loose] [--validmark] [--accept-local] [--invert]``: one question (does the reverse path
    of the source lead back through the input interface?), which the node context cannot answer; ``--invert``
    is its negation, not a second question."""
    flags = sorted(o.name.removeprefix("--") for o in match.options if o.name != "--invert")
    invert = any(o.name == "--invert" for o in match.options)
    how = f" ({', '.join(flags)})" if flags else ""

    def fn(s: PacketState, e: Env) -> Outcome:
        return Undecidable(f"rpfilter {s.src} via {s.in_iface or 'the input interface'}{how}",
                           f"whether the reverse path of {s.src} is valid needs the node's routes", invert)

    return fn


def _iprange(opt: Option) -> CheckFn:
    lo, _, hi = opt.args[0].partition("-")
    a, b = int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi or lo))
    version = ipaddress.ip_address(lo).version
    field = "src" if opt.name == "--src-range" else "dst"

    def fn(s: PacketState, e: Env) -> Outcome:
        addr = ipaddress.ip_address(getattr(s, field))
        return addr.version == version and a <= int(addr) <= b

    return fn


def _set(match: Match, opt: Option) -> CheckFn:
    """``-m set [!] --match-set NAME FLAGS``: decided from the node's parsed ipsets (:mod:`.ipset_match`), or
    undecidable without them; the check applies its own ``!``."""
    return set_check(match, opt)


def _icmp(opt: Option) -> CheckFn:
    arg = opt.args[0] if opt.args else "any"
    names = {"any": None, "echo-request": 8, "echo-reply": 0, "destination-unreachable": 3,
             "time-exceeded": 11, "ping": 8, "pong": 0}  # fmt: skip
    want = names.get(arg, None) if arg in names else int(arg.split("/")[0])
    v6 = {"echo-request": 128, "echo-reply": 129, "ping": 128, "pong": 129}
    return lambda s, e: s.proto in ("icmp", "icmpv6") and (
        want is None or e.icmp_type == (v6.get(arg, want) if s.proto == "icmpv6" else want)
    )


def _length(arg: str) -> CheckFn:
    lo, _, hi = arg.partition(":")
    a, b = int(lo or 0), int(hi or 65535) if _ else int(lo)

    def fn(s: PacketState, e: Env) -> Outcome:
        if e.length is None:
            return Undecidable(f"length {arg}", "the packet length is not known")
        return a <= e.length <= b

    return fn


def _module_option(match: Match, opt: Option) -> CheckFn:
    module, arg = match.module, (opt.args[0] if opt.args else "")
    if module in ("tcp", "udp", "sctp", "dccp", "udplite", "multiport"):
        fn = _l4(module, opt)
        if fn is not None:
            return fn
    elif module == "comment" or module == "nfacct":
        return lambda s, e: True
    elif module in ("mark", "connmark") and opt.name == "--mark":
        return _mark("mark" if module == "mark" else "ctmark", arg)
    elif module == "addrtype" and opt.name in ("--src-type", "--dst-type"):
        return _addrtype("src" if opt.name == "--src-type" else "dst", arg)
    elif module == "addrtype" and opt.name in ("--limit-iface-in", "--limit-iface-out"):
        return lambda s, e: True
    elif module == "conntrack":
        return _conntrack(opt)
    elif module == "state" and opt.name == "--state":
        return _ctstate(arg)
    elif module == "iprange":
        return _iprange(opt)
    elif module == "set":
        return _set(match, opt)
    elif module in ("icmp", "icmp6"):
        return _icmp(opt)
    elif module == "length":
        return _length(arg)
    elif module == "mac":
        return lambda s, e: (Undecidable(f"mac {arg}", "the source MAC is not known") if e.mac is None
                             else e.mac.lower() == arg.lower())  # fmt: skip
    elif module in ("limit", "hashlimit"):
        return lambda s, e: True  # a first packet finds the bucket full (noted in the hop)
    elif module == "pkttype":
        kind = arg.lower()
        return lambda s, e: kind == ("multicast" if ipaddress.ip_address(s.dst).is_multicast else "unicast")
    text = _opt_text(module, opt)
    return _undecidable(text, f"-m {module} {opt.name} cannot be decided from the packet and node")


def compile_match(match: Match, recent: RecentLists = NO_RECENT) -> list[Check]:
    """The checks of one match, in order; a rule matches when every check is true."""
    module = match.module
    if module == HEADER:
        opt = match.options[0]
        fn = _header(opt)
        return [Check(_negate(fn) if opt.negated else fn, _opt_text("", opt))]
    if module == "statistic":
        return [Check(_statistic(match), _opt_text("statistic", match.options[0]) if match.options else "")]
    if module == "recent":
        return [Check(_recent(match, recent), "-m recent " + " ".join(_opt_text("", o) for o in match.options))]
    if module == "rpfilter":
        return [Check(_rpfilter(match), "-m rpfilter " + " ".join(_opt_text("", o) for o in match.options))]
    if not match.options:
        known = module in ("comment", "nfacct", "limit", "hashlimit", "tcp", "udp", "sctp", "mark")
        fn = (lambda s, e: True) if known else _undecidable(f"-m {module}", f"module {module} is unknown")
        return [Check(fn, f"-m {module}")]
    checks = []
    for opt in match.options:
        fn = _module_option(match, opt)
        if opt.negated and module not in ("statistic", "set"):
            fn = _negate(fn)
        checks.append(Check(fn, _opt_text(module, opt)))
    return checks
