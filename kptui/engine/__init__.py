"""kptui's engine: pure Python, standard library only, no I/O. Text in, frozen values out."""

from .errors import Diagnostic, ParseError
from .model import Chain, Counters, Match, Option, Rule, Ruleset, RuleSpec, Table, Target
from .parser import parse_ruleset, parse_ruleset_bytes

__all__ = [
    "Chain",
    "Counters",
    "Diagnostic",
    "Match",
    "Option",
    "ParseError",
    "Rule",
    "RuleSpec",
    "Ruleset",
    "Table",
    "Target",
    "parse_ruleset",
    "parse_ruleset_bytes",
]
