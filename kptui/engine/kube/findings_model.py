"""The values of pitfall findings: :class:`Finding`, its JSON form and the severities, below both the checks
(:mod:`.findings_checks`, :mod:`.findings_services`) that make findings and :mod:`.findings` that collects them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SEVERITIES", "Finding", "Key", "finding_to_dict"]

SEVERITIES = ("error", "warning", "info")  # most severe first

Key = tuple[str | None, str, int | None]  # (table, chain, 1-based rule index or None for the chain)


@dataclass(frozen=True, slots=True)
class Finding:
    """One pitfall, located at the rule (or chain) that causes it when there is one."""

    code: str  # stable slug: "no-endpoints", "dangling-jump", …
    severity: str  # "error", "warning", "info"
    title: str
    detail: str
    advice: str
    table: str | None = None
    chain: str | None = None
    index: int | None = None  # 1-based rule index; None: the chain as a whole (or the dump, without chain)
    line: int | None = None  # source line of the rule (or of the chain's declaration)
    service: str | None = None  # ns/name:port (or ?HASH) when the finding concerns one service port
    count: int = 1  # how many rules or services an aggregated finding stands for

    @property
    def location(self) -> str:
        """``table/chain:index (line N)``; ``table/chain`` for a chain; ``-`` for the dump as a whole."""
        if self.chain is None:
            return "-"
        where = f"{self.table or '?'}/{self.chain}"
        if self.index is not None:
            where += f":{self.index}"
        if self.line is not None:
            where += f" (line {self.line})"
        return where


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """A finding as a JSON-ready dict (``kptui lint --json``; keys are only ever added)."""
    return {
        "code": f.code, "severity": f.severity, "title": f.title, "detail": f.detail, "advice": f.advice,
        "table": f.table, "chain": f.chain, "index": f.index, "line": f.line, "service": f.service,
        "count": f.count,
    }  # fmt: skip
