"""``kptui FILE --kernel-trace LOG``: a real xtables-monitor capture (tests/kernel/data) opened on the sample dump
of the same scenario, stepped like a simulated trace with the tree following; the engine's simulation as the
second path; a deliberately altered log shows the difference highlighted; bad logs fail clearly (exit 2)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from textual.widgets import OptionList, Static

from kptui import cli
from kptui.cli.explorer import load_kernel_log
from kptui.ui.app import KptuiApp
from kptui.ui.locs import Loc

from .conftest import ROOT, SAMPLES, app_for, ready

LOGS = ROOT / "tests" / "kernel" / "data"
CLUSTERIP_LOG = LOGS / "xt-pod-clusterip-tcp.txt"


async def replayed(app: KptuiApp, pilot: object) -> None:
    """Wait for the main screen and the kernel replay (a worker) to be on screen."""
    await ready(app, pilot)
    for _ in range(500):
        screen = app.main_screen
        kernel = screen.kernel if screen is not None else None
        if kernel is not None and kernel.replay is not None and screen is not None and screen.trace is not None:
            break
        await pilot.pause(0.01)  # type: ignore[attr-defined]
    else:
        raise AssertionError("the kernel trace was never shown")
    await pilot.pause()  # type: ignore[attr-defined]


def line_text(app: KptuiApp, pos: int) -> str:
    hops = app.main_screen.trace_view.hops  # type: ignore[union-attr]
    return hops._render_hop(pos, 120).text


@pytest.mark.asyncio
async def test_a_captured_log_steps_like_a_trace_and_agrees_with_the_simulation() -> None:
    app = app_for("clusterip.rules", kernel=load_kernel_log(str(CLUSTERIP_LOG)))
    async with app.run_test(size=(140, 45)) as pilot:
        await replayed(app, pilot)
        screen = app.main_screen
        assert screen is not None and screen.kernel is not None
        view = screen.trace_view
        hops = view.hops
        assert app.focused is hops and hops.cursor == 0
        title = str(view.query_one("#trace-title", Static).content)
        assert title.startswith("kernel traversal 1/4 · ") and "line 1 · 10.244.1.100:43000 → 10.96.10.20:80/tcp" in title
        summary = view.query_one("#kernel-summary", Static)
        assert str(summary.content) == "the kernel and the simulation agree on all 15 hops"
        assert summary.has_class("-agrees") and not summary.has_class("-differs")
        paths = view.query_one("#trace-paths", OptionList)
        assert str(paths.get_option_at_index(0).prompt) == "1. kernel: ACCEPT (forward) · DNAT 10.244.1.11:8080"
        assert str(paths.get_option_at_index(1).prompt).startswith("2. engine (path ")
        assert "⇒ DNAT 10.244.1.11:8080" in str(paths.get_option_at_index(1).prompt)

        rp = screen.kernel.replay
        assert rp is not None
        commands = [c.text for c in screen.kernel.candidates()]  # the palette's "trace: kernel traversal N"
        assert len(commands) == 4
        assert commands[0] == "trace: kernel traversal 1  line 1: 10.244.1.100:43000 → 10.96.10.20:80 tcp SYN · ACCEPT (forward)"
        seen = []
        for position in range(len(hops.rows)):
            hop = hops.hop
            assert hop is not None and hops.cursor == position
            loc = Loc(hop.table, hop.chain, hop.index)
            assert screen.chains.cursor_loc == loc  # the tree cursor is on the rule the kernel matched
            assert screen.detail.loc == loc and screen.detail.hop is hop
            assert hop.note is not None and hop.note.startswith("kernel log line ")
            assert line_text(app, position)[4:5] != "!"
            seen.append(str(loc))
            await pilot.press("n")
        assert "nat/KUBE-SEP-ELX6N4Z5RGB67TLC:2" in seen  # the DNAT rule, 2nd in its chain (handle 0x2c)
        assert seen[0] == "mangle/PREROUTING" and seen[-1] == "nat/POSTROUTING"
        state = str(view.query_one("#trace-state", Static).content)
        assert state.startswith(f"{len(hops.rows)}/{len(hops.rows)} ")
        await pilot.press("home")
        assert hops.cursor == 0
        await pilot.press("end")
        assert hops.cursor == len(hops.rows) - 1
        # the engine's simulation is the second path
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert view.path_index == 1 and hops.path is rp.trace.paths[1]
        assert summary.display  # still the kernel replay on screen

        # another traversal of the log: the second packet (an ACK) of the same connection
        await pilot.press("right_curly_bracket")
        for _ in range(200):
            if screen.kernel.index == 1 and screen.kernel.replay is not rp:
                break
            await pilot.pause(0.01)
        await pilot.pause()
        assert screen.kernel.index == 1
        assert str(view.query_one("#trace-title", Static).content).startswith("kernel traversal 2/4 · ")


@pytest.mark.asyncio
async def test_an_altered_log_highlights_the_hop_that_differs(tmp_path: Path) -> None:
    # the DNAT in the log now goes to 10.244.1.99, a rule the dump does not hold
    text = CLUSTERIP_LOG.read_text().replace("--to-destination 10.244.1.11:8080", "--to-destination 10.244.1.99:8080",
                                             1)  # fmt: skip
    log = tmp_path / "altered.log"
    log.write_text(text)
    app = app_for("clusterip.rules", kernel=load_kernel_log(str(log)))
    async with app.run_test(size=(140, 45)) as pilot:
        await replayed(app, pilot)
        screen = app.main_screen
        assert screen is not None and screen.kernel is not None and screen.kernel.replay is not None
        view = screen.trace_view
        hops = view.hops
        summary = view.query_one("#kernel-summary", Static)
        assert summary.has_class("-differs")
        assert str(summary.content).startswith("the kernel and the simulation differ from hop 5: ")
        assert "1 rule(s) not in the dump" in str(view.query_one("#trace-paths", OptionList).get_option_at_index(0)
                                                 .prompt)  # fmt: skip
        for _ in range(4):
            await pilot.press("n")
        hop = hops.hop
        assert hop is not None and hop.chain == "KUBE-SEP-ELX6N4Z5RGB67TLC" and hop.index is None
        assert screen.chains.cursor_loc == Loc("nat", "KUBE-SEP-ELX6N4Z5RGB67TLC")  # the chain: rule not found
        assert (0, hops.rows[4]) in hops.marks
        line = line_text(app, 4)
        assert line.startswith("   5!") and "KUBE-SEP-ELX6N4Z5RGB67TLC:?" in line
        assert "rule not found in the dump" in str(view.query_one("#trace-state", Static).content)
        await pilot.press("n")  # off the line: its own highlight shows, not the cursor's
        differs = hops.get_component_rich_style("hop-list--differs", partial=True)
        styled = [seg for seg in hops._render_hop(4, 120) if seg.style is not None and seg.text.strip()]
        assert differs.bgcolor is not None and styled and all(seg.style.bgcolor == differs.bgcolor  # type: ignore[union-attr]
                                                              for seg in styled)  # fmt: skip
        plain = [seg for seg in hops._render_hop(3, 120) if seg.style is not None and seg.text.strip()]
        assert all(seg.style.bgcolor != differs.bgcolor for seg in plain)  # type: ignore[union-attr]
        assert not line_text(app, 3).startswith("   4!")  # the hops before agree
        # the engine path marks its own side of the difference
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert any(p == 1 for p, _ in hops.marks)


@pytest.mark.asyncio
async def test_log_text_is_never_markup(tmp_path: Path) -> None:
    text = CLUSTERIP_LOG.read_text().replace('"default/web:http cluster IP"', '"[bold red]x[/] \x1b[31m"', 1)
    log = tmp_path / "markup.log"
    log.write_text(text)
    app = app_for("clusterip.rules", kernel=load_kernel_log(str(log)))
    async with app.run_test(size=(140, 45)) as pilot:
        await replayed(app, pilot)
        screen = app.main_screen
        assert screen is not None
        for _ in range(2):
            await pilot.press("n")
        hop = screen.trace_view.hops.hop
        assert hop is not None and hop.rule is not None and "[bold red]x[/]" in hop.rule
        state = str(screen.trace_view.query_one("#trace-state", Static).content)
        assert "rule not found in the dump" in state and '"[bold red]x[/] \\x1b[31m"' in state
        assert "\x1b" not in state


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    class Stderr(io.StringIO):
        def isatty(self) -> bool:
            return False

    monkeypatch.setattr(sys, "__stderr__", Stderr())
    err = io.StringIO()
    return cli.main(argv, out=io.StringIO(), err=err), err.getvalue()


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the kernel trace log {log}: No such file or directory"),
    ("", "{log}: the kernel trace log is empty"),
    ("iptables-save output\n-A X -j Y\n", ("{log}: line 1: not a trace line: iptables-save output -- not an "
                                           "xtables-monitor --trace or nft monitor trace log")),
    ("EVENT: x\n TRACE: 2 ab raw:PREROUTING:policy:ACCEPT \n", "{log}: line 2: no traversal with a PACKET line"),
    ("PACKET: 2 ab IN=eth0 SRC=10.0.0.1 DST=10.0.0.2 LEN=60 ID=1 SPORT=1 DPORT=70000 SYN \n"
     + " TRACE: 2 ab raw:PREROUTING:policy:ACCEPT \n",
     "{log}: line 1: the kernel's packet cannot be simulated: dport 70000 is not a port number"),
])  # fmt: skip
def test_a_bad_log_exits_2_with_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None,
                                              message: str) -> None:  # fmt: skip
    log = tmp_path / "trace.log"
    if content is not None:
        log.write_text(content)
    code, err = run([str(SAMPLES / "clusterip.rules"), "--kernel-trace", str(log)], monkeypatch)
    assert code == 2
    assert err.startswith("kptui: " + message.format(log=log)), err
    assert "Traceback" not in err


def test_kernel_trace_needs_a_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = run(["--kernel-trace", str(CLUSTERIP_LOG)], monkeypatch)
    assert code == 2 and "give the dump or capture bundle as FILE" in err


def test_a_good_log_gets_as_far_as_the_terminal_check(monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = run([str(SAMPLES / "clusterip.rules"), "--kernel-trace", str(CLUSTERIP_LOG)], monkeypatch)
    assert code == 2 and "not a terminal" in err  # the log was read and accepted


def test_kernel_trace_on_an_nft_only_listing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay compares with iptables rules: a source holding only an nft ruleset says so (never a comparison
    against no rules that looks like a disagreement)."""
    listing = SAMPLES / "nft-clusterip.nft"
    code, err = run([str(listing), "--kernel-trace", str(CLUSTERIP_LOG)], monkeypatch)
    assert code == 2 and err.startswith(f"kptui: --kernel-trace replays the log against iptables rules, and {listing} "
                                        "holds only an nft ruleset"), err  # fmt: skip
