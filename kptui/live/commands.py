"""The command-line side of live mode and bundles: ``--live``/``--netns`` for ``summary`` and ``trace``, bundles
wherever a dump is read, and the ``top``, ``capture``, ``deltas``, ``conntrack`` and ``trace-commands`` commands
(registered by :func:`add_commands` from :func:`kptui.cli.build_parser`).

Heavy modules (urllib, tarfile, the trace machinery) are imported by the commands that use them: building the
parser must stay cheap for ``kptui summary BIG.rules``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from kptui.bundle import NodeSnapshot
    from kptui.engine.model import Ruleset
    from kptui.engine.packet import NodeContext
    from kptui.top import Reading

__all__ = ["AppSource", "add_commands", "add_source_options", "app_source", "load_path", "load_source", "node_for_trace", "ruleset_from_bytes",
           "snapshot_report", "snapshot_text"]  # fmt: skip

MAX_GUNZIP = 2 << 30


def _user_error(message: str) -> Exception:
    from kptui.cli import UserError

    return UserError(message)


def add_source_options(p: argparse.ArgumentParser) -> None:
    """``--live``, ``--netns``, ``-4``/``-6``, ``--backend``: where the rules come from when not from FILE."""
    g = p.add_argument_group("live node (read-only; needs root)")
    g.add_argument("--live", action="store_true", help="read this node's running rules instead of a FILE")
    g.add_argument("--netns", metavar="NAME", help="read inside network namespace NAME (implies --live)")
    fam = g.add_mutually_exclusive_group()
    fam.add_argument("-4", dest="family", action="store_const", const="ipv4", help="IPv4 rules (the default)")
    fam.add_argument("-6", dest="family", action="store_const", const="ipv6", help="IPv6 rules")
    g.add_argument("--backend", choices=("nft", "legacy"),
                   help="the iptables backend to read (default: the one holding kube-proxy's rules)")


def _backend(args: argparse.Namespace) -> str | None:
    b = getattr(args, "backend", None)
    return {"nft": "nf_tables", "legacy": "legacy"}.get(b or "")


def load_path(path: str, *, family: str | None = None, backend: str | None = None) -> tuple[Ruleset, NodeSnapshot | None]:
    """A dump (plain or gzip'd) or a capture bundle, told apart by content; ``-`` is standard input."""
    from kptui.cli import read_input

    data, source = read_input(path)
    return ruleset_from_bytes(data, source, family=family, backend=backend)


def ruleset_from_bytes(data: bytes, source: str, *, family: str | None = None,
                       backend: str | None = None) -> tuple[Ruleset, NodeSnapshot | None]:  # fmt: skip
    """The ruleset in ``data``: a capture bundle's (with its snapshot), a gzip'd dump's or a plain dump's."""
    from kptui.engine import parse_ruleset_bytes

    if data[:2] != b"\x1f\x8b":  # not gzip: a plain dump (kptui.bundle, tarfile & co. are not needed)
        return parse_ruleset_bytes(data, source=source), None
    from kptui.bundle import NodeDataError, load_bundle, sniff

    kind = sniff(data)
    if kind == "bundle":
        try:
            snap = load_bundle(data, family=family, backend=backend, source=source)
        except NodeDataError as exc:  # BundleError included
            raise _user_error(f"{source}: {exc}") from None
        return snap.ruleset, snap
    if kind == "gzip":
        import zlib

        d = zlib.decompressobj(wbits=31)
        try:
            data = d.decompress(data, MAX_GUNZIP)
        except zlib.error as exc:
            raise _user_error(f"{source}: gzip data that cannot be read ({exc})") from None
        if not d.eof:
            raise _user_error(f"{source}: the gzip data is truncated (or expands beyond 2 GiB)")
    return parse_ruleset_bytes(data, source=source), None


def load_source(args: argparse.Namespace) -> tuple[Ruleset, NodeSnapshot | None]:
    """The ruleset a command works on: FILE (dump or bundle) or, with ``--live``/``--netns``, the live node."""
    live = getattr(args, "live", False) or getattr(args, "netns", None)
    family = getattr(args, "family", None)
    if live:
        from kptui.live.collect import LiveError, load_live

        if getattr(args, "file", None):
            raise _user_error("give a FILE or --live/--netns, not both")
        try:
            snap = load_live(netns=args.netns, family=family or "ipv4", backend=_backend(args))
        except LiveError as exc:
            raise _user_error(str(exc)) from None
        ruleset: Ruleset = snap.ruleset
        result: NodeSnapshot | None = snap
    else:
        if not getattr(args, "file", None):
            raise _user_error("the following arguments are required: FILE (a dump or capture bundle; '-' reads "
                              "standard input), or --live to read this node's rules")  # fmt: skip
        ruleset, result = load_path(args.file, family=family, backend=_backend(args))
    gc.freeze()  # as kptui.cli.load: the ruleset lives until the command ends
    return ruleset, result


def snapshot_report(snap: NodeSnapshot) -> dict[str, Any]:
    """Keys added to ``kptui summary --json`` for a live node or a bundle: ``node`` and ``capture``."""
    meta = {k: v for k, v in snap.metadata.items() if k != "node"}
    return {"node": dict(snap.metadata.get("node") or {}), "capture": meta}


def snapshot_text(snap: NodeSnapshot) -> str:
    from kptui.fmt import printable

    m = snap.metadata
    where = "live node" if snap.origin == "live" else "capture bundle"
    if m.get("netns"):
        where += f", network namespace {m['netns']}"
    out = [(f"Node ({where}; host {m.get('hostname')}, kernel {(m.get('kernel') or {}).get('release')}, "
           f"{'read' if snap.origin == 'live' else 'captured'} {m.get('created')}):")]  # fmt: skip
    for b, s in (m.get("backends") or {}).items():
        tool = f"{'ip6tables' if snap.family == 'ipv6' else 'iptables'}-{'nft' if b == 'nf_tables' else 'legacy'}"
        mark = " ← shown" if b == snap.backend else ""
        if s.get("read"):
            out.append(f"  {tool}: {s['rules']} rules" + (", kube-proxy chains" if s.get("kube") else "")
                       + f" (read in {s.get('seconds', 0):.2f} s){mark}")  # fmt: skip
        else:
            out.append(f"  {tool}: {s.get('error')}{mark}")
    mode = m.get("proxy_mode") or f"unknown ({m.get('proxy_mode_error') or 'not asked'})"
    out.append(f"  kube-proxy mode: {mode}")
    n = snap.node
    out.append(f"  addresses: {', '.join(n.addresses) or 'unknown'}")
    out.append(f"  uplink: {n.uplink or 'unknown'} · pod interface: {n.pod_iface or 'unknown'} · pod CIDRs: "
               f"{', '.join(n.pod_cidrs) or 'unknown'}")  # fmt: skip
    out.extend(f"  - {note}" for note in snap.facts.notes)
    return "\n".join(printable(line) for line in out)


def print_snapshot_warnings(snap: NodeSnapshot | None, err: TextIO) -> None:
    from kptui.fmt import printable

    for w in snap.warnings if snap is not None else ():
        print(f"kptui: warning: {printable(w)}", file=err)


def node_for_trace(args: argparse.Namespace, given: NodeContext, snap: NodeSnapshot | None) -> NodeContext:
    """The bundle's/live node context, with whatever the node options said on top."""
    if snap is None:
        return given
    base = snap.node
    return dataclasses.replace(
        base, addresses=given.addresses if args.node_ip else base.addresses,
        pod_cidrs=given.pod_cidrs if args.pod_cidr else base.pod_cidrs,
        interfaces={**base.interfaces, **given.interfaces}, uplink=args.uplink or base.uplink,
        pod_iface=args.pod_iface or base.pod_iface, recent=given.recent, affinity=given.affinity,
    )  # fmt: skip


# -- the explorer's rules --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AppSource:
    """What the explorer opens: a parsed ruleset (bundle, gzip), dump bytes (parsed behind the loading screen),
    or a live reader (read behind the loading screen, re-read with ``--watch``); and the node context."""

    name: str
    ruleset: Ruleset | None = None
    data: bytes | None = None
    reader: LiveReader | None = None
    watch: float | None = None
    node: NodeContext | None = None
    origin: str | None = None  # for the header


def app_source(args: argparse.Namespace, given: NodeContext | None) -> AppSource:
    """``kptui [FILE]``'s rules. A bundle's node context (addresses, pod CIDRs, interfaces) goes under the
    node options given; without FILE (or with ``--live``/``--netns``) the live node is read, read-only."""
    from kptui.cli import read_input
    from kptui.engine.packet import NodeContext

    live = args.live or args.netns or not args.file
    if args.watch is not None and args.watch <= 0:
        raise _user_error("--watch takes a number of seconds above 0")
    if not live:
        if args.watch is not None:
            raise _user_error("--watch re-reads the live rules: drop FILE (kptui --watch), or use kptui top")
        data, name = read_input(args.file)
        if data[:2] != b"\x1f\x8b":
            return AppSource(name, data=data, node=given)
        ruleset, snap = ruleset_from_bytes(data, name, family=args.family, backend=_backend(args))
        if snap is None:
            return AppSource(name, ruleset=ruleset, node=given)
        node = node_for_trace(args, given or NodeContext(), snap) if given is not None else snap.node
        m = snap.metadata
        origin = f"capture bundle {name}: host {m.get('hostname')}, captured {m.get('created')}"
        return AppSource(name, ruleset=ruleset, node=node, origin=origin)
    if args.file:
        raise _user_error("give a FILE or --live/--netns, not both")
    reader = LiveReader(args.netns, args.family or "ipv4", _backend(args))
    origin = "live node" + (f", network namespace {args.netns}" if args.netns else "") + " (read-only)"
    return AppSource(reader.source, reader=reader, watch=args.watch, node=given, origin=origin)


# -- kptui top ------------------------------------------------------------------------------------------------
class LiveReader:
    """One read of the live rules per call: the first through :func:`load_live` (which picks the backend),
    then only that backend's save command."""

    def __init__(self, netns: str | None, family: str, backend: str | None) -> None:
        self.netns, self.family, self.backend = netns, family, backend
        self.source = f"live (netns {netns})" if netns else "live"
        self.warnings: tuple[str, ...] = ()
        # the first read's node context and metadata (not its snapshot: that would pin the first ruleset)
        self.node: NodeContext | None = None
        self.metadata: dict[str, Any] = {}

    def __call__(self) -> Reading:
        from kptui.engine import ParseError, parse_ruleset_bytes
        from kptui.live.collect import SAVE_TIMEOUT, LiveError, _tool, load_live
        from kptui.live.runner import run_readonly
        from kptui.top import ReadFailed, Reading

        cpu0, wall0 = time.process_time(), time.perf_counter()
        if self.backend is None:
            try:
                snap = load_live(netns=self.netns, family=self.family)
            except LiveError as exc:
                raise ReadFailed(str(exc)) from None
            except ParseError as exc:
                raise ReadFailed(exc.diagnostic.format(quote=False)) from None
            self.backend, self.warnings = snap.backend, snap.warnings
            self.node, self.metadata = snap.node, dict(snap.metadata)
            cmds = snap.metadata.get("commands", ())
            child = sum(c.get("cpu_seconds") or 0.0 for c in cmds)
            save = next((c["seconds"] for c in cmds if c["command"].startswith(_tool(self.family, snap.backend or ""))),
                        0.0)  # fmt: skip
            wall = time.perf_counter() - wall0
            return Reading.of(snap.ruleset, wall, time.process_time() - cpu0 + child, self.source,
                              at=time.monotonic() - wall + save / 2)  # fmt: skip
        r = run_readonly([_tool(self.family, self.backend), "-c"], netns=self.netns, timeout=SAVE_TIMEOUT)
        # the counters were read at some moment of the save: its middle is the best estimate for the rates
        sampled = time.monotonic() - r.seconds / 2
        if not r.ok:
            raise ReadFailed(r.describe_failure())
        data = r.stdout
        tables = data.count(b"\n*") + data.startswith(b"*")
        if data.count(b"\nCOMMIT\n") + data.startswith(b"COMMIT\n") < tables:
            raise ReadFailed(f"{r.display}: incomplete output (a table without COMMIT)")
        try:
            ruleset = parse_ruleset_bytes(data, source=f"{self.source}: {r.display}")
        except ParseError as exc:
            raise ReadFailed(exc.diagnostic.format(quote=False)) from None
        reading = Reading.of(ruleset, time.perf_counter() - wall0, time.process_time() - cpu0 + r.cpu_seconds,
                             self.source, at=sampled)  # fmt: skip
        del ruleset
        return reading


def cmd_top(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.top import run_top

    if args.interval <= 0:
        raise _user_error("--interval must be more than 0 seconds")
    reader = LiveReader(args.netns, args.family or "ipv4", _backend(args))
    try:
        return run_top(reader, out, interval=args.interval, once=args.once, filter_text=args.filter,
                       warnings=lambda: reader.warnings)  # fmt: skip
    except KeyboardInterrupt:
        return 0


# -- kptui capture ------------------------------------------------------------------------------------------------
def cmd_capture(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.bundle import encode_bundle
    from kptui.fmt import printable
    from kptui.live.collect import LiveError, collect

    if args.output == "-" and sys.stdout.isatty():
        raise _user_error("-o - writes the binary bundle to standard output, which is a terminal (redirect it)")
    start = time.perf_counter()
    try:
        col = collect(netns=args.netns, families=("ipv4", "ipv6"), conntrack=not args.no_conntrack, extras=True)
    except LiveError as exc:
        raise _user_error(str(exc)) from None
    rules = [a for a in col.artifacts if a.kind == "rules"]
    if not any(a.ok for a in rules):
        why = "; ".join(f"{' '.join(a.command)}: {a.error or a.stderr.strip() or a.status}" for a in rules)
        raise _user_error(f"no rules could be read, nothing written ({why})")
    data = encode_bundle(col, mtime=float(col.facts.get("created_unix") or 0))
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _write_private(args.output, data)
    parts = []
    for a in col.artifacts:
        if a.kind == "rules" and a.ok:
            n = a.data.count(b"-A ")
            parts.append(f"{' '.join(a.command)}: {n} rules" if n else f"{' '.join(a.command)}: empty")
        elif a.kind == "conntrack" and a.ok:
            lines = a.data.count(b"\n")
            parts.append(f"conntrack {a.family}: {lines} entries")
        elif a.command and not a.ok and not (a.error or "").startswith("not run"):
            parts.append(f"{' '.join(a.command)}: {a.error or f'exit status {a.status}'}")
    mode = col.facts.get("proxy_mode") or "unknown"
    print(printable(f"kptui: wrote {args.output} ({len(data)} bytes, {time.perf_counter() - start:.1f} s): "
                    + "; ".join(parts) + f"; kube-proxy mode {mode}"), file=err)  # fmt: skip
    return 0


def _write_private(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600: a bundle describes the node) through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise _user_error(f"cannot write {path}: {exc.strerror or exc}") from None


def add_commands(sub: Any) -> None:
    """Register ``top``, ``capture``, ``deltas``, ``conntrack`` and ``trace-commands``."""
    from kptui.cli import add_packet_options

    from .cmd_conntrack import add_conntrack_command
    from .cmd_deltas import add_deltas_command, add_trace_commands_command

    p = sub.add_parser("top", help="which rules are hot right now: live counter deltas, redrawn like watch -d",
                       description="Watch the live rules' counters: per rule and chain the packets and bytes since "
                       "the last read and since the start, hottest first; rising DROP/REJECT counters highlighted. "
                       "The interval adapts so reading uses at most ~10%% of one core.")  # fmt: skip
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="seconds between reads (default 2)")
    p.add_argument("--filter", metavar="TEXT", help="only chains/rules whose name, text or service contains TEXT")
    p.add_argument("--once", action="store_true", help="read twice, INTERVAL apart, print one frame and exit")
    add_source_options(p)
    p.set_defaults(handler=cmd_top)
    p = sub.add_parser("capture", help="save the node's rules, addresses, routes, conntrack… in one bundle file",
                       description="Read the node (read-only) and write a capture bundle: the rule dumps (both "
                       "families, both backends), addresses, routes, conntrack -L, kube-proxy's mode, kernel and "
                       "iptables versions. Open it anywhere with kptui summary/trace BUNDLE.")  # fmt: skip
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the bundle to write ('-': standard output)")
    p.add_argument("--netns", metavar="NAME", help="read inside network namespace NAME")
    p.add_argument("--no-conntrack", action="store_true", help="leave the conntrack table out")
    p.set_defaults(handler=cmd_capture)
    add_deltas_command(sub)
    add_conntrack_command(sub, add_source_options)
    add_trace_commands_command(sub, add_packet_options)
