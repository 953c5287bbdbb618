"""`kptui services` (text, JSON, --filter, errors), `kptui summary`'s kube section, reverse lookups, purity."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kptui.cli import main
from kptui.engine import parse_ruleset_bytes
from kptui.engine.kube import build_service_index

ROOT = Path(__file__).resolve().parent.parent
MIXED = ROOT / "samples" / "mixed-all.rules"
JSON_KEYS = {
    "name", "namespace", "service", "port_name", "name_source", "hash_verified", "chain_hash", "protocol",
    "cluster_ip", "port", "node_port", "health_check_node_port", "external_ips", "load_balancer_ips",
    "external_or_lb_ips", "source_ranges", "external_traffic_policy", "internal_traffic_policy",
    "affinity_timeout", "endpoints", "chains", "no_endpoints", "no_local_endpoints", "blocking_rules", "notes",
    "mode", "scheduler", "virtual_services",  # added for IPVS mode (keys are only ever added)
}  # fmt: skip
ENDPOINT_KEYS = {"address", "ip", "port", "chain", "hash_verified", "probability", "probability_exact",
                 "local_probability", "local_probability_exact", "local",
                 "weight", "forward", "active_connections", "inactive_connections"}  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def names(*args: str) -> list[str]:
    code, out, _ = run("services", str(MIXED), "--json", *args)
    assert code == 0
    return [s["name"] for s in json.loads(out)]


def test_json_keys_and_values() -> None:
    code, out, err = run("services", str(MIXED), "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 14
    assert all(set(s) == JSON_KEYS for s in data)
    assert all(set(e) == ENDPOINT_KEYS for s in data for e in s["endpoints"])
    checkout = next(s for s in data if s["name"] == "shop/checkout:http")
    assert checkout["chains"] == {"svc": "KUBE-SVC-FAXFPGMJVQWLKPGL", "svl": "KUBE-SVL-FAXFPGMJVQWLKPGL",
                                  "ext": "KUBE-EXT-FAXFPGMJVQWLKPGL"}  # fmt: skip
    assert [(e["address"], e["probability"], e["local"]) for e in checkout["endpoints"]] == [
        ("10.244.1.31:8080", 0.5, True), ("10.244.2.32:8080", 0.5, False)]


def test_text_table() -> None:
    code, out, err = run("services", str(MIXED))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["SERVICE", "PROTO", "CLUSTER", "IP:PORT"]
    web = next(i for i, line in enumerate(lines) if line.startswith("default/web:http "))
    assert lines[web].split()[1:3] == ["tcp", "10.96.10.20:80"]
    assert [line.split()[1:3] for line in lines[web + 1 : web + 4]] == [
        ["10.244.1.11:8080", "33.33%"], ["10.244.1.12:8080", "33.33%"], ["10.244.2.13:8080", "33.33%"]]
    assert "14 service ports" in out
    checkout = next(i for i, line in enumerate(lines) if line.startswith("shop/checkout:http "))
    assert "Local/Cluster" in lines[checkout] and "30090 hc:32090" in lines[checkout]
    assert lines[checkout + 1].split()[1:5] == ["10.244.1.31:8080", "50.00%", "(local", "100%)"]
    assert "local" in lines[checkout + 1].split() and "remote" in lines[checkout + 2].split()
    broken = next(line for line in lines if line.startswith("default/broken:http "))
    assert "none (REJECT)" in broken


@pytest.mark.parametrize(("text", "expected"), [
    ("shop/", ["shop/cart:http", "shop/checkout:http", "shop/frontend:http", "shop/legacy-api", "shop/payments:https"]),
    ("kube-dns:dns", ["kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp"]),
    ("10.96.0.10", ["kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp", "kube-system/kube-dns:metrics"]),
    ("10.244.1.55", ["ingress-nginx/ingress-nginx-controller:http"]),  # an endpoint IP
    ("192.0.2.50", ["shop/payments:https"]),  # a load-balancer IP
    ("198.51.100.70", ["default/legacy-ext"]),  # an external IP
    ("10.244.2.72/31", ["default/legacy-ext"]),  # a CIDR: 10.244.2.72-73 (72 is node-local-cache's remote pod)
    ("30091", ["shop/legacy-api"]),  # a NodePort
    ("32500", ["ingress-nginx/ingress-nginx-controller:http"]),  # a health-check NodePort
    ("9153", ["kube-system/kube-dns:metrics"]),  # a port
    ("KUBE-SVL-LDGSPSX5OJRPR3FH", ["monitoring/node-local-cache"]),  # a chain
    ("kube-sep-hsrfd4s3ahfnryno", ["default/kubernetes:https"]),  # an endpoint chain, any case
    ("10.96.10.20:80", ["default/web:http"]),
    ("udp", ["kube-system/kube-dns:dns"]),
    ("nothing-like-this", []),
])  # fmt: skip
def test_filter(text: str, expected: list[str]) -> None:
    assert names("--filter", text) == expected


def test_filter_text_output_says_none() -> None:
    code, out, _ = run("services", str(MIXED), "--filter", "nothing-like-this")
    assert code == 0 and out.strip() == "no services"


def test_bad_input_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules"
    bad.write_text("*nat\n-A KUBE-SERVICES --frobnicate 1 -j ACCEPT\nCOMMIT\n")
    code, out, err = run("services", str(bad))
    assert code == 2 and out == ""
    assert "bad.rules:2: unknown option '--frobnicate'" in err
    code, _, err = run("services", str(tmp_path / "missing.rules"))
    assert code == 2 and "cannot read" in err


def test_terminal_escapes_never_reach_the_terminal(tmp_path: Path) -> None:
    text = MIXED.read_text().replace("default/web:http cluster IP", "default/web:http\x1b[31m cluster IP")
    dump = tmp_path / "evil.rules"
    dump.write_text(text)
    code, out, _ = run("services", str(dump))
    assert code == 0 and "\x1b" not in out


def test_stdin() -> None:
    proc = subprocess.run([sys.executable, "-m", "kptui", "services", "-", "--json", "--filter", "kubernetes"],
                          input=MIXED.read_bytes(), capture_output=True, cwd=ROOT, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [s["name"] for s in json.loads(proc.stdout)] == ["default/kubernetes:https"]


def test_summary_has_a_kube_section() -> None:
    code, out, _ = run("summary", str(ROOT / "samples" / "kube-1.22-legacy.rules"), "--json")
    assert code == 0
    kube = json.loads(out)["kube"]
    assert (kube["kube_proxy"], kube["mode"], kube["era"], kube["backend"]) == (True, "iptables", "1.21-1.23", "legacy")
    assert kube["local_detector"] == "cidr" and kube["local_detector_values"] == ["10.244.0.0/16"]
    assert kube["chains"] == {"SVC": 8, "FW": 1, "XLB": 2, "SEP": 16}
    code, text, _ = run("summary", str(ROOT / "samples" / "kube-1.22-legacy.rules"))
    assert "kube-proxy: iptables mode; layout 1.21-1.23; local traffic: cidr 10.244.0.0/16" in text


def test_reverse_lookups() -> None:
    index = build_service_index(parse_ruleset_bytes(MIXED.read_bytes()))
    assert [(s.name, e.address) for s, e in index.by_endpoint_ip("10.244.1.2")] == [
        ("kube-system/kube-dns:dns", "10.244.1.2:53"), ("kube-system/kube-dns:dns-tcp", "10.244.1.2:53"),
        ("kube-system/kube-dns:metrics", "10.244.1.2:9153")]  # fmt: skip
    assert index.by_endpoint_ip("10.244.9.9") == ()
    assert [s.name for s in index.by_node_port(30100)] == ["default/broken:http"]
    assert [s.name for s in index.by_node_port(30080, "TCP")] == ["shop/frontend:http"]
    assert index.by_node_port(30080, "udp") == ()
    for chain in ("KUBE-SVC-I5LIAMPLWKMBJ54B", "KUBE-SEP-4W5JFFEZNZ7ITVMU"):
        svc = index.by_chain(chain)
        assert svc is not None and svc.name == "shop/cart:http"
    assert index.by_chain("KUBE-SERVICES") is None
    assert [s.name for s in index.by_address("192.0.2.51")] == ["ingress-nginx/ingress-nginx-controller:http"]
    assert [s.name for s in index.by_name("kube-system/kube-dns")] == [
        "kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp", "kube-system/kube-dns:metrics"]


def test_reverse_lookups_normalise_ipv6() -> None:
    index = build_service_index(parse_ruleset_bytes((ROOT / "samples" / "ipv6.rules").read_bytes()))
    assert [s.name for s, _ in index.by_endpoint_ip("fd00:10:244:1:0:0:0:11")] == ["default/web6:http"]
    assert [s.name for s in index.by_address("FD00:10:96::A")] == ["kube-system/kube-dns:dns"]


FORBIDDEN = {"os", "subprocess", "socket", "shutil", "pathlib", "io", "textual", "rich", "pyperclip", "urllib"}


def test_the_kube_package_is_pure() -> None:
    offenders = []
    for path in sorted((ROOT / "kptui" / "engine" / "kube").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            offenders += [f"{path.name}: {m}" for m in mods if m.split(".")[0] in FORBIDDEN]
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                offenders.append(f"{path.name}:{node.lineno}: open()")
        assert len(path.read_text().splitlines()) <= 400, f"{path.name} is over 400 lines"
    assert offenders == []


def test_iptables_dash_s_form() -> None:
    """``iptables -t nat -S`` output (no table headers, ``-N``/``-P`` lines, no counters) works too."""
    text = (ROOT / "samples" / "nodeport-local.rules").read_text()
    nat = text[text.index("*nat") : text.index("COMMIT", text.index("*nat"))].splitlines()[1:]
    spec = []
    for line in nat:
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            spec.append(f"-N {name}" if policy == "-" else f"-P {name} {policy}")
        else:
            spec.append(line.partition("] ")[2])
    rs = parse_ruleset_bytes(("\n".join(spec) + "\n").encode())
    assert rs.form == "spec"
    got = [(s.name, s.node_port, s.external_traffic_policy, [(e.address, e.local) for e in s.endpoints])
           for s in build_service_index(rs)]  # fmt: skip
    assert got == [
        ("shop/checkout:http", 30090, "Local", [("10.244.1.31:8080", True), ("10.244.2.32:8080", False)]),
        ("shop/legacy-api", 30091, "Local", [("10.244.2.33:8080", False), ("10.244.2.34:8080", False)]),
    ]
