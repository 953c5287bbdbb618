"""What the detail pane shows of an nft table, chain, rule, set or element, as plain pieces ``(style, text)``: the
rule's statements decoded one by one (each match in words with the expression as nft lists it, each action),
its counter (nft counts only rules with a counter statement), its handle and source line; a base chain's type,
hook, priority and policy; a set's type, flags and timeout; an element's key, value and options.

No Textual here: :mod:`.rule_detail` styles the pieces (``heading``, ``label``, ``service``, ``negation``), and
every piece of listing text is passed through :func:`kptui.fmt.printable` there."""

from __future__ import annotations

from kptui.engine.kube.nft_words import cond_words, stmt_words
from kptui.engine.nft.exprs import Counter, Match
from kptui.engine.nft.model import NftChain, NftElement, NftRule, NftSet, NftTable
from kptui.engine.nft.printer import Printer, element_text
from kptui.engine.nft.symbols import format_time
from kptui.fmt import human, plural

__all__ = ["Piece", "nft_chain_pieces", "nft_element_pieces", "nft_rule_pieces", "nft_set_pieces", "nft_table_pieces"]

Piece = tuple[str, str]  # (style name, text)


def _counts(c: tuple[int, int] | None) -> str:
    if c is None:
        return "no counter statement (nft counts only the rules that have one; kube-proxy writes none)"
    short = f"{human(c[0])} packets, {human(c[1])} bytes"
    return short if short == f"{c[0]} packets, {c[1]} bytes" else f"{short} (exactly {c[0]} / {c[1]})"


def nft_rule_pieces(rule: NftRule, source: str | None) -> list[Piece]:
    """The rule decoded: its statements, counter, handle and where it was read."""
    p = Printer(rule.family)
    out: list[Piece] = [("label", "counters "), ("", _counts(rule.counter) + "\n"), ("heading", "\nstatements\n")]
    if not rule.exprs:
        out.append(("label", "  (none)\n"))
    for s in rule.exprs:
        if isinstance(s, Counter):
            continue
        text = p.stmt(s)
        if isinstance(s, Match):
            out.append(("", "  "))
            out += [("negation" if s.op == "!=" else "heading", text), ("label", f"   ({cond_words(p, s)})\n")]
        else:
            words = stmt_words(p, s)
            out += [("", "  "), ("service", text), ("label", f"   ({words})\n" if words and words != text else "\n")]
    where = f"{source or '<listing>'}:{rule.line}" if rule.line is not None else (source or "<listing>")
    out += [("label", "\nsource   "), ("", where + (f" · handle {rule.handle}" if rule.handle is not None else "") + "\n"),
            ("", "  " + rule.text + "\n")]  # fmt: skip
    return out


def nft_chain_pieces(chain: NftChain) -> list[Piece]:
    """A chain's hook, type, priority and policy (a base chain) and its rule count."""
    out: list[Piece] = []
    if chain.is_base:
        prio = chain.priority_text or str(chain.priority)
        if prio != str(chain.priority):
            prio += f" ({chain.priority})"
        out += [("label", "base     "), ("heading", f"type {chain.type} hook {chain.hook} priority {prio}"),
                ("", f" · policy {chain.policy or 'accept'}" + (f" · devices {', '.join(chain.devices)}"
                                                                if chain.devices else "") + "\n")]  # fmt: skip
    out += [("label", "rules    "), ("", plural(len(chain.rules), "rule"))]
    counted = [r.counter for r in chain.rules if r.counter is not None]
    if counted:
        out.append(("", f" · {sum(c[0] for c in counted)} packets, {sum(c[1] for c in counted)} bytes counted"))
    out.append(("", "\n"))
    if chain.comment:
        out += [("label", "comment  "), ("", chain.comment + "\n")]
    if chain.line is not None or chain.handle is not None:
        out += [("label", "declared "), ("", " · ".join(x for x in (f"line {chain.line}" if chain.line else "",
                                                                 f"handle {chain.handle}" if chain.handle else "")
                                                      if x) + "\n")]  # fmt: skip
    return out


def nft_set_pieces(st: NftSet) -> list[Piece]:
    """A set's or map's type, flags, timeout and size."""
    typ = " . ".join(st.key_type) + (f" : {' . '.join(st.data_type)}" if st.data_type else "")
    out: list[Piece] = [("label", f"{st.kind:<9}"), ("heading", typ), ("", f" · {plural(len(st.elements), 'element')}\n")]
    opts = []
    if st.flags:
        opts.append("flags " + ",".join(st.flags))
    if st.timeout is not None:
        opts.append(f"timeout {format_time(st.timeout)}")
    if st.size is not None:
        opts.append(f"size {st.size}")
    if opts:
        out += [("label", "options  "), ("", " · ".join(opts) + "\n")]
    if st.comment:
        out += [("label", "comment  "), ("", st.comment + "\n")]
    return out


def nft_element_pieces(st: NftSet, el: NftElement) -> list[Piece]:
    """One element: as nft lists it, with its options."""
    out: list[Piece] = [("label", "element  "), ("heading", element_text(st, el) + "\n")]
    opts = []
    if el.timeout is not None:
        opts.append(f"timeout {format_time(el.timeout)}")
    if el.expires is not None:
        opts.append(f"expires in {format_time(el.expires)} (when listed)")
    if el.counter is not None:
        opts.append(_counts(el.counter))
    if opts:
        out += [("label", "options  "), ("", " · ".join(opts) + "\n")]
    out += [("label", "in       "), ("", f"{st.kind} {st.name} ({' . '.join(st.key_type)})\n")]
    return out


def nft_table_pieces(table: NftTable) -> list[Piece]:
    bases = sum(1 for c in table.chains.values() if c.is_base)
    counts = (f"{plural(len(table.chains), 'chain')} ({bases} base) · {plural(table.rule_count, 'rule')} · "
              f"{plural(len(table.sets), 'set/map', 'sets/maps')}\n")
    out: list[Piece] = [("", counts)]
    if table.iptables_nft:
        out.append(("label", "managed by iptables-nft: its rules are read best from iptables-nft-save\n"))
    if table.comment:
        out += [("label", "comment  "), ("", table.comment + "\n")]
    return out
