"""Capture bundles: round trip, the node context they carry into traces, and clear errors for damaged ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from types import MappingProxyType

import pytest

from kptui.cli import main
from kptui.node.bundle import (
    FORMAT_VERSION,
    Artifact,
    BundleError,
    Collection,
    decode_bundle,
    encode_bundle,
    is_bundle,
    load_bundle,
    sniff,
)

from .conftest import SAMPLES

RULES = (SAMPLES / "clusterip.rules").read_bytes()
V6 = (SAMPLES / "ipv6.rules").read_bytes()
ADDR = json.dumps([
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]},
    {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.2", "prefixlen": 24, "scope": "global"},
                                     {"family": "inet6", "local": "fd00:10::2", "prefixlen": 64, "scope": "global"}]},
]).encode()  # fmt: skip
CT = (b"tcp      6 431999 ESTABLISHED src=10.244.1.100 dst=10.96.10.20 sport=20001 dport=80 src=10.244.9.9 "
      b"dst=10.244.1.100 sport=8080 dport=20001 [ASSURED] mark=0 use=1\n")  # fmt: skip


def collection(**facts: object) -> Collection:
    arts = (
        Artifact("rules/iptables-nft-save.rules", "rules", RULES, "ipv4", "nf_tables", ("iptables-nft-save", "-c"),
                 seconds=0.5, cpu_seconds=0.4),
        Artifact("rules/iptables-legacy-save.rules", "rules", b"", "ipv4", "legacy", ("iptables-legacy-save", "-c")),
        Artifact("rules/ip6tables-nft-save.rules", "rules", V6, "ipv6", "nf_tables", ("ip6tables-nft-save", "-c")),
        Artifact("node/ip-addr.json", "ip-addr", ADDR, command=("ip", "-j", "-d", "addr", "show")),
        Artifact("node/ip-route-ipv4.json", "ip-route", b'[{"dst":"default","gateway":"10.0.0.1","dev":"eth0"}]',
                 "ipv4"),
        Artifact("node/ip-route-ipv6.json", "ip-route", b'[{"dst":"default","gateway":"fd00:10::1","dev":"eth0"}]',
                 "ipv6"),
        Artifact("conntrack/conntrack-ipv4.txt", "conntrack", CT, "ipv4", command=("conntrack", "-L", "-f", "ipv4")),
        Artifact("conntrack/conntrack-ipv6.txt", "conntrack", b"", "ipv6", command=("conntrack", "-L", "-f", "ipv6"),
                 status=1, stderr="conntrack: not supported"),
    )  # fmt: skip
    base = {"hostname": "node-a", "created": "2025-06-02T12:00:00+00:00", "created_unix": 1748865600.0,
            "proxy_mode": "iptables", "kernel": {"release": "6.1.0"}, "netns": None}  # fmt: skip
    return Collection(arts, MappingProxyType({**base, **facts}))


@pytest.fixture
def bundle() -> bytes:
    return encode_bundle(collection(), mtime=1748865600)


def test_round_trip(bundle: bytes) -> None:
    assert sniff(bundle) == "bundle" and is_bundle(bundle) and not is_bundle(RULES)
    col = decode_bundle(bundle)
    assert [a.name for a in col.artifacts] == [a.name for a in collection().artifacts]
    assert col.find("rules", "ipv4", "nf_tables").data == RULES  # type: ignore[union-attr]
    assert col.facts["hostname"] == "node-a" and col.facts["format_version"] == FORMAT_VERSION
    assert encode_bundle(col, mtime=1748865600) == bundle  # deterministic
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle))) as tar:
        assert tar.getnames()[0] == "manifest.json"  # inspectable with tar


def test_load_bundle_gives_the_live_snapshot(bundle: bytes) -> None:
    snap = load_bundle(bundle, source="n.kptui")
    assert snap.origin == "bundle" and snap.family == "ipv4" and snap.backend == "nf_tables"
    assert snap.ruleset.rule_count == RULES.count(b"-A ") and snap.ruleset.source.startswith("n.kptui: ")
    assert snap.node.addresses[0] == "10.0.0.2" and snap.node.uplink == "eth0"
    assert snap.node.pod_cidrs == ("10.244.0.0/16",)
    assert snap.conntrack == CT and snap.metadata["hostname"] == "node-a"
    six = load_bundle(bundle, family="ipv6")
    assert six.family == "ipv6" and six.ruleset.family == "ipv6" and six.node.uplink == "eth0"
    assert six.conntrack is None  # that command failed at capture time
    assert snap.dump("ipv6", "nf_tables") == V6


def damaged(bundle: bytes, how: str) -> bytes:
    raw = gzip.decompress(bundle)
    if how == "truncated":
        return bundle[: len(bundle) // 2]
    if how == "flipped":
        b = bytearray(bundle)
        b[len(b) // 2] ^= 0xFF
        return bytes(b)
    if how == "checksum":
        i = raw.index(b"*filter")
        return gzip.compress(raw[:i] + b"*filtex" + raw[i + 7 :])
    if how == "tar-cut":
        return gzip.compress(raw[:1536])
    if how == "member-gone":  # cut at a member boundary: tar sees a clean end, the manifest misses a file
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            last = tar.getmembers()[-1]
        return gzip.compress(raw[: last.offset])
    raise AssertionError(how)


@pytest.mark.parametrize(("how", "message"), [("truncated", "truncated"), ("flipped", "corrupted"),
                                              ("checksum", "does not match its checksum"),
                                              ("tar-cut", "truncated"), ("member-gone", "lacks")])  # fmt: skip
def test_damaged_bundles_give_clear_errors(bundle: bytes, how: str, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        load_bundle(damaged(bundle, how))


def rewrite_manifest(bundle: bytes, **changes: object) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle))) as src, tarfile.open(fileobj=raw, mode="w") as dst:
        for info in src:
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "manifest.json":
                m = json.loads(data)
                m.update(changes)
                data = json.dumps(m).encode()
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_newer_format_version_says_upgrade(bundle: bytes) -> None:
    newer = FORMAT_VERSION + 1  # format 2 is current: bundles of format 3 are "newer"
    with pytest.raises(BundleError, match=f"format version {newer}.*upgrade kptui"):
        load_bundle(rewrite_manifest(bundle, format_version=newer, kptui_version="9.0"))
    with pytest.raises(BundleError, match="not valid"):
        load_bundle(rewrite_manifest(bundle, format_version="one"))
    with pytest.raises(BundleError, match="does not describe a kptui bundle"):
        load_bundle(rewrite_manifest(bundle, format="zip"))
    with pytest.raises(BundleError, match="no artifact list"):
        load_bundle(rewrite_manifest(bundle, artifacts=None))


def test_unknown_artifact_kinds_and_keys_are_ignored(bundle: bytes) -> None:
    col = decode_bundle(rewrite_manifest(bundle, future_key={"x": 1}))
    assert col.facts["future_key"] == {"x": 1}
    assert load_bundle(rewrite_manifest(bundle, future_key=1)).ruleset.rule_count > 0


def test_not_a_bundle() -> None:
    assert sniff(gzip.compress(RULES)) == "gzip" and sniff(b"\x1f\x8bxx") == "gzip" and sniff(b"") == "text"
    with pytest.raises(BundleError, match="not a kptui bundle"):
        decode_bundle(gzip.compress(RULES))


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_opens_bundles_by_content_not_name(tmp_path: Path, bundle: bytes) -> None:
    p = tmp_path / "node.rules"  # a bundle with a dump's name still opens as a bundle
    p.write_bytes(bundle)
    code, out, _err = run("summary", str(p), "--json")
    s = json.loads(out)
    assert code == 0 and s["capture"]["origin"] == "bundle" and s["node"]["uplink"] == "eth0"
    assert s["capture"]["hostname"] == "node-a" and s["total_rules"] == RULES.count(b"-A ")
    code, out, _ = run("summary", str(p), "-6")
    assert code == 0 and "IPv6" in out and "capture bundle" in out
    gz = tmp_path / "dump.gz"
    gz.write_bytes(gzip.compress(RULES))
    code, out, _ = run("summary", str(gz), "--json")
    assert code == 0 and json.loads(out)["total_rules"] == RULES.count(b"-A ")
    code, out, _ = run("services", str(p), "--json")  # every command reads bundles
    assert code == 0 and any(s["name"] == "default/web:http" for s in json.loads(out))


def test_trace_uses_the_bundles_node_context(tmp_path: Path, bundle: bytes) -> None:
    p = tmp_path / "node.kptui"
    p.write_bytes(bundle)
    dump = tmp_path / "plain.rules"
    dump.write_bytes(RULES)
    pkt = ["--src", "10.0.0.1", "--dst", "10.96.10.20", "--dport", "80", "--from", "external", "--json"]
    code, out, _ = run("trace", str(p), *pkt)
    with_ctx = json.loads(out)["paths"]
    code2, out2, _ = run("trace", str(dump), *pkt)
    without = json.loads(out2)["paths"]
    assert code == code2 == 0
    # from outside, the remote endpoint is masqueraded to the uplink's address: only the bundle knows it
    remote = [p for p in with_ctx if p["endpoint"] == "10.244.2.13:8080"]
    assert remote and all(p["masquerade"] and p["final"]["src"] == "10.0.0.2" for p in remote)
    assert not any(p["final"]["src"] == "10.0.0.2" for p in without)
    code, out, _ = run("trace", str(p), *pkt, "--node-ip", "10.0.0.99", "--iface", "eth0=10.0.0.99/24")
    assert code == 0 and any(p["final"]["src"] == "10.0.0.99" for p in json.loads(out)["paths"])


@pytest.mark.parametrize("how", ["truncated", "flipped", "checksum"])
def test_cli_damaged_bundle_exit_2_without_traceback(tmp_path: Path, bundle: bytes, how: str) -> None:
    p = tmp_path / "node.kptui"
    p.write_bytes(damaged(bundle, how))
    for cmd in (["summary", str(p)], ["trace", str(p), "--src", "1.1.1.1", "--dst", "2.2.2.2", "--dport", "1"],
                ["deltas", str(p), str(p)], ["services", str(p)]):  # fmt: skip
        code, _out, err = run(*cmd)
        assert code == 2 and "Traceback" not in err and err.startswith(f"kptui: {p}: "), (cmd, err)


def test_cli_newer_bundle_exit_2(tmp_path: Path, bundle: bytes) -> None:
    p = tmp_path / "node.kptui"
    p.write_bytes(rewrite_manifest(bundle, format_version=FORMAT_VERSION + 1))
    code, _, err = run("summary", str(p))
    assert code == 2 and "upgrade kptui" in err


def test_cli_deltas_between_bundles_knows_the_time(tmp_path: Path) -> None:
    a, b = tmp_path / "a.kptui", tmp_path / "b.kptui"
    a.write_bytes(encode_bundle(collection()))
    moved = RULES.replace(b"[36:2160] -A KUBE-SERVICES -d 10.96.10.20/32", b"[46:2760] -A KUBE-SERVICES -d 10.96.10.20/32")
    col = collection(created_unix=1748865630.0)
    arts = tuple(Artifact(x.name, x.kind, moved, x.family, x.backend, x.command) if x.name.endswith("nft-save.rules")
                 and x.family == "ipv4" else x for x in col.artifacts)  # fmt: skip
    b.write_bytes(encode_bundle(Collection(arts, col.facts)))
    code, out, _ = run("deltas", str(a), str(b), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["seconds"] == 30.0
    assert [(r["chain"], r["packets"]) for c in doc["chains"] for r in c["rules"]] == [("KUBE-SERVICES", 10)]


def test_checksums_are_sha256(bundle: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle))) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    entry = manifest["artifacts"][0]
    assert entry["sha256"] == hashlib.sha256(RULES).hexdigest() and entry["size"] == len(RULES)
