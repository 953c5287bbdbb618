"""Which iptables backend's dump a captured node's snapshot uses: per backend of the family, whether its rules
were read, how many rules it holds and whether kube-proxy's chains are among them; the one holding kube-proxy's
rules is chosen (or the one asked for), with a warning when both hold rules and a :class:`NodeDataError` when
none can be used.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import NftOnly, NodeDataError
from .parts import Collection
from .provenance import read_failure

__all__ = ["BACKENDS", "choose_backend", "count_rules"]

BACKENDS = ("nf_tables", "legacy")
_TOOLS = {"nf_tables": "nft", "legacy": "legacy"}
_RULE_LINE = re.compile(rb"^(?:\[\d+:\d+\] )?-A ", re.MULTILINE)
_KUBE = re.compile(rb"^:KUBE-", re.MULTILINE)


def _real_failure(error: object) -> bool:
    """A failure worth a warning: not a tool that is absent or was deliberately not run."""
    text = str(error or "")
    return bool(text) and "not installed" not in text and not text.startswith("not run")


def _rule_stats(data: bytes) -> tuple[int, bool]:
    return count_rules(data), _KUBE.search(data) is not None


def count_rules(data: bytes) -> int:
    return len(_RULE_LINE.findall(data))


def choose_backend(col: Collection, family: str, backend: str | None,
                   warnings: list[str]) -> tuple[str | None, dict[str, dict[str, Any]]]:  # fmt: skip
    """The backend holding kube-proxy's rules (or ``backend``), and per-backend stats; NodeDataError."""
    stats: dict[str, dict[str, Any]] = {}
    for b in BACKENDS:
        a = col.find("rules", family, b)
        if a is None:
            continue
        if not a.ok:
            stats[b] = {"read": False, "error": read_failure(a)}
            continue
        n, has_kube = _rule_stats(a.data)
        stats[b] = {"read": True, "rules": n, "kube": has_kube, "seconds": round(a.seconds, 4)}
    readable = [b for b in BACKENDS if stats.get(b, {}).get("read")]
    if backend is not None:
        if backend not in readable:
            why = stats.get(backend, {}).get("error", "not captured")
            raise NodeDataError(f"the {backend} backend's {family} rules could not be read: {why}")
        chosen = backend
    elif not readable:
        if not stats and col.find("nft-ruleset") is not None:
            raise NftOnly("holds an nft ruleset and no iptables rules (kube-proxy in nftables mode?): this "
                          "command reads iptables rules; kptui summary and kptui trace read both")
        errs = "; ".join(f"{b}: {s['error']}" for b, s in stats.items()) or "no rule dump was collected"
        raise NodeDataError(f"no {family} rules could be read ({errs})")
    else:
        holding = [b for b in readable if stats[b]["rules"] > 0]
        kube = [b for b in holding if stats[b]["kube"]]
        ranked = sorted(kube or holding or readable, key=lambda b: -stats[b].get("rules", 0))
        chosen = ranked[0]
        if len(holding) > 1:
            counts = " and ".join(f"iptables-{_TOOLS[b]} {stats[b]['rules']}" for b in holding)
            warnings.append(f"both iptables backends hold {family} rules ({counts}): the kernel runs both, "
                            f"in separate tables; showing {chosen}"
                            + (" (kube-proxy's chains are in both!)" if len(kube) > 1 else
                               " (it holds kube-proxy's chains)" if kube else ""))  # fmt: skip
        failed = {b: str(s.get("error")) for b, s in stats.items() if not s["read"] and _real_failure(s.get("error"))}
        if not holding and failed:  # an empty backend must not stand in for one that could not be read
            why = "; ".join(f"{b}: {e}" for b, e in failed.items())
            raise NodeDataError(f"the {family} rules could not be read ({why}), and the other backend is empty")
        if not holding:
            warnings.append(f"no {family} iptables rules in either backend (kube-proxy in nftables or ipvs "
                            "mode, or not running?)")  # fmt: skip
            if col.find("nft-ruleset") is not None and any(a.ok for a in col.all("nft-ruleset")):
                warnings.append("the nft ruleset was read (nft -j list ruleset): kptui reads kube-proxy's "
                                "nftables mode and every native table from it")  # fmt: skip
    for b, s in stats.items():
        err = str(s.get("error") or "")
        if not s["read"] and b != chosen and _real_failure(err):
            warnings.append(f"the {b} backend could not be read: {err}")
    return chosen, stats
