"""nft rules and set elements in plain, neutral words: what a rule matches and what it does, never what it
is for. Used for the rules of tables that are not kube-proxy's (firewalld, a CNI, the administrator's own),
for kube-proxy rules of a shape kptui does not know, and by the kube explanations for their parts.

Conditions kptui has no words for are quoted as nft lists them (``meta skuid 1000``): never guessed at.
"""

from __future__ import annotations

from ..nft.exprs import (
    Ct,
    Fib,
    Log,
    Mangle,
    Match,
    Meta,
    Nat,
    Node,
    Numgen,
    Payload,
    Reject,  # fmt: skip
    SetRef,
    SetStmt,
    Stmt,
    Value,
    Verdict,
    VMap,
)
from ..nft.model import NftRule
from ..nft.printer import Printer, element_text
from ..nft.registry import dtype_of
from ..nft.values import value_text
from .explain_common import Explanation

__all__ = ["cond_words", "describe_nft_rule", "element_text", "explain_nft_generic", "stmt_words", "value_words"]

_FIELDS = {"saddr": "from", "daddr": "to", "sport": "from port", "dport": "to port"}
_META = {"iifname": "arriving on", "oifname": "leaving by", "iif": "arriving on", "oif": "leaving by",
         "l4proto": "of protocol", "nfproto": "of family", "mark": "with packet mark", "pkttype": "of packet type"}  # fmt: skip
_NEG = {"arriving on": "not arriving on", "leaving by": "not leaving by", "from": "not from", "to": "not to",
        "from port": "from a port other than", "to port": "to a port other than"}  # fmt: skip


def value_words(p: Printer, v: Value, key: Value | None = None) -> str:
    """A right-hand side as nft prints it (``10.0.0.0/8``, ``{ 80, 443 }``, ``@set``)."""
    return value_text(p, v, dtype_of(key, p.family) if key is not None else "integer")


def cond_words(p: Printer, m: Match) -> str:
    """One match as a phrase: ``from 10.0.0.0/8``, ``to port 80``, ``arriving on "eth0"``."""
    left, right = m.left, m.right
    rhs = value_words(p, right, left)
    word: str | None = None
    if isinstance(left, Payload) and left.field in _FIELDS:
        word = _FIELDS[left.field]
        if left.field.endswith("port") and left.proto not in ("th",):
            word = f"{left.proto} {word}"
    elif isinstance(left, Meta) and left.key in _META:
        word = _META[left.key]
    elif isinstance(left, Ct) and left.key == "state" and left.dir is None:
        word = "in conntrack state"
    elif isinstance(left, Fib) and left.result == "type":
        which = "source" if "saddr" in left.flags else "destination"
        if right == "local":
            return f"{'not ' if m.op == '!=' else ''}{which} one of this node's addresses"
        word = f"{which} address type"
    if word is None:
        return f"{p.expr(left)} {'' if m.op in ('==', 'in') else m.op + ' '}{rhs}".replace("  ", " ")
    if isinstance(right, SetRef):
        rhs = f"an element of {rhs}"
    if m.op == "!=":
        return f"{_NEG.get(word, word + ' not')} {rhs}"
    if m.op not in ("==", "in"):
        return f"{word} {m.op} {rhs}"
    return f"{word} {rhs}"


def stmt_words(p: Printer, s: Stmt) -> str | None:
    """What a statement does (None for a match or a counter)."""
    if isinstance(s, Verdict):
        return {"accept": "accepts it", "drop": "drops it", "return": "returns to the calling chain",
                "continue": "goes on", "jump": f"jumps to {s.target}", "goto": f"goes to {s.target} (goto)",
                "queue": "queues it to user space"}.get(s.kind, s.kind)  # fmt: skip
    if isinstance(s, Reject):
        how = f" with {s.type}{' ' + s.code if s.code else ''}" if s.type else ""
        return f"rejects it{how}"
    if isinstance(s, Nat):
        to = f" to {p.stmt(s).partition(' to ')[2]}" if " to " in p.stmt(s) else ""
        return {"dnat": f"DNATs it{to}", "snat": f"SNATs it{to}", "masquerade": "masquerades it (the outgoing "
                "interface's address)" + (f", {', '.join(s.flags)}" if s.flags else ""),
                "redirect": f"redirects it to this node{to}"}.get(s.kind, p.stmt(s))  # fmt: skip
    if isinstance(s, Mangle):
        return f"sets {p.expr(s.key)} to {p.expr(s.value) if isinstance(s.value, Node) else s.value}"
    if isinstance(s, VMap):
        return f"looks {p.expr(s.key)} up in {value_words(p, s.data, s.key)} and takes the verdict found there"
    if isinstance(s, SetStmt):
        return f"{'adds' if s.op == 'add' else 'refreshes' if s.op == 'update' else 'deletes'} " \
               f"{p.expr(s.elem) if isinstance(s.elem, Node) else s.elem} in @{s.set}"  # fmt: skip
    if isinstance(s, Log):
        return "logs it"
    if isinstance(s, Match) or type(s).__name__ == "Counter":
        return None
    return f"{p.stmt(s)}"


def describe_nft_rule(rule: NftRule) -> tuple[list[str], list[str]]:
    """(the conditions as phrases, the actions as phrases) of an nft rule."""
    p = Printer(rule.family)
    conds = [cond_words(p, s) for s in rule.exprs if isinstance(s, Match)]
    acts = [w for s in rule.exprs if (w := stmt_words(p, s))]
    return conds, acts


def explain_nft_generic(rule: NftRule) -> Explanation:
    """A neutral explanation of any nft rule: what it matches and does."""
    conds, acts = describe_nft_rule(rule)
    who = "packets " + " and ".join(conds) if conds else "every packet that reaches it"
    what = ", then ".join(acts) if acts else "does nothing to them (a counter or a rule without a verdict)"
    if any(isinstance(s, Numgen) or (isinstance(s, VMap) and isinstance(s.key, Numgen)) for s in rule.exprs):
        what += " (numgen picks a value at random)"
    return Explanation(f"{who}: it {what}", "generic", kube=False)


