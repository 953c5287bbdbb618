"""The node snapshot: one frozen value holding everything kptui read from one source, and the rules in use.

:func:`build_snapshot` turns a :class:`~kptui.node.parts.Collection` (from a file, standard input, a capture
bundle or the live node) into a :class:`NodeSnapshot`. Every command and the explorer take their rules and
their node context from a snapshot, nowhere else. Parts the source does not have are ``None`` (or missing
from their mapping), never empty stand-ins; :attr:`NodeSnapshot.provenance` says how each part was read
(or why it could not be). The dump in use is parsed on first use of :attr:`NodeSnapshot.ruleset` (so the
explorer can parse it behind its loading screen); the node context and the warnings follow from it.

Adding a part: give it an artifact kind (:data:`kptui.node.parts.KINDS`), read it in
:mod:`kptui.node.collect` (its command in :data:`kptui.live.runner.ALLOWED`), add a field here filled in
:func:`build_snapshot`, and describe it in :func:`parts_report` (``kptui summary --json``'s ``parts``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from kptui.engine import Ruleset, parse_ruleset_bytes
from kptui.engine.iproute import NodeFacts, node_facts, parse_ip_json
from kptui.engine.packet import NodeContext
from kptui.forked import spawn

if TYPE_CHECKING:
    from kptui.engine.ipvs import IpvsNode
    from kptui.engine.nft import NftRuleset
    from kptui.engine.parser import Progress
    from kptui.engine.schedule import Netfilter

from .errors import NftOnly, NodeDataError
from .parts import Artifact, Collection

__all__ = ["BACKENDS", "NodeSnapshot", "Run", "build_snapshot", "parts_report"]

BACKENDS = ("nf_tables", "legacy")
CAPTURED = ("bundle", "live")
_TOOLS = {"nf_tables": "nft", "legacy": "legacy"}
_RULE_LINE = re.compile(rb"^(?:\[\d+:\d+\] )?-A ", re.MULTILINE)
_KUBE = re.compile(rb"^:KUBE-", re.MULTILINE)


class Run(NamedTuple):
    """How one part was read: its command (or file), when, how long, and what came of it."""

    part: str  # the artifact kind ("rules", "nft-ruleset", "sysctl", …)
    name: str  # the artifact (bundle member) name
    command: str  # "iptables-nft-save -c"; "" for a file
    family: str | None
    backend: str | None
    started: float | None  # Unix time (None: not recorded)
    seconds: float
    cpu_seconds: float
    status: int | None
    error: str | None
    size: int  # bytes it gave

    @property
    def ok(self) -> bool:
        return self.status == 0 and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "name": self.name, "command": self.command, "family": self.family,
                "backend": self.backend, "started": self.started, "seconds": round(self.seconds, 4),
                "cpu_seconds": round(self.cpu_seconds, 4), "status": self.status, "error": self.error,
                "size": self.size}  # fmt: skip


def _run(a: Artifact) -> Run:
    return Run(a.kind, a.name, " ".join(a.command), a.family, a.backend, a.started, a.seconds, a.cpu_seconds,
               a.status, a.error if a.error else (None if a.ok else _failure(a)), len(a.data))  # fmt: skip


@dataclass(frozen=True)
class NodeSnapshot:
    """A node (or a file) at one moment. Raw parts as read, plus the view in use: ``family``/``backend`` and
    the dump :attr:`rules` that :attr:`ruleset` parses; :attr:`node` is the trace's node context from the
    addresses and routes (empty for a file: a file says nothing about the node)."""

    origin: str  # "file", "stdin", "bundle", "live"
    source: str  # the name messages use: a path, "<stdin>", "live (netns x)"
    family: str | None  # the family in use ("ipv4"/"ipv6"; None: a file that does not say)
    backend: str | None  # the backend whose rules are in use ("nf_tables"/"legacy"; None: unknown)
    rules: Artifact | None  # the iptables dump in use
    xtables: tuple[Artifact, ...]  # every iptables dump read, per family and backend
    nft: Artifact | None  # the whole nft ruleset (``format`` "json" or "text"), raw
    nft_tables: tuple[Artifact, ...]  # format 1's per-table nft listings and `nft list tables`
    ipsets: Artifact | None  # `ipset save`, raw
    ipvs: Artifact | None  # `ipvsadm -S -n`, raw
    addresses: Artifact | None  # `ip -j -d addr show`
    routes: Mapping[str, Artifact]  # family → `ip -j route show`
    ip_rules: Mapping[str, Artifact]  # family → `ip -j rule show` (routing policy rules)
    sysctls: Mapping[str, str] | None  # "net.ipv4.ip_forward" → "1", … (see kptui.live.runner.SYSCTLS)
    conntrack_tables: Mapping[str, Artifact]  # family → `conntrack -L`
    proxy_mode: str | None  # kube-proxy's /proxyMode answer
    proxy_mode_error: str | None  # why it is not known
    host: Mapping[str, Any]  # hostname, kernel, created, netns, iptables_version, format_version, …
    provenance: tuple[Run, ...]  # every command run (or file read), failed ones included
    backends: Mapping[str, Mapping[str, Any]]  # per backend of ``family``: read, rules, kube, seconds | error
    selection_warnings: tuple[str, ...] = ()
    ruleset_source: str = ""  # the name parse errors and reports give the dump in use
    nft_source: str = ""  # the name parse errors give the nft listing (``--nft LISTING``: its file)
    extra_sources: Mapping[str, str] = dataclasses.field(default_factory=dict)  # part kind → its own file
    _other: dict[str, Ruleset] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    _netfilters: dict[int, Netfilter] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    # -- the view in use ---------------------------------------------------------------------------------
    @property
    def captured(self) -> bool:
        """A capture bundle or the live node: the snapshot knows the node (addresses, routes, host)."""
        return self.origin in CAPTURED

    @cached_property
    def ruleset(self) -> Ruleset:
        """The dump in use, parsed (once). ``ParseError`` when it does not parse."""
        return self.parse_rules()

    def parse_rules(self, progress: Progress | None = None, *, fork: bool = True) -> Ruleset:
        """Parse the dump in use now, telling ``progress(lines done, lines)`` as it goes, and keep it as
        :attr:`ruleset` (a big dump's shape checks run in a forked child, :func:`kptui.forked.spawn`, unless
        ``fork`` is false)."""
        if "ruleset" in self.__dict__:
            return self.__dict__["ruleset"]  # type: ignore[no-any-return]
        if self.rules is None:
            raise NodeDataError(f"{self.source}: no iptables rules")
        ruleset = parse_ruleset_bytes(self.rules.data, source=self.ruleset_source, progress=progress,
                                      parallel=spawn if fork else None)  # fmt: skip
        self.__dict__["ruleset"] = ruleset
        return ruleset

    @cached_property
    def nft_ruleset(self) -> NftRuleset | None:
        """The nft ruleset (``nft list ruleset`` text or ``nft -j`` JSON), parsed once; None when the source has
        none. ``ParseError`` (located) when it cannot be read at all."""
        if self.nft is None:
            return None
        from kptui.engine.nft import parse_nft_bytes

        return parse_nft_bytes(self.nft.data, source=self.nft_source or self.source)

    def netfilter(self, family: int | None = None) -> Netfilter:
        """Everything the trace walks for a packet of ``family`` (4 or 6; default: the family in use): the
        iptables dump of that family (the one in use, a pasted file's other family's dump, or a bundle's/the live
        node's other family, same backend) and the nft ruleset (its tables that the dump also shows are taken from the dump)."""
        from kptui.engine.schedule import Netfilter

        fam = family or (6 if self.family == "ipv6" else 4)
        key = f"ipv{fam}"
        xtables: dict[str, Ruleset] = {}
        companion = self._companion(key)  # a paste of a v4 and a v6 dump: the other family's (issue 14.1)
        if companion is not None:
            xtables[key] = companion
        elif self.rules is not None and (self.family in (None, key)):
            xtables[self.ruleset.family or key] = self.ruleset
        elif self.captured:
            other = self._other.get(key)
            if other is None:
                data = self.dump(family=key)
                if data is not None:
                    other = self._other[key] = parse_ruleset_bytes(data, source=f"{self.source}: {key} rules")
            if other is not None:
                xtables[key] = other
        got = self._netfilters.get(fam)
        if got is None or got.xtables != xtables:
            ipvs = self.ipvs_node
            got = self._netfilters[fam] = Netfilter(xtables, self.nft_ruleset, ipvs.views if ipvs else None)
        return got

    def _companion(self, key: str) -> Ruleset | None:
        """A file's dump of family ``key`` that came in the same paste as the dump in use, when that one is of
        the other family (``Ruleset.companions``; a bundle or the live node has each family's own dump)."""
        if self.rules is None or self.captured or self.ruleset.family in (None, key):
            return None
        return next((c for c in self.ruleset.companions if c.family == key), None)

    @cached_property
    def ipvs_node(self) -> IpvsNode | None:
        """An IPVS-mode node's side: its ipsets, IPVS table, ``net.ipv4.vs.conntrack``, the addresses on
        ``kube-ipvs0`` and the proxy mode, parsed once; None when the source holds neither ipsets nor an IPVS
        table. ``ParseError`` (located) when one cannot be read."""
        if self.ipsets is None and self.ipvs is None:
            return None
        from kptui.engine.ipvs import ipvs_context, kube_ipvs0_addresses

        ips, vs = self.ipsets, self.ipvs
        return ipvs_context(ips.data if ips else None, vs.data if vs else None,
                            ipset_source=self.part_source(ips), ipvs_source=self.part_source(vs),
                            sysctls=self.sysctls,
                            kube_ipvs0=kube_ipvs0_addresses(self.addresses.data) if self.addresses else None,
                            proxy_mode=self.proxy_mode)  # fmt: skip

    def part_source(self, a: Artifact | None) -> str | None:
        """The name a part's parse errors use: its own file (``--ipset FILE``), or the bundle's member."""
        if a is None:
            return None
        return a.name if a.name == self.extra_sources.get(a.kind) else f"{self.source}: {a.name}"

    @property
    def has_rules(self) -> bool:
        """iptables rules in use, or an nft ruleset: something to trace."""
        return self.rules is not None or self.nft is not None

    @cached_property
    def facts(self) -> NodeFacts | None:
        """How the node context was found (None for a file)."""
        return self._facts_and_warnings[0]

    @cached_property
    def node(self) -> NodeContext:
        """The trace's node context: addresses, interfaces, uplink, pod CIDRs, and for the kernel's routing
        decisions the routes of the family in use and the sysctls (empty for a file: nothing known)."""
        f = self.facts
        ipvs = self.ipvs_node
        if f is None:
            return ipvs.node_context(NodeContext()) if ipvs is not None else NodeContext()
        ctx = dataclasses.replace(f.context, routes=self._routes(), sysctls=dict(self.sysctls or {}))
        return ipvs.node_context(ctx) if ipvs is not None else ctx

    def _routes(self) -> tuple[tuple[str, str], ...] | None:
        """The main table's routes of the family in use as the engine takes them: (destination, device; ""
        for a blackhole, unreachable or prohibit route); None when they were not read."""
        a = self.routes.get(self.family or "ipv4")
        if a is None:
            return None
        try:
            routes = parse_ip_json(a.data, "ip -j route show")
        except ValueError:
            return None
        return tuple((str(r.get("dst")), "" if r.get("type", "unicast") != "unicast" else str(r.get("dev") or ""))
                     for r in routes if r.get("dst"))  # fmt: skip

    @cached_property
    def warnings(self) -> tuple[str, ...]:
        out = [*self.selection_warnings, *self._facts_and_warnings[1]]
        if self.proxy_mode and self.proxy_mode != "iptables":
            out.append(f"kube-proxy reports proxy mode '{self.proxy_mode}': its own rules are not (all) iptables")
        return tuple(out)

    @cached_property
    def metadata(self) -> Mapping[str, Any]:
        """JSON-ready: the host facts, origin, family, backend, backends, node (context and notes), every
        command with its timing."""
        f = self.facts
        return MappingProxyType({**self.host, "origin": self.origin, "family": self.family, "backend": self.backend,
                                 "backends": {b: dict(s) for b, s in self.backends.items()},
                                 "node": f.to_dict() if f is not None else {},
                                 "commands": [{"command": r.command, "status": r.status, "error": r.error,
                                               "seconds": round(r.seconds, 4), "cpu_seconds": round(r.cpu_seconds, 4),
                                               "started": r.started}
                                              for r in self.provenance if r.command]})  # fmt: skip

    @cached_property
    def _facts_and_warnings(self) -> tuple[NodeFacts | None, tuple[str, ...]]:
        if not self.captured:
            return None, ()
        warnings: list[str] = []
        fam = 6 if self.family == "ipv6" else 4
        addr, route = self.addresses, self.routes.get(self.family or "ipv4")
        try:
            addrs = parse_ip_json(addr.data if addr is not None else None, "ip -j -d addr show")
            routes = parse_ip_json(route.data if route is not None else None, "ip -j route show")
        except ValueError as exc:
            warnings.append(f"node addresses/routes unusable: {exc}")
            addrs, routes = [], []
        if addr is None:
            warnings.append("the node's addresses could not be read: traces will treat its addresses as unknown")
        return node_facts(addrs, routes, fam, self.ruleset if self.rules is not None else None), tuple(warnings)

    # -- the other parts ---------------------------------------------------------------------------------
    def dump(self, family: str | None = None, backend: str | None = None) -> bytes | None:
        """The raw save output of another family/backend (parse it with ``parse_ruleset_bytes``)."""
        fam, b = family or self.family, backend or self.backend
        for a in self.xtables:
            if a.family == fam and a.backend == b:
                return a.data
        return None

    @property
    def conntrack(self) -> bytes | None:
        """The conntrack table of the family in use (``conntrack -L``), raw; None when not read."""
        a = self.conntrack_tables.get(self.family or "ipv4")
        return a.data if a is not None else None

    def missing(self) -> tuple[Run, ...]:
        """The reads that gave nothing: the command, and why (not installed, not run, failed)."""
        return tuple(r for r in self.provenance if not r.ok)


# -- building ---------------------------------------------------------------------------------------------
def _failure(a: Artifact) -> str:
    if a.error:
        return a.error
    how = f"killed by signal {-a.status} (it crashed)" if a.status is not None and a.status < 0 else \
        f"exit status {a.status}"
    detail = a.stderr.strip().splitlines()
    return how + (f": {detail[-1][:300]}" if detail else "")


def _real_failure(error: object) -> bool:
    """A failure worth a warning: not a tool that is absent or was deliberately not run."""
    text = str(error or "")
    return bool(text) and "not installed" not in text and not text.startswith("not run")


def _rule_stats(data: bytes) -> tuple[int, bool]:
    return _count_rules(data), _KUBE.search(data) is not None


def _count_rules(data: bytes) -> int:
    return len(_RULE_LINE.findall(data))


def _ok(col: Collection, kind: str) -> list[Artifact]:
    return [a for a in col.artifacts if a.kind == kind and a.ok]


def _by_family(col: Collection, kind: str) -> Mapping[str, Artifact]:
    out: dict[str, Artifact] = {}
    for a in _ok(col, kind):
        out.setdefault(a.family or "ipv4", a)
    return MappingProxyType(out)


def _sysctls(col: Collection, warnings: list[str]) -> Mapping[str, str] | None:
    a = next(iter(_ok(col, "sysctl")), None)
    if a is None:
        return None
    try:
        values = json.loads(a.data)
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        warnings.append(f"{a.name}: not a JSON object of sysctl names and values; left out")
        return None
    return MappingProxyType(dict(sorted(values.items())))


def _choose(col: Collection, family: str, backend: str | None,
            warnings: list[str]) -> tuple[str | None, dict[str, dict[str, Any]]]:  # fmt: skip
    """The backend holding kube-proxy's rules (or ``backend``), and per-backend stats; NodeDataError."""
    stats: dict[str, dict[str, Any]] = {}
    for b in BACKENDS:
        a = col.find("rules", family, b)
        if a is None:
            continue
        if not a.ok:
            stats[b] = {"read": False, "error": _failure(a)}
            continue
        n, has_kube = _rule_stats(a.data)
        stats[b] = {"read": True, "rules": n, "kube": has_kube, "seconds": round(a.seconds, 4)}
    readable = [b for b in BACKENDS if stats.get(b, {}).get("read")]
    if backend is not None:
        if backend not in readable:
            why = stats.get(backend, {}).get("error", "not captured")
            raise NodeDataError(f"the {backend} backend's {family} rules could not be read: {why}")
        chosen = backend
    elif not readable:
        if not stats and col.find("nft-ruleset") is not None:
            raise NftOnly("holds an nft ruleset and no iptables rules (kube-proxy in nftables mode?): this "
                          "command reads iptables rules; kptui summary and kptui trace read both")
        errs = "; ".join(f"{b}: {s['error']}" for b, s in stats.items()) or "no rule dump was collected"
        raise NodeDataError(f"no {family} rules could be read ({errs})")
    else:
        holding = [b for b in readable if stats[b]["rules"] > 0]
        kube = [b for b in holding if stats[b]["kube"]]
        ranked = sorted(kube or holding or readable, key=lambda b: -stats[b].get("rules", 0))
        chosen = ranked[0]
        if len(holding) > 1:
            counts = " and ".join(f"iptables-{_TOOLS[b]} {stats[b]['rules']}" for b in holding)
            warnings.append(f"both iptables backends hold {family} rules ({counts}): the kernel runs both, "
                            f"in separate tables; showing {chosen}"
                            + (" (kube-proxy's chains are in both!)" if len(kube) > 1 else
                               " (it holds kube-proxy's chains)" if kube else ""))  # fmt: skip
        failed = {b: str(s.get("error")) for b, s in stats.items() if not s["read"] and _real_failure(s.get("error"))}
        if not holding and failed:  # an empty backend must not stand in for one that could not be read
            why = "; ".join(f"{b}: {e}" for b, e in failed.items())
            raise NodeDataError(f"the {family} rules could not be read ({why}), and the other backend is empty")
        if not holding:
            warnings.append(f"no {family} iptables rules in either backend (kube-proxy in nftables or ipvs "
                            "mode, or not running?)")  # fmt: skip
            if col.find("nft-ruleset") is not None and any(a.ok for a in col.all("nft-ruleset")):
                warnings.append("the nft ruleset was read (nft -j list ruleset): kptui reads kube-proxy's "
                                "nftables mode and every native table from it")  # fmt: skip
    for b, s in stats.items():
        err = str(s.get("error") or "")
        if not s["read"] and b != chosen and _real_failure(err):
            warnings.append(f"the {b} backend could not be read: {err}")
    return chosen, stats


def build_snapshot(collection: Collection, *, family: str | None = None, backend: str | None = None,
                   need_rules: bool | str = True) -> NodeSnapshot:  # fmt: skip
    """The snapshot of ``collection`` for one family: for a bundle or the live node the backend that holds
    kube-proxy's rules (or ``backend``) and a warning when both hold rules; for a file, its one dump.

    Raises :class:`NodeDataError` when no rules can be used (with ``need_rules``; NftOnly when the source
    holds only an nft listing; ``need_rules="any"``: iptables rules or an nft ruleset will do); the message does
    not name the source (the caller does)."""
    col = collection
    nft_ok = need_rules == "any" and any(a.ok for a in col.all("nft-ruleset"))
    warnings: list[str] = []
    captured = col.origin in CAPTURED
    rules: Artifact | None
    if captured:
        families = [a.family for a in _ok(col, "rules")]
        if family is None:
            family = "ipv4" if "ipv4" in families or not families else str(families[0])
        try:
            chosen, stats = _choose(col, family, backend, warnings)
        except NodeDataError:
            if need_rules and not nft_ok:
                raise
            chosen, stats = None, {}
        rules = col.find("rules", family, chosen) if chosen else None
        what = " ".join(rules.command) or rules.name if rules is not None else ""
        ruleset_source = f"{col.source}: {what}"
    else:
        chosen, stats = None, {}
        rules = next(iter(_ok(col, "rules")), None)
        ruleset_source = col.source
        if rules is None and need_rules and not nft_ok:
            if col.find("nft-ruleset") is not None:
                raise NftOnly("holds an nft listing and no iptables rules: this command reads iptables rules; "
                              "kptui summary and kptui trace read nft listings too")
            if col.find("conntrack") is not None:
                raise NodeDataError("holds a conntrack table (conntrack -L output), not rules: "
                                    "kptui conntrack reads it")  # fmt: skip
            raise NodeDataError("holds no iptables rules")
    facts = dict(col.facts)
    proxy_mode = facts.get("proxy_mode")
    nft = next(iter(_ok(col, "nft-ruleset")), None)
    return NodeSnapshot(
        origin=col.origin, source=col.source, family=family, backend=chosen, rules=rules,
        xtables=tuple(_ok(col, "rules")), nft=nft, nft_tables=tuple(_ok(col, "nft")),
        ipsets=next(iter(_ok(col, "ipset")), None), ipvs=next(iter(_ok(col, "ipvs")), None),
        addresses=next(iter(_ok(col, "ip-addr")), None), routes=_by_family(col, "ip-route"),
        ip_rules=_by_family(col, "ip-rule"), sysctls=_sysctls(col, warnings),
        conntrack_tables=_by_family(col, "conntrack"),
        proxy_mode=proxy_mode if isinstance(proxy_mode, str) else None,
        proxy_mode_error=facts.get("proxy_mode_error") if isinstance(facts.get("proxy_mode_error"), str) else None,
        host=MappingProxyType(facts), provenance=tuple(_run(a) for a in col.artifacts),
        backends=MappingProxyType(stats), selection_warnings=tuple(warnings), ruleset_source=ruleset_source,
    )  # fmt: skip


# -- what the snapshot holds, for reports ----------------------------------------------------------------
def _nft_tables(a: Artifact) -> list[str] | None:
    if a.format == "json":
        try:
            doc = json.loads(a.data)
        except ValueError:
            return None
        items = doc.get("nftables") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return None
        return [f"{t.get('family')} {t.get('name')}" for i in items if isinstance(i, dict)
                for t in [i.get("table")] if isinstance(t, dict)]  # fmt: skip
    return [m.decode("utf-8", "replace") for m in re.findall(rb"^table (\S+ \S+)", a.data, re.MULTILINE)]


def _json_count(a: Artifact | None) -> int | None:
    if a is None:
        return None
    try:
        data = json.loads(a.data) if a.data.strip() else []
    except ValueError:
        return None
    return len(data) if isinstance(data, list) else None


def parts_report(snap: NodeSnapshot) -> dict[str, Any]:
    """Which parts the snapshot holds (counts, sizes, formats) and which it lacks and why: JSON-ready
    (``kptui summary --json``'s ``parts``; the parts stay raw, nothing here parses them beyond counting)."""

    def line_count(a: Artifact | None, pattern: bytes) -> int | None:
        return None if a is None else len(re.findall(pattern, a.data, re.MULTILINE))

    nft = snap.nft
    return {
        "xtables": [{"family": a.family, "backend": a.backend, "rules": _count_rules(a.data), "bytes": len(a.data),
                     "in_use": a is snap.rules} for a in snap.xtables],
        "nft_ruleset": None if nft is None else {"format": nft.format, "bytes": len(nft.data),
                                                 "tables": _nft_tables(nft)},
        "ipsets": None if snap.ipsets is None else {"sets": line_count(snap.ipsets, rb"^create "),
                                                    "bytes": len(snap.ipsets.data)},
        "ipvs": None if snap.ipvs is None else {"virtual_services": line_count(snap.ipvs, rb"^-A "),
                                                "bytes": len(snap.ipvs.data)},
        "addresses": None if snap.addresses is None else {"interfaces": _json_count(snap.addresses)},
        "routes": {f: _json_count(a) for f, a in snap.routes.items()},
        "ip_rules": {f: _json_count(a) for f, a in snap.ip_rules.items()},
        "sysctls": None if snap.sysctls is None else dict(snap.sysctls),
        "conntrack": {f: a.data.count(b"\n") for f, a in snap.conntrack_tables.items()},
        "proxy_mode": snap.proxy_mode,
        "missing": [{"part": r.part, "name": r.name, "command": r.command, "why": r.error} for r in snap.missing()],
    }  # fmt: skip
