"""Compare the kernel's first-packet walk on an nft node with the engine's walk of the same packet.

A *step* (:class:`NStep`) is one rule the kernel reported a verdict for, or a base chain's policy:
``(hook, family, table, chain, kind, text, verdict)`` in order. Rule texts are compared after
:func:`normalise` (counter values and spacing); rules of tables that iptables-nft manages are printed by the
kernel in translated nft syntax while the engine holds them as iptables rules, so those are compared by
position in their chain, located in the node's ``nft -a list ruleset`` (:func:`locate`). :func:`check_nft`
picks the engine path to the kernel's endpoint whose steps agree and fails with both step lists side by side
when anything differs: steps, verdict, delivery, masquerade (the kernel's and what the echo server saw).

The engine API: ``kptui.engine.nft.parse_nft(text, source=...)`` parses ``nft list ruleset`` output;
``kptui.engine.schedule.Netfilter(xtables={"ipv4": Ruleset}, nft=<parse_nft result> | None)`` holds a node's
iptables rulesets per family and its native nft ruleset; ``kptui.engine.trace.trace(netfilter, packet, node)`` walks both in hook-priority order and
returns a Trace whose hops carry ``hook`` (PREROUTING …), ``family`` ("ip", "ip6", "inet"), ``table``,
``chain``, ``kind``, ``rule`` (the rule text as listed), ``index`` (1-based in its chain), ``verdict``,
``target`` and ``handle`` (when the listing had one). Only :func:`engine_trace` touches that API.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from kptui.engine import parse_ruleset
from kptui.engine.kernel_trace import KernelTrace
from kptui.engine.nft import parse_nft
from kptui.engine.packet import NodeContext
from kptui.engine.schedule import Netfilter
from kptui.engine.trace import trace
from kptui.engine.trace_model import Trace, TracePath
from tools.netlab_nft import TRACE_TABLE

from .compare import side_by_side  # works on any steps with .same() and .short()
from .nft_harness import FAMILY_NAMES as FAMILIES
from .nft_harness import NftKernelLab, NftObservation, Send

__all__ = ["NStep", "check_nft", "check_one_nft", "engine_nft_steps", "engine_trace", "kernel_nft_steps", "locate",
           "normalise", "side_by_side"]

_VERDICT = {"DNAT": "ACCEPT", "SNAT": "ACCEPT", "MASQUERADE": "ACCEPT", "REDIRECT": "ACCEPT", "REJECT": "DROP"}
_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")
_HANDLE = re.compile(r"\s*# handle \d+\s*$")


def normalise(text: str) -> str:
    """A rule's text without counter values, a ``# handle N`` suffix or runs of spaces."""
    return " ".join(_COUNTER.sub("counter", _HANDLE.sub("", text)).split())


@dataclass(frozen=True)
class NStep:
    """One matched rule or applied policy."""

    hook: str | None
    family: str | None
    table: str
    chain: str
    kind: str  # "rule" or "policy"
    text: str  # the normalised rule text, or the policy
    verdict: str  # normalised: DNAT/SNAT/MASQUERADE/REDIRECT -> ACCEPT, REJECT -> DROP
    target: str | None = None  # a jump/goto's chain
    index: int | None = None  # 1-based position in its chain, when located
    native: bool = True  # a native nft table (False: managed by iptables-nft)

    def same(self, other: NStep) -> bool:
        if (self.hook, self.family, self.table, self.chain, self.kind, self.verdict) != (
                other.hook, other.family, other.table, other.chain, other.kind, other.verdict):
            return False
        if self.verdict in ("JUMP", "GOTO") and self.target != other.target:
            return False
        if self.kind == "policy" or self.text == other.text:
            return True
        return not (self.native and other.native) and self.index is not None and self.index == other.index

    def short(self) -> str:
        body = self.text if self.kind == "rule" else f"policy {self.text}"
        at = f"#{self.index} " if self.index is not None and not self.native else ""
        return f"{self.hook or '?'} {self.family} {self.table}/{self.chain}: {at}{body} => {self.verdict}"


def locate(listing: str) -> dict[tuple[str, str, str], list[str]]:
    """(family, table, chain) -> the normalised texts of its rules in order, from ``nft -a list ruleset``."""
    out: dict[tuple[str, str, str], list[str]] = {}
    fam = table = chain = None
    for line in listing.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "table":
            fam, table, chain = words[1], words[2], None
        elif len(words) >= 2 and words[0] == "chain" and fam and table:
            chain = words[1]
            out[(fam, table, chain)] = []
        elif chain and fam and table and _HANDLE.search(line) and not line.rstrip().endswith("{"):
            out[(fam, table, chain)].append(normalise(line))
    return out


def kernel_nft_steps(obs: NftObservation) -> tuple[NStep, ...]:
    """The kernel's matched rules and policies, in order; iptables-nft tables' rules located by position."""
    k = obs.kernel
    assert k is not None
    rules = locate(obs.nft_all)
    native = set(obs.native)
    out = []
    last: tuple[str, str, str] | None = None
    cursor = 0
    for e in k.events:
        if e.kind not in ("rule", "policy") or e.table == TRACE_TABLE or e.is_trace_rule:
            continue
        fam = FAMILIES.get(e.family, str(e.family))
        is_native = (fam, e.table) in native
        text = normalise(e.rule_text or "") if e.kind == "rule" else e.verdict
        index = None
        if e.kind == "rule":
            key = (fam, e.table, e.chain)
            if key != last:
                last, cursor = key, 0
            chain_rules = rules.get(key, [])
            found = next((i for i in range(cursor, len(chain_rules)) if chain_rules[i] == text), None)
            if found is not None:
                index, cursor = found + 1, found + 1
        verdict = _VERDICT.get(e.verdict, e.verdict)
        out.append(NStep(e.hook, fam, e.table, e.chain, e.kind, text, verdict, e.target, index, is_native))
    return tuple(out)


def engine_nft_steps(path: TracePath, native: Sequence[tuple[str, str]]) -> tuple[NStep, ...]:
    """The engine path's matched rules and applied policies."""
    out = []
    for h in path.hops:
        if not (h.matched or h.kind == "policy"):
            continue
        fam = h.family or "ip"
        verdict = _VERDICT.get(h.verdict or "", h.verdict or "")
        text = normalise(h.rule or "") if h.kind == "rule" else verdict
        out.append(NStep(h.hook, fam, h.table, h.chain, h.kind, text, verdict, h.target, h.index,
                         (fam, h.table) in set(native)))  # fmt: skip
    return tuple(out)


def engine_trace(obs: NftObservation, ctx: NodeContext) -> Trace:
    """The engine's trace of ``obs``'s packet through the node's rules as they were when it was sent: the native
    tables (``nft list``) and, on a mixed node, the iptables-nft rules. The only place that needs the engine's
    Netfilter/nft API (see the module docstring); without it the test fails saying what is missing."""
    nft = parse_nft(obs.nft_before, source="nft list ruleset") if obs.nft_before.strip() else None
    ipt = parse_ruleset(obs.rules, source="iptables-nft-save") if obs.rules.strip() else None
    xtables = {"ipv6" if obs.family == 6 else "ipv4": ipt} if ipt is not None else {}
    result: Trace = trace(Netfilter(xtables, nft), obs.packet(), ctx)
    return result


def check_nft(obs: NftObservation, ctx: NodeContext) -> TracePath:
    """Assert that the engine agrees with the kernel on ``obs``; return the agreeing engine path."""
    k: KernelTrace | None = obs.kernel
    assert k is not None and k.first is not None, (
        f"the kernel trace of {obs.describe()} was not captured; warnings {obs.warnings}\n"
        f"capture (first 3000 chars):\n{obs.capture[:3000]}")
    ks = kernel_nft_steps(obs)
    result = engine_trace(obs, ctx)
    head = (f"{obs.describe()}\nkernel endpoint {k.endpoint}, verdict {k.verdict}, delivery {k.delivery}, "
            f"masquerade {k.masquerade}, trace ids {k.ids}")
    candidates = [p for p in result.paths if p.endpoint == k.endpoint]
    if not candidates:
        pytest.fail(f"{head}\nno engine path goes to the kernel's endpoint {k.endpoint}; engine paths: "
                    + ", ".join(f"{p.endpoint} {p.verdict} p={p.probability}" for p in result.paths) + "\n"
                    + side_by_side(ks, engine_nft_steps(result.paths[0], obs.native), "(path 1)"), pytrace=False)
    exact = [p for p in candidates if _same(ks, engine_nft_steps(p, obs.native))]
    if not exact:
        best = max(candidates, key=lambda p: _common(ks, engine_nft_steps(p, obs.native)))
        pytest.fail(f"{head}\nmatched rules differ ({len(candidates)} engine path(s) to this endpoint)\n"
                    + side_by_side(ks, engine_nft_steps(best, obs.native), f"p={best.probability} {best.verdict}"),
                    pytrace=False)
    path = min(exact, key=lambda p: len(p.assumptions))
    problems = []
    if path.assumptions:
        problems.append(f"the engine could not decide: {'; '.join(path.assumptions)}")
    if path.verdict != k.verdict:
        problems.append(f"verdict: kernel {k.verdict}, engine {path.verdict}")
    if path.delivery != k.delivery:
        problems.append(f"delivery: kernel {k.delivery}, engine {path.delivery}")
    if path.masquerade != k.masquerade:
        problems.append(f"masquerade: kernel {k.masquerade}, engine {path.masquerade}")
    if obs.origin != "local" and obs.masqueraded is not None and obs.masqueraded != path.masquerade:
        problems.append(f"masquerade: the echo server saw {obs.result.peer}, engine says {path.masquerade}")
    if problems:
        pytest.fail(f"{head}\n" + "\n".join(problems) + "\n"
                    + side_by_side(ks, engine_nft_steps(path, obs.native), "path"), pytrace=False)
    return path


def _same(a: Sequence[NStep], b: Sequence[NStep]) -> bool:
    return len(a) == len(b) and all(x.same(y) for x, y in zip(a, b))


def _common(a: Sequence[NStep], b: Sequence[NStep]) -> int:
    n = 0
    for x, y in zip(a, b):
        if not x.same(y):
            break
        n += 1
    return n


def check_one_nft(klab: NftKernelLab, send: Send, *, fresh: bool = True) -> tuple[NftObservation, TracePath]:
    """Observe one probe (state forgotten first when ``fresh``) and check it against the engine."""
    (obs,) = klab.observe([send], fresh=fresh)
    assert isinstance(obs, NftObservation)
    return obs, check_nft(obs, klab.context_for(obs))
