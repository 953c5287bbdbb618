"""``kptui summary`` on a terminal: the parse's progress on standard error, cleared before the answer; on a
pipe or a file nothing but the answer."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from kptui.cli import main, progress
from kptui.engine import parser as parser_mod

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from gen_dump import write_dump


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(parser_mod, "_CHUNK", 64 * 1024)
    monkeypatch.setattr(progress, "MIN_LINES", 0)
    monkeypatch.setattr(progress, "EVERY", 0.0)
    path = tmp_path / "d.rules"
    write_dump(str(path), 200, 3)
    return path


def test_progress_on_a_terminal_is_cleared_before_the_answer(dump: Path) -> None:
    out, err = io.StringIO(), Tty()
    assert main(["summary", str(dump), "--json"], out=out, err=err) == 0
    lines = dump.read_bytes().count(b"\n")
    shown = err.getvalue()
    assert "d.rules: parsed " in shown and f" of {lines:,} lines (" in shown
    assert f"parsed all {lines:,} lines; checking jumps" in shown
    assert shown.endswith("\r\x1b[K")  # the line is gone before the answer
    assert json.loads(out.getvalue())["lines"] == lines


def test_no_progress_on_a_pipe(dump: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["summary", str(dump), "--json"], out=out, err=err) == 0
    assert err.getvalue() == ""
    tty_out = io.StringIO()
    main(["summary", str(dump), "--json"], out=tty_out, err=Tty())
    assert tty_out.getvalue() == out.getvalue()  # the same answer either way


def test_a_source_name_cannot_inject_escapes(dump: Path) -> None:
    shown = progress.TerminalProgress(Tty(), "evil\x1b]0;x\x07.rules")
    shown(1, 2)
    assert "\x07" not in shown.err.getvalue() and "\x1b]" not in shown.err.getvalue()  # type: ignore[attr-defined]
