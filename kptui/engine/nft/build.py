"""Pieces both listing readers share: set elements from parsed values, canonical set flags, the iptables-nft
note."""

from __future__ import annotations

from collections.abc import Iterable

from .exprs import Concat, ElemOpts, MapItem, Value, Xt
from .model import NftElement, NftRule

__all__ = ["FLAG_ORDER", "IPTABLES_NFT_NOTE", "canonical_flags", "element", "has_xt"]

FLAG_ORDER = ("constant", "dynamic", "interval", "timeout", "eval")
IPTABLES_NFT_NOTE = ("is managed by iptables-nft: nft lists its rules as translations (some lossy, some as 'xt' "
                     "expressions kptui cannot evaluate); read this table from iptables-nft-save")  # fmt: skip


def canonical_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """Set flags in the order nft prints them (unknown ones after, as given)."""
    given = list(dict.fromkeys(flags))
    known = [f for f in FLAG_ORDER if f in given]
    return tuple(known + [f for f in given if f not in FLAG_ORDER])


def element(item: Value) -> NftElement:
    """A set or map element from a parsed item (``KEY [opts]`` or ``KEY [opts] : DATA``)."""
    data: Value | None = None
    key_value = item
    if isinstance(item, MapItem):
        key_value, data = item.key, item.value
    timeout = expires = None
    comment = None
    counter = None
    if isinstance(key_value, ElemOpts):
        opts = key_value
        timeout, expires, comment, counter = opts.timeout, opts.expires, opts.comment, opts.counter
        key_value = opts.val
    key = key_value.items if isinstance(key_value, Concat) else (key_value,)
    return NftElement(key, data, comment, timeout, counter, expires)


def has_xt(rules: Iterable[NftRule]) -> bool:
    return any(isinstance(s, Xt) for r in rules for s in r.exprs)
