"""Static checks run with the suite: ruff over the code, mypy --strict over the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                           "kptui", "tests", "benchmarks", "tools", "samples"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_engine_is_mypy_strict_clean(tmp_path: Path) -> None:
    """The engine, the snapshot layer, the runner and the commands: strict (pyproject.toml's overrides)."""
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
                           "kptui/engine", "kptui/node", "kptui/live", "kptui/cli"], cwd=ROOT, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
