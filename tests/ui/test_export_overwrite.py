"""Saving a trace (ctrl+s) never replaces a file without asking: the dialog says the file exists, a second
enter on the same path replaces it, another path asks again. The writer (kptui.cli.explorer.write_text)
refuses to replace unless told to, and reports directories and missing directories plainly."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from kptui.cli.explorer import _link_new, write_text
from kptui.ui.app import KptuiApp
from kptui.ui.export import Writer, saved_message
from kptui.ui.modals import SaveScreen

from .conftest import NODEPORT_NODE, NODEPORT_PACKET, app_for, ready

MY_NOTES = "my notes\n"


class FakeWriter:
    """A writer that keeps files in a dict: what the app asked for, and with which ``replace``."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, path: str, text: str, /, *, replace: bool = False) -> bool:
        self.calls.append((path, replace))
        existed = path in self.files
        if existed and not replace:
            raise FileExistsError(errno.EEXIST, "a file of that name exists")
        self.files[path] = text
        return existed


def noted(app: KptuiApp) -> list[str]:
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    return notes


async def submit(app: KptuiApp, pilot: object, path: str | None) -> None:
    """Type ``path`` into the open dialog (None: keep what is there) and press enter."""
    if path is not None:
        app.screen.query_one("#save-path").value = path  # type: ignore[attr-defined]
        await pilot.pause()  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


def inline(app: KptuiApp) -> str:
    box = app.screen.query_one("#save-error")
    return str(box.content) if box.display else ""


async def save_dialog(app: KptuiApp, pilot: object) -> None:
    """The app up with its start-up trace, and ctrl+s's dialog open."""
    await ready(app, pilot)
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


def app_with(writer: Writer) -> KptuiApp:
    return app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE, writer=writer)


# -- through the app, with the real writer ---------------------------------------------------------------
@pytest.mark.asyncio
async def test_an_existing_file_is_kept_until_a_second_enter_replaces_it(tmp_path: Path) -> None:
    notes_md = tmp_path / "notes.md"
    notes_md.write_text(MY_NOTES)
    app = app_with(write_text)
    notes = noted(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await save_dialog(app, pilot)
        await submit(app, pilot, str(notes_md))
        assert notes_md.read_text() == MY_NOTES  # the user's file is untouched
        assert isinstance(app.screen, SaveScreen)  # the dialog stays open and says why
        assert inline(app) == f"{notes_md} exists — press enter again to replace it, or change the name"
        assert not any(n.startswith(("Saved", "Replaced")) for n in notes)
        await submit(app, pilot, None)  # the second enter, same path: replace it
        assert app.screen is app.main_screen
        assert notes_md.read_text().startswith("# kptui trace: 10.0.0.1:40000 → 10.0.0.2:30080/tcp\n")
        assert notes[-1] == f"Replaced {notes_md} with the trace as Markdown"
    assert sorted(os.listdir(tmp_path)) == ["notes.md"]  # no temporary file left beside it


@pytest.mark.asyncio
async def test_a_new_file_is_saved_at_the_first_enter_as_before(tmp_path: Path) -> None:
    target = tmp_path / "trace.json"
    app = app_with(write_text)
    notes = noted(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await save_dialog(app, pilot)
        await submit(app, pilot, str(target))
        assert app.screen is app.main_screen
        assert json.loads(target.read_text())["schema"] == "kptui.trace/1"
        assert notes[-1] == f"Saved the trace as JSON to {target}"
    assert sorted(os.listdir(tmp_path)) == ["trace.json"]


@pytest.mark.asyncio
async def test_a_directory_or_a_missing_directory_is_said_inline(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    app = app_with(write_text)
    async with app.run_test(size=(120, 40)) as pilot:
        await save_dialog(app, pilot)
        cases = [
            (str(tmp_path), f"cannot write {tmp_path}: that is a directory: add a file name"),
            (f"{tmp_path}/", f"cannot write {tmp_path}/: that names a directory: add a file name"),
            (str(tmp_path / "gone" / "t.md"),
             f"cannot write {tmp_path}/gone/t.md: there is no directory {tmp_path}/gone"),
            (str(tmp_path / "plain" / "t.md"),
             f"cannot write {tmp_path}/plain/t.md: {tmp_path}/plain is not a directory"),
        ]  # fmt: skip
        for path, message in cases:
            await submit(app, pilot, path)
            assert isinstance(app.screen, SaveScreen)
            assert inline(app) == message
        await pilot.press("escape")
        assert app.screen is app.main_screen
    assert sorted(os.listdir(tmp_path)) == ["plain"]  # nothing written, no temporary file left


# -- the dialog's confirmation, with a fake writer -------------------------------------------------------
@pytest.mark.asyncio
async def test_changing_the_path_asks_again() -> None:
    writer = FakeWriter({"a.md": MY_NOTES, "b.md": MY_NOTES})
    app = app_with(writer)
    notes = noted(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await save_dialog(app, pilot)
        await submit(app, pilot, "a.md")
        assert inline(app).startswith("a.md exists — press enter again")
        await submit(app, pilot, "b.md")  # another existing file: asks about that one
        assert inline(app).startswith("b.md exists — press enter again")
        app.screen.query_one("#save-path").value = "a.md"  # back: the confirmation was for b.md
        await pilot.pause()
        assert inline(app) == ""  # the notice about b.md went with it
        await submit(app, pilot, None)
        assert inline(app).startswith("a.md exists — press enter again")
        assert writer.files == {"a.md": MY_NOTES, "b.md": MY_NOTES}
        await submit(app, pilot, None)
        assert app.screen is app.main_screen
        assert writer.calls == [("a.md", False), ("b.md", False), ("a.md", False), ("a.md", True)]
        assert writer.files["a.md"].startswith("# kptui trace:") and writer.files["b.md"] == MY_NOTES
        assert notes[-1] == "Replaced a.md with the trace as Markdown"


@pytest.mark.asyncio
async def test_an_error_after_the_notice_ends_the_confirmation() -> None:
    writer = FakeWriter({"a.md": MY_NOTES})
    app = app_with(writer)
    async with app.run_test(size=(120, 40)) as pilot:
        await save_dialog(app, pilot)
        await submit(app, pilot, "a.md")
        assert inline(app).startswith("a.md exists")
        await submit(app, pilot, "   ")  # an empty name does nothing
        assert isinstance(app.screen, SaveScreen) and writer.files == {"a.md": MY_NOTES}
        await submit(app, pilot, "new.md")  # a new file: saved at once
        assert app.screen is app.main_screen
        assert writer.calls == [("a.md", False), ("new.md", False)]


def test_the_notification_says_replaced_only_when_a_file_was_replaced() -> None:
    assert saved_message("t.md", "markdown", replaced=False) == "Saved the trace as Markdown to t.md"
    assert saved_message("t.json", "json", replaced=True) == "Replaced t.json with the trace as JSON"
    escaped = saved_message("a\x1b[2Jb.md", "markdown", replaced=True)  # a typed name is made printable too
    assert escaped == "Replaced a\\x1b[2Jb.md with the trace as Markdown"


# -- the real writer against tmp_path --------------------------------------------------------------------
def test_the_writer_refuses_to_replace_unless_told_to(tmp_path: Path) -> None:
    target = tmp_path / "notes.md"
    assert write_text(str(target), "one\n") is False
    with pytest.raises(FileExistsError):
        write_text(str(target), "two\n")
    assert target.read_text() == "one\n"
    target.chmod(0o640)
    assert write_text(str(target), "three\n", replace=True) is True
    assert target.read_text() == "three\n"
    assert target.stat().st_mode & 0o777 == 0o640  # the replaced file's mode is kept
    assert write_text(str(tmp_path / "other.md"), "new\n", replace=True) is False  # replace= on a new file
    assert sorted(os.listdir(tmp_path)) == ["notes.md", "other.md"]


def test_the_writer_writes_through_a_symbolic_link(tmp_path: Path) -> None:
    real = tmp_path / "real.md"
    real.write_text(MY_NOTES)
    link = tmp_path / "link.md"
    link.symlink_to(real)
    with pytest.raises(FileExistsError):
        write_text(str(link), "x\n")
    assert write_text(str(link), "x\n", replace=True) is True
    assert link.is_symlink() and real.read_text() == "x\n"


def test_the_writer_expands_home_and_says_what_is_wrong(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert write_text("~/t.md", "x\n") is False and (tmp_path / "t.md").read_text() == "x\n"
    with pytest.raises(IsADirectoryError, match="that is a directory"):
        write_text(str(tmp_path), "x\n", replace=True)
    with pytest.raises(FileNotFoundError, match="there is no directory"):
        write_text(str(tmp_path / "a" / "b.md"), "x\n")
    with pytest.raises(OSError, match="not a name a file can have") as bad:
        write_text(str(tmp_path / "a\0b.md"), "x\n")
    assert not isinstance(bad.value, FileExistsError)
    assert sorted(os.listdir(tmp_path)) == ["t.md"]


def test_a_file_that_appears_after_the_check_is_not_replaced(tmp_path: Path) -> None:
    tmp, target = tmp_path / ".t.md.tmp", tmp_path / "t.md"
    tmp.write_text("ours\n")
    target.write_text(MY_NOTES)  # another program made it between the check and the rename
    with pytest.raises(FileExistsError):
        _link_new(str(tmp), str(target))
    assert target.read_text() == MY_NOTES
