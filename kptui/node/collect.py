"""Gather a node's parts read-only: rules, addresses, routes, sysctls (and for a capture: policy rules,
conntrack, the whole nft ruleset, ipsets, the IPVS table, versions).

Every command goes through :func:`kptui.live.runner.run_readonly` (sysctls through
:func:`kptui.live.runner.read_sysctls`); each becomes an :class:`~kptui.node.parts.Artifact` with its command,
start time, duration and outcome, failures included. Failures every user meets become clear
:class:`LiveError` messages that say what to run instead.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from kptui.live.runner import (
    SYSCTLS,
    CommandResult,
    SysctlRead,
    check_netns_name,
    fetch_proxy_mode,
    legacy_loaded,
    module_loaded,
    read_sysctls,
    run_readonly,
)

from .errors import LiveError, NodeDataError
from .parts import Artifact, Collection
from .snapshot import NodeSnapshot, build_snapshot

__all__ = ["IPTABLES_NFT_TABLES", "LiveError", "LocalAccess", "NodeAccess", "collect", "load_live", "native_tables",
           "read_conntrack", "read_nft", "read_rules", "tool"]

SAVE_TIMEOUT = 300.0  # iptables-nft-save of a 220k-rule node takes ~20 s on a small machine
SHORT_TIMEOUT = 15.0
CONNTRACK_TIMEOUT = 120.0
Runner = Callable[..., CommandResult]
SYSCTL_COMMAND = ("read /proc/sys", *(p.replace("/", ".") for p in SYSCTLS))  # what the manifest says was run
# The tables iptables-nft (and arptables/ebtables-nft) create: the save tools read them; `nft list ruleset` would
# only repeat them, translated, and on a big iptables node take long. Any other table is read with nft.
IPTABLES_NFT_TABLES = frozenset({f"{fam} {name}" for fam in ("ip", "ip6") for name in
                                 ("filter", "nat", "mangle", "raw", "security")} |
                                {"arp filter", "bridge filter", "bridge nat", "bridge broute"})  # fmt: skip
NFT_RULESET = ("nft", "-j", "list", "ruleset")


class NodeAccess(Protocol):
    """What a capture needs of a node: this one (:class:`LocalAccess`) or one afar
    (:class:`kptui.live.remote.KubectlNode`, :class:`kptui.live.remote.SshNode`)."""

    probe_error: str | None  # why :meth:`loaded` could not tell, when it could not

    def run(self, argv: Sequence[str], *, netns: str | None = None, timeout: float = 60.0) -> CommandResult: ...

    def loaded(self, module: str) -> bool | None: ...  # ip_tables, ip6_tables, ip_set, ip_vs; None: unknown

    def sysctls(self) -> SysctlRead: ...

    def proxy_mode(self) -> tuple[str | None, str | None]: ...

    def host_facts(self) -> dict[str, Any]: ...


class LocalAccess:
    """This node (or network namespace ``netns``), through :func:`kptui.live.runner.run_readonly` (or the
    ``runner`` tests give), the sysctl reader and kube-proxy's ``/proxyMode``."""

    probe_error: str | None = None

    def __init__(self, netns: str | None = None, runner: Runner | None = None,
                 proxy_mode: Callable[[str | None], tuple[str | None, str | None]] | None = None,
                 sysctls: Callable[[str | None], SysctlRead] | None = None) -> None:  # fmt: skip
        self.netns, self._runner, self._proxy, self._sysctls = netns, runner, proxy_mode, sysctls

    def run(self, argv: Sequence[str], *, netns: str | None = None, timeout: float = 60.0) -> CommandResult:
        return (self._runner or run_readonly)(argv, netns=self.netns, timeout=timeout)

    def loaded(self, module: str) -> bool | None:
        if module in ("ip_tables", "ip6_tables"):
            return legacy_loaded(6 if module == "ip6_tables" else 4)
        return module_loaded(module)

    def sysctls(self) -> SysctlRead:
        return (self._sysctls or read_sysctls)(self.netns)

    def proxy_mode(self) -> tuple[str | None, str | None]:
        return (self._proxy or fetch_proxy_mode)(self.netns)

    def host_facts(self) -> dict[str, Any]:
        u = os.uname()
        return {"hostname": u.nodename, "kernel": {"sysname": u.sysname, "release": u.release, "version": u.version,
                                                   "machine": u.machine}}  # fmt: skip


def _unknown(access: NodeAccess, module: str) -> str:
    return f"could not tell whether the kernel has the {module} module loaded ({access.probe_error or 'unknown'})"


def tool(family: str, backend: str) -> str:
    """The save tool of a family and backend: ``iptables-nft-save``, ``ip6tables-legacy-save``, …"""
    return f"{'ip6tables' if family == 'ipv6' else 'iptables'}-{'nft' if backend == 'nf_tables' else 'legacy'}-save"


def _artifact(name: str, kind: str, r: CommandResult, started: float | None = None, **kw: Any) -> Artifact:
    return Artifact(name, kind, r.stdout if r.ok else r.stdout[:0], command=r.argv, status=r.status,
                    error=r.error, stderr=r.stderr, seconds=r.seconds, cpu_seconds=r.cpu_seconds, started=started,
                    via=r.via, **kw)  # fmt: skip


def _not_run(name: str, kind: str, command: tuple[str, ...], why: str, **kw: Any) -> Artifact:
    return Artifact(name, kind, b"", command=command, status=None, error=f"not run: {why}", started=time.time(), **kw)


def _advice(results: Iterable[CommandResult], netns: str | None) -> str | None:
    """A message for failures every user meets: not root, a tool missing, a namespace that is not there."""
    where = f" --netns {netns}" if netns else ""
    for r in results:
        text = f"{r.error or ''} {r.stderr}"
        if "Permission denied" in text or "must be root" in text or "Operation not permitted" in text:
            return (f"{r.display}: permission denied. Reading the rules needs root (CAP_NET_ADMIN): run "
                    f"`sudo kptui …{where}`, or save them as root and open the file: "
                    f"`sudo iptables-save -c > node.rules; kptui summary node.rules`")  # fmt: skip
        if netns and ("Cannot open network namespace" in text or "No such file" in r.stderr):
            return f"network namespace '{netns}' does not exist (see `ip netns list`)"
    return None


def read_rules(family: str = "ipv4", *, netns: str | None = None, backends: Iterable[str] = ("nf_tables", "legacy"),
               runner: Runner | None = None, access: NodeAccess | None = None) -> list[Artifact]:  # fmt: skip
    """``ip(6)tables-{nft,legacy}-save -c`` of both backends (legacy only when the kernel has it loaded)."""
    node = access or LocalAccess(netns, runner)
    out = []
    module = "ip6_tables" if family == "ipv6" else "ip_tables"
    for backend in backends:
        name = f"rules/{tool(family, backend)}.rules"
        loaded = node.loaded(module) if backend == "legacy" else True
        if not loaded:
            why = "the kernel has no legacy ip_tables module loaded" if loaded is False else _unknown(node, module)
            out.append(Artifact(name, "rules", b"", family, backend, (tool(family, backend), "-c"), None,
                                f"not run: {why}", started=time.time()))  # fmt: skip
            continue
        started = time.time()
        r = node.run([tool(family, backend), "-c"], timeout=SAVE_TIMEOUT)
        out.append(_artifact(name, "rules", r, started, family=family, backend=backend))
    return out


def read_conntrack(family: str = "ipv4", *, netns: str | None = None, runner: Runner | None = None) -> Artifact:
    """The live conntrack table of ``family`` (``conntrack -L -f FAMILY``); LiveError when it cannot be read."""
    if family not in ("ipv4", "ipv6"):
        raise LiveError(f"family must be ipv4 or ipv6, not {family!r}")
    if netns is not None:
        try:
            check_netns_name(netns)
        except ValueError as exc:
            raise LiveError(str(exc)) from None
    started = time.time()
    r = (runner or run_readonly)(["conntrack", "-L", "-f", family], netns=netns, timeout=CONNTRACK_TIMEOUT)
    if not r.ok:
        raise LiveError(r.describe_failure() + (" (conntrack needs root: sudo kptui conntrack --live)"
                                                if "root" in r.stderr else ""))  # fmt: skip
    return _artifact(f"conntrack/conntrack-{family}.txt", "conntrack", r, started, family=family)


def native_tables(listing: bytes) -> list[str]:
    """The tables of ``nft list tables`` output that are not iptables-nft's (``table ip kube-proxy`` →
    ``ip kube-proxy``)."""
    out = []
    for line in listing.decode("utf-8", "replace").splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "table" and f"{words[1]} {words[2]}" not in IPTABLES_NFT_TABLES:
            out.append(f"{words[1]} {words[2]}")
    return out


def read_nft(*, netns: str | None = None, runner: Runner | None = None, always: bool = False,
             access: NodeAccess | None = None) -> list[Artifact]:  # fmt: skip
    """``nft list tables`` and, when it lists a table iptables-nft does not manage (kube-proxy's nftables
    table, firewalld's, a CNI's) or ``always``, ``nft -j list ruleset`` (read-only). A node with only
    iptables-nft's tables keeps the cheap read: its save tools show those tables already. ``access``: the node
    to read (default: this one, or network namespace ``netns``, through ``runner``)."""
    node: NodeAccess = access or LocalAccess(netns, runner)
    started = time.time()
    tables = node.run(["nft", "list", "tables"], timeout=SHORT_TIMEOUT)
    arts = [_artifact("nft/tables.txt", "nft", tables, started)]
    native = native_tables(tables.stdout) if tables.ok else []
    if always or native or not tables.ok:
        if not always and not tables.ok:
            arts.append(_not_run("nft/ruleset.json", "nft-ruleset", NFT_RULESET,
                                 f"nft list tables failed ({tables.error or tables.stderr.strip() or tables.status})",
                                 format="json"))  # fmt: skip
            return arts
        t0 = time.time()
        r = node.run(list(NFT_RULESET), timeout=SAVE_TIMEOUT)
        arts.append(_artifact("nft/ruleset.json", "nft-ruleset", r, t0, format="json"))
    else:
        arts.append(_not_run("nft/ruleset.json", "nft-ruleset", NFT_RULESET, "only iptables-nft's tables (the "
                             "iptables save tools read them)", format="json"))  # fmt: skip
    return arts


def _facts(netns: str | None, proxy: tuple[str | None, str | None], started: float,
           host: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {"hostname": host.get("hostname"), "kernel": host.get("kernel") or {},
            "created": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(timespec="seconds"),
            "created_unix": round(started, 3), "netns": netns, "proxy_mode": proxy[0], "proxy_mode_error": proxy[1],
            "hostname_note": ("ip netns exec shares the machine's hostname: this is the host's name, not the "
                              "namespace's") if netns else host.get("hostname_note")}  # fmt: skip


def _sysctl_artifact(read: SysctlRead, started: float) -> Artifact:
    data = json.dumps(read.values, indent=1, sort_keys=True).encode() + b"\n" if read.error is None else b""
    return Artifact("node/sysctls.json", "sysctl", data, command=read.command or SYSCTL_COMMAND,
                    status=0 if read.error is None else None, error=read.error, seconds=read.seconds,
                    started=started, via=read.via)  # fmt: skip


def collect(*, netns: str | None = None, families: Iterable[str] = ("ipv4",), conntrack: bool = False,
            extras: bool = False, runner: Runner | None = None,
            proxy_mode: Callable[[str | None], tuple[str | None, str | None]] | None = None,
            sysctls: Callable[[str | None], SysctlRead] | None = None,
            access: NodeAccess | None = None, source: str | None = None) -> Collection:  # fmt: skip
    """Read the node: rules of ``families`` (both backends), addresses, routes, sysctls; with ``conntrack``
    the conntrack table; with ``extras`` everything else a capture holds (policy rules, the whole nft ruleset,
    ipsets, the IPVS table, iptables' version, kube-proxy's nft tables).

    ``access``: the node to read (default: this one, or network namespace ``netns``, through ``runner``, …);
    the same commands run on a node afar (:mod:`kptui.live.remote`), and ``source`` names it."""
    if access is None:
        if netns is not None:
            try:
                check_netns_name(netns)
            except ValueError as exc:
                raise LiveError(str(exc)) from None
        access = LocalAccess(netns, runner, proxy_mode, sysctls)
    local = isinstance(access, LocalAccess)
    node: NodeAccess = access
    started = time.time()
    arts: list[Artifact] = []
    fams = list(dict.fromkeys(families))
    for fam in fams:
        arts += read_rules(fam, access=node)
    results: list[CommandResult] = []

    def run(name: str, kind: str, argv: list[str], timeout: float = SHORT_TIMEOUT, **kw: Any) -> Artifact:
        t0 = time.time()
        r = node.run(argv, timeout=timeout)
        results.append(r)
        a = _artifact(name, kind, r, t0, **kw)
        arts.append(a)
        return a

    def run_if_loaded(module: str, name: str, kind: str, argv: list[str], absent: str) -> None:
        loaded = node.loaded(module)
        if loaded:
            run(name, kind, argv, SAVE_TIMEOUT)
        else:
            arts.append(_not_run(name, kind, tuple(argv), absent if loaded is False else _unknown(node, module)))

    run("node/ip-addr.json", "ip-addr", ["ip", "-j", "-d", "addr", "show"])
    for fam in ("ipv4", "ipv6"):
        if fam in fams or extras:
            run(f"node/ip-route-{fam}.json", "ip-route", ["ip", "-j", "-4" if fam == "ipv4" else "-6", "route", "show"],
                family=fam)  # fmt: skip
    if extras:
        for fam in ("ipv4", "ipv6"):
            run(f"node/ip-rule-{fam}.json", "ip-rule", ["ip", "-j", "-4" if fam == "ipv4" else "-6", "rule", "show"],
                family=fam)  # fmt: skip
    t0 = time.time()
    arts.append(_sysctl_artifact(node.sysctls(), t0))
    if conntrack:
        for fam in fams:
            run(f"conntrack/conntrack-{fam}.txt", "conntrack", ["conntrack", "-L", "-f", fam], CONNTRACK_TIMEOUT,
                family=fam)  # fmt: skip
    if extras:
        run("node/iptables-version.txt", "iptables-version", ["iptables", "--version"])
        tables = run("nft/tables.txt", "nft", ["nft", "list", "tables"])
        for nft_family, fam in (("ip", "ipv4"), ("ip6", "ipv6")):
            if tables.ok and f"table {nft_family} kube-proxy".encode() in tables.data:
                run(f"nft/kube-proxy-{nft_family}.nft", "nft", ["nft", "list", "table", nft_family, "kube-proxy"],
                    SAVE_TIMEOUT, family=fam)  # fmt: skip
        run("nft/ruleset.json", "nft-ruleset", ["nft", "-j", "list", "ruleset"], SAVE_TIMEOUT, format="json")
        run_if_loaded("ip_set", "ipset/ipset-save.txt", "ipset", ["ipset", "save"],
                      "the kernel has no ip_set module loaded (no ipsets; running ipset would load it)")
        run_if_loaded("ip_vs", "ipvs/ipvsadm-save.txt", "ipvs", ["ipvsadm", "-S", "-n"],
                      "the kernel has no ip_vs module loaded (no IPVS; ipvsadm would load it)")
    else:  # the live view: the nft ruleset when a native table is there (kube-proxy's nftables mode, firewalld …)
        arts += read_nft(access=node)
    proxy = node.proxy_mode()
    netns_used = netns if local else None
    facts = _facts(netns_used, proxy, started, node.host_facts())
    version = next((a for a in arts if a.kind == "iptables-version" and a.ok), None)
    if version is not None:
        facts["iptables_version"] = version.data.decode("utf-8", "replace").strip()
    rule_results = [CommandResult(a.command, netns_used, a.status, b"", a.stderr, a.seconds, a.cpu_seconds, a.error)
                    for a in arts if a.kind == "rules"]  # fmt: skip
    if local and not any(a.ok for a in arts if a.kind in ("rules", "nft-ruleset")):
        advice = _advice([*rule_results, *results], netns)
        if advice:
            raise LiveError(advice)
    where = source or (f"live (netns {netns})" if netns else "live")
    return Collection(tuple(arts), facts, origin="live", source=where)


def load_live(*, netns: str | None = None, family: str = "ipv4", backend: str | None = None,
              runner: Runner | None = None,
              proxy_mode: Callable[[str | None], tuple[str | None, str | None]] | None = None,
              sysctls: Callable[[str | None], SysctlRead] | None = None,
              need_rules: bool | str = "any") -> NodeSnapshot:  # fmt: skip
    """The live node (or network namespace ``netns``) as a :class:`NodeSnapshot`: the backend in use, its
    rules (parsed on first use of ``.ruleset``), the nft ruleset when the node has native nft tables (kube-proxy's
    nftables mode), the node context from its addresses and routes, its sysctls. ``need_rules`` as for
    :func:`build_snapshot` (default: iptables rules or an nft ruleset). Raises :class:`LiveError` with a message
    saying what to do."""
    if family not in ("ipv4", "ipv6"):
        raise LiveError(f"family must be ipv4 or ipv6, not {family!r}")
    col = collect(netns=netns, families=(family,), runner=runner, proxy_mode=proxy_mode, sysctls=sysctls)
    try:
        return build_snapshot(col, family=family, backend=backend, need_rules=need_rules)
    except LiveError:
        raise
    except NodeDataError as exc:
        rules = [a for a in col.artifacts if a.kind == "rules"]
        missing = any(a.error and "not installed" in a.error for a in rules) and not any(a.ok for a in rules)
        hint = (" Install the iptables package (apt-get install iptables), or save the rules where they can "
                "be read and open the file.") if missing else ""  # fmt: skip
        raise LiveError(f"{exc}.{hint}") from None
