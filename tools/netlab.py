"""A reusable network-namespace lab for running real netfilter rules.

The lab builds a small, disposable topology out of network namespaces (a *node* that acts as the
Kubernetes node/router, plus pod namespaces behind veths and an "outside" host on an uplink), loads
iptables-restore text into the node with the nft or legacy backend, runs echo servers and probe clients
inside the namespaces, and reads back counters (``iptables-*-save -c``) and TRACE output
(``xtables-monitor --trace`` or ``nft monitor trace``). It is used by ``samples/build_samples.py`` and
by kernel conformance tests. :mod:`tools.netlab_nft` adds native nft rulesets and ``nft monitor trace``.

Everything runs through ``ip netns exec`` with fixed argument lists (never a shell). Namespace names
carry a per-process prefix (``kptlab-<pid>-<n>-<tag>-``) so parallel runs never collide, and
:meth:`Lab.close` (called by the context manager, and by ``atexit`` as a last resort) kills every
process the lab started, by pid, and deletes every namespace it created. The host's own netfilter
rules are never touched: every iptables/nft/ipset/conntrack command runs inside a lab namespace.

Example::

    with Lab("demo") as lab:
        pod = lab.add_pod("web", ["10.244.1.5"])
        out = lab.add_uplink_host("outside", node_cidrs=["10.0.0.2/24"], host_cidrs=["10.0.0.1/24"])
        lab.load_rules(rules_text)                 # iptables-nft-restore inside the node namespace
        lab.start_echo(pod, [("tcp", "10.244.1.5", 8080)], tag="web")
        print(lab.tcp_connect(out, "10.96.0.20", 80))
        print(lab.save_rules())                    # iptables-nft-save -c
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tools.netlab_echo import ECHO_SERVER, FLUSH_RECENT, PROBE_CLIENT, Probe, ProbeResult, parse_probe_output
from tools.netlab_util import (
    NS_PREFIX,
    LabError,
    family_of,
    first_packet_trace,
    install_signal_cleanup,
    leftover_namespaces,
    run,
    wait_idle,
    xtables_tool,
)

__all__ = ["NS_PREFIX", "Lab", "LabError", "Probe", "ProbeResult", "family_of", "first_packet_trace",
           "install_signal_cleanup", "leftover_namespaces", "run", "xtables_tool"]

_LAB_SERIAL = itertools.count()
Listener = tuple[str, str, int]  # (proto, address, port)


class Lab:
    """A set of network namespaces around one *node* namespace, deleted again by :meth:`close`.

    ``tag`` (letters, digits, ``-``; at most 12 kept) goes into :attr:`prefix` so ``ip netns list``
    shows which lab a namespace belongs to; the node namespace is ``<prefix><node>`` (:attr:`node`). The
    node gets ``ip_forward``, IPv6 forwarding and ``route_localnet`` (as kube-proxy sets them).
    Every namespace gets ``rp_filter=0`` and IPv6 duplicate address detection off (addresses are
    usable at once).
    """

    def __init__(self, tag: str = "lab", *, node: str = "node") -> None:
        self.tag = "".join(c for c in tag.lower() if c.isalnum() or c == "-")[:12] or "lab"
        self.prefix = f"{NS_PREFIX}{os.getpid()}-{next(_LAB_SERIAL)}-{self.tag}-"
        self.node = self.prefix + node
        self.namespaces: list[str] = []
        self._procs: list[subprocess.Popen[str]] = []
        self._sports = itertools.count(20000)
        self._trace: tuple[subprocess.Popen[str], Path, IO[str], list[list[str]], str] | None = None
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        atexit.register(self.close)
        try:
            self.add_netns(self.node[len(self.prefix):], router=True)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the trace monitor and every process started here (by pid), delete every namespace."""
        if self._closed:
            return
        self._closed = True
        if self._trace is not None:
            proc, path, fh = self._trace[0], self._trace[1], self._trace[2]
            self._trace = None
            self.stop(proc)
            fh.close()
            path.unlink(missing_ok=True)
        for proc in reversed(self._procs):
            self.stop(proc)
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()
        atexit.unregister(self.close)

    # ---- namespaces, links, addresses -----------------------------------------------------------
    def add_netns(self, short: str, *, router: bool = False) -> str:
        """Create namespace ``<prefix><short>`` with ``lo`` up; return its full name."""
        name = self.prefix + short
        if name in self.namespaces:
            raise LabError(f"namespace {name} already exists in this lab")
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")
        settings = {"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0",
                    "net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"}
        if router:
            settings |= {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1",
                         "net.ipv4.conf.all.route_localnet": "1"}
        for key, value in settings.items():
            self.sysctl(name, key, value)
        return name

    def exec(self, ns: str, argv: Sequence[str], *, input: str | None = None, check: bool = True,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside namespace ``ns`` and return the completed process."""
        return run(["ip", "netns", "exec", ns, *argv], input=input, check=check, timeout=timeout)

    def ip(self, ns: str, *args: str) -> str:
        """Run ``ip -n NS ARGS...`` and return its stdout."""
        return run(["ip", "-n", ns, *args]).stdout

    def sysctl(self, ns: str, key: str, value: str) -> None:
        """Set a sysctl inside ``ns`` (e.g. ``net.ipv4.conf.all.route_localnet``)."""
        self.exec(ns, ["sysctl", "-q", "-w", f"{key}={value}"])

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """Create a veth pair ``ns_a:if_a`` <-> ``ns_b:if_b`` and bring both ends up."""
        run(["ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b])
        self.ip(ns_a, "link", "set", if_a, "up")
        self.ip(ns_b, "link", "set", if_b, "up")

    def add_addr(self, ns: str, dev: str, cidr: str) -> None:
        """Add address ``cidr`` (``10.0.0.2/24``, ``fd00::2/64``) to ``dev`` in ``ns``."""
        self.ip(ns, "addr", "add", cidr, "dev", dev, *(["nodad"] if family_of(cidr) == 6 else []))

    def add_route(self, ns: str, dst: str, *, via: str | None = None, dev: str | None = None,
                  onlink: bool = False, family: int | None = None) -> None:
        """Add a route in ``ns``; ``dst`` may be ``default`` (family from ``via`` or ``family``)."""
        fam = family or family_of(via if dst == "default" and via else dst)
        args = ["-6" if fam == 6 else "-4", "route", "add", dst]
        args += ["via", via] if via else []
        args += ["dev", dev] if dev else []
        args += ["onlink"] if onlink else []
        self.ip(ns, *args)

    def add_pod(self, short: str, ips: Sequence[str], *, node_if: str | None = None,
                gw4: str = "10.244.1.1", gw6: str = "fe80::1") -> str:
        """Create a pod namespace wired to the node by a veth (routed, Calico/ptp-CNI style).

        The pod gets ``ips`` as /32 (/128) on ``eth0`` and a default route via ``gw4``/``gw6``; the
        node-side veth ``node_if`` (default ``veth<short>``) carries the gateway address and the node
        gets a host route to each pod IP through it. Returns the namespace name.
        """
        ns = self.add_netns(short)
        node_if = node_if or f"veth{short}"[:15]
        self.veth(self.node, node_if, ns, "eth0")
        families = {family_of(ip) for ip in ips}
        if 4 in families:
            self.add_addr(self.node, node_if, f"{gw4}/32")
            self.add_route(ns, "default", via=gw4, dev="eth0", onlink=True, family=4)
        if 6 in families:
            self.add_addr(self.node, node_if, f"{gw6}/64")
            self.add_route(ns, "default", via=gw6, dev="eth0", family=6)
        for ip in ips:
            self.add_addr(ns, "eth0", f"{ip}/{128 if family_of(ip) == 6 else 32}")
            self.add_route(self.node, ip, dev=node_if)
        return ns

    def add_bridge(self, name: str, cidrs: Sequence[str]) -> None:
        """Create bridge ``name`` in the node (e.g. ``docker0``) with the given addresses."""
        self.ip(self.node, "link", "add", name, "type", "bridge")
        self.ip(self.node, "link", "set", name, "up")
        for cidr in cidrs:
            self.add_addr(self.node, name, cidr)

    def add_bridged_host(self, short: str, bridge: str, cidrs: Sequence[str], gateway: str,
                         *, node_if: str | None = None) -> str:
        """Create a namespace attached to node bridge ``bridge`` (a Docker container, say)."""
        ns = self.add_netns(short)
        node_if = node_if or f"veth{short}"[:15]
        self.veth(self.node, node_if, ns, "eth0")
        self.ip(self.node, "link", "set", node_if, "master", bridge)
        for cidr in cidrs:
            self.add_addr(ns, "eth0", cidr)
        self.add_route(ns, "default", via=gateway)
        return ns

    def add_uplink_host(self, short: str, *, node_cidrs: Sequence[str], host_cidrs: Sequence[str],
                        extra_ips: Iterable[str] = (), node_if: str = "eth0", host_if: str = "eth0",
                        default_routes: bool = True) -> str:
        """Create a host on the node's uplink (the outside world / other nodes / the router).

        ``node_cidrs`` go on the node's ``node_if``, ``host_cidrs`` on the host's ``host_if``;
        ``extra_ips`` are added to the host's ``lo`` (client addresses, remote pod IPs the host
        answers for). With ``default_routes`` each side's default route points at the other.
        """
        ns = self.add_netns(short)
        self.veth(self.node, node_if, ns, host_if)
        for cidr in node_cidrs:
            self.add_addr(self.node, node_if, cidr)
        for cidr in host_cidrs:
            self.add_addr(ns, host_if, cidr)
        for ip in extra_ips:
            self.add_addr(ns, "lo", f"{ip}/{128 if family_of(ip) == 6 else 32}")
        if default_routes:
            for fam in (4, 6):
                node_addr = next((c.split("/")[0] for c in node_cidrs if family_of(c) == fam), None)
                host_addr = next((c.split("/")[0] for c in host_cidrs if family_of(c) == fam), None)
                if node_addr and host_addr:
                    self.add_route(self.node, "default", via=host_addr, family=fam)
                    self.add_route(ns, "default", via=node_addr, family=fam)
        return ns

    # ---- rules -------------------------------------------------------------------------------------
    def load_rules(self, text: str, *, backend: str = "nft", family: int = 4, noflush: bool = False,
                   ns: str | None = None) -> None:
        """Feed ``text`` to ``ip[6]tables-{nft,legacy}-restore`` in the node (or ``ns``).

        Note: iptables-nft-restore commits table by table, so a failing table leaves the tables
        before it loaded.
        """
        argv = [xtables_tool("restore", backend, family)]
        argv += ["-w", "10"] if backend == "legacy" else []  # /run/xtables.lock is shared by all netns
        argv += ["--noflush"] if noflush else []
        self.exec(ns or self.node, argv, input=text)

    def save_rules(self, *, backend: str = "nft", family: int = 4, counters: bool = True,
                   ns: str | None = None) -> str:
        """Return ``ip[6]tables-{nft,legacy}-save [-c]`` output of the node (or ``ns``), verbatim."""
        argv = [xtables_tool("save", backend, family)] + (["-c"] if counters else [])
        return self.exec(ns or self.node, argv).stdout

    def load_ipsets(self, text: str, *, ns: str | None = None) -> None:
        """Feed ``ipset restore`` input to the node (or ``ns``); sets live and die with the netns."""
        self.exec(ns or self.node, ["ipset", "restore"], input=text)

    def flush_recent(self, ns: str | None = None) -> list[str]:
        """Forget every ``-m recent`` entry (write ``/`` to each /proc/net/xt_recent list).

        Returns the list names. Use it when every try must be a first packet (session affinity).
        """
        return self.exec(ns or self.node, ["python3", "-c", FLUSH_RECENT]).stdout.split()

    def flush_conntrack(self, ns: str | None = None) -> None:
        """Delete all conntrack entries in the node (or ``ns``)."""
        self.exec(ns or self.node, ["conntrack", "-F"], check=False)

    def conntrack_list(self, ns: str | None = None) -> str:
        """Return ``conntrack -L`` output of the node (or ``ns``)."""
        return self.exec(ns or self.node, ["conntrack", "-L"], check=False).stdout

    # ---- tracing -----------------------------------------------------------------------------------
    def trace_start(self, match: Sequence[str], *, family: int = 4, monitor: str | None = None) -> None:
        """Insert ``-t raw -I PREROUTING|OUTPUT MATCH -j TRACE`` (iptables-nft) in the node and start a
        trace monitor there; ``match`` selects packets, e.g. ``["-p", "tcp", "--sport", "40001"]``.

        ``monitor`` is ``"xtables"`` (``xtables-monitor --trace``: ``PACKET:``/``TRACE:`` lines with
        rules in iptables syntax) or ``"nft"`` (``nft monitor trace``: nft syntax). The default is
        xtables for IPv4 and nft for IPv6, because xtables-monitor 1.8.9 aborts on IPv6 rules with
        port matches ("unsupported layer 4 protocol value"). Only nft-backend rules are traced.
        Stop with :meth:`trace_stop`.
        """
        if self._trace is not None:
            raise LabError("a trace is already running")
        monitor = monitor or ("nft" if family == 6 else "xtables")
        tool = xtables_tool("", "nft", family)
        rules = [["-t", "raw", "-I", chain, *match, "-j", "TRACE"] for chain in ("PREROUTING", "OUTPUT")]
        for rule in rules:
            self.exec(self.node, [tool, *rule])
        fd, name = tempfile.mkstemp(prefix=self.prefix, suffix=".trace")
        os.close(fd)
        fh = open(name, "w")  # noqa: SIM115 - closed in trace_stop/close
        argv = (["nft", "-a", "monitor", "trace"] if monitor == "nft"  # -a: each rule with its handle
                else ["xtables-monitor", "--trace", f"-{family}"])
        proc = self.spawn(self.node, ["stdbuf", "-oL", *argv], stdout=fh, stderr=subprocess.STDOUT)
        self._trace = (proc, Path(name), fh, rules, tool)
        time.sleep(0.3)  # let the monitor subscribe before traffic starts

    def trace_wait_idle(self, *, quiet: float = 0.3, timeout: float = 10.0) -> bool:
        """Wait until the running trace monitor has written nothing for ``quiet`` seconds (it looks up
        every traced rule in the kernel before printing it, so it can lag behind the traffic). Returns
        False when ``timeout`` ran out first. Call before :meth:`trace_stop`."""
        if self._trace is None:
            raise LabError("no trace is running")
        return wait_idle(self._trace[1], self._trace[2], quiet=quiet, timeout=timeout)

    def trace_stop(self) -> str:
        """Stop the monitor, delete the TRACE rules again and return the captured text.

        The raw table created for the TRACE rules stays (empty) in the node's ruleset.
        """
        if self._trace is None:
            raise LabError("no trace is running")
        proc, path, fh, rules, tool = self._trace
        self._trace = None
        time.sleep(0.2)
        self.stop(proc)
        fh.close()
        for rule in rules:
            self.exec(self.node, [tool, *[("-D" if a == "-I" else a) for a in rule]], check=False)
        text = path.read_text()
        path.unlink(missing_ok=True)
        return text

    # ---- processes and traffic --------------------------------------------------------------------
    def spawn(self, ns: str, argv: Sequence[str], **popen_kw: Any) -> subprocess.Popen[str]:
        """Start ``argv`` inside ``ns`` in the background; it is stopped by :meth:`close`."""
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[str] = subprocess.Popen(["ip", "netns", "exec", ns, *argv], text=True,
                                                       **popen_kw)
        self._procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[str]) -> None:
        """Terminate one process by its pid (SIGTERM, then SIGKILL after 2 s)."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def start_echo(self, ns: str, listeners: Iterable[Listener], *, tag: str | None = None,
                   timeout: float = 10.0) -> subprocess.Popen[str]:
        """Start one echo server in ``ns`` serving every ``(proto, address, port)`` listener.

        Each TCP connection / UDP datagram is answered with JSON naming ``tag`` (default: the
        namespace), the served address and the peer address it saw. Waits until all sockets are bound.
        """
        specs = [f"{proto},{port},{addr}" for proto, addr, port in listeners]
        proc = self.spawn(ns, ["python3", "-c", ECHO_SERVER, tag or ns, *specs],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline().strip() if ready else ""
        if line != "READY":
            self.stop_and_forget(proc)
            raise LabError(f"echo server in {ns} did not start: {line!r}")
        return proc

    def stop_and_forget(self, proc: subprocess.Popen[str]) -> None:
        """Stop a process started by this lab and drop it from the cleanup list."""
        self.stop(proc)
        if proc in self._procs:
            self._procs.remove(proc)

    def probe(self, ns: str, probes: Sequence[Probe]) -> list[ProbeResult]:
        """Run ``probes`` one after the other from ``ns`` (one client process) and return results.

        Probes without a source port get a fresh one from the lab's counter (20000 upwards), so each
        is a new conntrack entry and can be singled out in a trace.
        """
        filled = [p if p.sport else dataclasses.replace(p, sport=next(self._sports)) for p in probes]
        if not filled:
            return []
        budget = sum(p.timeout for p in filled) + 15.0
        out = self.exec(ns, ["python3", "-c", PROBE_CLIENT, json.dumps([p.to_json() for p in filled])],
                        timeout=budget).stdout
        return parse_probe_output(filled, out)

    def tcp_connect(self, ns: str, dst: str, port: int, *, src: str | None = None,
                    sport: int | None = None, timeout: float = 1.0) -> ProbeResult:
        """Open one TCP connection from ``ns`` and read the echo server's answer."""
        return self.probe(ns, [Probe("tcp", dst, port, src, sport, timeout)])[0]

    def udp_send(self, ns: str, dst: str, port: int, *, src: str | None = None,
                 sport: int | None = None, timeout: float = 1.0) -> ProbeResult:
        """Send one UDP datagram from ``ns`` and wait for the echo server's answer."""
        return self.probe(ns, [Probe("udp", dst, port, src, sport, timeout)])[0]
