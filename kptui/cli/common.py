"""What the commands share: the user's errors, JSON and warnings output, the packet, node and source options,
and the one way a command gets its snapshot (:func:`load_snapshot`, through :mod:`kptui.node`).

Below every command module; it imports no module of the command layer.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from kptui.engine.errors import Diagnostic, printable

if TYPE_CHECKING:
    from kptui.engine.packet import NodeContext, Packet
    from kptui.engine.parser import Progress
    from kptui.engine.schedule import Netfilter
    from kptui.node.limits import Limits
    from kptui.node.snapshot import NodeSnapshot

__all__ = [
    "COMMAND_NAMES",
    "MAX_WARNINGS",
    "ORIGINS",
    "PROTOCOLS",
    "UserError",
    "add_input_options",
    "add_packet_options",
    "add_part_options",
    "add_source_options",
    "backend_of",
    "emit_json",
    "limits_of",
    "load_snapshot",
    "netfilter_of",
    "node_errors",
    "node_for_trace",
    "node_from_args",
    "packet_from_args",
    "print_snapshot_warnings",
    "print_warnings",
    "printable_text",
]  # fmt: skip

# The engine's kptui.engine.packet.ORIGINS and PROTOCOLS, copied so that building the parser imports no
# trace machinery (`kptui summary` on a big dump is a race against iptables-restore); a test keeps them equal.
ORIGINS = ("pod", "external", "local")
PROTOCOLS = ("tcp", "udp", "sctp", "icmp", "icmpv6", "udplite", "dccp")
MAX_WARNINGS = 20  # shown on stderr in text mode; --json carries them all
# The subcommands (any other first word is the explorer's FILE); kptui.cli registers them, a test keeps this equal.
COMMAND_NAMES = frozenset({"capture", "conntrack", "deltas", "diff", "explain", "fleet", "lint", "services", "summary",
                           "top", "trace", "trace-commands"})  # fmt: skip


class UserError(Exception):
    """A problem the user can fix; printed as ``kptui: message`` with exit status 2."""


@contextmanager
def node_errors() -> Iterator[None]:
    """The snapshot layer's errors (a file that cannot be read, a damaged bundle, no rules) as UserErrors."""
    from kptui.node.errors import NodeDataError

    try:
        yield
    except NodeDataError as exc:
        raise UserError(str(exc)) from None


# -- output ------------------------------------------------------------------------------------------------
def emit_json(data: Any, out: TextIO, *, compact: bool = False) -> None:
    """JSON on stdout; ``compact`` (one line, C encoder) for big documents like a trace's every hop."""
    # dumps, not dump: dump writes the document in thousands of small pieces
    out.write(json.dumps(data, indent=None if compact else 2, ensure_ascii=True) + "\n")


def print_warnings(diags: Sequence[Diagnostic], err: TextIO) -> None:
    for d in diags[:MAX_WARNINGS]:
        print(d.format(), file=err)
    if len(diags) > MAX_WARNINGS:
        print(f"kptui: … and {len(diags) - MAX_WARNINGS} more warnings (--json lists all)", file=err)


def print_snapshot_warnings(snap: NodeSnapshot | None, err: TextIO) -> None:
    for w in snap.warnings if snap is not None and snap.captured else ():
        print(f"kptui: warning: {printable(w)}", file=err)


def printable_text(text: str) -> str:
    """Multi-line report text with control characters from the dump made visible (newlines kept)."""
    return "\n".join(printable(line) for line in text.split("\n"))


# -- options -----------------------------------------------------------------------------------------------
def _size(text: str) -> int:
    from kptui.node.limits import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_input_options(p: argparse.ArgumentParser) -> None:
    """``--max-input``: the reading ceiling for FILE (and what gzip in it may inflate to)."""
    p.add_argument("--max-input", type=_size, metavar="SIZE",
                   help="read at most SIZE of a file (e.g. 4G; default 1G, and gzip may inflate at most 100x; "
                   "past it kptui refuses the file)")  # fmt: skip


def add_part_options(p: argparse.ArgumentParser) -> None:
    """``--nft LISTING``, ``--ipset FILE``, ``--ipvs FILE``: parts of the node kept in files of their own."""
    p.add_argument("--nft", metavar="LISTING", help="the node's nft ruleset too (`nft list ruleset` or `nft -j list "
                   "ruleset` output): traces run its base chains with the dump's tables, in the kernel's order; "
                   "a table the dump also shows (iptables-nft) is taken from the dump")  # fmt: skip
    p.add_argument("--ipset", metavar="FILE", help="the node's ipsets (`ipset save` or `ipset list` output): set "
                   "matches are decided from their members (IPVS mode)")  # fmt: skip
    p.add_argument("--ipvs", metavar="FILE", help="the node's IPVS table (`ipvsadm -S -n` or `ipvsadm -L -n` output): "
                   "services and traces take the virtual services and real servers (IPVS mode)")  # fmt: skip


def add_source_options(p: argparse.ArgumentParser) -> None:
    """``--live``, ``--netns``, ``-4``/``-6``, ``--backend``: where the rules come from when not from FILE;
    and ``--max-input``."""
    g = p.add_argument_group("live node (read-only; needs root)")
    g.add_argument("--live", action="store_true", help="read this node's running rules instead of a FILE")
    g.add_argument("--netns", metavar="NAME", help="read inside network namespace NAME (implies --live)")
    fam = g.add_mutually_exclusive_group()
    fam.add_argument("-4", dest="family", action="store_const", const="ipv4", help="IPv4 rules (the default)")
    fam.add_argument("-6", dest="family", action="store_const", const="ipv6", help="IPv6 rules")
    g.add_argument("--backend", choices=("nft", "legacy"),
                   help="the iptables backend to read (default: the one holding kube-proxy's rules)")
    add_part_options(p)
    add_input_options(p)


def add_packet_options(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("the packet")
    g.add_argument("--src", required=required, metavar="ADDR", help="source address")
    g.add_argument("--dst", required=required, metavar="ADDR", help="destination address")
    g.add_argument("--proto", default="tcp", help=f"{PROTOCOLS[0]} (default), {', '.join(PROTOCOLS[1:])}")
    g.add_argument("--sport", type=int, metavar="N", help="source port (default 40000; port protocols only)")
    g.add_argument("--dport", type=int, metavar="N", help="destination port (needed for tcp, udp, sctp, udplite, "
                   "dccp; icmp and icmpv6 have none)")  # fmt: skip
    g.add_argument("--from", dest="origin", choices=ORIGINS, default="pod",
                   help="where it comes from: a pod interface, the node's uplink, or a process on the node")
    g.add_argument("--in-iface", metavar="IFACE", help="the interface it arrives on")
    g.add_argument("--mark", default="0", help="initial packet mark, e.g. 0x4000")
    g.add_argument("--ctstate", default="NEW", help="conntrack state (default NEW: a first packet)")
    n = p.add_argument_group("the node")
    n.add_argument("--node-ip", action="append", metavar="IP",
                   help="a node address (repeat, or comma-separate); 127.0.0.0/8 and ::1 are always local")
    n.add_argument("--pod-cidr", action="append", metavar="CIDR",
                   help="pod network(s); this node's pod subnet first")
    n.add_argument("--iface", action="append", metavar="NAME=CIDR[,CIDR]",
                   help="a node interface and its addresses, e.g. eth0=10.0.0.2/24 (repeat)")
    n.add_argument("--uplink", metavar="IFACE", help="the interface outside traffic arrives on / leaves by")
    n.add_argument("--pod-iface", metavar="IFACE", help="the interface pod traffic arrives on (e.g. cni0)")
    n.add_argument("--recent", action="append", metavar="NAME",
                   help="a recent list (session affinity) that already holds the source (repeat)")
    n.add_argument("--affinity-hit", nargs="?", const="any", metavar="ENDPOINT",
                   help="a returning client (session affinity): bound to ENDPOINT (IP:PORT or IP), or, without "
                   "it, to one endpoint of each service, not known which (one path per endpoint)")


def _split_list(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeated options that also take comma-separated lists: ``--node-ip a --node-ip b,c``."""
    return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())


def node_from_args(args: argparse.Namespace) -> NodeContext:
    """Build the node from the node options; bad values raise UserError."""
    from kptui.engine.packet import NodeContext

    try:
        ifaces: dict[str, tuple[str, ...]] = {}
        for item in args.iface or ():
            name, sep, cidrs = item.partition("=")
            if not sep or not name:
                raise ValueError(f"--iface '{item}' should read NAME=CIDR[,CIDR]")
            ifaces[name] = tuple(c for c in cidrs.split(",") if c)
        node = NodeContext(
            addresses=_split_list(args.node_ip), pod_cidrs=_split_list(args.pod_cidr), interfaces=ifaces,
            uplink=args.uplink, pod_iface=args.pod_iface, recent=frozenset(_split_list(args.recent)),
            affinity=args.affinity_hit,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return node


def check_ports(args: argparse.Namespace) -> None:
    """UserError for ``--sport``/``--dport`` on a protocol without ports (icmp, icmpv6): the engine would
    drop them silently, and the packet builder refuses them too."""
    from kptui.engine.packet import PORT_PROTOCOLS, PROTOCOLS

    proto = {"ipv6-icmp": "icmpv6"}.get(args.proto.lower(), args.proto.lower())
    if proto in PROTOCOLS and proto not in PORT_PROTOCOLS:
        given = [f"--{name} {value}" for name, value in (("sport", args.sport), ("dport", args.dport))
                 if value is not None]  # fmt: skip
        if given:
            raise UserError(f"{proto} has no ports: drop {' and '.join(given)} (ports go with "
                            f"{', '.join(p for p in PROTOCOLS if p in PORT_PROTOCOLS)})")  # fmt: skip


def packet_from_args(args: argparse.Namespace) -> tuple[Packet, NodeContext]:
    """Build the packet and node from the packet options; bad values raise UserError (ports on a protocol
    without ports included: the engine would drop them silently)."""
    from kptui.engine.packet import Packet, parse_mark

    node = node_from_args(args)
    check_ports(args)
    try:
        packet = Packet(
            args.src, args.dst, args.proto, args.sport, args.dport, args.origin, args.in_iface,
            parse_mark(args.mark), args.ctstate,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return packet, node


# -- the snapshot ----------------------------------------------------------------------------------------
def backend_of(args: argparse.Namespace) -> str | None:
    b = getattr(args, "backend", None)
    return {"nft": "nf_tables", "legacy": "legacy"}.get(b or "")


def limits_of(args: argparse.Namespace) -> Limits:
    from kptui.node.limits import Limits

    size = getattr(args, "max_input", None)
    return Limits(max_input=size, explicit=True) if size else Limits()


def load_snapshot(args: argparse.Namespace, path: str | None = None, *, live_ok: bool = True,
                  need_rules: bool | str = True, parse: bool | None = None,
                  progress: Progress | None = None) -> NodeSnapshot:  # fmt: skip
    """The snapshot a command works on: ``path`` (default: FILE, a dump, listing or bundle) or, with
    ``--live``/``--netns``, the live node. ``need_rules``: a source without iptables rules is a UserError
    (an nft listing says so); ``"any"``: iptables rules or an nft ruleset (``--nft`` counts). ``parse`` (default: ``need_rules``): the rules are parsed here (``ParseError``
    for a dump that does not parse) and moved out of the cyclic collector's sight: they live until the
    command ends, and every later allocation burst would make the collector walk their million objects."""
    from kptui.node.sources import open_live, open_source

    live = live_ok and (getattr(args, "live", False) or getattr(args, "netns", None))
    path = path if path is not None else getattr(args, "file", None)
    family = getattr(args, "family", None)
    with node_errors():
        if live:
            if path:
                raise UserError("give a FILE or --live/--netns, not both")
            snap = open_live(netns=args.netns, family=family or "ipv4", backend=backend_of(args))
        else:
            if not path:
                raise UserError("the following arguments are required: FILE (a dump or capture bundle; '-' reads "
                                "standard input), or --live to read this node's rules")  # fmt: skip
            want: bool | str = False if need_rules == "any" and getattr(args, "nft", None) else need_rules
            snap = open_source(path, family=family, backend=backend_of(args), limits=limits_of(args),
                               need_rules=want)  # fmt: skip
        nft_path = getattr(args, "nft", None)
        if nft_path:
            snap = _with_listing(snap, nft_path, limits_of(args))
        for kind, opt in (("ipset", "ipset"), ("ipvs", "ipvs")):
            if getattr(args, opt, None):
                snap = _with_part(snap, kind, getattr(args, opt), limits_of(args))
        if (need_rules is True if parse is None else parse) and snap.rules is not None:
            snap.parse_rules(progress)
            gc.freeze()
    return snap


def _with_part(snap: NodeSnapshot, kind: str, path: str, limits: Limits) -> NodeSnapshot:
    """``--ipset FILE`` / ``--ipvs FILE``: the snapshot with that file as its part (in place of a bundle's)."""
    from kptui.node.limits import inflate
    from kptui.node.parts import Artifact
    from kptui.node.sources import read_bytes

    data, name = read_bytes(path, limits)
    if data[:2] == b"\x1f\x8b":
        data = inflate(data, limits, what="gzip data")
    art = Artifact(name, kind, data)
    extra = {**snap.extra_sources, kind: name}
    if kind == "ipset":
        return dataclasses.replace(snap, ipsets=art, extra_sources=extra)
    return dataclasses.replace(snap, ipvs=art, extra_sources=extra)


def _with_listing(snap: NodeSnapshot, path: str, limits: Limits) -> NodeSnapshot:
    """``--nft LISTING``: the snapshot with that file as its nft ruleset (in place of a bundle's)."""
    from kptui.node.sources import read_source

    col = read_source(path, limits=limits)
    art = next((a for a in col.artifacts if a.kind == "nft-ruleset"), None)
    if art is None:
        raise UserError(f"{col.source}: --nft takes an nft listing (nft list ruleset, or nft -j list ruleset), and "
                        "this is not one")  # fmt: skip
    return dataclasses.replace(snap, nft=art, nft_source=col.source)


def netfilter_of(snap: NodeSnapshot, family: int) -> Netfilter:
    """What a trace of a packet of ``family`` walks: the snapshot's iptables dump of that family and its nft
    ruleset. A UserError when neither holds rules the packet meets (never an empty trace that looks clean)."""
    if not snap.has_rules:
        raise UserError(f"{snap.source}: holds no iptables rules and no nft ruleset")
    rules = snap.netfilter(family)  # a dump or listing that does not parse: ParseError, located
    fam = "ip6" if family == 6 else "ip"
    nft_tables = [t for t in rules.nft.tables if t.family in (fam, "inet")] if rules.nft is not None else []
    if not rules.xtables and not nft_tables:
        have = snap.family or ("ipv6" if family == 4 else "ipv4")
        raise UserError(f"{snap.source}: the packet is IPv{family}, and the source holds no IPv{family} rules "
                        f"(its rules are {have}; give a packet of that family, or the IPv{family} dump"
                        f"{' (-6)' if family == 6 else ''})")  # fmt: skip
    return rules


def node_for_trace(args: argparse.Namespace, given: NodeContext, snap: NodeSnapshot | None) -> NodeContext:
    """The bundle's/live node context, with whatever the node options said on top (a file's: the options)."""
    if snap is None:
        return given
    if not snap.captured:  # a file says nothing of the node; an IPVS-mode node's ipsets and table still count
        ipvs = snap.ipvs_node
        return ipvs.node_context(given) if ipvs is not None else given
    base = snap.node
    return dataclasses.replace(
        base, addresses=given.addresses if args.node_ip else base.addresses,
        pod_cidrs=given.pod_cidrs if args.pod_cidr else base.pod_cidrs,
        interfaces={**base.interfaces, **given.interfaces}, uplink=args.uplink or base.uplink,
        pod_iface=args.pod_iface or base.pod_iface, recent=given.recent, affinity=given.affinity,
    )  # fmt: skip
