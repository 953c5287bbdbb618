"""Pitfall findings: what in a kube-proxy dump is likely to surprise someone debugging it.

``find_pitfalls(ruleset)`` returns frozen :class:`Finding` values, errors first; ``analyse_pitfalls(ruleset)``
returns them in a :class:`Pitfalls` that also answers, cheaply, which findings concern one rule or chain
(:meth:`Pitfalls.for_rule`, :meth:`Pitfalls.for_chain`; :func:`findings_for` is the same as a function).

There is one finding per (code, service or rule). Findings that would repeat for every endpoint or every
service of a big cluster (hairpin masquerade, client source IP lost, low-precision probabilities) are
aggregated into one finding whose ``count`` says how many rules or services it stands for; each of those
rules still finds it through :meth:`Pitfalls.for_rule`. The checks live in :mod:`.findings_checks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..model import Ruleset
from .findings_checks import run_checks
from .findings_model import SEVERITIES, Finding, Key, finding_to_dict

if TYPE_CHECKING:
    from ..ipvs.node import IpvsNode

__all__ = ["SEVERITIES", "Finding", "Pitfalls", "analyse_pitfalls", "find_pitfalls", "finding_to_dict",
           "findings_for"]  # fmt: skip


class Pitfalls:
    """The findings of one ruleset, with a per-rule and per-chain lookup."""

    def __init__(self, findings: Iterable[tuple[Finding, Iterable[Key]]]) -> None:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        pairs = sorted(findings, key=lambda p: (order.get(p[0].severity, 9), p[0].code, p[0].table or "",
                                                p[0].chain or "", p[0].index or 0))  # fmt: skip
        self.findings: tuple[Finding, ...] = tuple(f for f, _ in pairs)
        where: dict[Key, list[Finding]] = {}
        for f, also in pairs:
            keys = dict.fromkeys(also)
            if f.chain is not None:
                keys[(f.table, f.chain, f.index)] = None
            for key in keys:
                where.setdefault(key, []).append(f)
        self._where = MappingProxyType({k: tuple(v) for k, v in where.items()})

    def __iter__(self) -> Any:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def for_rule(self, table: str | None, chain: str, index: int) -> tuple[Finding, ...]:
        """The findings caused by (or standing for) rule ``index`` (1-based) of ``table``/``chain``."""
        return self._where.get((table, chain, index), ())

    def for_chain(self, table: str | None, chain: str) -> tuple[Finding, ...]:
        """The findings about ``table``/``chain`` as a whole (a stale chain, a long chain, a service's
        chain with uneven shares)."""
        return self._where.get((table, chain, None), ())

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            out[f.severity] = out.get(f.severity, 0) + 1
        return out


def analyse_pitfalls(ruleset: Ruleset, node: IpvsNode | None = None) -> Pitfalls:
    """Every pitfall of ``ruleset`` (see :mod:`.findings_checks` for the list), with lookups; ``node`` adds an
    IPVS-mode node's table, ipsets and sysctls (:mod:`.findings_ipvs`)."""

    return Pitfalls(run_checks(ruleset, node))


def find_pitfalls(ruleset: Ruleset, node: IpvsNode | None = None) -> tuple[Finding, ...]:
    """Every pitfall of ``ruleset``, errors first, then warnings, then info."""
    return analyse_pitfalls(ruleset, node).findings


def findings_for(pitfalls: Pitfalls, table: str | None, chain: str, rule_index: int | None = None,
                 ) -> tuple[Finding, ...]:  # fmt: skip
    """The findings of one rule (``rule_index``, 1-based) or, without it, of the chain as a whole."""
    if rule_index is None:
        return pitfalls.for_chain(table, chain)
    return pitfalls.for_rule(table, chain, rule_index)
