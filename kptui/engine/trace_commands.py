"""The commands a user can run to watch the kernel itself trace one connection (kptui never runs them).

``iptables -t raw -I PREROUTING … -j TRACE`` (OUTPUT for a packet sent by the node) marks the connection's
packets; ``xtables-monitor --trace`` prints every rule they match; ``-D`` with the same rule removes the mark
rule again. The TRACE rule carries ``-m comment --comment kptui-trace`` so it is easy to find and the ``-D``
can only remove it. For kube-proxy's nftables mode, a small table of its own sets ``meta nftrace`` and
``nft monitor trace`` prints the trace; deleting the table removes everything.

Pure: values in, argument lists out (:meth:`TraceCommands.text` quotes them for a POSIX shell).
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

__all__ = ["BACKENDS", "TraceCommands", "trace_commands"]

BACKENDS = ("nft", "legacy", "nftables")  # iptables-nft, iptables-legacy, native nftables (kube-proxy nft mode)
COMMENT = "kptui-trace"
_PORT_PROTOS = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
Argv = tuple[str, ...]


@dataclass(frozen=True)
class TraceCommands:
    backend: str
    family: int
    insert: tuple[Argv, ...]  # run these first (as root)
    monitor: Argv  # then this, in another terminal, before sending the traffic
    remove: tuple[Argv, ...]  # and these when done
    notes: tuple[str, ...]

    def steps(self) -> list[tuple[str, list[str]]]:
        """(what, shell lines) in the order to run them."""
        q = _quote
        return [
            ("1. start the monitor (in a second terminal; it prints every rule the packets match)", [q(self.monitor)]),
            ("2. mark the connection's packets for tracing", [q(a) for a in self.insert]),
            ("3. send the traffic, then stop the monitor (ctrl-c)", []),
            ("4. remove the trace rule again", [q(a) for a in self.remove]),
        ]

    def text(self) -> str:
        out = []
        for what, lines in self.steps():
            out.append(f"# {what}")
            out.extend(lines)
        out.extend(f"# note: {n}" for n in self.notes)
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict[str, object]:
        return {"backend": self.backend, "family": f"ipv{self.family}", "insert": [list(a) for a in self.insert],
                "monitor": list(self.monitor), "remove": [list(a) for a in self.remove], "notes": list(self.notes),
                "shell": self.text()}  # fmt: skip


def _quote(argv: Argv) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def trace_commands(*, src: str, dst: str, proto: str = "tcp", sport: int | None = None, dport: int | None = None,
                   origin: str = "pod", backend: str = "nft", netns: str | None = None) -> TraceCommands:  # fmt: skip
    """The TRACE commands for the connection ``src[:sport] → dst[:dport]/proto``.

    ``origin`` "local" (sent by a process on the node) traces from raw OUTPUT, anything else from raw
    PREROUTING. ``netns`` prefixes every command with ``ip netns exec NETNS``. ValueError for bad input."""
    try:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    except ValueError as exc:
        raise ValueError(f"not an IP address: {exc}") from None
    if s.version != d.version:
        raise ValueError("source and destination must both be IPv4 or both IPv6")
    if backend not in BACKENDS:
        raise ValueError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}")
    fam = s.version
    proto = proto.lower()
    if proto in ("icmpv6", "ipv6-icmp") or (proto == "icmp" and fam == 6):
        proto = "icmpv6"
    for name, port in (("sport", sport), ("dport", dport)):
        if port is not None and not 0 <= port <= 65535:
            raise ValueError(f"{name} {port} is not a port number")
    ports = proto in _PORT_PROTOS
    prefix: Argv = ("ip", "netns", "exec", netns) if netns else ()
    notes = []
    if ports and sport is None:
        notes.append("no --sport: every connection from the source to this port is traced; on a busy node pin "
                     "the client's source port (curl --local-port N, nc -p N) and give --sport N")  # fmt: skip
    if not ports and (sport is not None or dport is not None):
        notes.append(f"{proto} has no ports: --sport/--dport are not used")
    local = origin == "local"
    if backend == "nftables":
        return _nftables(s.compressed, d.compressed, proto, sport if ports else None, dport if ports else None,
                         local, fam, prefix, notes)  # fmt: skip
    tool = f"{'ip6tables' if fam == 6 else 'iptables'}-{'nft' if backend == 'nft' else 'legacy'}"
    plen = 128 if fam == 6 else 32
    match: list[str] = ["-s", f"{s.compressed}/{plen}", "-d", f"{d.compressed}/{plen}"]
    match += ["-p", "ipv6-icmp" if proto == "icmpv6" else proto]
    if ports:
        match += ["-m", proto]
        match += ["--sport", str(sport)] if sport is not None else []
        match += ["--dport", str(dport)] if dport is not None else []
    match += ["-m", "comment", "--comment", COMMENT, "-j", "TRACE"]
    chain = "OUTPUT" if local else "PREROUTING"
    insert = ((*prefix, tool, "-t", "raw", "-I", chain, "1", *match),)
    remove = ((*prefix, tool, "-t", "raw", "-D", chain, *match),)
    if backend == "legacy":
        logger = "nf_log_ipv6" if fam == 6 else "nf_log_ipv4"
        pf = 10 if fam == 6 else 2
        monitor: Argv = (*prefix, "dmesg", "--follow", "--notime")
        notes.append(f"iptables-legacy's TRACE goes to the kernel log: it needs a logger for the family, e.g. "
                     f"`modprobe {logger}` and `sysctl net.netfilter.nf_log.{pf}={logger}` (the kernel log is "
                     f"shared by all namespaces)")  # fmt: skip
    elif fam == 6 and ports:
        monitor = (*prefix, "nft", "monitor", "trace")
        notes.append("xtables-monitor 1.8.9 aborts on IPv6 rules with port matches, so the monitor is "
                     "`nft monitor trace` (the same trace, in nft syntax)")  # fmt: skip
    else:
        monitor = (*prefix, "xtables-monitor", "--trace", f"-{fam}")
    notes.append("a trace only shows the rules that matched (not the ones that were skipped) and nat rules "
                 "only for a connection's first packet; run the remove step even if the monitor was stopped")  # fmt: skip
    return TraceCommands(backend, fam, insert, monitor, remove, tuple(notes))


def _nftables(src: str, dst: str, proto: str, sport: int | None, dport: int | None, local: bool, fam: int,
              prefix: Argv, notes: list[str]) -> TraceCommands:  # fmt: skip
    family = "ip6" if fam == 6 else "ip"
    hook = "output" if local else "prerouting"
    chain = f"trace-{hook}"
    expr = [family, "saddr", src, family, "daddr", dst]
    if proto in _PORT_PROTOS:
        expr += [proto, "sport", str(sport)] if sport is not None else []
        expr += [proto, "dport", str(dport)] if dport is not None else []
        if sport is None and dport is None:
            expr += ["meta", "l4proto", proto]
    else:
        expr += ["meta", "l4proto", "ipv6-icmp" if proto == "icmpv6" else proto]
    table = ("nft", "add", "table", family, COMMENT)
    base = ("nft", "add", "chain", family, COMMENT, chain, f"{{ type filter hook {hook} priority -301 ; }}")
    rule = ("nft", "add", "rule", family, COMMENT, chain, *expr, "meta", "nftrace", "set", "1")
    notes.append(f"a table of its own ({family} {COMMENT}) at priority -301 (before raw) marks the packets; "
                 "deleting it removes everything it added")  # fmt: skip
    return TraceCommands("nftables", fam, ((*prefix, *table), (*prefix, *base), (*prefix, *rule)),
                         (*prefix, "nft", "monitor", "trace"), ((*prefix, "nft", "delete", "table", family, COMMENT),),
                         tuple(notes))  # fmt: skip
