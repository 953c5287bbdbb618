"""The structure graph (built per table on chain names, in C where it can) against the straightforward
construction it replaced, on every sample and on a generated dump with dangling jumps, loops and unused chains."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset
from kptui.engine.graph import KNOWN_TARGETS, ChainRef, RuleRef, _cycles, build_graph
from kptui.engine.model import BUILTIN_CHAINS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from gen_dump import generate_lines

SAMPLES = sorted(Path(__file__).resolve().parent.parent.joinpath("samples").glob("*.rules"))


def reference(ruleset: Ruleset) -> tuple[object, ...]:
    edges: dict[ChainRef, tuple[ChainRef, ...]] = {}
    dangling: list[tuple[RuleRef, str]] = []
    referenced: set[tuple[str | None, str]] = set()
    unreferenced: list[ChainRef] = []
    for tname, table in ruleset.tables.items():
        chains = table.chains
        builtins = BUILTIN_CHAINS.get(tname or "", ())
        for name, chain in chains.items():
            targets = {r.target_name for r in chain.rules if r.target_name}
            jumps = tuple(ChainRef(tname, t) for t in targets if t in chains)
            if jumps:
                edges[ChainRef(tname, name)] = jumps
                referenced.update(jumps)
            dangling.extend((RuleRef(tname, name, r.index, r.line), r.target_name) for r in chain.rules
                            if r.target_name and r.target_name not in chains and r.target_name not in KNOWN_TARGETS)  # fmt: skip
        for name, chain in chains.items():
            if (tname, name) not in referenced and name not in builtins and not chain.builtin:
                unreferenced.append(ChainRef(tname, name))
    return tuple(dangling), tuple(unreferenced), _cycles(edges), {k: set(v) for k, v in edges.items()}


def fast(ruleset: Ruleset) -> tuple[object, ...]:
    g = build_graph(ruleset)
    return g.dangling, g.unreferenced, g.loops, {k: set(v) for k, v in g.edges.items()}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples(path: Path) -> None:
    rs = parse_ruleset(path.read_text(encoding="utf-8", errors="surrogateescape"))
    assert fast(rs) == reference(rs)


def test_generated_dump_with_damage() -> None:
    lines = list(generate_lines(80, 3, seed=5))
    nat = max(i for i, line in enumerate(lines) if line == "COMMIT")
    lines[nat:nat] = [":LOOP-A - [0:0]", ":LOOP-B - [0:0]", ":LOOP-C - [0:0]", ":SELF - [0:0]", ":UNUSED - [0:0]",
                      "-A LOOP-A -j LOOP-B", "-A LOOP-B -j LOOP-C", "-A LOOP-C -j LOOP-A", "-A SELF -j SELF",
                      "-A KUBE-SERVICES -j LOOP-A", "-A KUBE-SERVICES -j NOWHERE", "-A LOOP-B -g GONE"]  # fmt: skip
    rs = parse_ruleset("".join(line + "\n" for line in lines))
    got = fast(rs)
    assert got == reference(rs)
    assert got[0] and got[1] and len(got[2]) == 2  # type: ignore[arg-type]


def reference_callers(ruleset: Ruleset) -> dict[ChainRef, tuple[RuleRef, ...]]:
    found: dict[ChainRef, list[RuleRef]] = {}
    for tname, table in ruleset.tables.items():
        for chain in table.chains.values():
            for r in chain.rules:
                if r.target_name in table.chains:
                    found.setdefault(ChainRef(tname, r.target_name), []).append(RuleRef(tname, chain.name, r.index, r.line))
    return {k: tuple(v) for k, v in found.items()}


def fast_callers(ruleset: Ruleset) -> dict[ChainRef, tuple[RuleRef, ...]]:
    g = build_graph(ruleset)
    got = {ChainRef(t, name): g.callers_of(t, name) for t, table in ruleset.tables.items() for name in table.chains}
    assert g.callers_of("no-such-table", "X") == () and g.callers_of(None, "NO-SUCH-CHAIN") == ()
    return {k: v for k, v in got.items() if v}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_callers_on_samples(path: Path) -> None:
    rs = parse_ruleset(path.read_text(encoding="utf-8", errors="surrogateescape"))
    assert fast_callers(rs) == reference_callers(rs)


def test_callers_on_a_generated_dump_with_loops_and_gotos() -> None:
    lines = list(generate_lines(120, 4, seed=9))
    nat = max(i for i, line in enumerate(lines) if line == "COMMIT")
    lines[nat:nat] = [":LOOP-A - [0:0]", ":LOOP-B - [0:0]", ":SELF - [0:0]", "-A LOOP-A -j LOOP-B", "-A LOOP-B -g LOOP-A",
                      "-A SELF -j SELF", "-A KUBE-SERVICES -j LOOP-A", "-A KUBE-SERVICES -g SELF"]  # fmt: skip
    rs = parse_ruleset("".join(line + "\n" for line in lines))
    want = reference_callers(rs)
    assert fast_callers(rs) == want
    assert [r.chain for r in want[ChainRef("nat", "LOOP-A")]] == ["KUBE-SERVICES", "LOOP-B"]  # file order
    assert len(want[ChainRef("nat", "SELF")]) == 2 and len(want) > 300
