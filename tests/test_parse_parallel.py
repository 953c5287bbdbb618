"""The parse with its shape checks on the second core (a forked child) gives exactly what the checking parse
gives: the same chains, rows, warnings and, for a dump that does not load, the same error at the same line,
however the pieces fall (pieces of 4 MiB, made tiny here so that every case crosses them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kptui.engine import ParseError, parse_ruleset
from kptui.engine import parser as parser_mod
from kptui.forked import spawn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from gen_dump import generate_lines

SAMPLES = sorted(Path(__file__).resolve().parent.parent.joinpath("samples").glob("*.rules"))


def later(fn: object, *args: object) -> object:
    """A Spawn that runs the checks in this process, when asked for their result (after the parse's loop)."""
    return lambda: fn(*args)  # type: ignore[operator]


def _outcome(text: str, parallel: object) -> object:
    try:
        rs = parse_ruleset(text, source="t.rules", parallel=parallel if parallel else None)  # type: ignore[arg-type]
    except ParseError as exc:
        d = exc.diagnostic
        return ("error", d.message, d.line, d.column, d.length, d.text, d.source)
    tables = [(name, t.line, [(c.name, c.policy, c.counters, c.line, c.declared, list(c.rules.rows))  # type: ignore[attr-defined]
                              for c in t]) for name, t in rs.tables.items()]  # fmt: skip
    warnings = [(w.message, w.line, w.column, w.length, w.text, w.severity) for w in rs.warnings]
    return (tables, warnings, rs.family, rs.backend, rs.version, rs.form, rs.line_count, rs.legacy_tables_present)


@pytest.fixture(params=[1 << 22, 2048, 300], ids=["4MiB", "2KiB", "300B"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(parser_mod, "_CHUNK", request.param)
    monkeypatch.setattr(parser_mod, "PARALLEL_CHARS", 0)  # every text here is small
    return int(request.param)


def _same(text: str) -> None:
    """The checking parse, the parse with the checks in a forked child and with the checks run afterwards here
    (each from an empty shape memo: the child's memo is its own) give the same outcome."""
    outcomes = []
    for parallel in (None, spawn, later):
        parser_mod._SHAPES.clear()
        outcomes.append(_outcome(text, parallel))
    assert outcomes[1] == outcomes[0]
    assert outcomes[2] == outcomes[0]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples(path: Path, chunk: int) -> None:
    _same(path.read_text(encoding="utf-8", errors="surrogateescape"))


def _dump(services: int = 60, endpoints: int = 3) -> list[str]:
    return list(generate_lines(services, endpoints, seed=3))


def test_generated_dump(chunk: int) -> None:
    _same("".join(line + "\n" for line in _dump()))


def _with(lines: list[str], at: int, extra: str) -> str:
    return "".join(line + "\n" for line in lines[:at] + [extra] + lines[at:])


def _broken(line: str) -> str:
    """The rule without its target's name (``… -j``): the fast path would take it, its shape check fails."""
    return line[: line.rindex(" -j ") + 3]


def _rule_positions(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line.startswith("[") and " -A KUBE-SEP-" in line]


def test_a_late_syntax_error_is_reported_with_its_line(chunk: int) -> None:
    lines = _dump()
    at = _rule_positions(lines)[-3]
    text = _with(lines, at, _broken(lines[at]))
    _same(text)
    assert _outcome(text, parallel=spawn)[:3] == ("error", "-j needs a target name", at + 1)  # type: ignore[index]


def test_an_earlier_bad_rule_wins_over_a_later_bad_line(chunk: int) -> None:
    lines = _dump()
    first, later = _rule_positions(lines)[5], _rule_positions(lines)[-5]
    lines = lines[:later] + ["what is this"] + lines[later:]
    text = _with(lines, first, _broken(lines[first]))
    _same(text)
    assert _outcome(text, parallel=spawn)[2] == first + 1  # type: ignore[index]
    text = "".join(line + "\n" for line in lines)  # only the later bad line: its error
    _same(text)
    assert _outcome(text, parallel=spawn)[2] == later + 1  # type: ignore[index]


def test_slow_rules_that_decode_are_fixed_up(chunk: int) -> None:
    """Rules only the full decode reads right: -c counters at the end (iptables -S -v), --jump, a quoted
    target; a rule flushed (-F) after it; a cut-off last line that does not decode, and one that does."""
    lines = _dump()
    pos = _rule_positions(lines)
    chain = lines[pos[7]].split()[2]
    extra = [(pos[3], "[0:0] -A KUBE-SEP-AAAA -s 10.0.0.1/32 --jump KUBE-MARK-MASQ"),
             (pos[9], f"[0:0] -A {chain} -p tcp -m comment --comment x --goto KUBE-MARK-MASQ")]  # fmt: skip
    for at, line in sorted(extra, reverse=True):
        lines = lines[:at] + [line] + lines[at:]
    base = "".join(line + "\n" for line in lines)
    _same(base)
    _same(base.replace("COMMIT\n", f"-F {chain}\nCOMMIT\n", 2))
    nat = base.rindex("COMMIT\n")
    _same(base[:nat] + "[0:0] -A KUBE-NEW -p tcp --frob")  # cut off: dropped with a warning
    _same(base[:nat] + "[0:0] -A KUBE-SERVICES -p tcp --jump ACC")  # cut off, but it decodes
    spec = "".join(f"-A {c} -p tcp -j ACCEPT -c {i} {i * 60}\n" for i, c in enumerate(["INPUT", "FORWARD"] * 40))
    _same("-P INPUT ACCEPT\n-P FORWARD DROP\n" + spec)


def test_without_fork_the_checks_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    from kptui import forked

    monkeypatch.setattr(parser_mod, "PARALLEL_CHARS", 0)
    monkeypatch.setattr(forked, "can_fork", lambda: False)
    text = "".join(line + "\n" for line in _dump(10, 2))
    assert _outcome(text, parallel=spawn) == _outcome(text, parallel=None)


def test_a_failing_child_is_replaced_by_the_work_done_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that dies (here: its function raises in the child only) hands back nothing: the parent
    computes the checks itself."""
    import os

    from kptui.forked import Forked

    parent = os.getpid()

    def checks(text: str) -> list[object]:
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return ["here"]

    assert Forked(checks, "x").result() == ["here"]


# -- what the checks elsewhere cannot foresee (main's pasted dumps and restore commands) --------------------
def _save(lines: list[str], header: str = "iptables") -> str:
    return f"# Generated by {header}-save v1.8.9 (nf_tables) on Mon Nov 24 16:00:00 2025\n" + "".join(
        line + "\n" for line in lines
    )


def test_a_paste_of_two_families_settles_where_the_second_starts(chunk: int) -> None:
    """The checks read the shapes as the first header's family: where a dump of the other family starts, the
    lines before it are settled and the rest are checked on the way (v6 addresses in the v6 part, a v4 address
    there refused with its line)."""
    v4 = _dump(8, 2)
    v6 = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
          "[0:0] -A INPUT -s 2001:db8::1/128 -j ACCEPT", "[0:0] -A INPUT -s fd00::/8 --jump DROP",
          "[3:4] -A FORWARD -p tcp -j ACCEPT -c 5 6", "COMMIT"]  # fmt: skip
    pos = _rule_positions(v4)
    v4 = v4[: pos[2]] + ["[0:0] -A KUBE-SEP-AAAA -s 10.0.0.1/32 --jump KUBE-MARK-MASQ"] + v4[pos[2] :]
    text = _save(v4) + _save(v6, "ip6tables")
    _same(text)
    rs = parse_ruleset(text, parallel=later)  # type: ignore[arg-type]
    assert rs.companions and rs.companions[0].family == "ipv6"
    bad = text.replace("-s fd00::/8", "-s 10.1.0.0/16")
    _same(bad)
    out = _outcome(bad, parallel=later)
    assert out[0] == "error" and out[2] == text[: text.index("-s fd00::/8")].count("\n") + 1  # type: ignore[index]


def test_restore_commands_settle_the_lines_before_them(chunk: int) -> None:
    """-I, -R, -D, -E and -Z move, rename or zero rows: the lines the checks found slow before them are settled
    first (a -c counter, a --jump target), so the commands see the rows the checking parse gives them."""
    lines = _dump(8, 2)
    pos = _rule_positions(lines)
    chain = lines[pos[4]].split()[2]
    lines = (lines[: pos[4]] + [f"[0:0] -A {chain} -p tcp -m comment --comment y -j ACCEPT -c 7 8",
                                f"[0:0] -A {chain} -p tcp --jump KUBE-MARK-MASQ"] + lines[pos[4] :])  # fmt: skip
    end = lines.index("COMMIT", pos[4])
    for tail in ([f"-Z {chain}"], [f"-E {chain} KUBE-SEP-RENAMED"], [f"-I {chain} 1 -p udp -j ACCEPT"],
                 [f"-R {chain} 1 -p udp -j DROP"], [f"-D {chain} 1"], [f"-D {chain} -p tcp --jump KUBE-MARK-MASQ"],
                 [f"-I {chain} -p udp -j ACCEPT", f"[0:0] -A {chain} -s 10.9.0.0/16 --goto KUBE-MARK-MASQ"]):  # fmt: skip
        _same(_save(lines[:end] + tail + lines[end:]))


def test_not_understood_rules_and_open_quotes_warn_in_line_order(chunk: int) -> None:
    """What the full decode warns about (a module kptui does not know, a quote never closed) is told where the
    checking parse tells it, among the warnings of the other lines, however the slow lines were found."""
    lines = _dump(8, 2)
    pos = _rule_positions(lines)
    chain = lines[pos[1]].split()[2]
    extra = [(pos[1], f"[0:0] -A {chain} -m frobnicate --level 3 -j ACCEPT"),
             (pos[2], "[0:0] -A UNDECLARED -p tcp -j ACCEPT"),
             (pos[3], f"[0:0] -A {chain} -m frobnicate --level 4 -j ACCEPT"),
             (pos[5], f'[0:0] -A {chain} -m comment --comment "x -j y" -j "ACCEPT"'),
             (pos[6], "[0:0] -A UNDECLARED2 -m frobnicate --level 5 -j ACCEPT"),
             (pos[7], f'[0:0] -A {chain} -m comment --comment "never closed -j ACCEPT'),
             (pos[8], f'[0:0] -A {chain} -m frobnicate --level 6 -j "ACCEPT"'),  # decoded on the way, either parse
             (pos[9], "[0:0] -A UNDECLARED3 -p tcp -j ACCEPT")]  # fmt: skip
    for at, line in sorted(extra, reverse=True):
        lines = lines[:at] + [line] + lines[at:]
    text = _save(lines)
    _same(text)
    warnings = _outcome(text, parallel=later)[1]  # type: ignore[index]
    assert any("not understood" in w[0] for w in warnings) and any("closing quote" in w[0] for w in warnings)


def test_drop_in_nat_and_out_interface_in_input_are_refused_alike(chunk: int) -> None:
    lines = _dump(8, 2)
    nat = lines.index("*nat")
    for rule in ("[0:0] -A KUBE-SERVICES -p tcp --jump DROP", "[0:0] -A KUBE-SERVICES -p tcp -j DROP",
                 "[0:0] -A PREROUTING -o eth0 -j ACCEPT", "[0:0] -A PREROUTING -o eth0 --frob -j ACCEPT"):  # fmt: skip
        text = _save(lines[: nat + 12] + [rule] + lines[nat + 12 :])
        _same(text)
        assert _outcome(text, parallel=later)[0] == "error"  # type: ignore[index]
