"""Bounded reading, for every source: gzip is inflated as a stream under a ceiling, bundles are read in memory by
their manifest's names only and bounded in member count and size, and running out of memory is a message.

The bombs are built small and fast: gzip members of 64 MiB of zeros (about 64 KiB each) concatenated, which
``gunzip`` (and kptui) inflate one after the other.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kptui.cli import main
from kptui.node.bundle import decode_bundle, encode_bundle
from kptui.node.errors import BundleError, InputTooLarge, SourceError
from kptui.node.limits import Limits, inflate, parse_size

from .conftest import ROOT
from .test_bundle import RULES, collection

ZEROS = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # one 64 MiB member, ~64 KiB


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def bomb(gib: int) -> bytes:
    return ZEROS * (gib * 16)


def limited(*argv: str, memory: int) -> subprocess.CompletedProcess[str]:
    """kptui in its own process under an address-space limit (``ulimit -v``)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run([sys.executable, "-m", "kptui", *argv], cwd=ROOT, capture_output=True, text=True,
                          preexec_fn=limit, timeout=120, check=False)  # fmt: skip


# -- gzip ---------------------------------------------------------------------------------------------------
def test_a_gzip_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    path = tmp_path / "dump.gz"
    path.write_bytes(bomb(2))  # 2 MiB that inflate to 2 GiB
    assert len(path.read_bytes()) < 3 << 20
    # 600 MB of address space: the old reader died with a MemoryError traceback, inflating the whole of it
    proc = limited("summary", str(path), memory=600 << 20)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"kptui: {path}: the gzip data inflates to more than ")
    assert "100× its compressed" in proc.stderr and "(a gzip bomb?)" in proc.stderr and "--max-input" in proc.stderr


def test_running_out_of_memory_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "dump.gz"
    path.write_bytes(bomb(2))
    proc = limited("summary", str(path), "--max-input", "4G", memory=600 << 20)  # the ceiling raised past memory
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert proc.stderr.startswith("kptui: out of memory (summary): ") and proc.stdout == ""


def test_the_explicit_ceiling_holds_and_can_be_raised(tmp_path: Path) -> None:
    path = tmp_path / "dump.gz"
    path.write_bytes(gzip.compress(RULES) + gzip.compress(b"\n" * 4096))  # two members: inflated one after the other
    code, out, err = run("summary", str(path), "--max-input", "2K")
    assert code == 2 and err.startswith(f"kptui: {path}: the gzip data inflates to more than 2 KiB (kptui's reading "
                                        "ceiling): refusing it; --max-input 1G raises the ceiling")  # fmt: skip
    code, out, err = run("summary", str(path), "--max-input", "1M", "--json")
    assert code == 0 and json.loads(out)["total_rules"] == RULES.count(b"-A "), err


def test_a_plain_file_and_standard_input_are_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "dump.rules"
    path.write_bytes(RULES)
    code, _, err = run("summary", str(path), "--max-input", "1K")
    assert code == 2 and err.startswith(f"kptui: {path}: more than 1 KiB (kptui's reading ceiling): refusing it")
    proc = subprocess.run([sys.executable, "-m", "kptui", "summary", "-", "--max-input", "1K"], input=RULES,
                          capture_output=True, cwd=ROOT, check=False)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith(b"kptui: <stdin>: more than 1 KiB")


@pytest.mark.parametrize("text", ["abc", "0", "-1M", "1X", ""])
def test_max_input_takes_sizes_only(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run("summary", "x.rules", "--max-input", text)
    assert code == 2 and "--max-input" in capsys.readouterr().err
    with pytest.raises(ValueError):
        parse_size(text)


def test_damaged_gzip_is_named_and_trailing_junk_refused() -> None:
    good = gzip.compress(RULES)
    with pytest.raises(SourceError, match="truncated"):
        inflate(good[: len(good) // 2], Limits())
    with pytest.raises(SourceError, match="bytes after its gzip stream"):
        inflate(good + b"junk", Limits())
    assert inflate(good + b"\0" * 512, Limits()) == RULES  # tape-style padding is fine


# -- bundles -------------------------------------------------------------------------------------------------
def tar_bundle(members: list[tuple[str, bytes]], manifest: dict[str, object] | None = None,
               kind: bytes = tarfile.REGTYPE) -> bytes:  # fmt: skip
    """A gzip'd tar with manifest.json first (listing ``manifest`` or every member) and ``members``."""
    if manifest is None:
        manifest = {"format": "kptui-bundle", "format_version": 2, "kptui_version": "test",
                    "artifacts": [{"name": n, "kind": "rules", "family": "ipv4", "backend": "nf_tables",
                                   "command": ["iptables-nft-save", "-c"], "status": 0, "size": len(b),
                                   "sha256": hashlib.sha256(b).hexdigest()} for n, b in members]}  # fmt: skip
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in [("manifest.json", json.dumps(manifest).encode()), *members]:
            info = tarfile.TarInfo(name)
            info.size, info.type = len(body), kind if name != "manifest.json" else tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue())


def test_a_tar_bomb_of_members_is_refused(tmp_path: Path) -> None:
    many = tar_bundle([(f"rules/x{i}.rules", b"") for i in range(5000)], manifest={
        "format": "kptui-bundle", "format_version": 2, "artifacts": []})  # fmt: skip
    with pytest.raises(BundleError, match="more than 256 members"):
        decode_bundle(many)
    path = tmp_path / "many.kptui"
    path.write_bytes(many)
    code, _, err = run("summary", str(path))
    assert code == 2 and err.startswith(f"kptui: {path}: the bundle has more than 256 members")


def test_a_bundle_that_inflates_past_the_ceiling_is_refused(tmp_path: Path) -> None:
    big = tar_bundle([("rules/iptables-nft-save.rules", RULES + b"\n" * (300 << 20))])  # 300 MB of newlines
    assert len(big) < 2 << 20
    with pytest.raises(InputTooLarge, match=r"the bundle inflates to more than .*\(a gzip bomb\?\)"):
        decode_bundle(big)
    path = tmp_path / "big.kptui"
    path.write_bytes(big)
    code, _, err = run("summary", str(path))
    assert code == 2 and err.startswith(f"kptui: {path}: the bundle inflates to more than ")


def test_member_names_are_never_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member named ../… is never extracted, never written, never a path: listed by the manifest, the bundle is
    refused; not listed, it is ignored."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    evil = tar_bundle([("../../evil.rules", RULES)])
    with pytest.raises(BundleError, match="manifest.json names a member '../../evil.rules'.*refusing the bundle"):
        decode_bundle(evil)
    for name in ("/etc/kptui-evil", "rules/../../x", "rules\\x"):
        with pytest.raises(BundleError, match="no name a kptui bundle uses"):
            decode_bundle(tar_bundle([(name, RULES)]))
    extra = io.BytesIO()  # a good bundle plus a member named ../evil that its manifest does not list
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(encode_bundle(collection())))) as src, \
            tarfile.open(fileobj=extra, mode="w") as dst:  # fmt: skip
        for info in src:
            dst.addfile(info, src.extractfile(info))
        info = tarfile.TarInfo("../evil")
        info.size = 5
        dst.addfile(info, io.BytesIO(b"evil\n"))
    sneaky = gzip.compress(extra.getvalue())
    col = decode_bundle(sneaky)
    assert [a.name for a in col.artifacts] == [a.name for a in collection().artifacts]
    path = tmp_path / "work" / "sneaky.kptui"
    path.write_bytes(sneaky)
    code, _, err = run("summary", str(path))
    assert code == 0, err
    after = sorted(str(p) for p in tmp_path.rglob("*"))
    assert after == sorted([*before, str(path)]) and not (tmp_path / "evil").exists()


@pytest.mark.parametrize("size", [5, 10**12, "12", -1, True])
def test_a_manifest_that_lies_about_sizes_is_refused(size: object) -> None:
    body = RULES
    manifest = {"format": "kptui-bundle", "format_version": 2,
                "artifacts": [{"name": "rules/iptables-nft-save.rules", "kind": "rules", "size": size,
                               "sha256": hashlib.sha256(body).hexdigest()}]}  # fmt: skip
    with pytest.raises(BundleError, match=r"manifest.json says 'rules/iptables-nft-save.rules' holds .* bytes, the "
                       rf"archive holds {len(body)}: the bundle is corrupted"):  # fmt: skip
        decode_bundle(tar_bundle([("rules/iptables-nft-save.rules", body)], manifest))


def test_sparse_and_duplicate_members_are_refused() -> None:
    with pytest.raises(BundleError, match="sparse file"):
        decode_bundle(tar_bundle([("rules/iptables-nft-save.rules", RULES)], kind=tarfile.GNUTYPE_SPARSE))
    with pytest.raises(BundleError, match="two members named"):
        decode_bundle(tar_bundle([("rules/a.rules", RULES), ("rules/a.rules", RULES)]))


def test_members_bigger_than_the_ceiling_are_refused() -> None:
    bundle = tar_bundle([("rules/iptables-nft-save.rules", RULES)])
    with pytest.raises(InputTooLarge, match="inflates to more than"):
        decode_bundle(bundle, limits=Limits(max_input=4096, explicit=True))


def test_nothing_is_ever_extracted_or_written() -> None:
    """The snapshot layer has no code path that writes a file: no extract()/extractall(), every open() reads
    ("rb"), and tarfile only ever opens an in-memory file object."""
    offenders = []
    for path in sorted((ROOT / "kptui" / "node").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
            if name in ("extract", "extractall", "makefile", "write_bytes", "write_text"):
                offenders.append(f"{path.name}:{node.lineno}: {name}()")
            elif name == "open" and owner is None:
                mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                    None)  # fmt: skip
                if not (isinstance(mode, ast.Constant) and mode.value == "rb"):
                    offenders.append(f"{path.name}:{node.lineno}: open() not read-only")
            elif name == "open" and owner == "tarfile":
                if not any(k.arg == "fileobj" for k in node.keywords):
                    offenders.append(f"{path.name}:{node.lineno}: tarfile.open() of a path")
            elif name == "open" and owner == "os":
                offenders.append(f"{path.name}:{node.lineno}: os.open()")
    assert offenders == []
