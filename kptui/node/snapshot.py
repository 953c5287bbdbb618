"""The node snapshot: one frozen value holding everything kptui read from one source, and the rules in use.

:func:`build_snapshot` turns a :class:`~kptui.node.parts.Collection` (from a file, standard input, a capture
bundle or the live node) into a :class:`NodeSnapshot`. Every command and the explorer take their rules and
their node context from a snapshot, nowhere else. Parts the source does not have are ``None`` (or missing
from their mapping), never empty stand-ins; :attr:`NodeSnapshot.provenance` says how each part was read
(or why it could not be). The dump in use is parsed on first use of :attr:`NodeSnapshot.ruleset` (so the
explorer can parse it behind its loading screen); the node context and the warnings follow from it.

Adding a part: give it an artifact kind (:data:`kptui.node.parts.KINDS`), read it in
:mod:`kptui.node.collect` (its command in :data:`kptui.live.runner.ALLOWED`), add a field here filled in
:func:`build_snapshot`, and describe it in :func:`~kptui.node.parts_report.parts_report` (``kptui summary
--json``'s ``parts``).

How each part was read (:class:`~kptui.node.provenance.Run`) is :mod:`kptui.node.provenance`; which iptables
backend's dump is in use, :mod:`kptui.node.backends`. ``BACKENDS``, ``Run`` and ``parts_report`` can still be
imported from here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from kptui.engine import Ruleset, parse_ruleset_bytes
from kptui.engine.iproute import NodeFacts, node_facts, parse_ip_json
from kptui.engine.packet import NodeContext
from kptui.forked import spawn

if TYPE_CHECKING:
    from kptui.engine.ipvs import IpvsNode
    from kptui.engine.nft import NftRuleset
    from kptui.engine.parser import Progress
    from kptui.engine.schedule import Netfilter

from .backends import BACKENDS, choose_backend
from .errors import NftOnly, NodeDataError
from .parts import Artifact, Collection
from .parts_report import parts_report
from .provenance import Run, run_of

__all__ = ["BACKENDS", "NodeSnapshot", "Run", "build_snapshot", "parts_report"]

CAPTURED = ("bundle", "live")


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
            chosen, stats = choose_backend(col, family, backend, warnings)
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
        host=MappingProxyType(facts), provenance=tuple(run_of(a) for a in col.artifacts),
        backends=MappingProxyType(stats), selection_warnings=tuple(warnings), ruleset_source=ruleset_source,
    )  # fmt: skip

