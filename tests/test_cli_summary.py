"""`kptui summary`: text and JSON output, stdin, and errors with exit status 2 (never a traceback)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kptui.cli import main

from .test_parser import NFT_DUMP

REQUIRED_KEYS = {
    "schema", "source", "family", "backend", "iptables_version", "form", "legacy_tables_present", "lines",
    "total_rules", "total_chains", "tables", "top_chains", "dangling_jumps", "unreferenced_chains", "loops",
    "warnings",
    # added for pasted dumps and iptables -S listings (issue 14.1, 14.2); keys are only ever added
    "skipped", "rules_missing", "inferred_tables", "unplaced_chains", "other_families",
}  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    p = tmp_path / "node.rules"
    p.write_text(NFT_DUMP)
    return p


def test_summary_json_is_stable(dump: Path) -> None:
    code, out, _ = run("summary", str(dump), "--json")
    assert code == 0
    s = json.loads(out)
    assert set(s) == REQUIRED_KEYS | {"kube", "kube_modes"}
    assert s["schema"] == "kptui.summary/1"
    assert (s["backend"], s["family"], s["total_rules"], s["total_chains"]) == ("nf_tables", "ipv4", 3, 9)
    filt = next(t for t in s["tables"] if t["name"] == "filter")
    assert filt == {"name": "filter", "chains": 4, "user_chains": 1, "rules": 2, "packets": 5, "bytes": 300,
                    "policies": {"INPUT": "ACCEPT", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}}  # fmt: skip
    assert [t["name"] for t in s["tables"]] == ["nat", "filter"]  # kernel order, not file order
    assert s["unreferenced_chains"] == [{"table": "nat", "chain": "KUBE-MARK-MASQ"}]


def test_summary_text(dump: Path) -> None:
    code, out, err = run("summary", str(dump))
    assert code == 0 and err == ""
    assert "iptables 1.8.9, nf_tables backend, IPv4" in out
    assert "total: 3 rules in 9 chains" in out


def test_summary_reads_stdin() -> None:
    proc = subprocess.run([sys.executable, "-m", "kptui", "summary", "-", "--json"], input=NFT_DUMP.encode(),
                          capture_output=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"] == "<stdin>"


def test_parse_error_exit_2_with_location(tmp_path: Path) -> None:
    p = tmp_path / "bad.rules"
    p.write_text("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --frobnicate 1 -j ACCEPT\nCOMMIT\n")
    code, out, err = run("summary", str(p))
    assert code == 2 and out == ""
    assert err.startswith(f"{p}:3: unknown option '--frobnicate'\n")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["summary", "/nonexistent/x.rules"], "cannot read /nonexistent/x.rules: No such file or directory"),
        (["summary", "/"], "is a directory"),
        (["frobnicate"], "invalid choice"),
        (["summary"], "the following arguments are required"),
    ],
)
def test_usage_errors_exit_2(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert needle in err + capsys.readouterr().err


def test_whole_process_never_prints_a_traceback(tmp_path: Path) -> None:
    p = tmp_path / "bin.rules"
    p.write_bytes(b"\x00\x01\x02garbage\xff")
    proc = subprocess.run([sys.executable, "-m", "kptui", "summary", str(p)], capture_output=True, check=False)
    assert proc.returncode == 2
    assert b"NUL byte" in proc.stderr and b"Traceback" not in proc.stderr


def test_warnings_go_to_stderr_and_into_json(tmp_path: Path) -> None:
    p = tmp_path / "cut.rules"
    p.write_text("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n")
    code, out, err = run("summary", str(p))
    assert code == 0 and "warning: table 'filter' (line 1) has no COMMIT" in err
    code, out, _ = run("summary", str(p), "--json")
    assert json.loads(out)["warnings"][0]["line"] == 3


def test_chain_names_with_escapes_are_printed_inert(tmp_path: Path) -> None:
    p = tmp_path / "evil.rules"
    p.write_text("*filter\n:INPUT ACCEPT [0:0]\n:EVIL\x1b]52;c;aGk=\x07 - [0:0]\n-A INPUT -j EVIL\x1b[2J\nCOMMIT\n")
    code, out, err = run("summary", str(p))
    assert code == 0
    assert "\x1b" not in out and "\x1b" not in err and "\x07" not in out
    assert "\\x1b" in out
