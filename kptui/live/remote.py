"""A node read from afar: :class:`KubectlNode` (one ``kubectl debug`` pod per node, each command through
``kubectl exec``) and :class:`SshNode` (each command over ``ssh``, with ``sudo -n``).

Both offer what a capture needs of a node (:mod:`kptui.node.collect` takes either, or the local node):
:meth:`RemoteNode.run` runs one command of :data:`~kptui.live.remote_argv.REMOTE_COMMANDS` and answers like
:func:`kptui.live.runner.run_readonly` (a :class:`~kptui.live.runner.CommandResult`, with ``via``: the kubectl
or ssh argument list that carried it); :meth:`~RemoteNode.loaded` (is a kernel module loaded),
:meth:`~RemoteNode.sysctls`, :meth:`~RemoteNode.proxy_mode` and :meth:`~RemoteNode.host_facts` do by command
what a local capture does in-process. Every argument list comes from :mod:`kptui.live.remote_argv`; every
process starts in :mod:`kptui.live.remote_exec`.

The debug pod is deleted by :meth:`KubectlNode.close`, which the caller runs in a ``finally``: after a
failure, a timeout or a cancel alike (a cancel lets the creation finish so the pod's name is known). If kptui
itself is killed, the pod ends by itself: it only sleeps for ``lifetime`` seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from .remote_argv import (
    MODULES,
    PROXY_MODE,
    REMOTE_READS,
    SYSCTL_READ,
    UNAME,
    UNAME_VERSION,
    Call,
    KubectlTarget,
    SshTarget,
    check_node_name,
    created_pod,
    debug_call,
    delete_call,
    exec_call,
    nodes_call,
    ssh_call,
    status_call,
    wait_call,
)
from .remote_exec import Outcome, Spawner
from .runner import PROXY_MODE_URL, SYSCTLS, CommandNotAllowed, CommandResult, SysctlRead

__all__ = ["KubectlNode", "RemoteError", "RemoteNode", "SshNode", "list_nodes", "parse_modules", "parse_sysctls"]

DEFAULT_LIFETIME = 900  # seconds a debug pod sleeps: far more than a capture takes, little if it is left behind
READY_TIMEOUT = 180.0  # pulling the image on a fresh node
CREATE_TIMEOUT = 90.0
DELETE_TIMEOUT = 30.0
_MODULE_FILES = {"ip_tables": ("/proc/net/ip_tables_names",), "ip6_tables": ("/proc/net/ip6_tables_names",),
                 "ip_set": ("/sys/module/ip_set",), "ip_vs": ("/sys/module/ip_vs", "/proc/net/ip_vs")}  # fmt: skip
_SYSCTL_LINE = re.compile(r"^/proc/sys/(net/[^\n]*?/(?:forwarding|route_localnet|rp_filter|ip_forward|"
                          r"bridge-nf-call-iptables|bridge-nf-call-ip6tables|conntrack)):(.*)$", re.MULTILINE)
_SYSCTL_DIR = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:+-]{0,31}$")  # as kptui.live.runner reads them
_NOT_FOUND = ("command not found", "No such file or directory", "not found")


class RemoteError(Exception):
    """The node could not be reached or prepared: the message says what happened (for the user)."""


def _last_line(out: Outcome) -> str:
    lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
    return out.error or (lines[-1][:300] if lines else f"exit status {out.status}")


def parse_modules(stdout: bytes) -> frozenset[str]:
    """The paths of :data:`MODULE_PATHS` that ``ls -d`` printed (those that exist)."""
    from .remote_argv import MODULE_PATHS

    return frozenset(p for p in stdout.decode("utf-8", "replace").split() if p in MODULE_PATHS)


def _wanted(rel: str) -> bool:
    for pattern in SYSCTLS:
        if fnmatchcase(rel, pattern) and rel.count("/") == pattern.count("/"):
            head = pattern.partition("*")[0]
            return head == pattern or bool(_SYSCTL_DIR.fullmatch(rel[len(head):].split("/", 1)[0]))
    return False


def parse_sysctls(stdout: bytes) -> dict[str, str]:
    """``grep -r -s -H .`` output over /proc/sys → the sysctls of :data:`kptui.live.runner.SYSCTLS`, named as the
    local reader names them (``net.ipv4.conf.eth0.rp_filter``)."""
    values: dict[str, str] = {}
    for m in _SYSCTL_LINE.finditer(stdout.decode("utf-8", "replace")):
        rel = m.group(1)
        if _wanted(rel):
            values[rel.replace("/", ".")] = m.group(2).strip()[:256]
    return values


class RemoteNode:
    """What both transports share: the deadline, the command runs, the node facts by command."""

    transport = ""

    def __init__(self, *, deadline: float | None = None, spawner: Spawner | None = None) -> None:
        self.deadline = deadline  # time.monotonic() after which nothing more runs
        self.spawner = spawner or Spawner()
        self.steps: list[dict[str, Any]] = []  # the calls that were not a command's: create, wait, delete …
        self.reads: list[dict[str, Any]] = []  # uname, the module probe, /proxyMode, the sysctls: how each went
        self._modules: frozenset[str] | None = None
        self.probe_error: str | None = None
        self._uname: tuple[CommandResult, CommandResult] | None = None

    # -- to be given by a transport ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        raise NotImplementedError

    def _call_for(self, command: tuple[str, ...]) -> Call:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def open(self) -> None:
        """Make the node ready for commands (RemoteError when it cannot be)."""

    def close(self) -> None:
        """Undo what :meth:`open` did on the cluster (nothing, for ssh)."""

    # -- shared ----------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self.spawner.cancel()

    def _budget(self, timeout: float) -> float:
        if self.deadline is None:
            return timeout
        return min(timeout, self.deadline - time.monotonic())

    def _step(self, step: str, call: Call, out: Outcome) -> None:
        self.steps.append({"step": step, "argv": list(call.argv), "status": out.status, "error": out.error,
                           "stderr": out.stderr[-500:], "seconds": round(out.seconds, 3)})  # fmt: skip

    def run(self, argv: Sequence[str], *, netns: str | None = None, timeout: float = 60.0) -> CommandResult:
        """One read-only command on the node (:data:`REMOTE_COMMANDS` only; CommandNotAllowed otherwise)."""
        logical = tuple(argv)
        if netns is not None:
            raise CommandNotAllowed("a remote node is read in its own network namespace; --netns does not apply")
        call = self._call_for(logical)  # CommandNotAllowed for anything else
        budget = self._budget(timeout)
        if budget <= 0:
            return CommandResult(logical, None, None, b"", "", 0.0, 0.0, "not run: the node's time limit ran out",
                                 via=call.argv)  # fmt: skip
        out = self.spawner.run(call, budget)
        result = self._result(logical, call, out)
        if logical in REMOTE_READS:  # what a local capture reads in-process: recorded with the node's facts
            self.reads.append({"command": list(logical), "via": list(call.argv), "status": result.status,
                               "error": result.error, "seconds": round(result.seconds, 3)})  # fmt: skip
        return result

    def _result(self, logical: tuple[str, ...], call: Call, out: Outcome) -> CommandResult:
        tool = logical[0]
        if out.error is not None:
            return CommandResult(logical, None, None, b"", out.stderr, out.seconds, 0.0, out.error, via=call.argv)
        error = self._failure(tool, out)
        if error is not None:
            return CommandResult(logical, None, None, b"", out.stderr, out.seconds, 0.0, error, via=call.argv)
        return CommandResult(logical, None, out.status, out.stdout, out.stderr, out.seconds, 0.0, via=call.argv)

    def _failure(self, tool: str, out: Outcome) -> str | None:
        """A failure of the transport or a missing tool, told from the status and standard error."""
        if out.status == 0:
            return None
        text = out.stderr
        if out.status == 127 or any(f"{tool}': {w}" in text or f"{tool}: {w}" in text for w in _NOT_FOUND) or \
                f"'{tool}': No such file" in text:  # fmt: skip
            return f"{tool} is not installed on the node"
        return None

    # -- the node's facts, by command --------------------------------------------------------------------
    def loaded(self, module: str) -> bool | None:
        """Whether kernel module ``module`` (ip_tables, ip6_tables, ip_set, ip_vs) is loaded on the node; None
        when that could not be told (:attr:`probe_error` says why)."""
        if module not in _MODULE_FILES:
            raise CommandNotAllowed(f"not a module kptui asks about: {module!r}")
        if self._modules is None and self.probe_error is None:
            r = self.run(MODULES, timeout=15.0)
            if r.error is not None or r.status not in (0, 1, 2):
                self.probe_error = f"`{' '.join(MODULES[:2])} …` failed: {r.describe_failure()}"
            else:
                self._modules = parse_modules(r.stdout)
        if self._modules is None:
            return None
        return any(p in self._modules for p in _MODULE_FILES[module])

    def sysctls(self) -> SysctlRead:
        r = self.run(SYSCTL_READ, timeout=30.0)
        values = parse_sysctls(r.stdout) if r.error is None else {}
        if r.error is not None or (not values and r.status != 0):
            return SysctlRead({}, r.seconds, f"could not read /proc/sys on the node: {r.describe_failure()}",
                              SYSCTL_READ, r.via)  # fmt: skip
        return SysctlRead(values, r.seconds, None, SYSCTL_READ, r.via)

    def proxy_mode(self) -> tuple[str | None, str | None]:
        r = self.run(PROXY_MODE, timeout=10.0)
        if r.error is not None and "not installed" in r.error:
            return None, f"{r.error}: kube-proxy's mode was not asked ({PROXY_MODE_URL})"
        if not r.ok:
            detail = r.error or (r.stderr.strip().splitlines() or [f"exit status {r.status}"])[-1][:200]
            return None, f"{PROXY_MODE_URL} not reachable ({detail})"
        text = r.stdout[:256].decode("ascii", "replace").strip()
        if not re.fullmatch(r"[a-z]{1,16}", text):
            return None, f"{PROXY_MODE_URL} answered something that is not a proxy mode"
        return text, None

    def host_facts(self) -> dict[str, Any]:
        """``hostname`` and ``kernel`` (sysname, release, version, machine) as the node's uname says them."""
        if self._uname is None:
            self._uname = (self.run(UNAME, timeout=15.0), self.run(UNAME_VERSION, timeout=15.0))
        names, version = self._uname
        words = names.stdout.decode("utf-8", "replace").split() if names.ok else []
        if len(words) != 4:
            return {"hostname": None, "kernel": {}, "hostname_note": f"uname failed: {names.describe_failure()}"
                    if not names.ok else "uname answered something unexpected"}  # fmt: skip
        ver = version.stdout.decode("utf-8", "replace").strip() if version.ok else None
        return {"hostname": words[1], "kernel": {"sysname": words[0], "release": words[2], "version": ver,
                                                 "machine": words[3]}}  # fmt: skip


class KubectlNode(RemoteNode):
    """A node through ``kubectl debug node/NAME``: :meth:`open` creates the debug pod and waits until it runs;
    commands run in it with ``kubectl exec``; :meth:`close` deletes it."""

    transport = "kubectl"

    def __init__(self, target: KubectlTarget, *, lifetime: int = DEFAULT_LIFETIME,
                 ready_timeout: float = READY_TIMEOUT, deadline: float | None = None,
                 spawner: Spawner | None = None) -> None:  # fmt: skip
        super().__init__(deadline=deadline, spawner=spawner)
        self.target = target
        self.lifetime = lifetime
        self.ready_timeout = ready_timeout
        self.pod: str | None = None
        self.deleted = False
        self.delete_error: str | None = None

    @property
    def name(self) -> str:
        return self.target.node

    def describe(self) -> dict[str, Any]:
        t = self.target
        return {"transport": "kubectl", "node": t.node, "context": t.context, "namespace": t.namespace,
                "image": t.image, "tools": t.tools, "pod": self.pod, "pod_lifetime": self.lifetime,
                "steps": list(self.steps), "reads": list(self.reads)}  # fmt: skip

    def _call_for(self, command: tuple[str, ...]) -> Call:
        if self.pod is None:
            raise RemoteError("the debug pod is not there (open() first)")
        return exec_call(self.target, self.pod, command)

    def open(self) -> None:
        t = self.target
        call = debug_call(t, self.lifetime)
        out = self.spawner.run(call, max(5.0, self._budget(CREATE_TIMEOUT)), protect=True)
        self._step("create", call, out)
        self.pod = created_pod(out.stdout.decode("utf-8", "replace"), t.node)
        if not out.ok:
            raise RemoteError(f"kubectl debug node/{t.node} failed: {_last_line(out)}")
        if self.pod is None:
            raise RemoteError(f"kubectl debug node/{t.node} did not say which pod it created (no 'Creating "
                              f"debugging pod …' line): look for a pod node-debugger-{t.node}-… and delete it")
        if self.spawner.cancelled:
            raise RemoteError("interrupted")
        wait = min(self.ready_timeout, self._budget(self.ready_timeout))
        if wait <= 1:
            raise RemoteError("the node's time limit ran out before its debug pod was ready")
        call = wait_call(t, self.pod, int(wait))
        out = self.spawner.run(call, wait + 15.0)
        self._step("wait", call, out)
        if not out.ok:
            raise RemoteError(f"the debug pod {self.pod} was not ready within {int(wait)} s: {self._why_not_ready(out)}")

    def _why_not_ready(self, waited: Outcome) -> str:
        if waited.error == "interrupted":
            return "interrupted"
        assert self.pod is not None
        call = status_call(self.target, self.pod)
        out = self.spawner.run(call, 20.0)
        self._step("status", call, out)
        status = " ".join(out.stdout.decode("utf-8", "replace").split())[:300] if out.ok else ""
        return f"{status} ({_last_line(waited)})" if status else _last_line(waited)

    def close(self) -> None:
        """Delete the debug pod (also after a cancel); idempotent. A failed delete is kept in
        :attr:`delete_error` with the command to run by hand."""
        if self.pod is None or self.deleted:
            return
        call = delete_call(self.target, self.pod)
        out = self.spawner.run(call, DELETE_TIMEOUT, always=True)
        self._step("delete", call, out)
        self.deleted = out.ok
        self.delete_error = None if out.ok else f"could not delete the debug pod {self.pod} ({_last_line(out)}): " \
            f"run `{' '.join(call.argv)}`"  # fmt: skip

    def _failure(self, tool: str, out: Outcome) -> str | None:
        lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
        if out.status != 0 and lines and (lines[-1].startswith(("Error from server", "error:", "Unable to connect"))):
            return f"kubectl exec failed: {lines[-1][:300]}"
        return super()._failure(tool, out)


class SshNode(RemoteNode):
    """A node over ``ssh [USER@]HOST``: every command is ``sudo -n CMD ARGS…`` (the user's ssh_config applies;
    no password prompts). Nothing is left on the node."""

    transport = "ssh"

    def __init__(self, target: SshTarget, *, deadline: float | None = None, spawner: Spawner | None = None) -> None:
        super().__init__(deadline=deadline, spawner=spawner)
        self.target = target

    @property
    def name(self) -> str:
        return self.target.node

    def describe(self) -> dict[str, Any]:
        return {"transport": "ssh", "node": self.target.node, "target": self.target.target,
                "sudo": self.target.sudo, "steps": list(self.steps), "reads": list(self.reads)}  # fmt: skip

    def _call_for(self, command: tuple[str, ...]) -> Call:
        return ssh_call(self.target, command)

    def open(self) -> None:
        """Reach the node once (uname, which the capture needs anyway): RemoteError when ssh cannot."""
        names = self.run(UNAME, timeout=30.0)
        self._uname = (names, self.run(UNAME_VERSION, timeout=15.0)) if names.ok else None
        if not names.ok:
            raise RemoteError(f"ssh {self.target.target}: {names.error or names.describe_failure()}")

    def _failure(self, tool: str, out: Outcome) -> str | None:
        text = out.stderr
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if out.status == 255:
            return f"ssh could not reach {self.target.target}: {lines[-1][:300] if lines else 'exit status 255'}"
        if "sudo: a password is required" in text or "sudo: a terminal is required" in text:
            return "sudo -n on the node asks for a password: kptui needs passwordless sudo there (or --no-sudo " \
                   "with a root login)"  # fmt: skip
        return super()._failure(tool, out)


def list_nodes(context: str | None = None, selector: str | None = None, *, timeout: float = 60.0) -> list[str]:
    """The names of the cluster's nodes (those ``selector`` matches), as ``kubectl get nodes -o name`` says
    them; RemoteError when kubectl cannot say, or says something that is not a node name."""
    call = nodes_call(context, selector)
    out = Spawner().run(call, timeout)
    if not out.ok:
        raise RemoteError(f"{' '.join(call.argv)}: {_last_line(out)}")
    names = []
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("node/"):
            raise RemoteError(f"kubectl get nodes -o name printed {line[:80]!r}, which is no node/NAME")
        names.append(check_node_name(line[len("node/"):]))
    return names
