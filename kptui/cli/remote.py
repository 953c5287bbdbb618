"""What ``kptui capture --kubectl/--ssh`` and ``kptui fleet capture`` share: the remote options, the nodes they
name (checked: :mod:`kptui.live.remote_argv`), ctrl-c/SIGTERM/SIGHUP as one interrupt, and the lines that say
what became of a node and how to retry it."""

from __future__ import annotations

import argparse
import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from kptui.engine.errors import printable

from .common import UserError

__all__ = ["add_remote_options", "check_limits", "interrupts", "kubectl_node", "retry_command", "ssh_node",
           "tell_cleanup"]


def add_remote_options(p: argparse.ArgumentParser, *, fleet: bool = False, conntrack: bool = True) -> None:
    """--context, --namespace, --image, --tools, --no-sudo, --timeout (and the per-node limits)."""
    g = p.add_argument_group("remote nodes (kubectl debug, or ssh; nothing is installed on the node)")
    g.add_argument("--context", metavar="C", help="the kubeconfig context to use (default: the current one)")
    g.add_argument("--namespace", metavar="NS", help="the namespace of the debug pod (default: the context's); it "
                   "must admit privileged pods")  # fmt: skip
    g.add_argument("--image", metavar="IMAGE", help="the debug pod's image (default: docker.io/nicolaka/netshoot:"
                   "v0.13; with --tools host it only needs chroot and sleep)")  # fmt: skip
    g.add_argument("--tools", choices=("host", "image"), default="host",
                   help="run the node's own tools (chroot /host, the default) or the image's (for nodes without "
                   "iptables, nft, …: Talos, Bottlerocket)")
    g.add_argument("--no-sudo", action="store_true", help="ssh: run the commands without sudo -n (a root login)")
    g.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                   help="the most a node may take, pod creation included (default 300)")
    if conntrack:
        g.add_argument("--no-conntrack", action="store_true", help="leave the conntrack table out")
    if fleet:
        g.add_argument("--parallel", type=int, default=4, metavar="N", help="nodes read at once (default 4)")


def _image(args: argparse.Namespace) -> str:
    from kptui.live.remote_argv import DEFAULT_IMAGE

    return str(getattr(args, "image", None) or DEFAULT_IMAGE)


def kubectl_node(args: argparse.Namespace, name: str) -> Any:
    """The :class:`~kptui.live.remote.KubectlNode` of ``name`` (``node/NAME`` or ``NAME``); UserError when a
    value is not one kptui passes on."""
    from kptui.live.remote import KubectlNode
    from kptui.live.remote_argv import KubectlTarget, RemoteArgumentError

    node = name.removeprefix("node/")
    try:
        target = KubectlTarget(node, context=args.context, namespace=args.namespace, image=_image(args),
                               tools=args.tools)  # fmt: skip
    except RemoteArgumentError as exc:
        raise UserError(str(exc)) from None
    return KubectlNode(target, lifetime=int(min(86400, max(120, args.timeout + 300))))


def ssh_node(args: argparse.Namespace, target: str, name: str = "") -> Any:
    from kptui.live.remote import SshNode
    from kptui.live.remote_argv import RemoteArgumentError, SshTarget

    for option in ("context", "namespace", "image"):
        if getattr(args, option, None):
            raise UserError(f"--{option} is for kubectl; --ssh reads the node over ssh")
    try:
        return SshNode(SshTarget(target, sudo=not args.no_sudo, name=name))
    except RemoteArgumentError as exc:
        raise UserError(str(exc)) from None


def check_limits(args: argparse.Namespace) -> None:
    if not 10 <= args.timeout <= 86400:
        raise UserError("--timeout takes 10 to 86400 seconds")
    if getattr(args, "parallel", 1) < 1 or getattr(args, "parallel", 1) > 64:
        raise UserError("--parallel takes 1 to 64")


def retry_command(args: argparse.Namespace, transport: str, node: str, target: str, output: str) -> str:
    """The command that captures one node again, as the user would type it."""
    argv = ["kptui", "capture"]
    if transport == "kubectl":
        argv += ["--kubectl", f"node/{node}"]
        for option in ("context", "namespace", "image"):
            if getattr(args, option, None):
                argv += [f"--{option}", getattr(args, option)]
        if args.tools != "host":
            argv += ["--tools", args.tools]
    else:
        argv += ["--ssh", target]
        if args.no_sudo:
            argv.append("--no-sudo")
    if args.timeout != 300.0:
        argv += ["--timeout", f"{args.timeout:g}"]
    if args.no_conntrack:
        argv.append("--no-conntrack")
    return shlex.join([*argv, "-o", output])


@contextmanager
def interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt like ctrl-c does, so the debug pods are deleted either way."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def tell_cleanup(err: TextIO) -> Any:
    """What to say when ctrl-c is pressed again while the debug pods are being deleted."""

    def tell(run: Any, presses: int) -> None:
        if presses == 1:
            names = ", ".join(sorted(run.running)) or "-"
            print(printable(f"kptui: deleting the debug pods first (nodes still closing: {names}); this takes "
                            "at most a minute"), file=err, flush=True)  # fmt: skip

    return tell
