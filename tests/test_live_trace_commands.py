"""`kptui trace-commands`: the exact commands to capture a kernel trace (printed, never run)."""

from __future__ import annotations

import io
import json
import shlex

import pytest

from kptui.cli import main
from kptui.engine.trace_commands import trace_commands


def test_pod_packet_uses_prerouting_and_the_remove_command_mirrors_the_insert() -> None:
    c = trace_commands(src="10.244.1.100", dst="10.96.10.20", sport=40000, dport=80)
    (ins,) = c.insert
    (rem,) = c.remove
    assert ins == ("iptables-nft", "-t", "raw", "-I", "PREROUTING", "1", "-s", "10.244.1.100/32", "-d",
                   "10.96.10.20/32", "-p", "tcp", "-m", "tcp", "--sport", "40000", "--dport", "80", "-m", "comment",
                   "--comment", "kptui-trace", "-j", "TRACE")  # fmt: skip
    assert rem[:5] == ("iptables-nft", "-t", "raw", "-D", "PREROUTING") and rem[5:] == ins[6:]
    assert c.monitor == ("xtables-monitor", "--trace", "-4")
    text = c.text()
    assert "iptables-nft -t raw -I PREROUTING 1 -s 10.244.1.100/32" in text and "xtables-monitor --trace -4" in text
    assert not any("no --sport" in n for n in c.notes)


def test_local_packets_use_output_and_netns_prefixes_everything() -> None:
    c = trace_commands(src="10.0.0.2", dst="10.96.0.1", dport=443, origin="local", netns="node1")
    assert c.insert[0][:4] == ("ip", "netns", "exec", "node1") and "OUTPUT" in c.insert[0]
    assert c.remove[0][:4] == ("ip", "netns", "exec", "node1") and c.monitor[:4] == ("ip", "netns", "exec", "node1")
    assert any("no --sport" in n for n in c.notes) and "--sport" not in c.insert[0]


def test_ipv6_uses_ip6tables_and_nft_monitor() -> None:
    c = trace_commands(src="fd00:10:244:1::5", dst="fd00:10:96::a", dport=53, proto="udp", sport=1234)
    assert c.insert[0][0] == "ip6tables-nft" and "fd00:10:244:1::5/128" in c.insert[0]
    assert c.monitor == ("nft", "monitor", "trace") and any("xtables-monitor 1.8.9" in n for n in c.notes)
    icmp = trace_commands(src="fd00::1", dst="fd00::2", proto="icmp", dport=5)
    assert ("-p", "ipv6-icmp") == icmp.insert[0][10:12] and icmp.monitor[0] == "xtables-monitor"


def test_legacy_and_native_nftables_variants() -> None:
    leg = trace_commands(src="10.0.0.1", dst="10.0.0.2", dport=30080, origin="external", backend="legacy")
    assert leg.insert[0][0] == "iptables-legacy" and leg.monitor[0] == "dmesg"
    assert any("nf_log.2=nf_log_ipv4" in n for n in leg.notes)
    nft = trace_commands(src="10.0.0.1", dst="10.0.0.2", proto="udp", dport=53, backend="nftables")
    assert nft.insert[0] == ("nft", "add", "table", "ip", "kptui-trace")
    assert "meta" in nft.insert[2] and nft.insert[2][-3:] == ("nftrace", "set", "1")
    assert nft.remove == (("nft", "delete", "table", "ip", "kptui-trace"),)
    # the quoted chain spec survives a shell round trip
    line = next(ln for ln in nft.text().splitlines() if "add chain" in ln)
    assert shlex.split(line)[-1] == "{ type filter hook prerouting priority -301 ; }"


@pytest.mark.parametrize("kw", [{"src": "10.0.0.1", "dst": "fd00::1"}, {"src": "x", "dst": "10.0.0.1"},
                                {"src": "10.0.0.1", "dst": "10.0.0.2", "backend": "ipvs"},
                                {"src": "10.0.0.1", "dst": "10.0.0.2", "dport": 70000}])  # fmt: skip
def test_bad_input(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        trace_commands(**kw)  # type: ignore[arg-type]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli() -> None:
    code, out, _ = run("trace-commands", "--src", "10.244.1.100", "--dst", "10.96.10.20", "--dport", "80",
                       "--sport", "40001", "--from", "pod")  # fmt: skip
    assert code == 0 and "-j TRACE" in out and "-D PREROUTING" in out
    code, out, _ = run("trace-commands", "--src", "10.0.0.2", "--dst", "10.96.0.1", "--dport", "443", "--from",
                       "local", "--json", "--netns", "n1")  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "kptui.trace-commands/1" and doc["insert"][0][:4] == ["ip", "netns", "exec", "n1"]
    code, _, err = run("trace-commands", "--src", "10.0.0.2", "--dst", "fd00::1", "--dport", "1")
    assert code == 2 and "both be IPv4 or both IPv6" in err
    code, _, err = run("trace-commands", "--src", "10.0.0.2", "--dst", "10.0.0.1", "--netns", "a b")
    assert code == 2 and "network namespace" in err
