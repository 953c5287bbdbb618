"""kptui's nft front end (placeholder docstring, replaced below)."""

from .model import NftChain, NftElement, NftObject, NftRule, NftRuleset, NftSet, NftTable
from .parse import is_nft_listing, parse_nft, parse_nft_bytes

__all__ = ["NftChain", "NftElement", "NftObject", "NftRule", "NftRuleset", "NftSet", "NftTable", "is_nft_listing",
           "parse_nft", "parse_nft_bytes"]
