"""Value types of iptables options: what iptables-restore accepts for an argument, read the way it reads it.

Each :class:`VType` checks one argument (``check(text, family) -> Bad | None``) exactly as iptables 1.8 parses
it (numbers with ``strtoul`` base 0, addresses first as iptables' own dotted form and then as ``inet_aton``,
ports as numbers or service names, …). A :class:`Bad` is either *fatal* (no iptables accepts it: the dump is
refused with the line and a caret) or not (``fatal=False``: the value depends on the machine that loads it —
a host name, a service name — or a newer iptables may know it; the dump loads with a warning and the rule is
not understood). ``fast`` is a regular expression every match of which ``check`` accepts: the parser blanks
such values out of a rule's *shape* (:mod:`kptui.engine.parser`), so a kube-proxy dump is validated once per
shape, not once per rule.

The parse helpers (:func:`parse_u32`, :func:`parse_networks`, :func:`parse_port_range`, …) give the value
kptui evaluates; they accept exactly what the checks accept.

This module gives every value type by one import (what the units import) and holds the numbers, strings and
names (marks' ``value[/mask]``, ranges, probabilities, rates, chain and interface names, enumerations). What a
value type is, and the number reader, are in :mod:`.vtype`; addresses in :mod:`.values_addr`; protocols and
ports in :mod:`.values_port`.
"""

from __future__ import annotations

from .values_addr import (
    IP_RANGE,
    MAC,
    NETMASK,
    NETWORKS,
    V4_FAST,
    V6_FAST,
    Net,
    parse_address,
    parse_networks,
    single_network,
)
from .values_port import (
    PORT_FAST,
    PORT_LIST,
    PORT_RANGE,
    PROTOCOL,
    PROTOCOL_NUMBERS,
    SERVICES,
    host_port,
    parse_host_port,
    parse_port,
    parse_port_list,
    parse_port_range,
    parse_protocol,
    ports_dash,
    single_port,
)
from .vtype import ANY, MAX_PARAM, PLACEHOLDER, Bad, Checker, VType, parse_u32

__all__ = [
    "ANY",
    "CHAIN",
    "IFACE",
    "IP_RANGE",
    "MAC",
    "MAX_PARAM",
    "NETMASK",
    "NETWORKS",
    "PLACEHOLDER",
    "PORT_FAST",
    "PORT_LIST",
    "PORT_RANGE",
    "PROBABILITY",
    "PROTOCOL",
    "PROTOCOL_NUMBERS",
    "RATE",
    "SERVICES",
    "V4_FAST",
    "V6_FAST",
    "VALUE_MASK",
    "Bad",
    "Checker",
    "Net",
    "VType",
    "chain_name",
    "enum",
    "host_port",
    "number",
    "parse_address",
    "parse_host_port",
    "parse_networks",
    "parse_port",
    "parse_port_list",
    "parse_port_range",
    "parse_protocol",
    "parse_u32",
    "parse_value_mask",
    "ports_dash",
    "prefix_item",
    "prefix_list",
    "range_of",
    "single_network",
    "single_port",
    "string",
]


# -- numbers ----------------------------------------------------------------------------------------------
def number(name: str, lo: int = 0, hi: int = 0xFFFFFFFF, *, what: str = "number") -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        if parse_u32(text, lo, hi) is None:
            return Bad(f"{name}: '{text}' is not a {what} in {lo}..{hi}")
        return None

    fast = r"(?:0|[1-9]\d{0,8})" if hi >= 999999999 and lo == 0 else None
    return VType(f"{what} {lo}..{hi}", check, fast, fast, r"\d", r"\d")


def parse_value_mask(text: str) -> tuple[int, int] | None:
    """``value[/mask]`` of marks (``--mark 0x4000/0x4000``): 32-bit numbers; mask 0xffffffff when absent."""
    value, sep, mask = text.partition("/")
    v = parse_u32(value)
    m = parse_u32(mask) if sep else 0xFFFFFFFF
    return None if v is None or m is None else (v, m)


def _value_mask(text: str, family: int | None) -> Bad | None:
    return None if parse_value_mask(text) is not None else Bad(f"bad value/mask '{text}' (32-bit numbers)")


VALUE_MASK = VType("value[/mask]", _value_mask)


def range_of(name: str, lo: int, hi: int) -> VType:
    """``n[:m]`` within [lo, hi] (lengths, expiry times)."""

    def check(text: str, family: int | None) -> Bad | None:
        a, sep, b = text.partition(":")
        x = parse_u32(a, lo, hi) if a or not sep else lo
        y = (parse_u32(b, lo, hi) if b else hi) if sep else x
        if x is None or y is None:
            return Bad(f"{name}: '{text}' is not a number or range in {lo}..{hi}")
        if x > y:
            return Bad(f"{name}: range '{text}' has its minimum above its maximum")
        return None

    return VType(f"range {lo}..{hi}", check)


# -- strings and names --------------------------------------------------------------------------------------
def string(name: str, max_len: int | None = None, *, fast: bool = False) -> VType:
    def check(text: str, family: int | None) -> Bad | None:
        if max_len is not None and len(text) > max_len:
            return Bad(f"{name}: '{text[:40]}…' is longer than {max_len} characters")
        return None

    pattern = None
    if fast:
        n = MAX_PARAM if max_len is None else min(max_len, MAX_PARAM)
        pattern = rf'"(?!-)[^"\\\n]{{0,{n}}}"|[^ \t\n"\\]{{1,{n}}}'
    return VType(name, check, pattern, pattern)


def chain_name(text: str, family: int | None) -> Bad | None:
    if len(text) > 28:
        return Bad(f"invalid target name '{text}' (28 characters at most)")
    return None


CHAIN = VType("chain or target name", chain_name, r"[^ \t\n\"\\]{1,28}", r"[^ \t\n\"\\]{1,28}")


def enum(name: str, values: tuple[str, ...], *, comma_list: bool = False, fold: bool = False,
         fatal: bool = True) -> VType:  # fmt: skip
    """One of ``values`` (or a comma-separated list of them); ``fold``: case-insensitive. Not ``fatal``: a
    value a newer iptables may add (the rule loads, not understood)."""
    known = {v.lower() if fold else v for v in values}

    def check(text: str, family: int | None) -> Bad | None:
        items = text.split(",") if comma_list else [text]
        for item in items:
            if (item.lower() if fold else item) not in known:
                return Bad(f"{name}: unknown value '{item}' (known: {', '.join(values)})", fatal)
        return None

    return VType(name, check)


def prefix_item(item: str, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that ``item`` begins, any case (how iptables reads states and address types:
    ``est`` is ESTABLISHED, ``L`` is LOCAL); None for an empty or unknown item."""
    low = item.lower()
    return next((n for n in names if n.lower().startswith(low)), None) if item else None


def prefix_list(name: str, names: tuple[str, ...]) -> VType:
    """A comma-separated list of :func:`prefix_item` s."""

    def check(text: str, family: int | None) -> Bad | None:
        for item in text.split(","):
            if prefix_item(item, names) is None:
                return Bad(f"{name}: unknown value '{item}' (known: {', '.join(names)})")
        return None

    return VType(name, check)


def _iface(text: str, family: int | None) -> Bad | None:
    if not text:
        return Bad("empty interface name (iptables: 'Empty interface is likely to be undesired')")
    if len(text) > 15:
        return Bad(f"interface name '{text}' must be shorter than 16 characters")
    return None


IFACE = VType("interface[+]", _iface, r"[^ \t\n\"\\!+][^ \t\n\"\\]{0,14}", r"[^ \t\n\"\\!+][^ \t\n\"\\]{0,14}")


# -- probabilities and rates --------------------------------------------------------------------------------
def _probability(text: str, family: int | None) -> Bad | None:
    try:
        p = float(text)
    except ValueError:
        return Bad(f"--probability '{text}' is not a number")
    if not 0.0 <= p <= 1.0 or text.strip() != text:
        return Bad(f"--probability must be between 0 and 1, not {text}")
    return None


PROBABILITY = VType("probability 0..1", _probability, r"0\.\d{1,11}", r"0\.\d{1,11}", "0", "0")


def _rate(text: str, family: int | None) -> Bad | None:
    count, sep, unit = text.partition("/")
    n = parse_u32(count, 1) if count.isdigit() else None
    units = ("second", "minute", "hour", "day")
    if n is None or (sep and not (unit and any(u.startswith(unit.lower()) for u in units))):
        return Bad(f"bad rate '{text}' (N/second, /minute, /hour or /day)")
    return None


RATE = VType("rate", _rate)
