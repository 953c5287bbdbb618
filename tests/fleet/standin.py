"""Stand-ins for ``kubectl`` and ``ssh`` (tests only): put on PATH by tests/fleet/conftest.py, they check every
argument kptui passes against the contract of docs/fleet.md, spelled out here on its own (not imported from
kptui), and run the read-only command in the network namespace that plays the node.

State lives in the directory ``$KPTUI_STANDIN``: ``config.json`` (what the test expects: context, namespace,
image, tools; per node its namespace, labels and misbehaviours; per ssh target its namespace), ``pods/`` (one
file per debug pod that exists) and ``log.jsonl`` (every call, with ``problem`` set when an argument was not
the contract's). Misbehaviours, per node: ``debug_delay`` (seconds before kubectl debug answers),
``debug_fails`` (creates the pod, then fails), ``wait_fails`` (the pod never gets ready), ``slow`` ({tool:
seconds}: the command sleeps first), ``exec_fails`` ([tool]: kubectl exec errors), ``delete_fails``.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fleet.readonly import READ_ONLY

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SSH_OPTIONS = ["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ControlMaster=no"]
STATUS_JSONPATH = ("jsonpath={.status.phase} {range .status.containerStatuses[*]}{.state.waiting.reason} "
                   "{.state.waiting.message} {.state.terminated.reason}{end}")


class Refused(Exception):
    """An argument list that is not the contract's."""


def _state() -> Path:
    return Path(os.environ["KPTUI_STANDIN"])


def _config() -> dict[str, Any]:
    return json.loads((_state() / "config.json").read_text())


def _log(prog: str, argv: list[str], problem: str | None = None, **extra: Any) -> None:
    line = json.dumps({"prog": prog, "argv": argv, "problem": problem, "time": time.time(), **extra}) + "\n"
    fd = os.open(_state() / "log.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _busy(what: str) -> None:
    """A marker that a slow step has begun (tests wait for it before they interrupt kptui)."""
    (_state() / f"busy-{what}").write_text(str(os.getpid()))


def _run_in(netns: str, cmd: list[str], missing: str, delay: float = 0.0) -> int:
    """Run a read-only command in ``netns`` with its output streamed; a tool that is not there answers as the
    node's would (``missing`` is the message's form)."""
    if tuple(cmd) not in READ_ONLY:
        raise Refused(f"not a read-only command: {cmd}")
    if delay:
        _busy(f"{netns}-{cmd[0]}")
        time.sleep(delay)
    if shutil.which(cmd[0], path=SAFE_PATH) is None:
        print(missing.format(tool=cmd[0]), file=sys.stderr)
        return 127 if missing.startswith("chroot") else 1
    proc = subprocess.run(["ip", "netns", "exec", netns, *cmd], stdin=subprocess.DEVNULL, check=False,
                          env={"PATH": SAFE_PATH, "LC_ALL": "C"})
    return proc.returncode


# -- kubectl ---------------------------------------------------------------------------------------------
def _global_flags(argv: list[str], cfg: dict[str, Any]) -> list[str]:
    """The global flags the contract puts first: --context=C, then --namespace=NS (not for the cluster-scoped
    `get nodes`)."""
    expected = []
    if cfg.get("context"):
        expected.append(f"--context={cfg['context']}")
    if cfg.get("namespace") and argv[len(expected):len(expected) + 2] != ["get", "nodes"]:
        expected.append(f"--namespace={cfg['namespace']}")
    if argv[: len(expected)] != expected:
        raise Refused(f"global flags {argv[:len(expected)]} != {expected}")
    return argv[len(expected):]


def _pod(name: str) -> dict[str, Any]:
    path = _state() / "pods" / f"{name}.json"
    if not path.exists():
        print(f'Error from server (NotFound): pods "{name}" not found', file=sys.stderr)
        raise SystemExit(1)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def kubectl(argv: list[str]) -> int:
    cfg = _config()
    rest = _global_flags(argv, cfg)
    verb = rest[0] if rest else ""
    if verb == "debug":
        node = rest[1].removeprefix("node/")
        want = ["debug", f"node/{node}", "--profile=sysadmin", f"--image={cfg['image']}", "--container=kptui",
                "--attach=false", "--stdin=false", "--tty=false", "--", "sleep"]
        if rest[:-1] != want or not rest[-1].isdigit() or node not in cfg["nodes"]:
            raise Refused(f"kubectl debug {rest} != {want} SECONDS")
        spec = cfg["nodes"][node]
        if spec.get("debug_delay"):
            _busy(f"{node}-debug")
            time.sleep(spec["debug_delay"])
        pod = f"node-debugger-{node}-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        (_state() / "pods" / f"{pod}.json").write_text(json.dumps({"node": node, "lifetime": int(rest[-1])}))
        print(f"Creating debugging pod {pod} with container kptui on node {node}.", flush=True)
        if spec.get("debug_fails"):
            print("error: something went wrong after the pod was created", file=sys.stderr)
            return 1
        return 0
    if verb == "wait":
        if len(rest) != 4 or rest[1] != "--for=condition=Ready" or not rest[2].startswith("pod/") or \
                not rest[3].startswith("--timeout=") or not rest[3].endswith("s"):  # fmt: skip
            raise Refused(f"kubectl wait {rest}")
        pod = _pod(rest[2][4:])
        if cfg["nodes"][pod["node"]].get("wait_fails"):
            print(f"error: timed out waiting for the condition on pods/{rest[2][4:]}", file=sys.stderr)
            return 1
        print(f"{rest[2]} condition met")
        return 0
    if verb == "get" and rest[1:2] == ["nodes"]:
        if rest[:4] != ["get", "nodes", "-o", "name"] or len(rest) > 5 or (len(rest) == 5 and
                                                                         not rest[4].startswith("--selector=")):
            raise Refused(f"kubectl get nodes {rest}")
        selector = rest[4][len("--selector="):] if len(rest) == 5 else None
        for name, spec in cfg["nodes"].items():
            if selector is None or all(_term(t, spec.get("labels", {})) for t in selector.split(",")):
                print(f"node/{name}")
        return 0
    if verb == "get":
        if len(rest) != 4 or not rest[1].startswith("pod/") or rest[2] != "-o" or rest[3] != STATUS_JSONPATH:
            raise Refused(f"kubectl get {rest}")
        _pod(rest[1][4:])
        print("Pending ErrImagePull failed to pull image: not found")
        return 0
    if verb == "exec":
        if len(rest) < 5 or rest[2] != "--container=kptui" or rest[3] != "--":
            raise Refused(f"kubectl exec {rest}")
        pod = _pod(rest[1])
        spec = cfg["nodes"][pod["node"]]
        cmd = rest[4:]
        if cfg.get("tools", "host") == "host":
            if cmd[:2] != ["chroot", "/host"]:
                raise Refused(f"not under chroot /host: {cmd}")
            cmd = cmd[2:]
        if cmd and cmd[0] in spec.get("exec_fails", ()):
            print("error: unable to upgrade connection: container not found (\"kptui\")", file=sys.stderr)
            return 1
        code = _run_in(spec["netns"], cmd, "chroot: failed to run command '{tool}': No such file or directory",
                       spec.get("slow", {}).get(cmd[0] if cmd else "", 0))
        if code:
            print(f"command terminated with exit code {code}", file=sys.stderr)
        return code
    if verb == "delete":
        if len(rest) != 5 or not rest[1].startswith("pod/") or rest[2:] != ["--wait=false", "--ignore-not-found",
                                                                           "--grace-period=1"]:
            raise Refused(f"kubectl delete {rest}")
        path = _state() / "pods" / f"{rest[1][4:]}.json"
        if path.exists() and cfg["nodes"][json.loads(path.read_text())["node"]].get("delete_fails"):
            print("Error from server (Forbidden): pods is forbidden", file=sys.stderr)
            return 1
        path.unlink(missing_ok=True)
        print(f'pod "{rest[1][4:]}" deleted')
        return 0
    raise Refused(f"kubectl {rest}")


def _term(term: str, labels: dict[str, str]) -> bool:
    if term.startswith("!"):
        return term[1:] not in labels
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = term.partition(op)
            return (labels.get(key) == value) != (op == "!=")
    return term in labels


# -- ssh -------------------------------------------------------------------------------------------------
def ssh(argv: list[str]) -> int:
    cfg = _config()
    n = len(SSH_OPTIONS)
    if argv[:n] != SSH_OPTIONS or argv[n:n + 1] != ["--"] or len(argv) != n + 3:
        raise Refused(f"ssh {argv}")
    target, line = argv[n + 1], argv[n + 2]
    host = cfg["ssh"]["hosts"].get(target)
    if host is None:
        print(f"ssh: Could not resolve hostname {target}: Name or service not known", file=sys.stderr)
        return 255
    if host.get("password"):
        print("sudo: a password is required", file=sys.stderr)
        return 1
    words = shlex.split(line)
    if shlex.join(words) != line:
        raise Refused(f"the remote line is not quoted as shlex.join quotes it: {line!r}")
    if cfg["ssh"].get("sudo", True):
        if words[:2] != ["sudo", "-n"]:
            raise Refused(f"not under sudo -n: {line!r}")
        words = words[2:]
    return _run_in(host["netns"], words, "sudo: {tool}: command not found", host.get("slow", {}).get(words[0], 0))


def main(prog: str, argv: list[str]) -> int:
    try:
        code = kubectl(argv) if prog == "kubectl" else ssh(argv)
    except Refused as exc:
        _log(prog, argv, str(exc))
        print(f"stand-in {prog}: {exc}", file=sys.stderr)
        return 99
    _log(prog, argv, None, status=code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
