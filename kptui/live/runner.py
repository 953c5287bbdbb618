"""The one door to the outside: every command kptui runs goes through :func:`run_readonly`, the only HTTP
request it makes goes through :func:`fetch_proxy_mode`, and the only kernel settings it reads through
:func:`read_sysctls`.

- Only the argument lists in :data:`ALLOWED` can run (anything else raises :class:`CommandNotAllowed`,
  before a process is started): the iptables/ip6tables save tools of both backends, ``ip -j`` listings,
  ``conntrack -L``, ``nft list`` / ``nft -j list ruleset``, ``ipset save``, ``ipvsadm -S -n``. All of them
  only read. Tools that would load a kernel module when theirs is not loaded (``ipset``, ``ipvsadm``, the
  legacy save tools) are run only when it is (:func:`module_loaded`, :func:`legacy_loaded`). Nothing taken from a dump or from another command's
  output ever becomes an argument; the only variable argument is the network namespace the user names, and it
  is checked against ``ip netns``'s own naming rules.
- No shell (``shell=False``), standard input closed, a timeout on every command, a fixed ``PATH`` and
  ``LC_ALL=C``; the executable is looked up in the standard system directories only.
- The HTTP GET goes to kube-proxy's metrics port on 127.0.0.1 only, without proxies, with a 1 s timeout.
- Sysctls are read, never written: the files under ``/proc/sys`` that :data:`SYSCTLS` names (a fixed list of
  patterns; ``*`` stands for each interface directory the kernel lists), opened read-only, inside a network
  namespace from a thread that joined it (:func:`_in_netns`); no command runs for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "ALLOWED",
    "PROXY_MODE_URL",
    "SAFE_PATH",
    "SYSCTLS",
    "CommandNotAllowed",
    "CommandResult",
    "SysctlRead",
    "check_netns_name",
    "fetch_proxy_mode",
    "legacy_loaded",
    "module_loaded",
    "read_sysctls",
    "run_readonly",
]

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_MODE_URL = "http://127.0.0.1:10249/proxyMode"

# Every argument list kptui may run. All of them only read kernel state.
ALLOWED: frozenset[tuple[str, ...]] = frozenset(
    {
        ("iptables-nft-save", "-c"),
        ("iptables-legacy-save", "-c"),
        ("ip6tables-nft-save", "-c"),
        ("ip6tables-legacy-save", "-c"),
        ("iptables", "--version"),
        ("ip", "-j", "-d", "addr", "show"),
        ("ip", "-j", "-4", "route", "show"),
        ("ip", "-j", "-6", "route", "show"),
        ("conntrack", "-L", "-f", "ipv4"),
        ("conntrack", "-L", "-f", "ipv6"),
        ("nft", "list", "tables"),
        ("nft", "list", "table", "ip", "kube-proxy"),
        ("nft", "list", "table", "ip6", "kube-proxy"),
        ("nft", "-j", "list", "ruleset"),
        ("ipset", "save"),
        ("ipvsadm", "-S", "-n"),
        ("ip", "-j", "-4", "rule", "show"),
        ("ip", "-j", "-6", "rule", "show"),
    }
)

# The sysctls that change what the kernel does with a packet (docs/live-mode.md), as /proc/sys paths; ``*`` is
# every directory the kernel lists there (one per interface, plus all and default). Absent files (a module
# not loaded, IPv6 disabled) are left out of the answer, not reported as 0.
SYSCTLS: tuple[str, ...] = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/*/forwarding",  # per interface: the kernel forwards what arrives on an interface with it on
    "net/ipv4/conf/*/route_localnet",
    "net/ipv4/conf/*/rp_filter",
    "net/ipv6/conf/*/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/ipv4/vs/conntrack",
)
_PROC_SYS = "/proc/sys"
_SYSCTL_DIR = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:+-]{0,31}$")  # what the kernel lists under conf/

BIG_STACK = 1 << 30  # stack limit for the save tools' processes (see _child_stack)
_STACK_LOCK = threading.Lock()
_NETNS_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class CommandNotAllowed(RuntimeError):
    """A programming error: kptui tried to run something that is not a known read-only command."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]  # the logical command (as in ALLOWED), without the netns prefix
    netns: str | None
    status: int | None  # exit status; None when it did not run or did not finish
    stdout: bytes
    stderr: str
    seconds: float  # wall time
    cpu_seconds: float  # CPU time of the command (user + system, from the kernel's child accounting)
    error: str | None = None  # "not installed", "timed out after 60 s", … (status is then None)
    via: tuple[str, ...] = ()  # a remote read: the kubectl or ssh argument list that carried the command

    @property
    def ok(self) -> bool:
        return self.status == 0 and self.error is None

    @property
    def display(self) -> str:
        prefix = f"ip netns exec {self.netns} " if self.netns else ""
        return prefix + " ".join(self.argv)

    def describe_failure(self) -> str:
        if self.error:
            return f"{self.display}: {self.error}"
        detail = self.stderr.strip().splitlines()
        if self.status is not None and self.status < 0:
            try:
                name = signal.Signals(-self.status).name
            except ValueError:
                name = f"signal {-self.status}"
            how = f"was killed by {name}" + (" (it crashed)" if name in ("SIGSEGV", "SIGBUS", "SIGABRT") else "")
        else:
            how = f"exited with status {self.status}"
        return f"{self.display} {how}" + (f": {detail[-1]}" if detail else "")


def check_netns_name(name: str) -> str:
    """The name unchanged if ``ip netns`` could have made it; ValueError otherwise."""
    if not _NETNS_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"'{name}' is not a network namespace name (letters, digits, '_', '.', '-')")
    return name


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=SAFE_PATH)


def legacy_loaded(family: int) -> bool:
    """Whether the kernel has the legacy ip(6)_tables module loaded. Without it ``iptables-legacy-save``
    has nothing to show, and kptui does not run it (it might load the module)."""
    return os.path.exists("/proc/net/ip6_tables_names" if family == 6 else "/proc/net/ip_tables_names")


def module_loaded(name: str) -> bool:
    """Whether kernel module ``name`` (``ip_set``, ``ip_vs``) is loaded (or built in): ``ipset`` and
    ``ipvsadm`` would have the kernel load theirs (ipvsadm even runs modprobe), so kptui runs them only then."""
    if name not in ("ip_set", "ip_vs"):
        raise CommandNotAllowed(f"not a module kptui asks about: {name!r}")
    return os.path.isdir(f"/sys/module/{name}") or (name == "ip_vs" and os.path.exists("/proc/net/ip_vs"))


@contextlib.contextmanager
def _child_stack(big: bool) -> Iterator[None]:
    """Let the save tools' children have a deep stack: iptables-nft-save 1.8.9 overflows the default 8 MiB
    in libnftnl on a ~700k-line ruleset (SIGSEGV after printing a few hundred lines). Children inherit the
    limit; kptui's own stack is not used more. The old limit is restored afterwards."""
    if not big:
        yield
        return
    with _STACK_LOCK:
        soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        want = BIG_STACK if hard == resource.RLIM_INFINITY else min(hard, BIG_STACK)
        raise_it = soft != resource.RLIM_INFINITY and soft < want
        if raise_it:
            resource.setrlimit(resource.RLIMIT_STACK, (want, hard))
        try:
            yield
        finally:
            if raise_it:
                resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))


def run_readonly(argv: Sequence[str], *, netns: str | None = None, timeout: float = 60.0) -> CommandResult:
    """Run one command of :data:`ALLOWED` (inside ``netns`` when given) and return what it did.

    Failures to start (tool missing, not permitted) and timeouts come back as a result with ``error`` set;
    only a command outside :data:`ALLOWED` raises."""
    logical = tuple(argv)
    if logical not in ALLOWED:
        raise CommandNotAllowed(f"not a read-only command kptui may run: {logical!r}")
    if netns is not None:
        check_netns_name(netns)
    exe = _which(logical[0])
    if exe is None:
        return CommandResult(logical, netns, None, b"", "", 0.0, 0.0, f"{logical[0]} is not installed")
    full = [exe, *logical[1:]]
    if netns is not None:
        ip = _which("ip")
        if ip is None:
            return CommandResult(logical, netns, None, b"", "", 0.0, 0.0, "ip (iproute2) is not installed")
        full = [ip, "netns", "exec", netns, *full]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        with _child_stack(logical[0].endswith("-save")):
            proc = subprocess.run(full, shell=False, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                                  env={"PATH": SAFE_PATH, "LC_ALL": "C"}, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return CommandResult(logical, netns, None, b"", "", time.perf_counter() - start, 0.0,
                             f"timed out after {timeout:g} s")  # fmt: skip
    except OSError as exc:
        return CommandResult(logical, netns, None, b"", "", time.perf_counter() - start, 0.0,
                             f"could not run: {exc.strerror or exc}")  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = max(0.0, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return CommandResult(logical, netns, proc.returncode, proc.stdout,
                         proc.stderr.decode("utf-8", "replace"), wall, cpu)  # fmt: skip


# -- kube-proxy's mode over HTTP ------------------------------------------------------------------------------
def _open_url(url: str, timeout: float) -> bytes:
    """GET ``url`` without any proxy; at most 256 bytes of the body."""
    if url != PROXY_MODE_URL:
        raise CommandNotAllowed(f"not a URL kptui may fetch: {url!r}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        body: bytes = resp.read(256)
        return body


def _in_netns(netns: str, fn: Callable[[], T], timeout: float) -> T:
    """Run ``fn`` on a thread that has joined network namespace ``netns`` (setns acts on the calling thread
    only; the rest of kptui stays where it is, and the thread ends afterwards)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(f"/run/netns/{check_netns_name(netns)}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            errors.append(exc)

    t = threading.Thread(target=body, name=f"kptui-netns-{netns}", daemon=True)
    t.start()
    t.join(timeout + 1.0)
    if errors:
        raise errors[0]
    if not result:
        raise TimeoutError(f"no answer within {timeout:g} s")
    return result[0]


def fetch_proxy_mode(netns: str | None = None, timeout: float = 1.0) -> tuple[str | None, str | None]:
    """kube-proxy's ``/proxyMode`` (``iptables``, ``nftables``, ``ipvs``) and None, or None and why not.

    Never required: kube-proxy may bind its metrics elsewhere, or not run on this node at all."""
    timeout = min(timeout, 1.0)

    def get() -> bytes:
        return _open_url(PROXY_MODE_URL, timeout)

    try:
        body = _in_netns(netns, get, timeout) if netns is not None else get()
    except CommandNotAllowed:
        raise
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        return None, f"{PROXY_MODE_URL} not reachable ({reason})"
    text = body.decode("ascii", "replace").strip()
    if not re.fullmatch(r"[a-z]{1,16}", text):
        return None, f"{PROXY_MODE_URL} answered something that is not a proxy mode"
    return text, None


# -- sysctls ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SysctlRead:
    values: dict[str, str]  # "net.ipv4.ip_forward" → "1"
    seconds: float
    error: str | None = None  # why nothing could be read (a namespace that is not there, …)
    command: tuple[str, ...] = ()  # a remote read: the command that read them (grep over /proc/sys)
    via: tuple[str, ...] = ()  # … and the kubectl or ssh argument list that carried it


def _read_sysctl_files(root: str) -> dict[str, str]:
    """The values of :data:`SYSCTLS` under ``root`` (read-only opens; names the kernel lists, checked)."""
    values: dict[str, str] = {}
    for pattern in SYSCTLS:
        head, star, tail = pattern.partition("*")
        if star:
            try:
                names = sorted(n for n in os.listdir(os.path.join(root, head)) if _SYSCTL_DIR.match(n))
            except OSError:
                continue
            paths = [f"{head}{n}{tail}" for n in names]
        else:
            paths = [pattern]
        for rel in paths:
            try:
                with open(os.path.join(root, rel), "rb") as fh:
                    text = fh.read(256).decode("ascii", "replace").strip()
            except OSError:
                continue
            values[rel.replace("/", ".")] = text
    return values


def read_sysctls(netns: str | None = None, timeout: float = 5.0) -> SysctlRead:
    """The :data:`SYSCTLS` of the node (or of network namespace ``netns``), read only. Never raises for
    what the node does: a failure comes back as ``error``."""
    start = time.perf_counter()

    def read() -> dict[str, str]:
        return _read_sysctl_files(_PROC_SYS)

    try:
        values = _in_netns(netns, read, timeout) if netns is not None else read()
    except (OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        where = f" in network namespace {netns}" if netns else ""
        return SysctlRead({}, time.perf_counter() - start, f"could not read /proc/sys{where}: {reason}")
    return SysctlRead(values, time.perf_counter() - start)
