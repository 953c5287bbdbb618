"""kptui's nft front end (placeholder docstring, replaced below)."""

from .model import NftChain, NftElement, NftObject, NftRule, NftRuleset, NftSet, NftTable
from .parse import is_nft_listing, parse_nft, parse_nft_bytes
from .summary import nft_summary
from .view import NftChainView, NftCompiled

__all__ = ["NftChain", "NftChainView", "NftCompiled", "NftElement", "NftObject", "NftRule", "NftRuleset", "NftSet", "NftTable", "is_nft_listing",
           "nft_summary", "parse_nft", "parse_nft_bytes"]
