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


def test_engine_modules_import_nothing_that_does_io() -> None:
    offenders = []
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                offenders.append(f"{path.name}:{node.lineno}: open()")
    assert offenders == []
