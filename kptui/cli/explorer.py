"""``kptui [FILE|-] [packet options]``: the interactive explorer's side of the command line.

It tells the explorer's invocation from the commands', gets what the app is given from a snapshot (the dump,
a bundle's rules and node context) or a live reader (:mod:`kptui.node`), reads a kernel trace log, hands the
app its only file writer, takes keys from the terminal when the dump came through standard input, and starts
the app. The app itself reads no files and runs no commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import secrets
import stat
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from kptui.engine.errors import printable

from .common import (
    COMMAND_NAMES,
    UserError,
    add_packet_options,
    add_source_options,
    backend_of,
    load_snapshot,
    node_for_trace,
    node_from_args,
    packet_from_args,
)

if TYPE_CHECKING:
    from kptui.engine.kernel_replay_walks import KernelWalks
    from kptui.engine.model import Ruleset
    from kptui.engine.packet import NodeContext
    from kptui.node.live import LiveReader
    from kptui.node.snapshot import NodeSnapshot
    from kptui.ui.fleet_source import FleetSource

__all__ = ["AppSource", "app_source", "build_app_parser", "cmd_app", "is_app_invocation", "load_kernel_log",
           "write_text"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AppSource:
    """What the explorer opens: a parsed ruleset, dump bytes (a plain dump's, parsed behind the loading screen), a
    snapshot (an nft listing, a dump with ``--nft``/``--ipset``/``--ipvs``, a bundle: parsed behind the loading
    screen, traced through its netfilter as ``kptui trace`` does), or a live reader (read behind the loading screen,
    re-read with ``--watch``); and the node context."""

    name: str
    ruleset: Ruleset | None = None
    data: bytes | None = None
    snapshot: NodeSnapshot | None = None
    reader: LiveReader | None = None
    watch: float | None = None
    node: NodeContext | None = None
    origin: str | None = None  # for the header
    fleet: FleetSource | None = None  # a fleet directory or several bundles: the fleet screen


def is_fleet(args: argparse.Namespace) -> bool:
    """``kptui DIR`` on a fleet capture directory (or one of bundles), or ``kptui A.kptui B.kptui …``."""
    from kptui.node.fleet import is_fleet_dir

    return bool(args.file) and (bool(getattr(args, "more", None)) or is_fleet_dir(args.file))


def fleet_app_source(args: argparse.Namespace) -> AppSource:
    """The fleet screen's nodes: every bundle the paths name, read and compared (a node that cannot be read
    is listed as a failed capture)."""
    import gc

    from kptui.ui.fleet_source import fleet_source

    from .fleet import load_fleet

    if args.live or args.netns or args.watch is not None:
        raise UserError("a fleet is read from its capture bundles: drop --live, --netns and --watch")
    if args.kernel_trace is not None:
        raise UserError("--kernel-trace compares a log with one node's rules: open that node's bundle")
    paths = [args.file, *args.more]
    parts = load_fleet(paths, args)
    if not parts:
        raise UserError("no node to compare")
    gc.freeze()  # the nodes' rules live as long as the app
    name = paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"
    fleet = fleet_source(parts, name)
    return AppSource(name, fleet=fleet, origin=f"fleet {name}")


def app_source(args: argparse.Namespace, given: NodeContext | None) -> AppSource:
    """``kptui [FILE]``'s rules, from the snapshot of FILE: a plain dump's bytes, or the snapshot of anything else
    (an nft listing, text or ``nft -j``; a dump with ``--nft LISTING``, ``--ipset``, ``--ipvs``; a bundle, with its
    node context under the node options given); without FILE (or with ``--live``/``--netns``) a reader of the live
    node, read-only. A fleet directory, or several bundles: the fleet screen's nodes (:func:`fleet_app_source`)."""
    from kptui.engine.packet import NodeContext

    if is_fleet(args):
        return fleet_app_source(args)
    live = args.live or args.netns or not args.file
    if args.watch is not None and args.watch <= 0:
        raise UserError("--watch takes a number of seconds above 0")
    if not live:
        if args.watch is not None:
            raise UserError("--watch re-reads the live rules: drop FILE (kptui --watch), or use kptui top")
        # parsed behind the loading screen (a dump, a listing, a bundle's parts)
        snap = load_snapshot(args, live_ok=False, parse=False, need_rules="any")
        if not snap.captured:
            if snap.rules is not None and snap.nft is None and snap.ipsets is None and snap.ipvs is None:
                return AppSource(snap.source, data=snap.rules.data, node=given)  # a plain dump
            node = node_for_trace(args, given or NodeContext(), snap) if given is not None or \
                snap.ipvs_node is not None else None  # fmt: skip
            return AppSource(snap.source, snapshot=snap, node=node)
        node = node_for_trace(args, given or NodeContext(), snap) if given is not None else snap.node
        m = snap.metadata
        origin = f"capture bundle {snap.source}: host {m.get('hostname')}, captured {m.get('created')}"
        return AppSource(snap.source, snapshot=snap, node=node, origin=origin)
    if args.file:
        raise UserError("give a FILE or --live/--netns, not both")
    from kptui.node.live import LiveReader

    reader = LiveReader(args.netns, args.family or "ipv4", backend_of(args))
    origin = "live node" + (f", network namespace {args.netns}" if args.netns else "") + " (read-only)"
    return AppSource(reader.source, reader=reader, watch=args.watch, node=given, origin=origin)


def _open_terminal_as_stdin() -> None:
    """The dump came through standard input (or stdin is not a terminal): take keys from /dev/tty."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        raise UserError("the explorer needs a terminal for its keys, and there is none here (no /dev/tty); "
                        "use kptui summary or kptui trace for text output") from None  # fmt: skip
    os.dup2(fd, 0)
    os.close(fd)


MAX_KERNEL_LOG = 512 * 1024 * 1024


def load_kernel_log(path: str, *, live: bool = False) -> KernelWalks:
    """Read and check ``--kernel-trace PATH``: a UserError (file, line, what is wrong) unless it holds a
    traversal whose packet the engine can simulate."""
    from kptui.node.errors import InputTooLarge
    from kptui.node.limits import Limits, read_bounded
    from kptui.ui.kernel_trace_view import parse_kernel_log

    if live:
        raise UserError("--kernel-trace compares the log with a dump: give the dump or capture bundle as FILE")
    try:
        with open(path, "rb") as f:
            data = read_bounded(f, Limits(max_input=MAX_KERNEL_LOG, explicit=True))
    except InputTooLarge:
        raise UserError(f"{printable(path)}: the kernel trace log is over {MAX_KERNEL_LOG >> 20} MB") from None
    except OSError as exc:
        raise UserError(f"cannot read the kernel trace log {printable(path)}: {exc.strerror or exc}") from None
    try:
        return parse_kernel_log(data, path)
    except ValueError as exc:
        text = str(exc)
        raise UserError(text if text.startswith(printable(path)) else f"{printable(path)}: {text}") from None


def write_text(path: str, text: str, *, replace: bool = False) -> bool:
    """The explorer's writer (``ctrl+s`` saves a trace, :class:`kptui.ui.export.Writer`): ``text`` written
    to ``path`` (``~`` expanded) atomically, through a temporary file beside it and a rename. A file already
    there is replaced only with ``replace`` (else FileExistsError, and nothing is written: the dialog asks
    first); True when one was. A symbolic link keeps pointing where it did: the file it names is written. Any other
    failure is an OSError whose ``strerror`` the dialog shows; no temporary file is left behind."""
    try:
        return _write_file(os.path.expanduser(path), text.encode("utf-8", "backslashreplace"), replace)
    except ValueError:  # a NUL (or a lone surrogate) in the name
        raise OSError(errno.EINVAL, "that is not a name a file can have") from None


def _write_file(target: str, data: bytes, replace: bool) -> bool:
    if not os.path.basename(target):
        raise IsADirectoryError(errno.EISDIR, "that names a directory: add a file name")
    real = os.path.realpath(target) if os.path.islink(target) else target
    if os.path.isdir(real):
        raise IsADirectoryError(errno.EISDIR, "that is a directory: add a file name")
    folder = os.path.dirname(real) or "."
    if not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise NotADirectoryError(errno.ENOTDIR, f"{printable(folder)} is not a directory")
        raise FileNotFoundError(errno.ENOENT, f"there is no directory {printable(folder)}")
    existed = os.path.lexists(target)
    if existed and not replace:
        raise FileExistsError(errno.EEXIST, "a file of that name exists")
    mode = stat.S_IMODE(os.stat(real).st_mode) if os.path.isfile(real) else None
    tmp = _temporary_copy(real, data, mode)
    try:
        if existed:
            os.replace(tmp, real)
        else:
            _link_new(tmp, real)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return existed


def _temporary_copy(real: str, data: bytes, mode: int | None) -> str:
    """``data`` in a new file beside ``real`` (the mode of the file it replaces, else 0666 less the umask)."""
    name = f".{os.path.basename(real)}.{secrets.token_hex(6)}.kptui-tmp"
    tmp = os.path.join(os.path.dirname(real) or ".", name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:  # not the target: FileExistsError means "the file is there" to the dialog
        raise OSError(errno.EBUSY, f"a temporary file {printable(tmp)} is in the way") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _link_new(tmp: str, real: str) -> None:
    """Put the new file in place, never over one that appeared since the check (a hard link fails if the
    name is taken; on a file system without hard links, the check has to do)."""
    try:
        os.link(tmp, real)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "a file of that name exists") from None
    except OSError:
        if os.path.lexists(real):
            raise FileExistsError(errno.EEXIST, "a file of that name exists") from None
        os.replace(tmp, real)


def cmd_app(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``kptui [FILE|-] [packet options]``: the interactive explorer, on a dump, a capture bundle (with its node
    context) or, without FILE, the live node's rules (read-only), re-read every ``--watch`` seconds."""
    packet = node = None
    if is_fleet(args) and (args.src or args.dst or any((args.node_ip, args.pod_cidr, args.iface, args.uplink,
                                                          args.pod_iface, args.recent, args.affinity_hit))):
        raise UserError("each node of a fleet brings its own addresses and interfaces, and the fleet screen "
                        "traces a packet on every node (its pane 4; kptui fleet DIR --src … --dst … prints it): "
                        "the packet and node options do not apply here")  # fmt: skip
    if args.src or args.dst:
        if not (args.src and args.dst):
            raise UserError("--src and --dst go together: give both to trace a packet when the explorer opens")
        packet, node = packet_from_args(args)
    elif any((args.node_ip, args.pod_cidr, args.iface, args.uplink, args.pod_iface, args.recent,
              args.affinity_hit)):  # fmt: skip
        node = node_from_args(args)
    if args.file and args.file != "-" and not os.path.exists(args.file) and not any(c in args.file for c in "./"):
        names = ", ".join(sorted(args.command_names or COMMAND_NAMES))
        raise UserError(f"invalid choice: '{args.file}' is neither a command ({names}) nor a file")
    if is_fleet(args):
        print(printable(f"kptui: reading the nodes of {args.file} …"), file=err, flush=True)
    source = app_source(args, node)  # reads FILE (a dump, a bundle, a fleet), or prepares the live reader
    kernel = None
    if args.kernel_trace is not None:  # a kernel trace log to replay against FILE (UserError: file and line)

        kernel = load_kernel_log(args.kernel_trace, live=source.reader is not None)
        if source.snapshot is not None and source.snapshot.rules is None:
            raise UserError("--kernel-trace replays the log against iptables rules, and "
                            f"{printable(source.name)} holds only an nft ruleset")  # fmt: skip
    if not sys.__stderr__ or not sys.__stderr__.isatty():
        raise UserError("the explorer draws on the terminal through standard error, which is not a terminal "
                        "here; use kptui summary or kptui trace for text output")  # fmt: skip
    if not os.isatty(0):
        _open_terminal_as_stdin()
    from kptui.ui.app import make_app

    app = make_app(writer=write_text, ruleset=source.ruleset, data=source.data, source=source.name, packet=packet,
                   node=source.node, all_hops=args.all_hops, reader=source.reader, watch=source.watch,
                   origin=source.origin, kernel=kernel, snapshot=source.snapshot, fleet=source.fleet)  # fmt: skip
    del source  # the app holds what it needs: a dump's bytes go once it has decoded them (see KptuiApp._load)
    app.run()
    if app.error_message:
        print(app.error_message, file=err)
    return app.return_code or 0


def build_app_parser(commands: frozenset[str] = frozenset()) -> argparse.ArgumentParser:
    """The explorer's parser; ``commands`` (the subcommands' names) for the message when FILE is neither."""
    p = argparse.ArgumentParser(
        prog="kptui",
        description="Explore rules interactively: the chain tree, each rule decoded, and packet traces you can "
        "step through hop by hop. Without FILE, this node's live rules (read-only; needs root). With "
        "--src/--dst the packet is traced as the explorer opens.",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="a dump or capture bundle (a bundle brings its node "
                   "context); '-' reads standard input (keys then come from the terminal); a kptui fleet capture "
                   "directory: the fleet screen (its nodes compared, each node's explorer one key away); none: "
                   "the live node")  # fmt: skip
    p.add_argument("more", metavar="BUNDLE", nargs="*", help="more capture bundles: the fleet screen on FILE and "
                   "these")  # fmt: skip
    add_packet_options(p, required=False)
    p.add_argument("--all-hops", action="store_true", help="list every hop of a trace, not only the matches")
    p.add_argument("--kernel-trace", metavar="LOG", help="open on a real kernel trace log (xtables-monitor --trace "
                   "or nft monitor trace output; kptui trace-commands prints how to capture one), stepped like a "
                   "trace and compared hop by hop with the engine's simulation of the same packet")  # fmt: skip
    add_source_options(p)
    p.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS",
                   help="live mode: re-read the rules every SECONDS (default 2; at least 10x the time a read "
                   "takes) and show what moved: per-rule deltas in the tree, h lists the hottest rules")
    p.set_defaults(handler=cmd_app, command_names=commands)
    return p


APP_OPTIONS_FIRST = ("-", "--live", "--netns", "--watch", "-4", "-6", "--backend", "--src", "--dst")


def is_app_invocation(argv: Sequence[str], commands: frozenset[str] = COMMAND_NAMES) -> bool:
    """``kptui``, ``kptui FILE …``, ``kptui --live …``: the explorer. ``kptui COMMAND …``, ``kptui -h`` and
    ``kptui --version``: the commands' parser."""
    if not argv:
        return True
    first = argv[0]
    if first.startswith("-") and first != "-":
        return first.split("=", 1)[0] in APP_OPTIONS_FIRST or first.startswith("--") and first not in (
            "--help", "--version")  # fmt: skip
    return first not in commands
