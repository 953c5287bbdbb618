"""`kptui trace`: the summary line per path, the hops, the JSON, and argument errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kptui.cli import main

ROOT = Path(__file__).resolve().parent.parent
NODEPORT = str(ROOT / "samples" / "nodeport-cluster.rules")
NODE = ["--node-ip", "10.0.0.2", "--iface", "eth0=10.0.0.2/24", "--uplink", "eth0"]


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(args), out=out, err=err), out.getvalue(), err.getvalue()


def test_text_has_one_summary_line_per_path_then_hops() -> None:
    code, out, err = run("trace", NODEPORT, "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "30080",
                         "--from", "external", *NODE)  # fmt: skip
    assert code == 0, err
    summaries = [line for line in out.splitlines() if line.startswith("path ")]
    assert summaries == [
        ("path 1: 10.0.0.1:40000 → 10.0.0.2:30080/tcp ⇒ DNAT 10.244.1.21:8080 (p=0.5) · mark 0x4000 (masq) · "
        "MASQUERADE as 10.0.0.2 · ACCEPT (forwarded)"),
        ("path 2: 10.0.0.1:40000 → 10.0.0.2:30080/tcp ⇒ DNAT 10.244.2.22:8080 (p=0.5) · mark 0x4000 (masq) · "
        "MASQUERADE as 10.0.0.2 · ACCEPT (forwarded)"),
    ]
    assert "KUBE-MARK-MASQ:1  → CONTINUE  [mark 0x0 → 0x4000 (masq)]" in out
    assert "-A KUBE-NODEPORTS -p tcp -m comment --comment \"shop/frontend:http\" -m tcp --dport 30080" in out


def test_a_masquerade_to_an_address_not_known_is_not_reported_as_the_client_address() -> None:
    """Without the node's addresses the simulation keeps the packet's source at MASQUERADE: the summary and the
    JSON must not present the client's own address as the masqueraded source."""
    args = ["trace", NODEPORT, "--src", "203.0.113.7", "--dst", "10.0.0.2", "--dport", "30080", "--from", "external"]
    code, out, err = run(*args)
    assert code == 0, err
    summaries = [line for line in out.splitlines() if line.startswith("path ") and "DNAT" in line]
    assert len(summaries) == 2 and all("MASQUERADE (to an address not known)" in s for s in summaries), summaries
    assert "MASQUERADE as 203.0.113.7" not in out
    code, out, _ = run(*args, "--json")
    masq = [p for p in json.loads(out)["paths"] if p["masquerade"]]
    assert len(masq) == 2 and all(p["masquerade_as"] is None for p in masq)
    code, out, _ = run(*args, "--json", *NODE)
    masq = [p for p in json.loads(out)["paths"] if p["masquerade"]]
    assert len(masq) == 2 and all(p["masquerade_as"] == p["final"]["src"] == "10.0.0.2" for p in masq)


def test_json_schema() -> None:
    code, out, _ = run("trace", NODEPORT, "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "30080",
                       "--from", "external", "--json", *NODE)  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "kptui.trace/1"
    paths = doc["paths"]
    assert sum(p["probability"] for p in paths) == pytest.approx(1.0)
    p = paths[0]
    assert {"probability", "verdict", "masquerade", "final", "mark", "hops"} <= set(p)
    assert (p["verdict"], p["masquerade"], p["final"]["dst"], p["final"]["dport"]) == ("ACCEPT", True,
                                                                                       "10.244.1.21", 8080)  # fmt: skip
    assert p["final"]["src"] == "10.0.0.2" and p["postrouting_mark"] == "0x4000"
    hop = next(h for h in p["hops"] if h["chain"] == "KUBE-NODEPORTS" and h["matched"])
    assert hop["kind"] == "rule" and hop["index"] == 1 and hop["verdict"] == "JUMP"
    assert hop["target"] == "KUBE-EXT-PY4JZH2ITZYEO4CN" and hop["rule"].startswith("-A KUBE-NODEPORTS -p tcp")
    policy = next(h for h in p["hops"] if h["kind"] == "policy")
    assert policy["index"] is None and policy["rule"] is None and policy["verdict"] == "ACCEPT"
    assert any(not h["matched"] and h["failed"] for h in p["hops"])  # misses are listed, with the reason


def test_node_ip_repeats_and_takes_commas() -> None:
    args = ["trace", NODEPORT, "--src", "10.0.0.1", "--dport", "30080", "--from", "external", "--json"]
    code, out, _ = run(*args, "--dst", "10.0.0.3", "--node-ip", "10.0.0.2,10.0.0.3")
    assert code == 0 and json.loads(out)["paths"][0]["endpoint"] is not None
    code, out, _ = run(*args, "--dst", "10.0.0.3", "--node-ip", "10.0.0.2", "--node-ip", "10.0.0.3")
    assert code == 0 and json.loads(out)["paths"][0]["endpoint"] is not None
    code, out, _ = run(*args, "--dst", "10.0.0.3", "--node-ip", "10.0.0.2")  # not a node address: no NodePort
    assert code == 0 and json.loads(out)["paths"][0]["endpoint"] is None


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--dst", "10.0.0.300", "--dport", "80"], "destination '10.0.0.300' is not an IP address"),
        (["--dst", "10.0.0.2"], "a tcp packet needs a destination port"),
        (["--dst", "10.0.0.2", "--dport", "80", "--mark", "banana"], "is not a number"),
        (["--dst", "10.0.0.2", "--dport", "80", "--iface", "eth0"], "should read NAME=CIDR"),
        (["--dst", "10.0.0.2", "--dport", "99999"], "not a port number"),
        (["--dst", "10.0.0.2", "--dport", "80", "--from", "mars"], "invalid choice"),
        (["--dst", "10.0.0.2", "--dport", "x"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2(extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run("trace", NODEPORT, "--src", "10.0.0.1", *extra)
    assert code == 2
    assert needle in err + capsys.readouterr().err


def test_cli_origins_match_the_engine() -> None:
    from kptui import cli
    from kptui.engine.packet import ORIGINS

    assert cli.ORIGINS == ORIGINS


@pytest.mark.parametrize(("proto", "ports"), [("icmp", ["--dport", "80"]), ("icmp", ["--sport", "1234"]),
                                             ("ICMP", ["--sport", "1", "--dport", "2"]), ("icmpv6", ["--dport", "80"])])  # fmt: skip
def test_ports_on_a_protocol_without_ports_are_refused(proto: str, ports: list[str]) -> None:
    """10.12: the packet builder refuses them; so does the command line (the engine would drop them silently)."""
    dst = "fd00::1" if proto == "icmpv6" else "10.0.0.2"
    src = "fd00::2" if proto == "icmpv6" else "10.0.0.1"
    dump = str(ROOT / "samples" / "ipv6.rules") if proto == "icmpv6" else NODEPORT  # rules of the packet's family
    code, out, err = run("trace", dump, "--src", src, "--dst", dst, "--proto", proto, *ports)
    assert code == 2 and out == ""
    assert err.startswith(f"kptui: {proto.lower()} has no ports: drop --") and "(ports go with tcp, udp, sctp" in err
    code, _, _ = run("trace", dump, "--src", src, "--dst", dst, "--proto", proto)
    assert code == 0
    code, _, err = run("trace-commands", "--src", src, "--dst", dst, "--proto", proto, *ports)
    assert code == 2 and err.startswith(f"kptui: {proto.lower()} has no ports: drop --")


def test_every_protocol_is_listed_the_same_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    """10.12: trace --help, the error for an unknown protocol and the engine list the same protocols."""
    from kptui.cli.common import PROTOCOLS as CLI_PROTOCOLS
    from kptui.engine.packet import PROTOCOLS

    assert CLI_PROTOCOLS == tuple(PROTOCOLS)
    assert main(["trace", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    first, *rest = PROTOCOLS
    assert f"--proto PROTO {first} (default), {', '.join(rest)} " in help_text
    code, _, err = run("trace", NODEPORT, "--src", "10.0.0.1", "--dst", "10.0.0.2", "--proto", "gre")
    assert code == 2 and f"is not one of {', '.join(PROTOCOLS)}" in err


def test_an_extra_argument_gets_the_commands_own_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """10.16: `kptui trace FILE extra …` prints kptui trace's usage, not the top-level one."""
    code, _, _ = run("trace", NODEPORT, "extra", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "80")
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("usage: kptui trace ") and "kptui trace: error: unrecognized arguments: extra" in err
    code, _, _ = run("summary", NODEPORT, "two", "three")
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("usage: kptui summary ") and "unrecognized arguments: two three" in err


def test_the_subcommand_names_the_explorer_knows_are_the_commands() -> None:
    from kptui.cli import command_names
    from kptui.cli.common import COMMAND_NAMES

    assert command_names() == COMMAND_NAMES
