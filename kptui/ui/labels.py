"""Rich ``Text`` labels for tables, chains and rules, built from the parser's compact rows (no decoding).

Every piece of dump text goes through :func:`kptui.fmt.printable` into a ``Text`` object: a comment holding
``[bold]`` or an ANSI escape is shown literally, never interpreted. Colours come from the caller (the tree's
component classes, styled with theme variables in ``app.tcss``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rich.style import Style
from rich.text import Span, Text

from kptui.engine import Chain
from kptui.engine.rulelist import Row
from kptui.fmt import human, plural, printable

__all__ = ["STYLE_NAMES", "chain_label", "rule_label", "split_rule", "target_kind"]

STYLE_NAMES = ("index", "counter", "jump", "accept", "drop", "return", "nat", "mark", "target", "comment",
               "service", "policy", "dim", "match", "table", "delta", "rising")  # fmt: skip
DELTA_WIDTH = 7  # watch mode's "+1.2k" column

_TARGET_KIND = {
    "ACCEPT": "accept", "DROP": "drop", "REJECT": "drop", "RETURN": "return", "DNAT": "nat", "SNAT": "nat",
    "MASQUERADE": "nat", "REDIRECT": "nat", "NETMAP": "nat", "MARK": "mark", "CONNMARK": "mark",
}  # fmt: skip
_COMMENT = re.compile(r'-m comment --comment (?:"(?:[^"\\]|\\.)*"|\S+)')

Styles = Mapping[str, Style]


def target_kind(target: str | None, is_chain: bool) -> str:
    if target is None:
        return "dim"
    if is_chain:
        return "jump"
    return _TARGET_KIND.get(target, "target")


def split_rule(raw: str, chain: str, target: str | None, goto: bool) -> tuple[str, str]:
    """(matches, target with its options) of a rule line, e.g.
    ``('-p tcp -m tcp --dport 80', 'DNAT --to-destination 10.244.1.21:8080')``."""
    body = raw
    head = f"-A {chain} "
    if body.startswith(head):
        body = body[len(head):]
    elif body.startswith("-A "):
        body = body.partition(" ")[2].partition(" ")[2]
    if target is None:
        return body.strip(), ""
    flag = "-g" if goto else "-j"
    spaced = " " + body
    at = spaced.rfind(f" {flag} {target}")
    if at < 0:
        return body.strip(), target
    return spaced[:at].strip(), ("goto " if goto else "") + spaced[at + 4:].strip()


def _counter(pk: str | None, by: str | None) -> str | None:
    if pk is None or by is None:
        return None
    return f"{human(int(pk)):>5} {human(int(by)):>5}"


def rule_label(index: int, width: int, row: Row, chain: str, styles: Styles, *, is_chain_target: bool,
               highlight: re.Pattern[str] | None = None, delta: tuple[int, bool] | None | bool = False,
               nft: bool = False) -> Text:  # fmt: skip
    """``  3    36  1692 KUBE-NODEPORTS  -m comment --comment "…" -m addrtype --dst-type LOCAL``

    ``delta`` (watch mode): the packets since the previous read and whether it is a refusing rule's counter
    rising, shown in a column after the counters; None leaves the column blank, False omits it.
    Built as one string with style spans (5000 of these make KUBE-SERVICES; appending piece by piece costs
    three times as much). ``nft``: the row is an nft rule or set element (:mod:`kptui.engine.nft.display`),
    shown as nft lists it, its verdict coloured where it stands."""
    _line, raw, pk, by, target, goto = row
    if nft:
        return _nft_rule_label(index, width, row, styles, is_chain_target, highlight, delta)
    matches, target_text = split_rule(raw, chain, target, goto)
    head = f"{index:>{width}} "
    counter = _counter(pk, by)
    if counter is not None:
        head += counter + " "
    delta_span = None
    if delta is not False:
        moved = f"+{human(delta[0])}" if isinstance(delta, tuple) and delta[0] else ""
        if moved and isinstance(delta, tuple):
            delta_span = (len(head), len(head) + DELTA_WIDTH - 1, styles["rising" if delta[1] else "delta"])
        head += f"{moved:>{DELTA_WIDTH - 1}} "
    tgt = printable(target_text) if target_text else "(no target)"
    tail = "  " + printable(matches) if matches else ""
    plain = head + tgt + tail
    at = len(head)
    spans = [Span(0, len(f"{index:>{width}}"), styles["index"])]
    if counter is not None:
        spans.append(Span(spans[0].end + 1, spans[0].end + 1 + len(counter), styles["counter"]))
    if delta_span is not None:
        spans.append(Span(*delta_span))
    spans.append(Span(at, at + len(tgt), styles[target_kind(target, is_chain_target)]))
    if tail:
        start = at + len(tgt)
        spans.extend(Span(start + m.start(), start + m.end(), styles["comment"]) for m in _COMMENT.finditer(tail))
    text = Text(plain, no_wrap=True, end="", spans=spans)
    if highlight is not None:
        text.highlight_regex(highlight, styles["match"])
    return text


def _nft_rule_label(index: int, width: int, row: Row, styles: Styles, is_chain_target: bool,
                    highlight: re.Pattern[str] | None, delta: tuple[int, bool] | None | bool) -> Text:
    _line, raw, pk, by, target, _goto = row
    head = f"{index:>{width}} "
    counter = _counter(pk, by)
    if counter is not None:
        head += counter + " "
    spans = [Span(0, len(f"{index:>{width}}"), styles["index"])]
    if counter is not None:
        spans.append(Span(spans[0].end + 1, spans[0].end + 1 + len(counter), styles["counter"]))
    if delta is not False:
        moved = f"+{human(delta[0])}" if isinstance(delta, tuple) and delta[0] else ""
        if moved and isinstance(delta, tuple):
            spans.append(Span(len(head), len(head) + DELTA_WIDTH - 1, styles["rising" if delta[1] else "delta"]))
        head += f"{moved:>{DELTA_WIDTH - 1}} "
    text_ = printable(raw)
    plain = head + text_
    word = _NFT_WORD.get(target or "", target.lower() if target and not is_chain_target else target)
    at = text_.rfind(word) if word else -1
    if word and at >= 0:
        start = len(head) + (at - 5 if text_[max(0, at - 5):at] in ("jump ", "goto ") else at)
        spans.append(Span(start, len(head) + at + len(word), styles[target_kind(target, is_chain_target)]))
    spans.extend(Span(len(head) + m.start(), len(head) + m.end(), styles["comment"]) for m in _NFT_COMMENT.finditer(text_))
    label = Text(plain, no_wrap=True, end="", spans=spans)
    if highlight is not None:
        label.highlight_regex(highlight, styles["match"])
    return label


_NFT_WORD = {"DROP": "drop", "ACCEPT": "accept", "REJECT": "reject", "RETURN": "return", "DNAT": "dnat",
             "SNAT": "snat", "MASQUERADE": "masquerade", "REDIRECT": "redirect", "MARK": "set"}  # fmt: skip
_NFT_COMMENT = re.compile(r'comment "(?:[^"\\]|\\.)*"')


def chain_label(chain: Chain, styles: Styles, *, service: str | None, refs: int,
                n_shown: int | None = None, highlight: re.Pattern[str] | None = None,
                delta: tuple[int, bool, bool] | None = None, entered: tuple[int, int] | None = None,
                note: str | None = None, unit: str = "rule") -> Text:  # fmt: skip
    """``KUBE-SVC-…  shop/frontend:http · 3 rules · 1 ref · 58 pkts 3480 bytes entered``, or for a built-in
    chain ``INPUT (policy ACCEPT 49 pkts, 4359 bytes) · 4 rules`` (counters in ``iptables -nvL`` units).

    ``entered``: what the rules that lead to a user chain counted (each packet once, not once per rule of the
    chain); ``delta`` (watch mode): the packets that entered it since the previous read, whether a refusal in
    it rose, and whether the count is exact (``≥`` when the counters only bound it). ``note``: an nft base
    chain's hook and priority, a set's type; ``unit``: what its rows are (``element`` for an nft set or map)."""
    base = chain.builtin or (note is not None and chain.policy is not None)
    text = Text(printable(chain.name), styles["table"] if base else styles["jump"], no_wrap=True, end="")
    if note:
        text.append(f" ({printable(note)})", styles["policy"])
    if chain.policy is not None:
        pol = f" (policy {printable(chain.policy)}"
        if chain.counters is not None:
            pol += f" {human(chain.counters.packets)} pkts, {human(chain.counters.bytes)} bytes"
        text.append(pol + ")", styles["policy"])
    if service:
        text.append("  " + printable(service), styles["service"])
    n = len(chain.rules)
    count = plural(n, unit) if n_shown is None else f"{n_shown} of {plural(n, unit)} match"
    parts = [count]
    if chain.policy is None and unit == "rule":
        parts.append(plural(refs, "ref"))
    if entered is not None and chain.policy is None and (entered[0] or entered[1]):
        parts.append(f"{human(entered[0])} pkts {human(entered[1])} bytes entered")
    text.append(" · " + " · ".join(parts), styles["dim"])
    if delta is not None and delta[0]:
        least = "" if delta[2] else "≥"
        text.append(f" · +{least}{human(delta[0])} pkts", styles["rising" if delta[1] else "delta"])
    if highlight is not None:
        text.highlight_regex(highlight, styles["match"])
    return text
