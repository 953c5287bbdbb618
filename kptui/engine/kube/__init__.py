"""kube-proxy semantics on top of the rule model: which services a dump implements, which kube-proxy wrote it.

``build_service_index(ruleset)`` recovers every service port (addresses, policies, affinity, endpoints with
their exact shares, the chains involved, what filter refuses) from the rules alone, comments or not;
``detect_layout(ruleset)`` tells the kube-proxy era, mode, backend and node settings. Pure and stdlib-only,
like the rest of the engine.

The names below are imported on first use: ``kptui summary`` only needs :mod:`.era`, and a big dump's summary
is a race against iptables-restore.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import build_service_index, service_index_of
    from .diff import diff_services
    from .diff_model import ServiceDiff
    from .era import KubeLayout, detect_layout
    from .explain import Explainer, explain_chain, explain_rule
    from .explain_common import Explanation
    from .findings import Finding, Pitfalls, analyse_pitfalls, find_pitfalls, findings_for
    from .hashes import chain_hash, split_chain
    from .model import BlockingRule, Endpoint, ServiceIndex, ServicePort

__all__ = [
    "BlockingRule",
    "Endpoint",
    "Explainer",
    "Explanation",
    "Finding",
    "KubeLayout",
    "Pitfalls",
    "ServiceDiff",
    "ServiceIndex",
    "ServicePort",
    "analyse_pitfalls",
    "build_service_index",
    "chain_hash",
    "detect_layout",
    "diff_services",
    "explain_chain",
    "explain_rule",
    "find_pitfalls",
    "findings_for",
    "service_index_of",
    "split_chain",
]

_HOME = {
    "BlockingRule": "model", "Endpoint": "model", "ServiceIndex": "model", "ServicePort": "model",
    "KubeLayout": "era", "detect_layout": "era", "build_service_index": "build", "service_index_of": "build",
    "chain_hash": "hashes",
    "split_chain": "hashes",
    "diff_services": "diff", "ServiceDiff": "diff_model",
    "Explainer": "explain", "Explanation": "explain_common", "explain_rule": "explain", "explain_chain": "explain",
    "Finding": "findings", "Pitfalls": "findings", "find_pitfalls": "findings", "findings_for": "findings",
    "analyse_pitfalls": "findings",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{home}", __name__), name)
