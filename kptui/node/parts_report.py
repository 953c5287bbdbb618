"""What a snapshot holds, for reports: :func:`parts_report` (``kptui summary --json``'s ``parts``), the parts
counted, never parsed.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .backends import count_rules
from .parts import Artifact

if TYPE_CHECKING:
    from .snapshot import NodeSnapshot

__all__ = ["parts_report"]


def _nft_tables(a: Artifact) -> list[str] | None:
    if a.format == "json":
        try:
            doc = json.loads(a.data)
        except ValueError:
            return None
        items = doc.get("nftables") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return None
        return [f"{t.get('family')} {t.get('name')}" for i in items if isinstance(i, dict)
                for t in [i.get("table")] if isinstance(t, dict)]  # fmt: skip
    return [m.decode("utf-8", "replace") for m in re.findall(rb"^table (\S+ \S+)", a.data, re.MULTILINE)]


def _json_count(a: Artifact | None) -> int | None:
    if a is None:
        return None
    try:
        data = json.loads(a.data) if a.data.strip() else []
    except ValueError:
        return None
    return len(data) if isinstance(data, list) else None


def parts_report(snap: NodeSnapshot) -> dict[str, Any]:
    """Which parts the snapshot holds (counts, sizes, formats) and which it lacks and why: JSON-ready
    (``kptui summary --json``'s ``parts``; the parts stay raw, nothing here parses them beyond counting)."""

    def line_count(a: Artifact | None, pattern: bytes) -> int | None:
        return None if a is None else len(re.findall(pattern, a.data, re.MULTILINE))

    nft = snap.nft
    return {
        "xtables": [{"family": a.family, "backend": a.backend, "rules": count_rules(a.data), "bytes": len(a.data),
                     "in_use": a is snap.rules} for a in snap.xtables],
        "nft_ruleset": None if nft is None else {"format": nft.format, "bytes": len(nft.data),
                                                 "tables": _nft_tables(nft)},
        "ipsets": None if snap.ipsets is None else {"sets": line_count(snap.ipsets, rb"^create "),
                                                    "bytes": len(snap.ipsets.data)},
        "ipvs": None if snap.ipvs is None else {"virtual_services": line_count(snap.ipvs, rb"^-A "),
                                                "bytes": len(snap.ipvs.data)},
        "addresses": None if snap.addresses is None else {"interfaces": _json_count(snap.addresses)},
        "routes": {f: _json_count(a) for f, a in snap.routes.items()},
        "ip_rules": {f: _json_count(a) for f, a in snap.ip_rules.items()},
        "sysctls": None if snap.sysctls is None else dict(snap.sysctls),
        "conntrack": {f: a.data.count(b"\n") for f, a in snap.conntrack_tables.items()},
        "proxy_mode": snap.proxy_mode,
        "missing": [{"part": r.part, "name": r.name, "command": r.command, "why": r.error} for r in snap.missing()],
    }  # fmt: skip
