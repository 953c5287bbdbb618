"""kptui's nft front end: nftables listings read into a frozen model, and nft rules compiled to the trace
walker's ops (:mod:`kptui.engine.flow`). Pure Python, standard library only, no I/O.

Reading (docs/nft.md has the details):

- :func:`parse_nft` takes ``nft list ruleset`` text (with or without ``-a``, ``-n``/``-nn``) or ``nft -j list
  ruleset`` JSON (recognised by a leading ``{``) and returns an :class:`NftRuleset`; :func:`parse_nft_bytes`
  decodes bytes first; :func:`is_nft_listing` sniffs content. Both forms of the same kernel state give equal
  models (:mod:`.model` says which fields only one form can show). Only input that is no listing at all raises
  :class:`~kptui.engine.errors.ParseError`; damage loads with located warnings.
- :func:`nft_summary` describes a ruleset as JSON-ready data.

Evaluating:

- :class:`NftCompiled` (one per ruleset) hands out an :class:`NftChainView` per ``(family, table, chain)``:
  a :class:`flow.ChainView` whose ``ops(i)`` compiles rule ``i`` to checks and actions on first use.

Modules: :mod:`.model` (the model), :mod:`.exprs` (the rule AST), :mod:`.listing`/:mod:`.listing_sets` and
:mod:`.json_reader` (the two readers), :mod:`.rule_text` and :mod:`.json_exprs` (rules), :mod:`.printer` (rule
text as nft prints it), the expression units ``expr_*`` and statement units ``stmt_*`` registered in
:mod:`.registry` (:mod:`.unitbase` says what a unit is), :mod:`.compile`/:mod:`.setindex`/:mod:`.evalcore`
(evaluation), :mod:`.view` (chain views), :mod:`.symbols` and :mod:`.values` (datatypes, constants).
"""

from .model import NftChain, NftElement, NftObject, NftRule, NftRuleset, NftSet, NftTable
from .parse import is_nft_listing, parse_nft, parse_nft_bytes
from .summary import nft_summary
from .view import NftChainView, NftCompiled

__all__ = [
    "NftChain",
    "NftChainView",
    "NftCompiled",
    "NftElement",
    "NftObject",
    "NftRule",
    "NftRuleset",
    "NftSet",
    "NftTable",
    "is_nft_listing",
    "nft_summary",
    "parse_nft",
    "parse_nft_bytes",
]
