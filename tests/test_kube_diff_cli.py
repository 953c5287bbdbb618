"""`kptui diff OLD NEW [--json] [--filter TEXT]`: exit status like diff(1), JSON, filter, inputs, errors."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kptui.cli import main
from kptui.node.bundle import encode_bundle

from .conftest import ROOT, SAMPLES
from .test_bundle import collection

MIXED = SAMPLES / "mixed-all.rules"
CLUSTERIP = SAMPLES / "clusterip.rules"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def scaled(tmp_path: Path) -> Path:
    """mixed-all with default/web:http down from 3 endpoints to 2 (the last SEP jump removed, 1/2 + rest)."""
    text = MIXED.read_text()
    lines = text.splitlines(keepends=True)
    web = [i for i, line in enumerate(lines) if "-A KUBE-SVC-CDGGSHYLG3RE2FKL " in line and "-j KUBE-SEP-" in line]
    assert len(web) == 3
    first, second, last = web
    lines[first] = lines[first].replace("--probability 0.33333333349", "--probability 0.50000000000")
    assert "--probability" in lines[second]
    lines[second] = lines[second].replace(" -m statistic --mode random --probability 0.50000000000", "")
    del lines[last]
    path = tmp_path / "scaled.rules"
    path.write_text("".join(lines))
    return path


def test_identical_dumps_exit_0() -> None:
    code, out, err = run("diff", str(MIXED), str(MIXED))
    assert code == 0 and err == ""
    assert out.splitlines()[-1] == ("no differences: 0 added, 0 removed, 0 changed, 14 unchanged service ports; "
                                    "0 node-level changes")  # fmt: skip


def test_differences_exit_1_and_read_like_a_changelog(tmp_path: Path) -> None:
    code, out, err = run("diff", str(MIXED), str(scaled(tmp_path)))
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"--- {MIXED} (14 service ports)"
    assert lines[1] == f"+++ {tmp_path / 'scaled.rules'} (14 service ports)"
    assert "~ default/web:http: endpoints 3 → 2 (-10.244.2.13:8080)" in lines
    assert "~ default/web:http: shares 33.3 % → 50.0 % for 10.244.1.11:8080 10.244.1.12:8080" in lines  # named (10.14)
    assert lines[-1] == "0 added, 0 removed, 1 changed, 13 unchanged service ports; 0 node-level changes"


def test_json(tmp_path: Path) -> None:
    code, out, _ = run("diff", str(MIXED), str(scaled(tmp_path)), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["format"] == "kptui.diff/1" and data["identical"] is False
    assert data["old"] == {"source": str(MIXED), "service_ports": 14, "mode": "iptables"}
    (c,) = data["changed"]
    assert c["name"] == "default/web:http" and c["matched_by"] == "name"
    assert c["endpoints"] == {"old": 3, "new": 2, "added": [], "removed": ["10.244.2.13:8080"]}
    assert {e["new_exact"] for e in c["endpoint_changes"]} == {"1/2"}
    code, out, _ = run("diff", str(MIXED), str(MIXED), "--json")
    assert code == 0 and json.loads(out)["identical"] is True


def test_filter(tmp_path: Path) -> None:
    new = str(scaled(tmp_path))
    code, out, _ = run("diff", str(MIXED), new, "--filter", "kube-dns")
    assert code == 0 and "(--filter: only the matching service ports" in out
    assert out.splitlines()[-1] == "no differences: 0 added, 0 removed, 0 changed, 3 unchanged service ports"
    code, out, _ = run("diff", str(MIXED), new, "--filter", "10.244.2.13", "--json")  # the removed endpoint's IP
    data = json.loads(out)
    assert code == 1 and [c["name"] for c in data["changed"]] == ["default/web:http"] and data["filtered"] is True


def test_added_and_removed_services_and_node_changes() -> None:
    code, out, _ = run("diff", str(SAMPLES / "kube-1.22-legacy.rules"), str(MIXED))
    assert code == 1
    assert "+ monitoring/node-local-cache  tcp 10.96.70.10:8080, 1 endpoint" in out.splitlines()
    assert "~ node: kube-proxy era 1.21-1.23 → 1.25+" in out
    assert "- node: chain nat KUBE-MARK-DROP" in out
    code, out, _ = run("diff", str(MIXED), str(CLUSTERIP))
    assert code == 1 and "- shop/cart:http  tcp 10.96.60.10:80, 3 endpoints" in out.splitlines()


def test_bundles_and_gzip_are_read_like_dumps(tmp_path: Path) -> None:
    bundle = tmp_path / "node.kptui"
    bundle.write_bytes(encode_bundle(collection(), mtime=1748865600))  # its IPv4 rules are clusterip.rules
    gz = tmp_path / "dump.gz"
    gz.write_bytes(gzip.compress(CLUSTERIP.read_bytes()))
    assert run("diff", str(bundle), str(CLUSTERIP))[0] == 0
    assert run("diff", str(gz), str(bundle))[0] == 0
    assert run("diff", str(bundle), str(MIXED))[0] == 1


def test_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.rules"
    bad.write_text("*nat\n-A KUBE-SERVICES --frobnicate 1 -j ACCEPT\nCOMMIT\n")
    code, out, err = run("diff", str(MIXED), str(bad))
    assert code == 2 and out == "" and "bad.rules:2: unknown option '--frobnicate'" in err
    code, out, err = run("diff", str(tmp_path / "missing.rules"), str(MIXED))
    assert code == 2 and out == "" and "cannot read" in err and "missing.rules" in err
    code, _, err = run("diff", "-", "-")
    assert code == 2 and "standard input" in err
    code, _, _ = run("diff", str(MIXED))  # argparse's usage error goes to sys.stderr
    assert code == 2 and "NEW" in capsys.readouterr().err


def test_stdin_for_one_side() -> None:
    proc = subprocess.run([sys.executable, "-m", "kptui", "diff", "-", str(MIXED), "--json"],
                          input=CLUSTERIP.read_bytes(), capture_output=True, cwd=ROOT, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["old"]["source"] == "<stdin>" and data["counts"]["added"] == 9


def test_help_points_to_deltas_for_counters(capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "kptui", "diff", "--help"], capture_output=True, text=True,
                          cwd=ROOT, check=False)  # fmt: skip
    assert proc.returncode == 0 and "kptui deltas" in proc.stdout
    capsys.readouterr()
    assert run("--help")[0] == 0
    listing = " ".join(capsys.readouterr().out.split())
    assert "diff what changed between two dumps" in listing and "(counters: see kptui deltas)" in listing


def test_terminal_escapes_never_reach_the_terminal(tmp_path: Path) -> None:
    text = MIXED.read_text()
    rule = next(line for line in text.splitlines() if "-A KUBE-MARK-MASQ " in line)
    evil = tmp_path / "evil.rules"
    evil.write_text(text.replace(rule + "\n", rule + '\n-A KUBE-MARK-MASQ -m comment --comment "\x1b]0;x\x07" -j RETURN\n'))
    code, out, _ = run("diff", str(MIXED), str(evil))
    assert code == 1 and "\x1b" not in out and "\x07" not in out and "+ node: nat KUBE-MARK-MASQ" in out


def test_share_changes_name_their_endpoints_in_text_and_json(tmp_path: Path) -> None:
    """10.14: 'shares 33.3 % → 50.0 %' says whose shares: the same endpoints the JSON lists."""
    new = scaled(tmp_path)
    _, out, _ = run("diff", str(MIXED), str(new))
    (line,) = [ln for ln in out.splitlines() if ": shares " in ln]
    named = line.split(" for ", 1)[1].split()
    doc = json.loads(run("diff", str(MIXED), str(new), "--json")[1])
    (change,) = doc["changed"]
    assert named == [e["endpoint"] for e in change["endpoint_changes"] if e["field"] == "probability"] != []
