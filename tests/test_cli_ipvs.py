"""IPVS mode from the command line: `--ipset FILE` / `--ipvs FILE` (or a bundle's parts) reach services, summary,
lint and trace; the trace forks per real server with its share (the IPVS step modelled from the kernel's
source, see docs/ipvs.md)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from kptui.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RULES, SETS, IPVS = (str(SAMPLES / f"ipvs-mode.{x}") for x in ("rules", "ipset", "ipvsadm"))
PARTS = ["--ipset", SETS, "--ipvs", IPVS]
NODE = ["--node-ip", "10.0.0.2", "--pod-cidr", "10.244.1.0/24", "--iface", "eth0=10.0.0.2/24", "--uplink", "eth0"]


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(args), out=out, err=err), out.getvalue(), err.getvalue()


def test_services_come_from_the_ipvs_table_and_the_sets() -> None:
    code, out, err = run("services", RULES, *PARTS, "--json")
    assert code == 0, err
    by_vip = {(s["cluster_ip"], s["port"]): s for s in json.loads(out)}
    web = by_vip[("10.96.10.20", 80)]
    shares = sorted((e["address"], e["probability_exact"]) for e in web["endpoints"])
    assert shares == [("10.244.1.11:8080", "1/2"), ("10.244.1.12:8080", "1/2"), ("10.244.2.13:8080", "0/1")]
    code, out, _ = run("services", RULES, "--json")  # without the IPVS side: the rules alone tell no endpoints
    assert code == 0 and all(not s["endpoints"] for s in json.loads(out))


def test_summary_says_ipvs_mode_and_lint_takes_the_table() -> None:
    code, out, err = run("summary", RULES, *PARTS)
    assert code == 0 and "ipvs mode" in out, err
    code, out, err = run("lint", RULES, *PARTS, "--json")
    assert code in (0, 1) and isinstance(json.loads(out), list), err


def test_a_trace_to_a_cluster_ip_reaches_each_real_server_with_its_share() -> None:
    code, out, err = run("trace", RULES, *PARTS, "--src", "10.244.1.100", "--dst", "10.96.10.20", "--dport", "80",
                         *NODE, "--json")  # fmt: skip
    assert code == 0, err
    paths = json.loads(out)["paths"]
    assert sorted((p["endpoint"], p["probability_exact"]) for p in paths) == [
        ("10.244.1.11:8080", "1/2"), ("10.244.1.12:8080", "1/2")]
    assert all(any(h["table"] == "ipvs" and h["verdict"] == "IPVS" for h in p["hops"]) for p in paths)
    assert all(not p["assumptions"] for p in paths)  # the sets decide every set match


def test_a_bad_ipvs_file_is_located_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipvs"
    bad.write_text("-A -t 10.96.0.1:443 -s rr\n-a -t nonsense\n")
    code, _, err = run("services", RULES, "--ipvs", str(bad))
    assert code == 2 and "Traceback" not in err and f"{bad}:2" in err, err
