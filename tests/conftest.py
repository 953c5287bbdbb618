"""Shared fixtures: paths to the bundled samples and a small helper to parse text."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def sample_paths() -> list[Path]:
    return sorted(SAMPLES.glob("*.rules"))


def parse(text: str, source: str = "test.rules") -> Ruleset:
    return parse_ruleset(text, source=source)


@pytest.fixture
def samples() -> list[Path]:
    paths = sample_paths()
    assert paths, f"no samples in {SAMPLES}"
    return paths
