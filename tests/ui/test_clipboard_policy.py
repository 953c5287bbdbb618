"""The clipboard policy decides from the environment before it probes pyperclip, and says so when
``KPTUI_CLIPBOARD`` holds a value it does not understand."""

from __future__ import annotations

import sys
import types

import pytest

from kptui.ui.clipboard import Clipboard, choose
from kptui.ui.locs import Loc

from .conftest import app_for, ready


class FakeTerminal:
    def __init__(self) -> None:
        self.copied: list[str] = []

    def copy_to_clipboard(self, text: str) -> None:
        self.copied.append(text)


class FakePyperclip:
    """Stands in for pyperclip: counts the (expensive) backend probes; its copy records the text."""

    def __init__(self, works: bool = True) -> None:
        self.probes = 0
        self.copied: list[str] = []
        self.works = works

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("pyperclip")
        mod.determine_clipboard = self.determine_clipboard  # type: ignore[attr-defined]
        return mod

    def determine_clipboard(self) -> tuple[object, object]:
        self.probes += 1
        return (self.copied.append if self.works else None), None


@pytest.fixture
def pyperclip(monkeypatch: pytest.MonkeyPatch) -> FakePyperclip:
    fake = FakePyperclip()
    monkeypatch.setitem(sys.modules, "pyperclip", fake.module())
    return fake


@pytest.mark.parametrize(
    "env",
    [
        {"SSH_TTY": "/dev/pts/3"},
        {"SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22"},
        {"TMUX": "/tmp/tmux-0/default,1,0"},
        {"KPTUI_CLIPBOARD": "osc52"},
        {"KPTUI_CLIPBOARD": "OSC52 "},
        {"KPTUI_CLIPBOARD": "osc-52", "TMUX": "/tmp/tmux-0/default,1,0"},
    ],
)
def test_osc52_only_sessions_never_probe_pyperclip(pyperclip: FakePyperclip, env: dict[str, str]) -> None:
    term = FakeTerminal()
    clip = Clipboard(term, env=env)
    for _ in range(3):
        ok, message = clip.copy("-A X -j ACCEPT", "a rule")
        assert ok and "via OSC 52 (the terminal)" in message and "system clipboard" not in message
    assert clip.plan.osc52 and not clip.plan.native
    assert term.copied == ["-A X -j ACCEPT"] * 3
    assert pyperclip.probes == 0 and pyperclip.copied == []


@pytest.mark.parametrize("env", [{}, {"KPTUI_CLIPBOARD": "native"}, {"KPTUI_CLIPBOARD": "auto"}])
def test_sessions_that_need_the_local_clipboard_probe_it_once(pyperclip: FakePyperclip, env: dict[str, str]) -> None:
    clip = Clipboard(FakeTerminal(), env=env)
    for _ in range(3):
        ok, message = clip.copy("x", "a rule")
        assert ok and "via the system clipboard" in message
    assert pyperclip.probes == 1 and pyperclip.copied == ["x"] * 3


def test_choose_calls_a_probe_only_when_the_environment_leaves_it_open() -> None:
    calls: list[int] = []

    def probe() -> bool:
        calls.append(1)
        return False

    assert choose({"SSH_TTY": "x"}, probe).native is False and calls == []
    assert choose({"KPTUI_CLIPBOARD": "native"}, probe).native is True and calls == []
    plan = choose({}, probe)
    assert (plan.osc52, plan.native, plan.why) == (True, False, "no local clipboard tool") and calls == [1]


@pytest.mark.parametrize(
    ("env", "works", "used"),
    [
        ({"KPTUI_CLIPBOARD": "osc-52", "SSH_TTY": "/dev/pts/3"}, True, "used auto, OSC 52 (SSH_TTY is set)"),
        ({"KPTUI_CLIPBOARD": "natve"}, True, "used auto, OSC 52 and the system clipboard (local session)"),
        ({"KPTUI_CLIPBOARD": "natve"}, False, "used auto, OSC 52 (no local clipboard tool)"),
    ],
)
def test_a_mistyped_mode_is_named_in_every_copy_message(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                       works: bool, used: str) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "pyperclip", FakePyperclip(works).module())
    value = env["KPTUI_CLIPBOARD"]
    ok, message = Clipboard(FakeTerminal(), env=env).copy("x", "a rule")
    assert ok and message.endswith(f". KPTUI_CLIPBOARD={value} not understood (auto|osc52|native): {used}")
    ok, message = Clipboard(FakeTerminal(), env={**env, "SSH_TTY": "x"}).copy("y" * 200_000, "the trace")
    assert not ok and message.startswith("Not copied: the trace:") and "not understood" in message


def test_understood_modes_add_nothing_to_the_message(pyperclip: FakePyperclip) -> None:
    for mode in ("auto", "AUTO", "osc52", "native", ""):
        ok, message = Clipboard(FakeTerminal(), env={"KPTUI_CLIPBOARD": mode}).copy("x", "a rule")
        assert ok and "KPTUI_CLIPBOARD" not in message and choose({"KPTUI_CLIPBOARD": mode}, True).note == ""


def test_the_quoted_value_is_escaped_and_shortened(pyperclip: FakePyperclip) -> None:
    env = {"KPTUI_CLIPBOARD": "osc\x1b]52;c;evil\x07" + "z" * 100, "TMUX": "t"}
    ok, message = Clipboard(FakeTerminal(), env=env).copy("x", "a rule")
    assert ok and "\x1b" not in message and "\x07" not in message
    assert "KPTUI_CLIPBOARD=osc\\x1b]52;c;evil\\x07zzz" in message and "z" * 60 not in message


@pytest.mark.asyncio
async def test_the_copy_notification_says_the_mode_was_not_understood() -> None:
    app = app_for("nodeport-cluster.rules", env={"KPTUI_CLIPBOARD": "osc-52", "TMUX": "/tmp/tmux-0/default,1,0"})
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        await pilot.press("1")
        app.main_screen.chains.reveal(Loc("nat", "KUBE-SERVICES"))
        await pilot.pause()
        await pilot.press("Y")
        assert app.clipboard.startswith("iptables ")
        assert notes[-1].startswith("Copied '")
        assert notes[-1].endswith("KPTUI_CLIPBOARD=osc-52 not understood (auto|osc52|native): used auto, OSC 52"
                                  " (TMUX is set)")  # fmt: skip
