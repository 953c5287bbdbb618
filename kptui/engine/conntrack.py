"""``conntrack -L`` output, and which entries belong to which service (and which point at dead endpoints).

:func:`parse_conntrack` reads the text (tcp/udp/sctp/icmp/… lines, with or without the ``ipv4 2`` prefix of
``-o extended``): the original and reply tuples, state, the ``[ASSURED]``/``[UNREPLIED]`` flags, mark and zone.
An entry was DNATed when its reply's source differs from its original destination.

:func:`service_frontends` and :func:`dnat_endpoints` read a ruleset: the addresses kube-proxy answers on (cluster
IPs, external/LB IPs, NodePorts, from the KUBE-SERVICES / KUBE-NODEPORTS rules and the "has no endpoints"
filter rules) and every DNAT target of the nat table. :func:`match_entries` puts them together: for each entry
to a service address, its service, whether it was DNATed, and whether its DNAT target is still an endpoint. An
entry whose target is no endpoint any more is *stale*: for UDP, the kernel keeps sending the flow to the dead
pod as long as packets keep coming (the classic blackhole after an endpoint change); ``conntrack -D`` fixes it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from .comments import ServiceLabels, comment_of, service_of_comment
from .model import Ruleset

__all__ = ["ConntrackEntry", "ConntrackTable", "EntryMatch", "Frontend", "dnat_endpoints", "match_entries",
           "parse_conntrack", "service_frontends"]  # fmt: skip

_PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58, "udplite": 136, "dccp": 33, "gre": 47}
_DIRECTIONAL = frozenset({"src", "dst", "sport", "dport", "type", "code", "id", "packets", "bytes"})


class Tuple5(NamedTuple):
    src: str
    dst: str
    sport: int | None
    dport: int | None


class ConntrackEntry(NamedTuple):
    line: int
    family: str  # "ipv4" / "ipv6"
    proto: str  # tcp, udp, sctp, icmp, icmpv6, … or the number for an unknown protocol
    timeout: int | None
    state: str | None  # TCP/SCTP/DCCP state (ESTABLISHED, TIME_WAIT, …)
    orig: Tuple5
    reply: Tuple5
    flags: frozenset[str]  # ASSURED, UNREPLIED, OFFLOAD, HW_OFFLOAD, …
    mark: int | None
    zone: int | None

    @property
    def dnat(self) -> bool:
        """The connection's destination was rewritten: the reply comes from somewhere else."""
        return self.reply.src != self.orig.dst or (self.reply.sport is not None and self.reply.sport != self.orig.dport)

    @property
    def snat(self) -> bool:
        return self.reply.dst != self.orig.src or (self.reply.dport is not None and self.reply.dport != self.orig.sport)

    @property
    def target(self) -> str:
        """Where the connection really goes (the reply's source): ``IP:PORT``."""
        return _hostport(self.reply.src, self.reply.sport)

    def describe(self) -> str:
        o = self.orig
        flags = "".join(f" [{f}]" for f in sorted(self.flags))
        state = f" {self.state}" if self.state else ""
        nat = f" ⇒ {self.target}" if self.dnat else ""
        return f"{self.proto}{state}{flags} {_hostport(o.src, o.sport)} → {_hostport(o.dst, o.dport)}{nat}"


@dataclass(frozen=True)
class ConntrackTable:
    entries: tuple[ConntrackEntry, ...]
    skipped: tuple[tuple[int, str], ...]  # (line, text) of lines that are not entries


def _hostport(addr: str, port: int | None) -> str:
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _norm(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def _num(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def parse_conntrack(text: str) -> ConntrackTable:
    """Parse ``conntrack -L`` output. Lines that are not entries (the tool's summary line, blank lines,
    garbage) are returned in ``skipped``; they never raise."""
    entries: list[ConntrackEntry] = []
    skipped: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        entry = _entry(lineno, line)
        if entry is None:
            skipped.append((lineno, line))
        else:
            entries.append(entry)
    return ConntrackTable(tuple(entries), tuple(skipped))


def _entry(lineno: int, line: str) -> ConntrackEntry | None:
    tokens = line.split()
    family = None
    if len(tokens) > 2 and tokens[0] in ("ipv4", "ipv6") and tokens[1].isdigit():
        family = tokens[0]
        tokens = tokens[2:]
    if len(tokens) < 4 or "=" in tokens[0] or not tokens[1].isdigit():
        return None
    proto, protonum = tokens[0], int(tokens[1])
    if proto == "unknown":
        proto = str(protonum)
    i = 2
    timeout = int(tokens[i]) if tokens[i].isdigit() else None
    i += 1 if timeout is not None else 0
    state = None
    if i < len(tokens) and "=" not in tokens[i] and not tokens[i].startswith("["):
        state = tokens[i]
        i += 1
    dirs: list[dict[str, str]] = []
    glob: dict[str, str] = {}
    flags: set[str] = set()
    for tok in tokens[i:]:
        if tok.startswith("[") and tok.endswith("]"):
            flags.add(tok[1:-1])
            continue
        key, eq, value = tok.partition("=")
        if not eq:
            continue
        if key == "src" and len(dirs) < 2:
            dirs.append({})
        if key in _DIRECTIONAL and dirs and key not in dirs[-1]:
            dirs[-1][key] = value
        else:
            glob.setdefault(key, value)
    if len(dirs) != 2 or not all("src" in d and "dst" in d for d in dirs):
        return None
    o, r = dirs
    orig = Tuple5(_norm(o["src"]), _norm(o["dst"]), _num(o.get("sport")), _num(o.get("dport")))
    reply = Tuple5(_norm(r["src"]), _norm(r["dst"]), _num(r.get("sport")), _num(r.get("dport")))
    family = family or ("ipv6" if ":" in orig.src else "ipv4")
    zone = _num(glob.get("zone", glob.get("zone-orig")))
    return ConntrackEntry(lineno, family, proto, timeout, state, orig, reply, frozenset(flags),
                          _num(glob.get("mark")), zone)  # fmt: skip


# -- what the rules say ------------------------------------------------------------------------------------------
class Frontend(NamedTuple):
    service: str  # "ns/name:port" (or the comment's text when it names no service)
    kind: str  # "cluster IP", "external IP", "loadbalancer IP", "nodeport"
    ip: str | None  # None for a NodePort: any node address
    port: int
    proto: str
    has_endpoints: bool  # False: a filter rule refuses it ("has no endpoints")


_DST = re.compile(r"(?:^| )(!? ?)-d (\S+)")
_PROTO = re.compile(r"(?:^| )-p (\S+)")
_DPORT = re.compile(r" --dport (\d+)(?= |$)")
_TO_DEST = re.compile(r" --to-destination (\S+)")
_KINDS = (("cluster IP", "cluster IP"), ("external IP", "external IP"), ("loadbalancer IP", "loadbalancer IP"))


def _rows(ruleset: Ruleset, table: str, chain: str) -> Sequence[tuple[object, ...]]:
    c = ruleset.chain(table, chain)
    if c is None:
        return ()
    rows: Sequence[tuple[object, ...]] | None = getattr(c.rules, "rows", None)
    return rows if rows is not None else [(r.line, r.raw, None, None, r.target_name, r.goto) for r in c.rules]


def _addr_of(raw: str) -> str | None:
    m = _DST.search(raw)
    if m is None or m.group(1):
        return None
    net = m.group(2)
    host, _, plen = net.partition("/")
    if plen and plen not in ("32", "128"):
        return None
    return _norm(host)


def service_frontends(ruleset: Ruleset) -> tuple[Frontend, ...]:
    """The service addresses in nat KUBE-SERVICES / KUBE-NODEPORTS and in filter's refusing rules."""
    found: dict[tuple[str, str, str | None, int, str], Frontend] = {}
    for table, chain in (("nat", "KUBE-SERVICES"), ("nat", "KUBE-NODEPORTS"), ("filter", "KUBE-SERVICES"),
                         ("filter", "KUBE-EXTERNAL-SERVICES"), ("filter", "KUBE-NODEPORTS")):  # fmt: skip
        for row in _rows(ruleset, table, chain):
            raw = str(row[1])
            comment = comment_of(raw)
            port_m, proto_m = _DPORT.search(raw), _PROTO.search(raw)
            if not comment or port_m is None or proto_m is None:
                continue
            name = service_of_comment(comment) or comment
            refuses = row[4] in ("REJECT", "DROP")
            if table == "filter" and not refuses:
                continue
            ip = _addr_of(raw)
            kind = next((k for suffix, k in _KINDS if suffix in comment), None)
            if kind is None:
                if ip is not None and "nodeport" not in comment.lower() and chain != "KUBE-NODEPORTS":
                    kind = "cluster IP"
                elif chain in ("KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES") or "addrtype" in raw:
                    kind, ip = "nodeport", ip if ip and ip.startswith("127.") else None
                else:
                    continue
            fe = Frontend(name, kind, ip, int(port_m.group(1)), proto_m.group(1), not refuses)
            key = (fe.service, fe.kind, fe.ip, fe.port, fe.proto)
            if key not in found or (refuses and table == "filter"):
                found[key] = fe
    return tuple(found.values())


def dnat_endpoints(ruleset: Ruleset) -> Mapping[tuple[str, str, int | None], tuple[str, ...]]:
    """Every DNAT target of the nat table: (proto, ip, port) → the services (or chains) that send traffic
    there. The proto is "" when the rule does not say."""
    labels = ServiceLabels(ruleset)
    out: dict[tuple[str, str, int | None], list[str]] = {}
    nat = ruleset.table("nat")
    for chain in nat.chains.values() if nat is not None else ():
        for row in _rows(ruleset, "nat", chain.name):
            if row[4] != "DNAT":
                continue
            raw = str(row[1])
            m = _TO_DEST.search(raw)
            if m is None:
                continue
            ip, port = _split(m.group(1))
            p = _PROTO.search(raw)
            owner = labels.rule("nat", chain.name, raw) or chain.name
            out.setdefault((p.group(1) if p else "", ip, port), []).append(owner)
    return MappingProxyType({k: tuple(dict.fromkeys(v)) for k, v in out.items()})


def _split(dest: str) -> tuple[str, int | None]:
    """``10.0.0.1:80``, ``[fd00::1]:80``, ``10.0.0.1``, ``10.0.0.1-10.0.0.3:80-90`` → first address, port."""
    if dest.startswith("["):
        host, _, rest = dest[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif dest.count(":") == 1:
        host, _, port = dest.partition(":")
    else:
        host, port = dest, ""
    return _norm(host.split("-")[0]), _num(port.split("-")[0]) if port else None


class EntryMatch(NamedTuple):
    entry: ConntrackEntry
    frontend: Frontend | None
    status: str  # "ok", "stale" (DNAT target is no endpoint), "not-dnat" (to a service address, not DNATed),
    #             "other-service" (target is an endpoint, but of other services only), "unknown" (no rules)
    reason: str
    endpoint_of: tuple[str, ...]  # the services the DNAT target is an endpoint of

    @property
    def service(self) -> str | None:
        return self.frontend.service if self.frontend else None


Endpoints = Mapping[tuple[str, str, int | None], tuple[str, ...]]


def match_entries(entries: Iterable[ConntrackEntry], ruleset: Ruleset | None, *, node_addresses: Iterable[str] = (),
                  service: str | None = None, dst: tuple[str, int | None] | None = None,
                  frontends: Sequence[Frontend] | None = None,
                  endpoints: Endpoints | None = None) -> tuple[EntryMatch, ...]:  # fmt: skip
    """The entries to a service address (or to ``dst``, or of ``service``), each with its service and status.

    ``frontends`` and ``endpoints`` default to :func:`service_frontends` and :func:`dnat_endpoints` of the
    ruleset (a caller with the service index passes what it knows). Without a ruleset every DNATed entry is
    listed with status "unknown"."""
    node = {_norm(a) for a in node_addresses}
    if frontends is None:
        frontends = service_frontends(ruleset) if ruleset is not None else ()
    if service:
        frontends = tuple(f for f in frontends if f.service == service or f.service.startswith(service + ":"))
    by_ip: dict[tuple[str, int, str], Frontend] = {}
    nodeports: dict[tuple[int, str], Frontend] = {}
    for f in frontends:
        if f.ip is None:
            nodeports.setdefault((f.port, f.proto), f)
        else:
            by_ip.setdefault((f.ip, f.port, f.proto), f)
    if endpoints is None:
        endpoints = dnat_endpoints(ruleset) if ruleset is not None else {}
    want = (_norm(dst[0]), dst[1]) if dst else None
    out: list[EntryMatch] = []
    for e in entries:
        o = e.orig
        if want is not None and (o.dst != want[0] or (want[1] is not None and o.dport != want[1])):
            continue
        fe = None
        if o.dport is not None:
            fe = by_ip.get((o.dst, o.dport, e.proto))
            if fe is None:
                np = nodeports.get((o.dport, e.proto))
                if np is not None and (o.dst in node or (not node and e.dnat) or o.dst.startswith("127.")):
                    fe = np
        if ruleset is None:
            if e.dnat or want is not None:
                out.append(EntryMatch(e, None, "unknown", "no rules given: endpoints unknown", ()))
            continue
        if fe is None:
            if want is not None:
                out.append(EntryMatch(e, None, "ok" if not e.dnat else _status(e, endpoints)[0],
                                 "not a service address in the rules", _status(e, endpoints)[2]))  # fmt: skip
            continue
        status, reason, owners = _status(e, endpoints, fe)
        out.append(EntryMatch(e, fe, status, reason, owners))
    return tuple(out)


def _status(e: ConntrackEntry, endpoints: Endpoints, fe: Frontend | None = None) -> tuple[str, str, tuple[str, ...]]:  # fmt: skip
    if not e.dnat:
        if fe is not None and not fe.has_endpoints:
            return "ok", "not DNATed (the service has no endpoints: its packets are refused)", ()
        return "not-dnat", ("not DNATed: packets of this flow reach no endpoint (created while the service had "
                            "no endpoints?)"), ()  # fmt: skip
    key = (e.proto, e.reply.src, e.reply.sport)
    owners = endpoints.get(key) or endpoints.get(("", e.reply.src, e.reply.sport)) or ()
    if not owners:
        return "stale", f"DNAT target {e.target} is no endpoint in the current rules", ()
    if fe is not None and fe.service not in owners and not any(o.startswith(fe.service) for o in owners):
        return "other-service", f"DNAT target {e.target} is an endpoint of {', '.join(owners)} only", owners
    return "ok", f"DNAT to endpoint {e.target}", owners
