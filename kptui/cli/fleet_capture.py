"""``kptui fleet capture``: every node of a cluster (``kubectl get nodes``, or ``-l SELECTOR``; or the hosts of an
``--ssh-hosts`` file), N at a time, one capture bundle per node in DIR and an index (``DIR/fleet.json``) that
says what became of each node: written, or failed with its cause and the command that retries it."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from typing import Any, TextIO

from kptui.engine.errors import printable

from .common import UserError
from .remote import (
    add_remote_options,
    check_limits,
    interrupts,
    kubectl_node,
    retry_command,
    ssh_node,
    tell_cleanup,
)

__all__ = ["INDEX", "build_fleet_capture_parser", "cmd_fleet_capture", "read_ssh_hosts"]

INDEX = "fleet.json"
FORMAT = "kptui-fleet"
MAX_HOSTS_FILE = 1 << 20


def read_ssh_hosts(path: str) -> list[tuple[str, str]]:
    """``--ssh-hosts FILE``: one ``[USER@]HOST [NAME]`` per line (``#`` comments, blank lines skipped); the
    targets and node names, checked (UserError with the file and line)."""
    from kptui.live.remote_argv import RemoteArgumentError, SshTarget

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_HOSTS_FILE + 1)
    except OSError as exc:
        raise UserError(f"cannot read {printable(path)}: {exc.strerror or exc}") from None
    if len(data) > MAX_HOSTS_FILE:
        raise UserError(f"{printable(path)}: more than 1 MiB; an ssh hosts file lists one host per line")
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for lineno, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{printable(path)}:{lineno}"
        if len(words) > 2:
            raise UserError(f"{where}: expected '[USER@]HOST [NAME]', got {printable(raw.strip()[:80])!r}")
        try:
            t = SshTarget(words[0], name=words[1] if len(words) == 2 else "")
        except RemoteArgumentError as exc:
            raise UserError(f"{where}: {exc}") from None
        if t.node in seen:
            raise UserError(f"{where}: node {t.node} is listed twice (give each host a NAME of its own)")
        seen.add(t.node)
        out.append((t.target, t.node))
    if not out:
        raise UserError(f"{printable(path)}: lists no host")
    return out


def _targets(args: argparse.Namespace) -> tuple[str, list[Any]]:
    if args.ssh_hosts:
        if args.selector:
            raise UserError("-l/--selector picks Kubernetes nodes; --ssh-hosts names the hosts itself")
        return "ssh", [ssh_node(args, target, name) for target, name in read_ssh_hosts(args.ssh_hosts)]
    from kptui.live.remote import RemoteError, list_nodes
    from kptui.live.remote_argv import RemoteArgumentError

    try:
        names = list_nodes(args.context, args.selector)
    except (RemoteError, RemoteArgumentError) as exc:
        raise UserError(f"cannot list the cluster's nodes: {exc}") from None
    if not names:
        raise UserError("kubectl lists no node" + (f" matching -l {args.selector}" if args.selector else ""))
    return "kubectl", [kubectl_node(args, n) for n in names]


class Progress:
    """A bar on a terminal (redrawn), a line per node otherwise."""

    def __init__(self, err: TextIO, total: int) -> None:
        self.err, self.total = err, total
        self.tty = hasattr(err, "isatty") and err.isatty()
        self.start = time.monotonic()

    def bar(self, run: Any) -> None:
        if not self.tty:
            return
        done, width = len(run.done), 30
        fill = int(width * done / max(1, self.total))
        running = ", ".join(sorted(run.running)[:4]) + (" …" if len(run.running) > 4 else "")
        line = (f"[{'#' * fill}{'.' * (width - fill)}] {done}/{self.total} nodes, {run.failed} failed · "
                f"{int(time.monotonic() - self.start)} s · reading: {running or '-'}")  # fmt: skip
        self.err.write("\r" + printable(line[:120]).ljust(120))
        self.err.flush()

    def node(self, cap: Any, note: str) -> None:
        if self.tty:
            self.err.write("\r" + " " * 120 + "\r")
        print(printable(f"kptui: node {cap.name}: {note}"), file=self.err, flush=True)


def cmd_fleet_capture(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kptui.node.bundle import encode_bundle
    from kptui.node.remote_capture import capture_all

    from .live import _write_private

    check_limits(args)
    transport, nodes = _targets(args)
    try:
        os.makedirs(args.output, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {printable(args.output)}: {exc.strerror or exc}") from None
    if not os.path.isdir(args.output):
        raise UserError(f"{printable(args.output)} is not a directory")
    targets = {n.name: getattr(getattr(n, "target", None), "target", n.name) for n in nodes}
    entries: dict[str, dict[str, Any]] = {}
    progress = Progress(err, len(nodes))

    def done(cap: Any) -> None:
        entry: dict[str, Any] = {"name": cap.name, "file": None, "status": "failed", "error": cap.error,
                                 "seconds": round(cap.seconds, 3), "pod": cap.pod, "cleanup_error": cap.cleanup_error,
                                 "retry": None}  # fmt: skip
        if cap.ok:
            name = f"{cap.name}.kptui"
            col = cap.collection
            _write_private(os.path.join(args.output, name), encode_bundle(col, mtime=float(col.facts.get(
                "created_unix") or 0)))  # fmt: skip
            entry.update(file=name, status="ok")
            progress.node(cap, f"ok ({cap.seconds:.1f} s)")
        else:
            entry["retry"] = retry_command(args, transport, cap.name, targets[cap.name],
                                           os.path.join(args.output, f"{cap.name}.kptui"))
            progress.node(cap, f"FAILED: {cap.error}")
        if cap.cleanup_error:
            print(printable(f"kptui: warning: node {cap.name}: {cap.cleanup_error}"), file=err)
        entries[cap.name] = entry

    interrupted = False
    try:
        with interrupts():
            capture_all(nodes, parallel=args.parallel, timeout=args.timeout, conntrack=not args.no_conntrack,
                        progress=progress.bar, on_done=done, on_interrupt=tell_cleanup(err))  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
    for n in nodes:
        entries.setdefault(n.name, {"name": n.name, "file": None, "status": "not run", "error": "interrupted",
                                    "seconds": 0.0, "pod": None, "cleanup_error": None,
                                    "retry": retry_command(args, transport, n.name, targets[n.name],
                                                           os.path.join(args.output, f"{n.name}.kptui"))})
    index = {"format": FORMAT, "format_version": 1,
             "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
             "transport": transport, "context": args.context, "namespace": args.namespace,
             "selector": args.selector, "ssh_hosts": args.ssh_hosts, "image": args.image, "tools": args.tools,
             "interrupted": interrupted, "seconds": round(time.monotonic() - progress.start, 3),
             "nodes": [entries[n.name] for n in nodes]}  # fmt: skip
    _write_private(os.path.join(args.output, INDEX), json.dumps(index, indent=2).encode() + b"\n")
    failed = [e for e in index["nodes"] if e["status"] != "ok"]
    ok = len(nodes) - len(failed)
    print(printable(f"kptui: {ok} of {len(nodes)} nodes captured into {args.output} "
                    f"({time.monotonic() - progress.start:.1f} s)" + (", interrupted" if interrupted else "")),
          file=err)  # fmt: skip
    for e in failed:
        print(printable(f"  {e['name']}: {e['error']}\n    retry: {e['retry']}"), file=err)
    if interrupted:
        raise KeyboardInterrupt
    return 0 if not failed else (1 if ok else 2)


def build_fleet_capture_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kptui fleet capture",
        description="Capture every node of the cluster (or those -l SELECTOR picks; or every host of an --ssh-hosts "
        "file), N at a time, into DIR: one capture bundle per node (NAME.kptui) and DIR/fleet.json, what became of "
        "each node. Nothing is installed on a node: kubectl debug starts a pod that only sleeps, the read-only "
        "commands run through kubectl exec (chroot /host), and the pod is deleted afterwards (docs/fleet.md).",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the directory to write (created if needed)")
    p.add_argument("-l", "--selector", metavar="SELECTOR", help="only the nodes with these labels (key=value, "
                   "key!=value, key, !key; comma-separated)")  # fmt: skip
    p.add_argument("--ssh-hosts", metavar="FILE", help="read these hosts over ssh instead: one '[USER@]HOST [NAME]' "
                   "per line")  # fmt: skip
    add_remote_options(p, fleet=True)
    p.set_defaults(handler=cmd_fleet_capture, command="fleet capture")
    return p
