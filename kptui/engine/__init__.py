"""kptui's engine: pure Python, standard library only, no I/O. Text in, frozen values out.

The nft front end's entry points (:mod:`kptui.engine.nft`) are exported too, imported on first use so that
commands reading iptables dumps do not pay for it."""

from typing import TYPE_CHECKING, Any

from .errors import Diagnostic, ParseError
from .model import Chain, Counters, Match, Option, Rule, Ruleset, RuleSpec, Table, Target
from .parser import parse_ruleset, parse_ruleset_bytes

if TYPE_CHECKING:
    from .nft import NftCompiled, NftRuleset, is_nft_listing, nft_summary, parse_nft, parse_nft_bytes

_NFT = frozenset({"NftCompiled", "NftRuleset", "is_nft_listing", "nft_summary", "parse_nft", "parse_nft_bytes"})


def __getattr__(name: str) -> Any:
    if name in _NFT:
        from . import nft

        return getattr(nft, name)
    raise AttributeError(f"module 'kptui.engine' has no attribute {name!r}")

__all__ = [
    "Chain",
    "Counters",
    "Diagnostic",
    "Match",
    "NftCompiled",
    "NftRuleset",
    "Option",
    "ParseError",
    "Rule",
    "RuleSpec",
    "Ruleset",
    "Table",
    "Target",
    "is_nft_listing",
    "nft_summary",
    "parse_nft",
    "parse_nft_bytes",
    "parse_ruleset",
    "parse_ruleset_bytes",
]
