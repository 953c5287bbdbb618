"""Shared fixtures: paths to the bundled samples, a small helper to parse text, a private tmux server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset

from .tmux import Tmux, tmux_server

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


IPVS_SAMPLES = frozenset({"ipvs-mode"})  # kube-proxy in IPVS mode: their services come with the IPVS table


def sample_paths(*, ipvs: bool = False) -> list[Path]:
    """The bundled iptables-mode samples (with ``ipvs``, the IPVS-mode ones too)."""
    return sorted(p for p in SAMPLES.glob("*.rules") if ipvs or p.stem not in IPVS_SAMPLES)


def parse(text: str, source: str = "test.rules") -> Ruleset:
    return parse_ruleset(text, source=source)


@pytest.fixture
def samples() -> list[Path]:
    paths = sample_paths()
    assert paths, f"no samples in {SAMPLES}"
    return paths


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    """A private tmux server for a real-terminal test (tests/tmux.py), killed afterwards."""
    with tmux_server("kptui-test") as server:
        yield server
