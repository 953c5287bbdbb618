"""The README is a newcomer's page (quick start first, every command in a line, links to the reference), and
the reference in docs/ holds together: every relative link leads to a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

from kptui.cli.common import COMMAND_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_quick_start_is_within_the_first_40_lines() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("## Quick start")
    assert start < 40 and any("pip install" in line for line in lines[start:40])
    assert any(line.startswith(".venv/bin/kptui ") for line in lines[start:40])


def test_every_command_has_a_line_in_the_readme_and_a_section_in_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = (DOCS / "commands.md").read_text()
    for name in COMMAND_NAMES:
        assert f"| `kptui {name}" in readme, name
        assert f"## `kptui {name}" in commands or f"`kptui {name} " in commands, name


def test_the_readme_links_to_every_docs_page_and_every_link_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert {"architecture.md", "bundle-format.md", "commands.md", "explorer.md", "input.md", "json.md",
            "live-mode.md"} <= set(pages)  # fmt: skip
    for page in pages:
        assert f"(docs/{page})" in readme, page
    for doc in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in LINK.findall(doc.read_text()):
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to {target}, which is not there"


def test_the_readme_tells_a_newcomer_to_give_the_node() -> None:
    """10.18: where the explorer is introduced, the README says traces on a plain dump rest on assumptions
    unless the node's addresses are given (or a capture bundle is opened)."""
    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quick start") : readme.index("## A tour of the explorer")]
    assert "Tell kptui the node" in quick and "--node-ip" in quick and "capture bundle" in quick
    assert "assumption" in quick
    assert "Tell kptui the node" in (DOCS / "explorer.md").read_text()
