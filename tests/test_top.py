"""`kptui top`: frames, the adaptive interval, surviving failed reads and changing rules (fake readers)."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kptui.engine.model import Ruleset
from kptui.live.runner import CommandResult
from kptui.node import live as commands
from kptui.top import CLEAR, RED, ReadFailed, Reading, TopState, next_interval, render_frame, run_top

from .conftest import parse
from .test_counters import DNS, REJECT, SEP_A, SEP_B, SVC, TO_A, TO_B, c, dump


def reading(rs: Ruleset, at: float, wall: float = 0.01, cpu: float = 0.01) -> Reading:
    return Reading.of(rs, wall, cpu, "test", at=at, clock=1_700_000_000 + at)


PORTALS = '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'


def web(n: int, extra: str = "", reject: int = 0) -> Ruleset:
    return parse(dump(c(n, PORTALS) + extra + c(n, SVC) + c(n // 2, TO_A) + c(n - n // 2, TO_B) + c(n // 2, SEP_A)
                      + c(n - n // 2, SEP_B), c(reject, REJECT)))  # fmt: skip


def reader(items: list[Ruleset | str], walls: list[float] | None = None) -> Callable[[], Reading]:
    it: Iterator[tuple[int, Ruleset | str]] = iter(enumerate(items))

    def read() -> Reading:
        i, item = next(it)
        if isinstance(item, str):
            raise ReadFailed(item)
        return reading(item, at=float(i * 2), wall=(walls or [0.01] * len(items))[i])

    return read


def frames(text: str) -> list[str]:
    return [f for f in text.split("\nkptui top") if f]


def test_first_frame_ranks_totals_then_deltas_are_exact() -> None:
    out = io.StringIO()
    sleeps: list[float] = []
    code = run_top(reader([web(10), web(16)]), out, interval=2.0, tty=False, sleep=sleeps.append, max_frames=2)
    assert code == 0
    first, second = frames(out.getvalue())
    assert "first read" in first and "default/web:http cluster IP" in first
    assert "interval 2.0 s: 6 pkts, 360 bytes entered the nat table" in second  # each once, not once per rule
    line = next(ln for ln in second.splitlines() if "nat/KUBE-SERVICES:1" in ln)
    assert line.split()[:2] == ["+6", "3.0"] and "[default/web:http]" in line
    assert sleeps == [2.0]


def test_a_failed_read_keeps_the_last_good_snapshot_and_retries() -> None:
    out = io.StringIO()
    items: list[Ruleset | str] = [web(10), "iptables-nft-save -c exited with status 1: Resource busy", web(13)]
    run_top(reader(items), out, interval=1.0, tty=False, sleep=lambda s: None, max_frames=3)
    _, failed, recovered = frames(out.getvalue())
    assert "!! read failed" in failed and "Resource busy" in failed and "retrying" in failed
    assert "first read" in failed  # still the last good snapshot on screen
    assert "read failed" not in recovered and "+3" in recovered  # deltas against the last good read


def test_rules_that_appear_or_vanish_are_shown() -> None:
    out = io.StringIO()
    gone = parse(dump(c(12, PORTALS) + c(12, SVC) + c(6, TO_A) + c(6, SEP_A)).replace(":KUBE-SEP-B - [0:0]\n", ""))
    run_top(reader([web(10), web(11, extra=c(4, DNS)), gone]), out, tty=False, sleep=lambda s: None, max_frames=3)
    _, grew, shrank = frames(out.getvalue())
    assert "appeared (1):" in grew and "kube-dns:dns cluster IP" in grew and "(new)" in grew
    assert "vanished (4):" in shrank and "KUBE-SEP-B" in shrank


def test_the_interval_adapts_to_the_read_time() -> None:
    assert next_interval(2.0, 0.01, 0.01) == 2.0
    assert next_interval(2.0, 1.5, 1.0) == pytest.approx(15.0)
    assert next_interval(2.0, 0.5, 0.9) == pytest.approx(9.0)
    out = io.StringIO()
    sleeps: list[float] = []
    run_top(reader([web(1), web(2), web(3)], walls=[3.0, 0.2, 0.2]), out, interval=2.0, tty=False,
            sleep=sleeps.append, max_frames=3)  # fmt: skip
    assert sleeps == [pytest.approx(30.0), 2.0]
    assert "last read 3.00 s wall" in out.getvalue() and "every 30.0 s" in out.getvalue()


def test_once_reads_twice_and_prints_one_frame() -> None:
    out = io.StringIO()
    sleeps: list[float] = []
    assert run_top(reader([web(1), web(5)]), out, interval=0.5, once=True, tty=False, sleep=sleeps.append) == 0
    assert sleeps == [0.5] and len(frames(out.getvalue())) == 1 and "+4" in out.getvalue()
    out = io.StringIO()
    assert run_top(reader(["no iptables"]), out, once=True, tty=False, sleep=lambda s: None) == 2
    assert "no successful read yet" in out.getvalue() and "no iptables" in out.getvalue()


def test_tty_redraws_and_highlights_rising_rejects() -> None:
    out = io.StringIO()
    run_top(reader([web(1), web(2, reject=5)]), out, tty=True, color=True, sleep=lambda s: None, max_frames=2,
            size=lambda: (150, 50))  # fmt: skip
    text = out.getvalue()
    assert text.count(CLEAR) == 2
    assert f"{RED}" in text and "REJECT rising: filter/KUBE-SERVICES:1 +5 pkts (default/broken:http)" in text


def test_filter_by_service() -> None:
    state = TopState(requested=2.0)
    state.update(reading(web(1, reject=0), 0))
    state.update(reading(web(5, reject=3), 2))
    frame = render_frame(state, filter_text="broken")
    assert "filter: broken" in frame and "default/broken:http" in frame
    assert "KUBE-SVC-WEB" not in frame


def test_text_from_the_dump_cannot_reach_the_terminal_raw() -> None:
    evil = SVC.replace("default/web:http cluster IP", "x\x1b]52;c;AAAA\x07y")
    state = TopState(requested=1.0)
    state.update(reading(parse(dump(c(1, evil))), 0))
    state.update(reading(parse(dump(c(2, evil))), 1))
    frame = render_frame(state)
    assert "\x1b" not in frame and "\\x1b" in frame


def fake_run(result: CommandResult) -> Callable[..., CommandResult]:
    return lambda argv, **kw: result


def test_live_reader_turns_failures_into_read_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from kptui.live import runner

    r = commands.LiveReader(None, "ipv4", "nf_tables")
    bad = CommandResult(("iptables-nft-save", "-c"), None, 1, b"", "Resource temporarily unavailable", 0.1, 0.1)
    monkeypatch.setattr(runner, "run_readonly", fake_run(bad))
    with pytest.raises(ReadFailed, match="exited with status 1: Resource"):
        r()
    text = dump(c(1, SVC)).encode()
    cut = CommandResult(("iptables-nft-save", "-c"), None, 0, text[: text.index(b"COMMIT")], "", 0.1, 0.1)
    monkeypatch.setattr(runner, "run_readonly", fake_run(cut))
    with pytest.raises(ReadFailed, match="incomplete output"):
        r()
    ok = CommandResult(("iptables-nft-save", "-c"), None, 0, text, "", 0.25, 0.2)
    monkeypatch.setattr(runner, "run_readonly", fake_run(ok))
    got = r()
    assert got.snapshot.rule_count == 1 and got.wall >= 0.0 and got.cpu >= 0.2


@pytest.mark.slow
def test_top_on_a_700k_line_ruleset() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from gen_dump import generate_lines

    lines = list(generate_lines(16000, 10, seed=5))
    old = parse("\n".join(lines) + "\n")
    i = next(k for k, ln in enumerate(lines) if "-A KUBE-SEP-" in ln and "DNAT" in ln)
    pk = lines[i].split("]")[0]
    lines[i] = lines[i].replace(pk + "]", "[999999:59999940]", 1)
    new = parse("\n".join(lines) + "\n")
    out = io.StringIO()
    run_top(iter([reading(old, 0), reading(new, 60)]).__next__, out, tty=False, sleep=lambda s: None,
            max_frames=2)  # fmt: skip
    last = frames(out.getvalue())[-1]
    assert "519" in last.splitlines()[0] or "rules" in last.splitlines()[0]
    hot = next(ln for ln in last.splitlines() if "DNAT" in ln)
    assert hot.lstrip().startswith("+") and "KUBE-SEP-" in hot


def test_filter_uses_the_service_index_for_chains_without_comments() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from gen_dump import generate_lines

    from kptui.top import kube_labels

    text = "\n".join(generate_lines(6, 2, comments=False, seed=1)) + "\n"
    rs = parse(text)
    labels = kube_labels(rs)
    assert labels is not None
    seps = [c for c in rs.table("nat").chains if c.startswith("KUBE-SEP-")]  # type: ignore[union-attr]
    assert seps and all(labels.get(c) for c in seps)
    m = re.search(r"^\[\d+:\d+\] (-A (KUBE-SEP-\S+) .*DNAT.*)$", text, re.MULTILINE)
    assert m is not None
    hot = m.group(2)
    bumped = parse(text.replace(m.group(0), f"[999:59940] {m.group(1)}"))
    out = io.StringIO()
    run_top(iter([reading(rs, 0), reading(bumped, 1)]).__next__, out, tty=False, sleep=lambda s: None,
            max_frames=2, filter_text=labels[hot].split(":")[0])  # fmt: skip
    assert f"nat/{hot}:" in frames(out.getvalue())[-1]
