"""The nft front end against the real nft, live: each fixture ruleset (tests/data/nft) is loaded into a network
namespace this test creates, listed with ``nft list ruleset``, ``nft -a``, ``nft -nn`` and ``nft -j``, and every
form must give the same model, with JSON rule texts equal to the listing's (tests/test_nft_listings.py's checks)
and the saved fixtures still what this nft lists."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kptui.engine.nft import parse_nft
from tools.netlab import Lab

from ..kernel_gate import KernelGate
from ..nft_fixtures import RULESETS, differences, fixture_path, list_forms, load
from ..test_nft_listings import check_forms

pytestmark = pytest.mark.kernel

GATE = KernelGate(
    "NFT LISTING TESTS",
    "They check the nft parser against listings of the real nft",
    ("ip", "nft", "iptables-nft-restore"),
    ("nft", "list", "ruleset"),
    "nftprobe",
)


@pytest.fixture(scope="module")
def listings(kernel_ok: None) -> Iterator[dict[str, dict[str, str]]]:
    GATE.require()  # and nft itself
    out = {}
    for name in RULESETS:
        with Lab(f"nftls-{name[:6]}") as lab:
            load(lab, name)
            out[name] = list_forms(lab)
    yield out


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_live_listings_give_one_model(listings: dict[str, dict[str, str]], name: str) -> None:
    check_forms(listings[name], name)


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_the_saved_fixtures_are_what_nft_lists(listings: dict[str, dict[str, str]], name: str) -> None:
    for form, text in listings[name].items():
        live = parse_nft(text, source=f"live {name}.{form}")
        saved = parse_nft(fixture_path(name, form).read_text(), source=f"{name}.{form}")
        assert differences(saved, live) == [], f"{name}.{form}: run tests/data/nft/regenerate.py"


def test_the_benchmark_generator_writes_what_nft_lists(kernel_ok: None) -> None:
    """benchmarks/gen_nft_dump.py's listing, loaded into the kernel and listed again, comes back byte for byte
    (so the parse benchmark measures a real listing)."""
    import io
    import sys
    from pathlib import Path

    GATE.require()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import gen_nft_dump

    buf = io.StringIO()
    gen_nft_dump.write(buf, 25, 3)
    with Lab("nftls-gen") as lab:
        lab.exec(lab.node, ["nft", "-f", "-"], input=buf.getvalue())
        listed = lab.exec(lab.node, ["nft", "list", "ruleset"]).stdout
    assert listed == buf.getvalue()
    rs = parse_nft(listed)
    assert rs.warnings == () and rs.rule_count == sum(1 for line in listed.splitlines() if line.startswith("\t\t")
                                                      and not line.startswith(("\t\ttype", "\t\tcomment",
                                                                               "\t\telements", "\t\t\t")))  # fmt: skip
