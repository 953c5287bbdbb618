"""The commands of the live node: ``kptui top`` (which rules are hot right now) and ``kptui capture`` (the node's
snapshot, written as a capture bundle). Both read through :mod:`kptui.node` (read-only, a fixed list of
commands); capture writes the one file it is told to."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from kptui.fmt import plural

from .common import UserError, add_source_options, backend_of, node_errors
from .remote import add_remote_options, check_limits, interrupts, kubectl_node, ssh_node, tell_cleanup

__all__ = ["add_live_commands"]

NL = b"\n"
SYSCTL_ENTRY = b'": '  # one per name in node/sysctls.json


def cmd_top(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.node.live import LiveReader
    from kptui.top import run_top

    if args.interval <= 0:
        raise UserError("--interval must be more than 0 seconds")
    reader = LiveReader(args.netns, args.family or "ipv4", backend_of(args))
    try:
        return run_top(reader, out, interval=args.interval, once=args.once, filter_text=args.filter,
                       warnings=lambda: reader.warnings)  # fmt: skip
    except KeyboardInterrupt:
        return 0


def _summary(col: Any) -> list[str]:
    """What the capture holds, one phrase per part (for the line on standard error)."""
    parts = []
    for a in col.artifacts:
        what = " ".join(a.command)
        if a.kind == "rules" and a.ok:
            n = a.data.count(b"-A ")
            parts.append(f"{what}: {n} rules" if n else f"{what}: empty")
        elif a.kind == "conntrack" and a.ok:
            parts.append(f"conntrack {a.family}: {plural(a.data.count(NL), 'entry', 'entries')}")
        elif a.kind == "nft-ruleset" and a.ok:
            parts.append(f"nft ruleset: {len(a.data)} bytes")
        elif a.kind == "ipset" and a.ok:
            parts.append(f"ipsets: {plural(a.data.count(b'create '), 'set')}")
        elif a.kind == "ipvs" and a.ok:
            parts.append(f"IPVS: {plural(a.data.count(b'-A '), 'virtual service')}")
        elif a.kind == "sysctl" and a.ok:
            parts.append(f"sysctls: {a.data.count(SYSCTL_ENTRY)}")
        elif a.command and not a.ok and not (a.error or "").startswith("not run"):
            parts.append(f"{what}: {a.error or f'exit status {a.status}'}")
    return parts


def cmd_capture(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.node.collect import collect

    if args.output == "-" and sys.stdout.isatty():
        raise UserError("-o - writes the binary bundle to standard output, which is a terminal (redirect it)")
    if args.kubectl or args.ssh:
        return _capture_remote(args, err)
    for option in ("context", "namespace", "image"):
        if getattr(args, option):
            raise UserError(f"--{option} goes with --kubectl node/NAME")
    start = time.perf_counter()
    with node_errors():
        col = collect(netns=args.netns, families=("ipv4", "ipv6"), conntrack=not args.no_conntrack, extras=True)
    rules = [a for a in col.artifacts if a.kind == "rules"]
    if not any(a.ok for a in rules):
        why = "; ".join(f"{' '.join(a.command)}: {a.error or a.stderr.strip() or a.status}" for a in rules)
        raise UserError(f"no rules could be read, nothing written ({why})")
    _write_bundle(args.output, col, err, start)
    return 0


def _write_bundle(output: str, col: Any, err: TextIO, start: float, where: str = "") -> None:
    """The bundle of ``col`` written to ``output`` (``-``: standard output), and a line saying what it holds."""
    from kptui.fmt import printable
    from kptui.node.bundle import encode_bundle

    data = encode_bundle(col, mtime=float(col.facts.get("created_unix") or 0))
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _write_private(output, data)
    mode = col.facts.get("proxy_mode") or "unknown"
    print(printable(f"kptui: wrote {output} ({len(data)} bytes, {time.perf_counter() - start:.1f} s{where}): "
                    + "; ".join(_summary(col)) + f"; kube-proxy mode {mode}"), file=err)  # fmt: skip


def _capture_remote(args: argparse.Namespace, err: TextIO) -> int:
    """``kptui capture --kubectl node/NAME`` / ``--ssh [USER@]HOST``: the same capture, read from afar; the debug
    pod is deleted whatever happens (a failure, a timeout, ctrl-c)."""
    from kptui.fmt import printable
    from kptui.node.remote_capture import capture_all

    if args.netns:
        raise UserError("--netns reads a namespace of this machine; a remote node is read as a whole")
    check_limits(args)
    node = kubectl_node(args, args.kubectl) if args.kubectl else ssh_node(args, args.ssh)
    start = time.perf_counter()
    try:
        with interrupts():
            run = capture_all([node], parallel=1, timeout=args.timeout, conntrack=not args.no_conntrack,
                              on_interrupt=tell_cleanup(err))  # fmt: skip
    except KeyboardInterrupt:
        pod = getattr(node, "pod", None)
        if pod is not None:
            gone = getattr(node, "deleted", False)
            print(printable(f"kptui: interrupted; the debug pod {pod} was " + ("deleted" if gone else
                            f"NOT deleted: {node.delete_error}")), file=err)  # fmt: skip
        raise
    cap = run.done[0]
    if cap.cleanup_error:
        print(printable(f"kptui: warning: {cap.cleanup_error}"), file=err)
    if cap.collection is None or cap.error:
        raise UserError(f"node {node.name}: {cap.error or 'nothing was read'}; nothing written")
    _write_bundle(args.output, cap.collection, err, start, f", node {node.name} via {node.transport}")
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
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def add_live_commands(sub: Any) -> None:
    """Register ``top`` and ``capture``."""
    p = sub.add_parser("top", help="which rules are hot right now: live counter deltas, redrawn like watch -d",
                       description="Watch the live rules' counters: per rule and chain the packets and bytes since "
                       "the last read and since the start, hottest first; rising DROP/REJECT counters highlighted. "
                       "The interval adapts so reading uses at most ~10%% of one core.")  # fmt: skip
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="seconds between reads (default 2)")
    p.add_argument("--filter", metavar="TEXT", help="only chains/rules whose name, text or service contains TEXT")
    p.add_argument("--once", action="store_true", help="read twice, INTERVAL apart, print one frame and exit")
    add_source_options(p)
    p.set_defaults(handler=cmd_top)
    p = sub.add_parser("capture", help="save the node's rules, nft ruleset, ipsets, IPVS, addresses, routes, "
                       "sysctls, conntrack… in one bundle file",
                       description="Read the node (read-only) and write a capture bundle (format 2): the rule dumps "
                       "(both families, both backends), the whole nft ruleset (nft -j), ipset save, the IPVS table "
                       "(ipvsadm -S -n, when IPVS is loaded), addresses, routes and policy rules, the sysctls that "
                       "change forwarding, conntrack -L, kube-proxy's mode, kernel and iptables versions. Open it "
                       "anywhere with kptui summary/trace BUNDLE.")  # fmt: skip
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the bundle to write ('-': standard output)")
    p.add_argument("--netns", metavar="NAME", help="read inside network namespace NAME")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--kubectl", metavar="node/NAME", help="read Kubernetes node NAME through kubectl debug (a "
                       "debug pod that only sleeps; deleted afterwards): docs/fleet.md")  # fmt: skip
    where.add_argument("--ssh", metavar="[USER@]HOST", help="read the node over ssh, each command with sudo -n")
    p.add_argument("--no-conntrack", action="store_true", help="leave the conntrack table out")
    add_remote_options(p, conntrack=False)
    p.set_defaults(handler=cmd_capture)
