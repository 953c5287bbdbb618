"""The chain tree's filter: one query matched against chain names, service names and rule lines.

A query is read the way an SRE types it:

- an address (``10.96.0.10``, ``fd00::1``): rules naming exactly that address (``-d 10.96.0.10/32``,
  ``--to-destination 10.96.0.10:53``, never ``10.96.0.100``), and rules whose positive ``-s``/``-d`` network
  contains it;
- a network (``10.244.0.0/16``): rules naming that network or an address inside it, target options included
  (``--to-destination 10.244.2.32:8080``: the address without its port);
- a port (``30080`` or ``:30080``): the number as a whole token (``--dport 30080``, ``…:30080``), not inside an
  address, a mark or a CIDR;
- anything else: a case-insensitive substring of the rule line, the chain name or the service name.

Matching reads the parser's rows only (no decoding), so a 220k-rule dump filters in a fraction of a second.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kptui.engine import Ruleset
from kptui.engine.model import TABLE_ORDER

from .locs import rows_of

__all__ = ["ADDR_TOKEN", "PORT_SUFFIX", "POSITIVE_NET", "FilterResult", "Query", "compile_query", "parse_net",
           "run_filter", "token_net"]

# an address-like token: hex digits, dots and colons holding at least one dot or colon, with an optional /prefix
ADDR_TOKEN = re.compile(r"[0-9a-fA-F:.]*[.:][0-9a-fA-F:.]*[0-9a-fA-F](?:/\d{1,3})?")
# -s/-d NETWORK not negated: at the start or after a space, not after "! " (lookbehinds, so that the network just
# before, as in "-s A/8 -d B/16", does not hide this one; and twice as fast as matching the space)
POSITIVE_NET = re.compile(r"(?<![^ ])(?<!! )-[sd] (\S+/\d{1,3})")

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Query:
    text: str
    kind: str  # "address", "network", "port", "text"
    pattern: re.Pattern[str]  # what to highlight (and, for text and ports, what to match)
    network: IPNet | None = None
    literal: str = ""  # text every matching rule line holds (case-insensitively but for ports): a prefilter

    def rule_matches(self, raw: str) -> bool:
        if self.pattern.search(raw):
            return True
        if self.kind == "address":
            assert self.network is not None
            for m in POSITIVE_NET.finditer(raw):
                net = parse_net(m.group(1))
                if (net is not None and net.prefixlen > 0 and net.version == self.network.version
                        and self.network.subnet_of(net)):  # type: ignore[arg-type]  # fmt: skip
                    return True
        elif self.kind == "network":
            assert self.network is not None
            for m in ADDR_TOKEN.finditer(raw):
                net = token_net(m.group(0))
                if net is not None and net.version == self.network.version and net.subnet_of(self.network):  # type: ignore[arg-type]
                    return True
        return False

    def name_matches(self, *names: str | None) -> bool:
        if self.kind != "text":
            return False
        return any(n is not None and self.pattern.search(n) for n in names)


def parse_net(text: str) -> IPNet | None:
    if "." not in text and ":" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


PORT_SUFFIX = re.compile(r"([0-9.]+):[0-9]{1,5}")  # an IPv4 address with a port: a DNAT/SNAT target


def token_net(text: str) -> IPNet | None:
    """The network an address token names: ``10.244.2.32:8080`` (``--to-destination``) names 10.244.2.32."""
    m = PORT_SUFFIX.fullmatch(text)
    return parse_net(m.group(1) if m else text)


def compile_query(text: str) -> Query | None:
    """None for an empty query."""
    t = text.strip()
    if not t:
        return None
    try:
        addr = ipaddress.ip_address(t)
    except ValueError:
        addr = None
    if addr is not None:
        esc = re.escape(str(addr) if addr.version == 4 else t)
        pattern = re.compile(rf"(?<![\w.:]){esc}(?![\w.]|:[0-9a-fA-F]*:)", re.IGNORECASE)
        literal = str(addr) if addr.version == 4 else t
        return Query(t, "address", pattern, ipaddress.ip_network(addr), literal=literal)
    if "/" in t:
        net = parse_net(t)
        if net is not None:
            pattern = re.compile(rf"(?<![\w.:]){re.escape(t)}(?![\w.])", re.IGNORECASE)
            return Query(t, "network", pattern, net, literal=t)
    m = re.fullmatch(r":?(\d{1,5})", t)
    if m and int(m.group(1)) <= 65535:
        return Query(t, "port", re.compile(rf"(?<![\w./]){m.group(1)}(?![\w.])"), literal=m.group(1))
    return Query(t, "text", re.compile(re.escape(t), re.IGNORECASE), literal=t)


@dataclass
class FilterResult:
    """Per table (kernel order), the chains to show: ``None`` = every rule (the chain itself matched),
    else the 1-based indices of the matching rules."""

    query: Query
    tables: dict[str | None, list[tuple[str, tuple[int, ...] | None]]] = field(default_factory=dict)
    rules: int = 0
    chains: int = 0

    @property
    def empty(self) -> bool:
        return not self.tables


def run_filter(ruleset: Ruleset, query: Query, service_of: Callable[[str | None, str], str | None],
               cancelled: Callable[[], bool] = lambda: False) -> FilterResult:  # fmt: skip
    out = FilterResult(query)
    order = {t: i for i, t in enumerate(TABLE_ORDER)}
    tables = sorted(ruleset.tables.items(), key=lambda kv: order.get(kv[0] or "", len(order)))
    match = query.rule_matches
    for tname, table in tables:
        entries: list[tuple[str, tuple[int, ...] | None]] = []
        for chain in table:
            if cancelled():
                return out
            hits = tuple(i for i, row in enumerate(rows_of(chain), 1) if match(row[1]))
            named = query.name_matches(chain.name) or (
                query.kind == "text" and chain.name.startswith("KUBE-")
                and query.name_matches(service_of(tname, chain.name)))  # fmt: skip
            if named:
                entries.append((chain.name, None))
            elif hits:
                entries.append((chain.name, hits))
            else:
                continue
            out.chains += 1
            out.rules += len(hits)
        if entries:
            out.tables[tname] = entries
    return out
