"""The engine is pure: importing it loads no UI package and no I/O helpers (harlequin's contract)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "kptui" / "engine"


def test_importing_the_engine_loads_neither_textual_nor_rich() -> None:
    code = (
        "import sys, kptui.engine, kptui.engine.summary, kptui.engine.graph; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'pyperclip')); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine import pulled in: {out.stdout}"


# Modules the engine may import: the standard library's pure parts. No files, processes or sockets.
FORBIDDEN = {"os", "subprocess", "socket", "shutil", "pathlib", "io", "textual", "rich", "pyperclip", "urllib"}


def io_offenders(root: Path, forbidden: set[str]) -> list[str]:
    """Imports of ``forbidden`` modules and calls of open() in every module under ``root``."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in forbidden]
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                offenders.append(f"{path.name}:{node.lineno}: open()")
    return offenders


def test_engine_modules_import_nothing_that_does_io() -> None:
    assert len(list(ENGINE.rglob("*.py"))) > len(list(ENGINE.glob("*.py")))  # kptui/engine/kube/ included
    assert io_offenders(ENGINE, FORBIDDEN) == []


def test_the_ui_reads_no_files_and_runs_no_commands() -> None:
    """kptui/cli.py (and kptui/live) read files and run commands; the panes get what they need passed in
    (dump bytes, a live reader, a file writer). The clipboard's pyperclip is the one tool the UI may run."""
    ui = ENGINE.parent / "ui"
    assert io_offenders(ui, {"subprocess", "socket", "shutil", "pathlib", "urllib", "tempfile"}) == []
