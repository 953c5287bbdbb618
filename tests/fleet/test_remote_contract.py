"""The argument contract of kubectl and ssh (kptui/live/remote_argv.py, docs/fleet.md), argument by argument:
the read-only command list, the exact argument lists, what user input is refused, that the only text a remote
shell reads is a constant; and that the real kubectl and ssh clients installed here accept every flag (they
cannot reach a cluster or a host on these machines: kubectl is pointed at a closed port, ssh only prints its
configuration)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from kptui.live.remote import parse_modules, parse_sysctls
from kptui.live.remote_argv import (
    DEFAULT_IMAGE,
    REMOTE_COMMANDS,
    KubectlTarget,
    RemoteArgumentError,
    SshTarget,
    check_context,
    check_image,
    check_namespace,
    check_node_name,
    check_selector,
    check_ssh_target,
    created_pod,
    debug_call,
    delete_call,
    exec_call,
    nodes_call,
    remote_line,
    ssh_call,
    status_call,
    wait_call,
)
from kptui.live.runner import ALLOWED, SYSCTLS, CommandNotAllowed

from .readonly import READ_ONLY, READ_ONLY_TOOLS

POD = "node-debugger-worker-1-x7k2p"
SYSTEM = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the real clients, not the stand-ins
T = KubectlTarget("worker-1", context="kind-prod", namespace="kptui-debug", image="registry.example/netshoot:v1")


def test_the_remote_command_list_is_the_read_only_list() -> None:
    assert REMOTE_COMMANDS == READ_ONLY
    assert ALLOWED <= REMOTE_COMMANDS
    assert {c[0] for c in REMOTE_COMMANDS} <= READ_ONLY_TOOLS
    for cmd in REMOTE_COMMANDS:  # nothing that writes, loads, flushes, deletes or restores
        for word in cmd:
            assert word not in ("-F", "-X", "-D", "-I", "-A", "restore", "flush", "delete", "add", "-w"), cmd


def test_kubectl_argument_lists_exactly() -> None:
    base = ["kubectl", "--context=kind-prod", "--namespace=kptui-debug"]
    assert list(debug_call(T, 600).argv) == [*base, "debug", "node/worker-1", "--profile=sysadmin",
                                             "--image=registry.example/netshoot:v1", "--container=kptui",
                                             "--attach=false", "--stdin=false", "--tty=false", "--", "sleep", "600"]
    assert list(wait_call(T, POD, 180).argv) == [*base, "wait", "--for=condition=Ready", f"pod/{POD}", "--timeout=180s"]
    assert list(exec_call(T, POD, ("iptables-nft-save", "-c")).argv) == [
        *base, "exec", POD, "--container=kptui", "--", "chroot", "/host", "iptables-nft-save", "-c"]
    image = KubectlTarget("worker-1", tools="image")
    assert list(exec_call(image, POD, ("nft", "-j", "list", "ruleset")).argv) == [
        "kubectl", "exec", POD, "--container=kptui", "--", "nft", "-j", "list", "ruleset"]
    assert list(delete_call(T, POD).argv) == [*base, "delete", f"pod/{POD}", "--wait=false", "--ignore-not-found",
                                              "--grace-period=1"]
    assert list(status_call(T, POD).argv)[:6] == [*base, "get", f"pod/{POD}", "-o"]
    assert list(nodes_call(None, "pool=gpu,!spot").argv) == ["kubectl", "get", "nodes", "-o", "name",
                                                            "--selector=pool=gpu,!spot"]
    assert list(nodes_call("c", None).argv) == ["kubectl", "--context=c", "get", "nodes", "-o", "name"]
    assert KubectlTarget("n").image == DEFAULT_IMAGE == "docker.io/nicolaka/netshoot:v0.13"


def test_ssh_argument_lists_exactly_and_the_remote_line_is_a_constant() -> None:
    call = ssh_call(SshTarget("admin@10.0.0.5"), ("curl", "-s", "-S", "--max-time", "1", "--noproxy", "*",
                                                  "http://127.0.0.1:10249/proxyMode"))  # fmt: skip
    assert list(call.argv) == ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ControlMaster=no",
                               "--", "admin@10.0.0.5",
                               "sudo -n curl -s -S --max-time 1 --noproxy '*' http://127.0.0.1:10249/proxyMode"]
    assert list(ssh_call(SshTarget("n1", sudo=False), ("ipset", "save")).argv)[-2:] == ["n1", "ipset save"]
    for cmd in REMOTE_COMMANDS:  # every line the remote shell reads splits back into exactly the command
        for sudo in (True, False):
            line = remote_line(cmd, sudo)
            assert shlex.split(line) == [*(["sudo", "-n"] if sudo else []), *cmd]
            assert line == shlex.join(shlex.split(line))


@pytest.mark.parametrize("cmd", [("iptables", "-F"), ("sh", "-c", "id"), ("iptables-nft-save",),
                                 ("nft", "flush", "ruleset"), ("conntrack", "-D"), ("ls", "-d", "/etc")])
def test_nothing_else_runs_on_a_node(cmd: tuple[str, ...]) -> None:
    with pytest.raises(CommandNotAllowed):
        exec_call(T, POD, cmd)
    with pytest.raises(CommandNotAllowed):
        ssh_call(SshTarget("h"), cmd)


@pytest.mark.parametrize("check,bad", [
    (check_node_name, ["-x", "a b", "a;b", "$(id)", "Node1", "", "a" * 254, "../etc", "a/b", "n\n", "-", "a.", "`id`"]),
    (check_namespace, ["-n", "a.b", "A", "x" * 64, "a b"]),
    (check_context, ["-x", "a b", "a;b", "$(id)", "a|b", "a'b", "", "a\nb"]),
    (check_selector, ["env in (a,b)", "a=b;c", "-l", "a b", "a=$(id)", "", "a=b c", "a=(b)"]),
    (check_image, ["-x", "a b", "x;y", "a/UPPER", "$(id)", "x:", "@sha256:zz"]),
    (check_ssh_target, ["-oProxyCommand=x", "a b", "u@-h", "a;b", "$(x)", "-", "u@", "@h", "h;", "u@h@i j"]),
])  # fmt: skip
def test_user_input_that_is_not_passed_on(check: object, bad: list[str]) -> None:
    for value in bad:
        with pytest.raises(RemoteArgumentError):
            check(value)  # type: ignore[operator]


def test_user_input_that_is_passed_on() -> None:
    for name in ("worker-1", "ip-10-0-0-5.ec2.internal", "n"):
        assert check_node_name(name) == name
    for ctx in ("kind-kind", "arn:aws:eks:us-east-1:123456789012:cluster/prod", "gke_p_europe-west1_c",
                "default/api-x-example-com:6443/kube:admin", "user@cluster"):
        assert check_context(ctx) == ctx
    for sel in ("pool=gpu", "node-role.kubernetes.io/worker=", "!spot", "a!=b,c==d", "kubernetes.io/os=linux"):
        assert check_selector(sel) == sel
    for image in ("busybox", "busybox:stable", "localhost:5000/x/y:1.0", DEFAULT_IMAGE, "quay.io/a/b@sha256:" + "a" * 64):
        assert check_image(image) == image
    for target in ("root@10.0.0.5", "host", "ubuntu@node-1.example.com", "fe80::1", "u@2001:db8::1", "my_alias"):
        assert check_ssh_target(target) == target


def test_the_created_pod_is_read_from_kubectl_s_words_and_checked() -> None:
    out = ("Creating debugging pod node-debugger-worker-1-x7k2p with container kptui on node worker-1.\n"
           "Warning: would violate PodSecurity\n")
    assert created_pod(out, "worker-1") == POD
    assert created_pod(out, "worker-2") is None  # another node's pod is never taken for this one
    assert created_pod("Creating debugging pod ../../x with container kptui on node worker-1.", "worker-1") is None
    assert created_pod("", "worker-1") is None


def test_probe_outputs_are_read_as_the_local_reader_reads() -> None:
    assert parse_modules(b"/proc/net/ip_tables_names\n/sys/module/ip_set\n/etc/passwd\n") == {
        "/proc/net/ip_tables_names", "/sys/module/ip_set"}
    out = (b"/proc/sys/net/ipv4/ip_forward:1\n/proc/sys/net/ipv4/conf/eth0/rp_filter:2\n"
           b"/proc/sys/net/ipv4/conf/eth0.100/route_localnet:1\n/proc/sys/net/ipv4/conf/all/arp_filter:0\n"
           b"/proc/sys/net/ipv6/conf/eth0/forwarding:0\n/proc/sys/net/bridge/bridge-nf-call-iptables:1\n"
           b"/proc/sys/net/bridge/bridge-nf-call-arptables:1\n/proc/sys/net/ipv4/vs/conntrack:1\n"
           b"/proc/sys/net/ipv4/vs/expire_nodest_conn:0\n/proc/sys/net/ipv6/conf/eth0/rp_filter:1\n")
    assert parse_sysctls(out) == {"net.ipv4.ip_forward": "1", "net.ipv4.conf.eth0.rp_filter": "2",
                                  "net.ipv4.conf.eth0.100.route_localnet": "1", "net.ipv6.conf.eth0.forwarding": "0",
                                  "net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.vs.conntrack": "1"}
    assert len(SYSCTLS) == 8  # a new sysctl in the runner needs its directory in SYSCTL_READ and a line above


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kubeconfig whose context kind-prod points at a closed port on this machine."""
    cfg = tmp_path / "kubeconfig"
    cfg.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n"
                   "contexts:\n- name: kind-prod\n  context:\n    cluster: c\n    user: u\n    namespace: default\n"
                   "users:\n- name: u\n  user: {}\ncurrent-context: kind-prod\n")  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(cfg))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.skipif(shutil.which("kubectl", path=SYSTEM) is None, reason="no kubectl client installed here")
def test_the_real_kubectl_accepts_every_flag_of_the_contract(kubeconfig: None) -> None:
    calls = [debug_call(T, 600), wait_call(T, POD, 5), status_call(T, POD), exec_call(T, POD, ("ipset", "save")),
             delete_call(T, POD), nodes_call("kind-prod", "pool=gpu")]
    for call in calls:
        exe = shutil.which("kubectl", path=SYSTEM)
        assert exe is not None
        proc = subprocess.run([exe, *call.argv[1:]], capture_output=True, text=True, timeout=60, check=False,
                              env=dict(os.environ))  # fmt: skip
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "connection refused" in text, (call.argv, text[-500:])
        for wrong in ("unknown flag", "unknown shorthand", "invalid argument", "flag needs an argument", "Usage:"):
            assert wrong not in text, (call.argv, text[-500:])


@pytest.mark.skipif(shutil.which("ssh", path=SYSTEM) is None, reason="no ssh client installed here")
def test_the_real_ssh_client_reads_the_options_as_meant() -> None:
    argv = list(ssh_call(SshTarget("admin@node-1.example.invalid"), ("uname", "-v")).argv)
    exe = shutil.which("ssh", path=SYSTEM)
    assert exe is not None
    proc = subprocess.run([exe, "-G", "-F", "/dev/null", *argv[1:]], capture_output=True, text=True, timeout=30,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    config = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert config["user"] == "admin" and config["hostname"] == "node-1.example.invalid"
    assert config["batchmode"] == "yes" and config["connecttimeout"] == "15"
    assert config["controlmaster"] == "false" and config["requesttty"] == "false"


def test_the_progress_bar_on_a_terminal_and_lines_elsewhere() -> None:
    import io

    from kptui.cli.fleet_capture import Progress
    from kptui.node.remote_capture import CaptureRun, NodeCapture

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    run = CaptureRun(4)
    run.done += [NodeCapture("a", error=None), NodeCapture("b", error="boom")]
    run.running += ["c", "d"]
    tty = Tty()
    Progress(tty, 4).bar(run)
    assert "[###############...............] 2/4 nodes, 2 failed" in tty.getvalue() and "reading: c, d" in tty.getvalue()
    assert tty.getvalue().startswith("\r")
    plain = io.StringIO()
    p = Progress(plain, 4)
    p.bar(run)
    p.node(run.done[1], "FAILED: boom\x1b[31m")
    assert plain.getvalue() == "kptui: node b: FAILED: boom\\x1b[31m\n"  # no bar, and no escape from a node


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `kubectl` that prints its first argument's lines, then sleeps its second argument's seconds."""
    import sys

    script = tmp_path / "kubectl"
    script.write_text(f"#!{sys.executable}\nimport sys, time\nsys.stdout.write(sys.argv[1].replace('|', '\\n'))\n"
                      "sys.stdout.flush()\ntime.sleep(float(sys.argv[2]))\nsys.stdout.write(sys.argv[3] * "
                      "int(sys.argv[4]) if len(sys.argv) > 4 else '')\n")  # fmt: skip
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{SYSTEM}")
    return script


def test_the_process_door_times_out_cancels_protects_and_caps(fake_kubectl: Path) -> None:
    import threading
    import time

    from kptui.live.remote_argv import Call
    from kptui.live.remote_exec import Spawner

    created = "Creating debugging pod node-debugger-n-abcde with container kptui on node n."
    out = Spawner().run(Call(("kubectl", created, "30")), 1.0)
    assert out.error == "timed out after 1 s" and out.status is None
    assert created_pod(out.stdout.decode(), "n") == "node-debugger-n-abcde"  # what it printed still counts
    s = Spawner()
    threading.Timer(0.3, s.cancel).start()
    t0 = time.monotonic()
    out = s.run(Call(("kubectl", "x", "30")), 60.0)
    assert out.error == "interrupted" and time.monotonic() - t0 < 5
    assert s.run(Call(("kubectl", "x", "0")), 5.0).error == "interrupted"  # nothing new starts after a cancel
    assert s.run(Call(("kubectl", "gone", "0")), 5.0, always=True).ok  # but the delete does
    s = Spawner()
    threading.Timer(0.3, s.cancel).start()
    out = s.run(Call(("kubectl", created, "1")), 60.0, protect=True)  # the creation is let finish
    assert out.ok and created_pod(out.stdout.decode(), "n")
    out = Spawner(max_output=1 << 20).run(Call(("kubectl", "", "0", "x", str(3 << 20))), 30.0)
    assert out.error is not None and "passed 1 MiB" in out.error
