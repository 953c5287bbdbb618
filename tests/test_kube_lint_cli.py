"""`kptui lint` and `kptui explain`: text, JSON shape, exit codes, errors, untrusted text."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kptui.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
MIXED = str(SAMPLES / "mixed-all.rules")
FINDING_KEYS = {"code", "severity", "title", "detail", "advice", "table", "chain", "index", "line", "service",
                "count"}  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def edited(tmp_path: Path, name: str, old: str, new: str) -> str:
    text = (SAMPLES / f"{name}.rules").read_text()
    assert old in text
    path = tmp_path / f"{name}-edited.rules"
    path.write_text(text.replace(old, new, 1))
    return str(path)


def test_lint_text_grouped_by_severity() -> None:
    code, out, err = run("lint", MIXED)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].endswith("mixed-all.rules: 0 errors, 5 warnings, 3 info")
    assert lines.index("WARNINGS (5)") < lines.index("INFO (3)")
    assert "  [no-endpoints] default/broken:http has no endpoints" in lines
    assert "    at filter/KUBE-SERVICES:1 (line 48) · service default/broken:http" in lines
    assert any(line.startswith("    advice: ") for line in lines)


def test_lint_json_is_a_stable_list() -> None:
    code, out, _ = run("lint", MIXED, "--json")
    data = json.loads(out)
    assert code == 0 and isinstance(data, list) and len(data) == 8
    assert all(set(f) == FINDING_KEYS for f in data)
    broken = next(f for f in data if f["code"] == "no-endpoints")
    assert (broken["table"], broken["chain"], broken["index"], broken["line"], broken["service"]) == (
        "filter", "KUBE-SERVICES", 1, 48, "default/broken:http")
    assert [f["severity"] for f in data] == ["warning"] * 5 + ["info"] * 3


def test_lint_exit_1_on_an_error_grade_finding(tmp_path: Path) -> None:
    path = edited(tmp_path, "clusterip", "-A KUBE-SERVICES -d ",
                  "-A KUBE-SERVICES -p tcp -m tcp --dport 1 -j KUBE-SVC-ZZZZZZZZZZZZZZZZ\n-A KUBE-SERVICES -d ")
    code, out, _ = run("lint", path)
    assert code == 1 and "ERRORS (1)" in out and "[dangling-jump]" in out
    code, out, _ = run("lint", path, "--json")
    assert code == 1 and json.loads(out)[0]["code"] == "dangling-jump"


def test_lint_mixed_backends_is_an_error(tmp_path: Path) -> None:
    text = (SAMPLES / "clusterip.rules").read_text()
    path = tmp_path / "both.rules"
    path.write_text("# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n" + text)
    code, out, _ = run("lint", str(path))
    assert code == 1 and "[mixed-backends]" in out and "the whole dump" in out


def test_lint_bad_input() -> None:
    code, out, err = run("lint", "/nonexistent/dump.rules")
    assert code == 2 and out == "" and err.startswith("kptui: cannot read /nonexistent/dump.rules")


def test_explain_a_chain_and_its_rules() -> None:
    code, out, err = run("explain", MIXED, "KUBE-SVC-CDGGSHYLG3RE2FKL")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "nat/KUBE-SVC-CDGGSHYLG3RE2FKL  (service default/web:http)"
    assert lines[1].startswith("  the service chain of default/web:http")
    assert "     sends 1 in 3 of the remaining connections to endpoint 10.244.1.11:8080 — effective share 33.3 %" in lines
    assert sum(1 for line in lines if line.startswith("  ") and "(line " in line) == 4


def test_explain_one_rule_with_table_and_findings() -> None:
    code, out, _ = run("explain", MIXED, "KUBE-SERVICES:1", "--table", "filter")
    assert code == 0
    assert "rejects traffic to ClusterIP 10.96.40.10:80/tcp" in out
    assert "warning: [no-endpoints] default/broken:http has no endpoints" in out
    assert out.count("(line ") == 1


def test_explain_json_shape() -> None:
    code, out, _ = run("explain", MIXED, "KUBE-SEP-2ATXUOYIKDUXCR7P", "--json")
    data = json.loads(out)
    assert code == 0 and data["schema"] == "kptui.explain/1"
    assert {"source", "table", "chain", "explanation", "kind", "kube", "service", "rule_count", "rules",
            "findings"} <= set(data)  # fmt: skip
    assert (data["table"], data["service"], data["rule_count"], len(data["rules"])) == (
        "nat", "shop/frontend:http", 2, 2)
    first = data["rules"][0]
    assert set(first) == {"index", "line", "rule", "explanation", "kind", "kube", "service", "findings"}
    assert first["kind"] == "hairpin-masquerade" and first["findings"][0]["code"] == "hairpin-masquerade"


@pytest.mark.parametrize(("target", "extra", "message"), [
    ("KUBE-SERVICES", (), "chain KUBE-SERVICES is in several tables (filter, nat): pick one with --table"),
    ("NOPE", (), "no chain NOPE in the dump"),
    ("KUBE-SERVICES:99", ("--table", "nat"), "nat/KUBE-SERVICES has 18 rules: there is no rule 99"),
    ("KUBE-SERVICES:0", ("--table", "nat"), "the rule index after ':' must be a number from 1"),
    ("KUBE-SERVICES", ("--table", "raw"), "no table raw in the dump"),
    ("KUBE-NODEPORTS", ("--table", "mangle"), "no chain KUBE-NODEPORTS in table mangle"),
])  # fmt: skip
def test_explain_errors(target: str, extra: tuple[str, ...], message: str) -> None:
    code, out, err = run("explain", MIXED, target, *extra)
    assert code == 2 and out == ""
    assert err.startswith("kptui: ") and message in err


def test_untrusted_text_is_escaped(tmp_path: Path) -> None:
    path = edited(tmp_path, "mixed-all", '"default/broken:http has no endpoints" -m tcp --dport 80',
                  '"default/\x1b[2J\x1b]0;pwn\x07x has no endpoints" -m tcp --dport 80')
    for args in (("explain", path, "KUBE-SERVICES:1", "-t", "filter"), ("lint", path)):
        code, out, _ = run(*args)
        assert code == 0 and "\x1b" not in out and "\x07" not in out
    code, out, _ = run("explain", path, "KUBE-SERVICES:1", "-t", "filter")
    assert "\\x1b[2J" in out
