#!/usr/bin/env python3
"""Regenerate the nft listing fixtures: load each ruleset of tests/nft_fixtures.RULESETS into a throwaway network
namespace and write what the real nft lists (``NAME.list.txt``, ``NAME.list-a.txt``, ``NAME.list-nn.txt``,
``NAME.list.json``). Run as root from anywhere: ``sudo python3 tests/data/nft/regenerate.py``. The host's own
rules are never touched (everything runs in namespaces the lab creates and deletes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from tests.nft_fixtures import RULESETS, fixture_path, list_forms, load
from tools.netlab import Lab


def main() -> int:
    version = subprocess.run(["nft", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    for name in RULESETS:
        with Lab(f"nftfx-{name[:5]}") as lab:
            load(lab, name)
            for form, text in list_forms(lab).items():
                fixture_path(name, form).write_text(text)
                print(f"{fixture_path(name, form).relative_to(REPO)}: {text.count(chr(10))} lines ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
