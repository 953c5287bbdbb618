"""The service index on every real-kernel sample: golden tables, and the same services without comments.

Goldens live in tests/golden/<sample>.services.json (the ``kptui services --json`` output). They were generated
by the code and then checked by hand against the sample's rules and samples/README.md / samples/scenarios.py.
After a deliberate change, regenerate with ``KPTUI_UPDATE_GOLDEN=1 pytest tests/test_kube_services.py`` and
review the diff line by line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from kptui.engine import parse_ruleset, parse_ruleset_bytes
from kptui.engine.kube import ServiceIndex, ServicePort, build_service_index
from kptui.engine.kube.report import service_to_dict

from .conftest import sample_paths

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("KPTUI_UPDATE_GOLDEN") == "1"
_COMMENT = re.compile(r' -m comment --comment (?:"(?:[^"\\]|\\.)*"|[^\s"]+)')


def index_of(path: Path) -> ServiceIndex:
    return build_service_index(parse_ruleset_bytes(path.read_bytes(), source=path.name))


def strip_comments(text: str, *, large_cluster: bool = False) -> str:
    """Remove ``-m comment --comment …`` from every rule, or (``large_cluster``) only where kube-proxy's
    large-cluster mode leaves it out: KUBE-SEP rules and the SVC/SVL → SEP jumps."""
    out = []
    for line in text.splitlines(keepends=True):
        rule = line.partition("] ")[2] if line.startswith("[") else line
        if rule.startswith("-A ") and (not large_cluster or rule.startswith("-A KUBE-SEP-") or (
                rule.startswith(("-A KUBE-SVC-", "-A KUBE-SVL-")) and " -j KUBE-SEP-" in rule)):  # fmt: skip
            line = _COMMENT.sub("", line)
        out.append(line)
    return "".join(out)


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_golden_service_table(path: Path) -> None:
    got = [service_to_dict(s) for s in index_of(path)]
    golden = GOLDEN / f"{path.stem}.services.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(json.dumps(got, indent=2) + "\n")
    assert golden.exists(), f"no golden file for {path.stem} (KPTUI_UPDATE_GOLDEN=1 makes one: then review it)"
    assert got == json.loads(golden.read_text())


def test_every_sample_has_a_golden_file() -> None:
    assert {p.stem for p in sample_paths()} == {g.name.removesuffix(".services.json") for g in GOLDEN.glob("*.json")
                                                  if not g.name.startswith("nft-")}  # (nft: test_kube_nft_services)


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_large_cluster_mode_gives_identical_services(path: Path) -> None:
    """Without comments on SEP and SVC→SEP rules (kube-proxy above 1000 endpoints) nothing changes at all."""
    text = strip_comments(path.read_text(), large_cluster=True)
    assert text != path.read_text()
    stripped = build_service_index(parse_ruleset(text, source=path.name))
    assert [service_to_dict(s) for s in stripped] == [service_to_dict(s) for s in index_of(path)]


def _semantics(s: ServicePort) -> dict[str, Any]:
    """What the jump graph alone must give back (names aside: comments are the only source of most)."""
    d = service_to_dict(s)
    for key in ("name", "namespace", "service", "port_name", "name_source", "hash_verified", "notes",
                "health_check_node_port", "external_ips", "load_balancer_ips", "external_or_lb_ips"):  # fmt: skip
        d.pop(key)
    d["addresses"] = sorted([*s.external_ips, *s.load_balancer_ips, *s.external_or_lb_ips])
    for e in d["endpoints"]:
        e.pop("hash_verified", None)
    return d


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_without_any_comment_the_same_services_come_back(path: Path) -> None:
    original = index_of(path)
    text = strip_comments(path.read_text())
    assert "--comment" not in text
    stripped = build_service_index(parse_ruleset(text, source=path.name))
    by_hash = {s.chain_hash: s for s in stripped if s.chains}
    hashed = [s for s in original if s.chains]
    assert len(by_hash) == len(hashed)
    for s in hashed:
        got = by_hash[s.chain_hash]
        assert _semantics(got) == _semantics(s), s.name
        assert got.name in (s.name, None)
        if got.name is None:  # unknown, but identified by its chains' hash
            assert got.chain_hash and got.name_source is None and got.label == f"?{got.chain_hash}"
        else:  # recovered from the hash alone
            assert (got.name_source, got.hash_verified) == ("hash", True)
        if s.name in ("default/kubernetes:https", "kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp",
                      "kube-system/kube-dns:metrics"):  # fmt: skip
            assert got.name == s.name  # well-known names are always recovered
    # Service ports without endpoints have no chains: their filter rules survive, unnamed and ungrouped.
    chainless = [s for s in stripped if not s.chains]
    assert all(s.name is None and s.no_endpoints and s.blocking_rules for s in chainless)
    for s in original:
        if s.chains:
            continue
        blocked = {b.destination for b in s.blocking_rules}
        assert blocked <= {b.destination for c in chainless for b in c.blocking_rules}
        assert s.cluster_ip in {c.cluster_ip for c in chainless}


def test_well_known_names_are_recovered_from_the_hash() -> None:
    text = strip_comments((Path(__file__).resolve().parent.parent / "samples" / "clusterip.rules").read_text())
    idx = build_service_index(parse_ruleset(text))
    names = {s.chain_hash: s.name for s in idx}
    assert names["NPX46M4PTMTKRN6Y"] == "default/kubernetes:https"
    assert names["TCOU7JCQXEZGVUNU"] == "kube-system/kube-dns:dns"
    assert names["ERIFXISQEP7F7OF4"] == "kube-system/kube-dns:dns-tcp"
    web = idx.by_chain("KUBE-SVC-CDGGSHYLG3RE2FKL")
    assert web is not None and web.name is None and web.label == "?CDGGSHYLG3RE2FKL"
    assert [e.address for e in web.endpoints] == ["10.244.1.11:8080", "10.244.1.12:8080", "10.244.2.13:8080"]


def test_a_name_mentioned_elsewhere_is_recovered_for_a_chain_without_comments() -> None:
    """Comments stripped from the web service's own rules only: the name is still in another rule's comment."""
    text = (Path(__file__).resolve().parent.parent / "samples" / "clusterip.rules").read_text()
    lines = [(_COMMENT.sub("", line) if "default/web:http" in line else line) for line in text.splitlines(True)]
    lines.insert(lines.index("COMMIT\n"), '-A INPUT -m comment --comment "see default/web:http" -j ACCEPT\n')
    web = build_service_index(parse_ruleset("".join(lines))).by_chain("KUBE-SVC-CDGGSHYLG3RE2FKL")
    assert web is not None and (web.name, web.name_source, web.hash_verified) == ("default/web:http", "hash", True)
