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
from collections.abc import Callable, Iterable
from typing import Any

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

__all__ = ["LiveError", "collect", "load_live", "read_conntrack", "read_rules", "tool"]

SAVE_TIMEOUT = 300.0  # iptables-nft-save of a 220k-rule node takes ~20 s on a small machine
SHORT_TIMEOUT = 15.0
CONNTRACK_TIMEOUT = 120.0
Runner = Callable[..., CommandResult]
SYSCTL_COMMAND = ("read /proc/sys", *(p.replace("/", ".") for p in SYSCTLS))  # what the manifest says was run


def tool(family: str, backend: str) -> str:
    """The save tool of a family and backend: ``iptables-nft-save``, ``ip6tables-legacy-save``, …"""
    return f"{'ip6tables' if family == 'ipv6' else 'iptables'}-{'nft' if backend == 'nf_tables' else 'legacy'}-save"


def _artifact(name: str, kind: str, r: CommandResult, started: float | None = None, **kw: Any) -> Artifact:
    return Artifact(name, kind, r.stdout if r.ok else r.stdout[:0], command=r.argv, status=r.status,
                    error=r.error, stderr=r.stderr, seconds=r.seconds, cpu_seconds=r.cpu_seconds, started=started,
                    **kw)  # fmt: skip


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
               runner: Runner | None = None) -> list[Artifact]:  # fmt: skip
    """``ip(6)tables-{nft,legacy}-save -c`` of both backends (legacy only when the kernel has it loaded)."""
    runner = runner or run_readonly
    out = []
    fam = 6 if family == "ipv6" else 4
    for backend in backends:
        name = f"rules/{tool(family, backend)}.rules"
        if backend == "legacy" and not legacy_loaded(fam):
            out.append(Artifact(name, "rules", b"", family, backend, (tool(family, backend), "-c"), None,
                                "not run: the kernel has no legacy ip_tables module loaded", started=time.time()))
            continue
        started = time.time()
        r = runner([tool(family, backend), "-c"], netns=netns, timeout=SAVE_TIMEOUT)
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


def _facts(netns: str | None, proxy: tuple[str | None, str | None], started: float) -> dict[str, Any]:
    u = os.uname()
    return {"hostname": u.nodename, "kernel": {"sysname": u.sysname, "release": u.release, "version": u.version,
                                               "machine": u.machine},
            "created": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(timespec="seconds"),
            "created_unix": round(started, 3), "netns": netns, "proxy_mode": proxy[0], "proxy_mode_error": proxy[1],
            "hostname_note": ("ip netns exec shares the machine's hostname: this is the host's name, not the "
                              "namespace's") if netns else None}  # fmt: skip


def _sysctl_artifact(read: SysctlRead, started: float) -> Artifact:
    data = json.dumps(read.values, indent=1, sort_keys=True).encode() + b"\n" if read.error is None else b""
    return Artifact("node/sysctls.json", "sysctl", data, command=SYSCTL_COMMAND,
                    status=0 if read.error is None else None, error=read.error, seconds=read.seconds,
                    started=started)  # fmt: skip


def collect(*, netns: str | None = None, families: Iterable[str] = ("ipv4",), conntrack: bool = False,
            extras: bool = False, runner: Runner | None = None,
            proxy_mode: Callable[[str | None], tuple[str | None, str | None]] | None = None,
            sysctls: Callable[[str | None], SysctlRead] | None = None) -> Collection:  # fmt: skip
    """Read the node: rules of ``families`` (both backends), addresses, routes, sysctls; with ``conntrack``
    the conntrack table; with ``extras`` everything else a capture holds (policy rules, the whole nft ruleset,
    ipsets, the IPVS table, iptables' version, kube-proxy's nft tables)."""
    run_cmd = runner or run_readonly
    if netns is not None:
        try:
            check_netns_name(netns)
        except ValueError as exc:
            raise LiveError(str(exc)) from None
    started = time.time()
    arts: list[Artifact] = []
    fams = list(dict.fromkeys(families))
    for fam in fams:
        arts += read_rules(fam, netns=netns, runner=run_cmd)
    results: list[CommandResult] = []

    def run(name: str, kind: str, argv: list[str], timeout: float = SHORT_TIMEOUT, **kw: Any) -> Artifact:
        t0 = time.time()
        r = run_cmd(argv, netns=netns, timeout=timeout)
        results.append(r)
        a = _artifact(name, kind, r, t0, **kw)
        arts.append(a)
        return a

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
    arts.append(_sysctl_artifact((sysctls or read_sysctls)(netns), t0))
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
        if module_loaded("ip_set"):
            run("ipset/ipset-save.txt", "ipset", ["ipset", "save"], SAVE_TIMEOUT)
        else:
            arts.append(_not_run("ipset/ipset-save.txt", "ipset", ("ipset", "save"),
                                 "the kernel has no ip_set module loaded (no ipsets; running ipset would load it)"))
        if module_loaded("ip_vs"):
            run("ipvs/ipvsadm-save.txt", "ipvs", ["ipvsadm", "-S", "-n"], SAVE_TIMEOUT)
        else:
            arts.append(_not_run("ipvs/ipvsadm-save.txt", "ipvs", ("ipvsadm", "-S", "-n"),
                                 "the kernel has no ip_vs module loaded (no IPVS; ipvsadm would load it)"))
    proxy = (proxy_mode or fetch_proxy_mode)(netns)
    facts = _facts(netns, proxy, started)
    version = next((a for a in arts if a.kind == "iptables-version" and a.ok), None)
    if version is not None:
        facts["iptables_version"] = version.data.decode("utf-8", "replace").strip()
    rule_results = [CommandResult(a.command, netns, a.status, b"", a.stderr, a.seconds, a.cpu_seconds, a.error)
                    for a in arts if a.kind == "rules"]  # fmt: skip
    if not any(a.ok for a in arts if a.kind == "rules"):
        advice = _advice([*rule_results, *results], netns)
        if advice:
            raise LiveError(advice)
    source = f"live (netns {netns})" if netns else "live"
    return Collection(tuple(arts), facts, origin="live", source=source)


def load_live(*, netns: str | None = None, family: str = "ipv4", backend: str | None = None,
              runner: Runner | None = None,
              proxy_mode: Callable[[str | None], tuple[str | None, str | None]] | None = None,
              sysctls: Callable[[str | None], SysctlRead] | None = None) -> NodeSnapshot:  # fmt: skip
    """The live node (or network namespace ``netns``) as a :class:`NodeSnapshot`: the backend in use, its
    rules (parsed on first use of ``.ruleset``), the node context from its addresses and routes, its sysctls.
    Raises :class:`LiveError` with a message saying what to do."""
    if family not in ("ipv4", "ipv6"):
        raise LiveError(f"family must be ipv4 or ipv6, not {family!r}")
    col = collect(netns=netns, families=(family,), runner=runner, proxy_mode=proxy_mode, sysctls=sysctls)
    try:
        return build_snapshot(col, family=family, backend=backend)
    except LiveError:
        raise
    except NodeDataError as exc:
        rules = [a for a in col.artifacts if a.kind == "rules"]
        missing = any(a.error and "not installed" in a.error for a in rules) and not any(a.ok for a in rules)
        hint = (" Install the iptables package (apt-get install iptables), or save the rules where they can "
                "be read and open the file.") if missing else ""  # fmt: skip
        raise LiveError(f"{exc}.{hint}") from None
