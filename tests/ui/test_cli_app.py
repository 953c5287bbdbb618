"""``kptui FILE`` opens the explorer; subcommands keep working; the terminal checks fail clearly."""

from __future__ import annotations

import io
import sys

import pytest

from kptui import cli
from kptui.cli import explorer as explorer_command

from .conftest import SAMPLES

SAMPLE = str(SAMPLES / "nodeport-cluster.rules")


@pytest.mark.parametrize(
    ("argv", "app"),
    [
        ([SAMPLE], True),
        (["-"], True),
        ([SAMPLE, "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "30080"], True),
        (["summary", SAMPLE], False),
        (["trace", SAMPLE, "--src", "1.1.1.1", "--dst", "2.2.2.2", "--dport", "1"], False),
        (["--version"], False),
        (["-h"], False),
        (["--help"], False),
        ([], True),  # plain `kptui` on a node: the live rules
        (["--live"], True),
        (["--watch", "5"], True),
        (["--netns", "x"], True),
        (["-6"], True),
        (["--src", "1.1.1.1", "--dst", "2.2.2.2"], True),
    ],
)
def test_app_mode_is_chosen_only_when_no_subcommand_is_named(argv: list[str], app: bool) -> None:
    assert explorer_command.is_app_invocation(argv) is app


def test_every_subcommand_is_still_a_subcommand() -> None:
    names = cli.command_names()
    assert {"summary", "trace", "services", "top", "capture", "deltas", "conntrack", "trace-commands"} <= names
    for name in names:
        assert not explorer_command.is_app_invocation([name, SAMPLE])


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, *, tty: bool = False) -> tuple[int, str]:
    err = io.StringIO()

    class Stderr(io.StringIO):
        def isatty(self) -> bool:
            return tty

    monkeypatch.setattr(sys, "__stderr__", Stderr())
    return cli.main(argv, out=io.StringIO(), err=err), err.getvalue()


def test_src_without_dst_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = run([SAMPLE, "--src", "10.0.0.1"], monkeypatch)
    assert code == 2 and "--src and --dst go together" in err


def test_a_bad_packet_is_refused_before_the_explorer_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = run([SAMPLE, "--src", "10.0.0.1", "--dst", "10.0.0.2"], monkeypatch, tty=True)
    assert code == 2 and "a tcp packet needs a destination port" in err
    code, err = run([SAMPLE, "--node-ip", "nope"], monkeypatch, tty=True)
    assert code == 2 and "node address 'nope' is not an IP address" in err


def test_without_a_terminal_the_explorer_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = run([SAMPLE], monkeypatch, tty=False)
    assert code == 2 and "use kptui summary or kptui trace" in err
    code, err = run(["/nonexistent.rules"], monkeypatch, tty=True)
    assert code == 2 and "cannot read /nonexistent.rules" in err


def test_stdin_dump_without_a_tty_for_keys_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO(b"*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")

        def isatty(self) -> bool:
            return False

    def no_tty(path: str, flags: int) -> int:
        raise OSError(6, "No such device or address")

    monkeypatch.setattr(sys, "stdin", Stdin())
    monkeypatch.setattr(explorer_command.os, "isatty", lambda fd: False)
    monkeypatch.setattr(explorer_command.os, "open", no_tty)
    code, err = run(["-"], monkeypatch, tty=True)
    assert code == 2 and "needs a terminal for its keys" in err
