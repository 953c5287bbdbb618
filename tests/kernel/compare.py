"""Compare the kernel's trace of a first packet with the engine's trace of the same packet.

A *step* (:class:`kptui.engine.trace_compare.Step`) is one matched rule or applied policy: ``(hook, table,
chain, kind, text)`` where ``text`` is the rule as printed (``-A CHAIN …``) or the policy. Rules compare equal when their text is identical or when
:func:`kptui.engine.rules.decode_rule` decodes both to the same :class:`RuleSpec` (spacing, quoting, option
order). :func:`check` picks the engine path that went to the endpoint the kernel chose and fails with both
step lists side by side when anything differs: steps, verdict, delivery, masquerade (the kernel's and what
the echo server saw), the packet each table saw (addresses, ports, mark, input interface), or when the engine
path rests on an assumption although the lab's NodeContext decides everything.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.packet import NodeContext
from kptui.engine.trace import trace
from kptui.engine.trace_compare import (
    Step,
    compare,
    engine_steps,
    kernel_steps,
    packet_differences,
    same_steps,
)
from kptui.engine.trace_model import TracePath

from .harness import KernelLab, Observation, Send

__all__ = ["Step", "check", "check_one", "engine_steps", "kernel_steps", "packet_differences", "same_steps",
           "side_by_side"]

WIDTH = 78


def side_by_side(k: Sequence[Step], e: Sequence[Step], title_e: str) -> str:
    """Both step lists in two columns; ``!!`` marks the rows that differ, then the first difference in full."""
    def cut(s: str) -> str:
        return s if len(s) <= WIDTH else s[: WIDTH - 1] + "…"

    rows = [f"    {'KERNEL (' + str(len(k)) + ' steps)':{WIDTH}} | ENGINE {title_e} ({len(e)} steps)"]
    first_diff = None
    for i in range(max(len(k), len(e))):
        a = k[i] if i < len(k) else None
        b = e[i] if i < len(e) else None
        ok = a is not None and b is not None and a.same(b)
        if not ok and first_diff is None:
            first_diff = i
        rows.append(f"{'  ' if ok else '!!'}{i + 1:2} {cut(a.short() if a else '-'):{WIDTH}} | "
                    f"{cut(b.short()) if b else '-'}")  # fmt: skip
    if first_diff is not None:
        a = k[first_diff] if first_diff < len(k) else None
        b = e[first_diff] if first_diff < len(e) else None
        rows.append(f"first difference at step {first_diff + 1}:")
        rows.append(f"  kernel: {a.short() if a else '(nothing)'}")
        rows.append(f"  engine: {b.short() if b else '(nothing)'}")
    return "\n".join(rows)


def check(obs: Observation, ctx: NodeContext, *, undecidable_ok: tuple[str, ...] = ()) -> TracePath:
    """Assert that the engine agrees with the kernel on ``obs``; return the matching engine path. The path
    must not rest on assumptions (the lab's context decides everything) except those naming a match in
    ``undecidable_ok`` (e.g. ``"rpfilter"``: reverse-path lookups need routes NodeContext cannot hold)."""
    assert obs.kernel is not None and obs.kernel.first is not None, (
        f"the kernel trace of {obs.describe()} was not captured; warnings {obs.warnings}\n"
        f"capture (first 3000 chars):\n{obs.capture[:3000]}")
    k = obs.kernel
    ks = kernel_steps(k)
    pkt = obs.packet()
    result = trace(parse_ruleset(obs.rules, source="kernel-save"), pkt, ctx)
    head = (f"{obs.describe()}\nengine packet: {pkt}\nkernel endpoint {k.endpoint}, verdict {k.verdict}, "
            f"delivery {k.delivery}, masquerade {k.masquerade}, trace ids {k.ids}")
    candidates = [p for p in result.paths if p.endpoint == k.endpoint]
    if not candidates:
        pytest.fail(f"{head}\nno engine path goes to the kernel's endpoint {k.endpoint}; engine paths: "
                    + ", ".join(f"{p.endpoint} {p.verdict} p={p.probability}" for p in result.paths)
                    + "\n" + side_by_side(ks, engine_steps(result.paths[0]), "(path 1)"), pytrace=False)
    exact = [p for p in candidates if same_steps(ks, engine_steps(p))]
    if not exact:
        def common(p: TracePath) -> int:
            n = 0
            for a, b in zip(ks, engine_steps(p)):
                if not a.same(b):
                    break
                n += 1
            return n
        best = max(candidates, key=common)
        pytest.fail(f"{head}\nmatched rules differ ({len(candidates)} engine path(s) to this endpoint)\n"
                    + side_by_side(ks, engine_steps(best), f"p={best.probability} {best.verdict}"), pytrace=False)
    path = min(exact, key=lambda p: len(p.assumptions))
    problems = []
    undecided = [a for a in path.assumptions if not any(ok in a for ok in undecidable_ok)]
    if undecided:  # the lab tells the engine everything it needs (addresses, interfaces, ipsets, recent)
        problems.append(f"the engine could not decide: {'; '.join(undecided)}")
    if path.verdict != k.verdict:
        problems.append(f"verdict: kernel {k.verdict}, engine {path.verdict}")
    if path.delivery != k.delivery:
        problems.append(f"delivery: kernel {k.delivery}, engine {path.delivery}")
    if path.masquerade != k.masquerade:
        problems.append(f"masquerade: kernel {k.masquerade}, engine {path.masquerade}")
    if obs.origin != "local" and obs.result.ok and obs.result.peer:
        seen = obs.result.peer[0] != k.first.src
        if seen != path.masquerade:
            problems.append(f"masquerade: the echo server saw {obs.result.peer[0]} (source {k.first.src}), "
                            f"engine says masquerade={path.masquerade}")
    problems += packet_differences(k, path)
    verdict = compare(k, result)  # the explorer's comparison (kptui --kernel-trace) must agree as well
    if not problems and not verdict.agree:
        problems.append(f"kptui.engine.trace_compare.compare disagrees: {verdict.summary}; {verdict.problems}")
    if problems:
        pytest.fail(f"{head}\n" + "\n".join(problems) + "\n" + side_by_side(ks, engine_steps(path), "path"),
                    pytrace=False)
    return path


def check_one(klab: KernelLab, send: Send, *, undecidable_ok: tuple[str, ...] = (),
              **ctx: object) -> tuple[Observation, TracePath]:  # fmt: skip
    """Observe one probe (conntrack and recent lists flushed first) and check it; extra keyword arguments go to
    :meth:`KernelLab.context` (``recent=``, ``affinity=``)."""
    (obs,) = klab.observe([send])
    return obs, check(obs, klab.context_for(obs, **ctx), undecidable_ok=undecidable_ok)
