"""The argument contract of every ``kubectl`` and ``ssh`` call kptui makes, in one place (docs/fleet.md).

A remote capture runs the same fixed, read-only commands as a local one (:data:`kptui.live.runner.ALLOWED`),
plus five reads a local capture does in-process (:data:`REMOTE_READS`: the kernel's name, which modules are
loaded, the sysctls, kube-proxy's ``/proxyMode``), on a node reached through

- ``kubectl debug node/NAME --profile=sysadmin`` (host namespaces, the node's root at ``/host``): one debug pod
  per node that only sleeps, each command through ``kubectl exec POD -- chroot /host CMD ARGS…`` (the node's own
  tools; ``--tools image``: the image's tools, still in the node's network namespace), the pod deleted
  afterwards; or
- ``ssh [USER@]HOST``: each command as ``sudo -n CMD ARGS…``.

Everything the user gives (node names, the context, the namespace, a label selector, the image, ssh targets)
is checked here (:func:`check_node_name` …: DNS-1123 names, no leading ``-``, no shell metacharacters) and
becomes one argument of its own (``--context=C``), never part of a command line a shell reads. The only text a
shell reads is ssh's remote command line, which is :func:`remote_line` of a command of :data:`REMOTE_COMMANDS`:
a constant, quoted, with nothing of the user's in it. Every builder returns a :class:`Call`, the only thing the
process door (:mod:`kptui.live.remote_exec`) runs. Pure: no I/O here.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from .runner import ALLOWED, PROXY_MODE_URL

__all__ = [
    "CONTAINER",
    "DEFAULT_IMAGE",
    "MODULES",
    "MODULE_PATHS",
    "PROXY_MODE",
    "REMOTE_COMMANDS",
    "REMOTE_READS",
    "SYSCTL_READ",
    "TOOLS",
    "UNAME",
    "UNAME_VERSION",
    "Call",
    "KubectlTarget",
    "RemoteArgumentError",
    "SshTarget",
    "check_context",
    "check_image",
    "check_namespace",
    "check_node_name",
    "check_pod_name",
    "check_selector",
    "check_ssh_target",
    "created_pod",
    "debug_call",
    "delete_call",
    "exec_call",
    "nodes_call",
    "remote_line",
    "ssh_call",
    "status_call",
    "wait_call",
]

# A pinned image that ships every tool of ALLOWED (iptables both backends, nft, ipset, ipvsadm, conntrack,
# iproute2) plus chroot, sleep, grep and curl, for amd64 and arm64 (docs/fleet.md says why this one).
DEFAULT_IMAGE = "docker.io/nicolaka/netshoot:v0.13"
CONTAINER = "kptui"  # the debug container's name (kubectl debug --container)
TOOLS = ("host", "image")  # whose tools run: the node's (chroot /host) or the image's

# The reads a local capture does in-process, as commands (all read-only: stat, read, one GET on 127.0.0.1).
UNAME = ("uname", "-s", "-n", "-r", "-m")
UNAME_VERSION = ("uname", "-v")
# Which modules are loaded (the legacy save tools, ipset and ipvsadm run only then); `ls -d` only stats them.
MODULE_PATHS = ("/proc/net/ip_tables_names", "/proc/net/ip6_tables_names", "/sys/module/ip_set",
                "/sys/module/ip_vs", "/proc/net/ip_vs")  # fmt: skip
MODULES = ("ls", "-d", *MODULE_PATHS)
# The sysctls of kptui.live.runner.SYSCTLS live under these; every file is read (`grep -r -s -H .` prints
# PATH:VALUE) and only the runner's names are kept (kptui.live.remote.parse_sysctls).
SYSCTL_READ = ("grep", "-r", "-s", "-H", ".", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf",
               "/proc/sys/net/ipv6/conf", "/proc/sys/net/bridge", "/proc/sys/net/ipv4/vs")  # fmt: skip
PROXY_MODE = ("curl", "-s", "-S", "--max-time", "1", "--noproxy", "*", PROXY_MODE_URL)
REMOTE_READS: frozenset[tuple[str, ...]] = frozenset({UNAME, UNAME_VERSION, MODULES, SYSCTL_READ, PROXY_MODE})
REMOTE_COMMANDS: frozenset[tuple[str, ...]] = ALLOWED | REMOTE_READS

_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_NODE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")  # DNS-1123 subdomain (Kubernetes object names)
_NAMESPACE = re.compile(rf"^{_LABEL}$")
# kubeconfig context names are free text in practice ("arn:aws:eks:…:cluster/prod", "gke_p_z_c",
# "default/api-x:6443/kube:admin"): letters, digits and _ . : / @ + = - only, never a leading '-'.
_CONTEXT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]{0,252}$")
_KEY_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_SEL_KEY = rf"(?:{_LABEL}(?:\.{_LABEL})*/)?{_KEY_NAME}"
_SEL_VALUE = rf"(?:{_KEY_NAME})?"
_SELECTOR_TERM = re.compile(rf"^(?:!{_SEL_KEY}|{_SEL_KEY}(?:(?:==|!=|=){_SEL_VALUE})?)$")
# An image reference as the distribution spec has it: [host[:port]/]path[:tag][@digest]
_IMAGE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                    r"(?::[0-9]{1,5})?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")  # fmt: skip
_SSH_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
_SSH_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_SSH_HOST = re.compile(rf"^{_SSH_LABEL}(?:\.{_SSH_LABEL})*$")
_CREATED = re.compile(r"^Creating debugging pod (\S+) with container (\S+) on node (\S+)\.\s*$", re.MULTILINE)


class RemoteArgumentError(ValueError):
    """A node name, context, selector, image or host that kptui will not pass on (the message says why)."""


def _shown(text: str) -> str:
    return repr(text[:80])


def check_node_name(name: str) -> str:
    """``name`` if it is a Kubernetes node name (a DNS-1123 subdomain, at most 253 characters)."""
    if not name or len(name) > 253 or not _NODE.fullmatch(name):
        raise RemoteArgumentError(f"{_shown(name)} is not a Kubernetes node name (lower-case letters, digits, '-' "
                                  "and '.', starting and ending with a letter or digit)")  # fmt: skip
    return name


def check_pod_name(name: str, node: str) -> str:
    """``name`` if it is the name kubectl gives a debug pod of ``node`` (``node-debugger-NODE-SUFFIX``)."""
    if not name.startswith(f"node-debugger-{node}-") or len(name) > 253 or not _NODE.fullmatch(name):
        raise RemoteArgumentError(f"{_shown(name)} is not the name of a debug pod of node {node}")
    return name


def check_namespace(name: str) -> str:
    if not name or len(name) > 63 or not _NAMESPACE.fullmatch(name):
        raise RemoteArgumentError(f"{_shown(name)} is not a namespace name (a DNS-1123 label: lower-case letters, "
                                  "digits and '-', at most 63)")  # fmt: skip
    return name


def check_context(name: str) -> str:
    if not _CONTEXT.fullmatch(name):
        raise RemoteArgumentError(f"{_shown(name)} is not a context name kptui passes on (letters, digits and "
                                  "_ . : / @ + = -, not starting with '-')")  # fmt: skip
    return name


def check_selector(selector: str) -> str:
    """An equality-based label selector (``key=value``, ``key!=value``, ``key``, ``!key``, comma-separated).
    Set-based terms (``key in (a,b)``) hold spaces and parentheses: kptui does not pass them on."""
    terms = selector.split(",")
    if not selector or len(selector) > 1024 or not all(_SELECTOR_TERM.fullmatch(t) for t in terms):
        raise RemoteArgumentError(f"{_shown(selector)} is not a label selector kptui passes on: use equality-based "
                                  "terms (key=value, key!=value, key, !key), comma-separated")  # fmt: skip
    return selector


def check_image(image: str) -> str:
    if len(image) > 512 or not _IMAGE.fullmatch(image):
        raise RemoteArgumentError(f"{_shown(image)} is not a container image reference "
                                  "([REGISTRY/]PATH[:TAG][@sha256:DIGEST])")  # fmt: skip
    return image


def check_ssh_target(target: str) -> str:
    """``[USER@]HOST``: HOST a DNS name, an ssh_config alias of the same form, or an IP address."""
    user, at, host = target.rpartition("@")
    ok_user = not at or bool(_SSH_USER.fullmatch(user))
    try:
        ipaddress.ip_address(host)
        ok_host = True
    except ValueError:
        ok_host = bool(_SSH_HOST.fullmatch(host)) and len(host) <= 253
    if not ok_user or not ok_host:
        raise RemoteArgumentError(f"{_shown(target)} is not an ssh target kptui passes on ([USER@]HOST: a host "
                                  "name or IP address; letters, digits, '.', '-', '_')")  # fmt: skip
    return target


@dataclass(frozen=True)
class Call:
    """One process kptui starts on its own machine to reach a node: ``argv`` (kubectl or ssh first) and, for
    the record, the read-only command it carries (``command``, one of :data:`REMOTE_COMMANDS`, or ())."""

    argv: tuple[str, ...]
    command: tuple[str, ...] = ()
    step: str = "exec"  # "create", "wait", "exec", "status", "delete", "nodes"


def _checked_command(command: Sequence[str]) -> tuple[str, ...]:
    cmd = tuple(command)
    if cmd not in REMOTE_COMMANDS:
        from .runner import CommandNotAllowed

        raise CommandNotAllowed(f"not a read-only command kptui may run on a node: {cmd!r}")
    return cmd


# -- kubectl ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KubectlTarget:
    """A node reached through ``kubectl debug``: its name, and the context, namespace, image and tools to use."""

    node: str
    context: str | None = None
    namespace: str | None = None
    image: str = DEFAULT_IMAGE
    tools: str = "host"

    def __post_init__(self) -> None:
        check_node_name(self.node)
        if self.context is not None:
            check_context(self.context)
        if self.namespace is not None:
            check_namespace(self.namespace)
        check_image(self.image)
        if self.tools not in TOOLS:
            raise RemoteArgumentError(f"--tools takes {' or '.join(TOOLS)}, not {_shown(self.tools)}")


def _kubectl(context: str | None, namespace: str | None) -> list[str]:
    argv = ["kubectl"]
    if context is not None:
        argv.append(f"--context={check_context(context)}")
    if namespace is not None:
        argv.append(f"--namespace={check_namespace(namespace)}")
    return argv


def debug_call(t: KubectlTarget, lifetime: int) -> Call:
    """Create the node's debug pod: privileged, host namespaces, the node's root at /host, ``sleep LIFETIME``
    (it ends by itself if kptui is killed before it can delete it). No attach, no stdin, no TTY (``-it=false``
    would be ``-i -t=false`` to kubectl's flag parser: stdin on, so it would attach)."""
    seconds = int(lifetime)
    if not 30 <= seconds <= 86400:
        raise RemoteArgumentError(f"a debug pod's lifetime must be 30 s to a day, not {seconds} s")
    return Call((*_kubectl(t.context, t.namespace), "debug", f"node/{t.node}", "--profile=sysadmin",
                 f"--image={t.image}", f"--container={CONTAINER}", "--attach=false", "--stdin=false", "--tty=false",
                 "--", "sleep", str(seconds)), step="create")  # fmt: skip


def created_pod(stdout: str, node: str) -> str | None:
    """The pod ``kubectl debug`` says it created for ``node`` ("Creating debugging pod P with container C on
    node N."), checked; None when it said nothing of the kind."""
    for m in _CREATED.finditer(stdout):
        if m.group(3) == node:
            try:
                return check_pod_name(m.group(1), node)
            except RemoteArgumentError:
                return None
    return None


def wait_call(t: KubectlTarget, pod: str, seconds: int) -> Call:
    return Call((*_kubectl(t.context, t.namespace), "wait", "--for=condition=Ready", f"pod/{check_pod_name(pod, t.node)}",
                 f"--timeout={max(1, int(seconds))}s"), step="wait")  # fmt: skip


STATUS_TEMPLATE = ("{.status.phase} {range .status.containerStatuses[*]}{.state.waiting.reason} "
                   "{.state.waiting.message} {.state.terminated.reason}{end}")  # fmt: skip


def status_call(t: KubectlTarget, pod: str) -> Call:
    """Why a debug pod is not ready (phase, the container's waiting reason and message)."""
    return Call((*_kubectl(t.context, t.namespace), "get", f"pod/{check_pod_name(pod, t.node)}", "-o",
                 f"jsonpath={STATUS_TEMPLATE}"), step="status")  # fmt: skip


def exec_call(t: KubectlTarget, pod: str, command: Sequence[str]) -> Call:
    """One read-only command in the debug pod: ``chroot /host CMD ARGS…`` (the node's tools), or with tools
    ``image`` the image's own ``CMD ARGS…`` (in the node's network namespace all the same)."""
    cmd = _checked_command(command)
    inner = ("chroot", "/host", *cmd) if t.tools == "host" else cmd
    return Call((*_kubectl(t.context, t.namespace), "exec", check_pod_name(pod, t.node), f"--container={CONTAINER}",
                 "--", *inner), command=cmd)  # fmt: skip


def delete_call(t: KubectlTarget, pod: str) -> Call:
    """Delete the debug pod without waiting for it to go (a 1 s grace period: ``sleep`` as PID 1 ignores
    SIGTERM); a pod already gone is no error."""
    return Call((*_kubectl(t.context, t.namespace), "delete", f"pod/{check_pod_name(pod, t.node)}", "--wait=false",
                 "--ignore-not-found", "--grace-period=1"), step="delete")  # fmt: skip


def nodes_call(context: str | None, selector: str | None) -> Call:
    """The cluster's nodes (``node/NAME`` per line), those matching ``selector`` when given."""
    argv = [*_kubectl(context, None), "get", "nodes", "-o", "name"]
    if selector is not None:
        argv.append(f"--selector={check_selector(selector)}")
    return Call(tuple(argv), step="nodes")


# -- ssh -------------------------------------------------------------------------------------------------
SSH_OPTIONS = ("-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ControlMaster=no")


@dataclass(frozen=True)
class SshTarget:
    """A node reached over ssh: ``[USER@]HOST`` (ssh_config applies: port, key, jump host), with ``sudo -n``
    unless ``sudo`` is False (a root login); ``name`` is the node's name in reports (default: HOST)."""

    target: str
    sudo: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        check_ssh_target(self.target)
        if self.name:
            check_node_name(self.name)

    @property
    def host(self) -> str:
        return self.target.rpartition("@")[2]

    @property
    def node(self) -> str:
        return self.name or self.host


def remote_line(command: Sequence[str], sudo: bool = True) -> str:
    """The command line ssh hands the remote shell for ``command``: constant, every word quoted."""
    cmd = _checked_command(command)
    return shlex.join((("sudo", "-n") if sudo else ()) + cmd)


def ssh_call(t: SshTarget, command: Sequence[str]) -> Call:
    """One read-only command over ssh: no TTY, no password prompt (BatchMode), no new control master (one
    would outlive the call and hold its pipes), ``--`` before the target."""
    cmd = _checked_command(command)
    return Call(("ssh", *SSH_OPTIONS, "--", check_ssh_target(t.target), remote_line(cmd, t.sudo)), command=cmd)
