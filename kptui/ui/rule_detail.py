"""The rule detail pane: one rule decoded (matches with their negations, target), its counters and source
line, the chains that jump to it, and a slot for the kube engine's explanation and findings.

It shows what the screen tells it to (:meth:`RuleDetail.show`), and posts
:class:`~kptui.ui.messages.NavigateRequested` when the user picks a link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from kptui.engine import Chain, Rule, Ruleset
from kptui.engine.graph import graph_of
from kptui.engine.ipvs.display import IPSET_TABLE, is_ipvs_table
from kptui.engine.lexer import quote
from kptui.engine.model import HEADER
from kptui.engine.model import Option as RuleOption
from kptui.engine.nft import NftRuleset
from kptui.engine.nft.display import is_nft_table, nft_name
from kptui.engine.rules import STRING_OPTIONS
from kptui.engine.trace_model import Hop
from kptui.engine.trace_report import hop_line
from kptui.fmt import human, plural, printable

from .entry_counts import EntryCounts
from .focus import focus_now
from .locs import Loc, chain_of, rule_at
from .messages import NavigateRequested
from .nft_detail import (
    nft_chain_pieces,
    nft_element_pieces,
    nft_rule_pieces,
    nft_set_pieces,
    nft_table_pieces,
)
from .nft_insights import nft_item
from .pending_insights import PENDING_NOTE, is_pending
from .services import Insights
from .text_view import TextView

__all__ = ["MAX_LINKS", "RuleDetail"]

MAX_LINKS = 100  # callers listed (KUBE-MARK-MASQ can have tens of thousands)


def _counts(packets: int, nbytes: int) -> str:
    """``iptables -nvL`` units, with the exact figures (``-x``) when the units rounded them."""
    short = f"{human(packets)} packets, {human(nbytes)} bytes"
    exact = f"{packets} packets, {nbytes} bytes"
    return short if short == exact else f"{short} (exactly {packets} / {nbytes})"


def _args(opt: RuleOption) -> str:
    """An option's arguments quoted as iptables-save quotes them (``--log-prefix "drop it: "``)."""
    string = opt.name in STRING_OPTIONS
    return " ".join(quote(a, string=string) for a in opt.args)


class RuleDetail(Vertical):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rule-detail--heading", "rule-detail--label", "rule-detail--service", "rule-detail--negation",
        "rule-detail--hop", "rule-detail--error", "rule-detail--warning",
    }  # fmt: skip
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_link", "Go to link", show=False, id="detail.open-link"),
    ]

    def __init__(self, ruleset: Ruleset, insights: Insights, *, callers_indexed: bool = True,
                 entries: EntryCounts | None = None, **kwargs: object) -> None:  # fmt: skip
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.callers_indexed = callers_indexed  # False: "jumped to from" waits for the app's index
        self.ruleset = ruleset
        self.insights = insights
        self.entries = entries or EntryCounts(ruleset)
        self.loc: Loc | None = None
        self.hop: Hop | None = None
        self._links: list[Loc] = []
        self._links_for: Loc | None = None

    def _s(self, name: str) -> Style:
        return self.get_component_rich_style(f"rule-detail--{name}", partial=True)

    def compose(self) -> ComposeResult:
        yield TextView(id="detail-body")
        yield OptionList(id="detail-links", markup=False, compact=True)

    def on_mount(self) -> None:
        self.query_one("#detail-links").display = False
        if self.loc is None:
            self.show(None)

    @property
    def text(self) -> str:
        """What the pane shows, as plain text (tests, copy)."""
        return self.query_one(TextView).plain

    # -- what the screen calls -------------------------------------------------------------------------
    def show(self, loc: Loc | None, hop: Hop | None = None) -> None:
        self.loc, self.hop = loc, hop
        body = Text(no_wrap=False, end="")
        nft = getattr(self.insights, "nft", None) if is_nft_table(loc.table if loc is not None else None) else None
        if loc is None:
            body.append("Move the cursor in the chain tree to see a rule here.", self._s("label"))
        elif nft is not None:
            self._nft(body, loc, nft)
        elif is_ipvs_table(loc.table) and (ipvs := getattr(self.insights, "ipvs_detail", None)) is not None:
            self._ipvs(body, loc, ipvs(Loc(loc.table, loc.chain)))
            self.query_one(TextView).update(body)
            self._set_links(None)
            return
        elif loc.table not in self.ruleset.tables and hop is not None:  # an IPVS step: in no table of the rules
            body.append(printable(f"{loc.table} / {loc.chain}"), self._s("heading"))
            body.append("  a step of the trace outside the rules (IPVS)\n" if loc.table == "ipvs" else "\n")
            self._hop(body)
            self.query_one(TextView).update(body)
            self._set_links(None)
            return
        elif loc.kind == "table":
            self._table(body, loc)
            self._insight(body, loc)
        elif loc.kind == "chain":
            chain = chain_of(self.ruleset, loc)
            if chain is not None:
                self._chain(body, loc, chain)
        else:
            rule = rule_at(self.ruleset, loc)
            if rule is not None:
                self._rule(body, loc, rule)
        if loc is not None and loc.chain is not None and self.callers_indexed:
            n = len(self._callers(loc.table, loc.chain))
            body.append(f"\njumped to from ({n}):" if n else "\nno rule jumps to this chain", self._s("heading"))
        self.query_one(TextView).update(body)
        self._set_links(loc)

    # -- rendering -----------------------------------------------------------------------------------------
    def _head(self, body: Text, loc: Loc, what: str) -> None:
        body.append(printable(str(loc.table or "?")) + " / ", self._s("heading"))
        body.append(printable(loc.chain or ""), self._s("heading"))
        body.append(f"  {what}\n")
        if loc.chain is not None:
            service = self.insights.service_of(loc.table, loc.chain)
            if service:
                body.append("service  ", self._s("label"))
                body.append(printable(service), self._s("service"))
                info = self.insights.services.get(service)
                if info is not None and info.facts:
                    body.append(" · " + printable(" · ".join(info.facts)), self._s("label"))
                body.append("\n")

    def _ipvs(self, body: Text, loc: Loc, detail: str | None) -> None:
        """A set or member, a virtual service or real server of an IPVS node (kptui.engine.ipvs.display)."""
        if loc.kind == "table":
            body.append(printable(loc.table or ""), self._s("heading"))
            body.append("\n")
        elif loc.kind == "rule":
            chain = chain_of(self.ruleset, loc)
            rule = rule_at(self.ruleset, loc)
            what = "member" if loc.table == IPSET_TABLE else "real server"
            self._head(body, loc, f"{what} {loc.index} of {len(chain.rules) if chain is not None else 0}")
            if rule is not None:
                body.append(printable(rule.raw) + "\n", self._s("hop"))
            self._hop(body)  # the trace's IPVS step, when a hop brought the cursor here
            body.append("\n")
        else:
            self._head(body, loc, "ipset" if loc.table == IPSET_TABLE else "IPVS virtual service")
            self._hop(body)
        for line in (detail or "").split("\n"):  # printable() escapes a newline: one line at a time
            body.append(printable(line) + "\n")

    def _hop(self, body: Text) -> None:
        hop = self.hop
        if hop is None:
            return
        body.append("trace    ", self._s("label"))
        body.append(printable(hop_line(hop).strip()) + "\n", self._s("hop"))
        if hop.note:
            body.append("         " + printable(hop.note) + "\n", self._s("service"))

    def _table(self, body: Text, loc: Loc) -> None:
        table = self.ruleset.tables.get(loc.table)
        if table is None:
            return
        body.append(printable(loc.table or "(iptables -S form: no table)"), self._s("heading"))
        user = sum(1 for c in table if not c.builtin)
        body.append(f"\n{plural(len(table.chains), 'chain')} ({user} user) · {plural(table.rule_count, 'rule')}\n")

    def _chain(self, body: Text, loc: Loc, chain: Chain) -> None:
        self._head(body, loc, "built-in chain" if chain.builtin else "user chain")
        self._hop(body)
        self._insight(body, loc)  # first: what the chain is for matters more than its counts
        if chain.policy is not None:
            body.append("policy   ", self._s("label"))
            body.append(printable(chain.policy), self._s("heading"))
            if chain.counters is not None:
                body.append(f"  ({_counts(chain.counters.packets, chain.counters.bytes)})")
            body.append("\n")
        body.append("rules    ", self._s("label"))
        body.append(plural(len(chain.rules), "rule") + "\n")
        entered = self.entries.get(loc.table, chain.name) if chain.policy is None else None
        if entered is not None:  # the rules that lead here counted them: each packet once, not once per rule
            body.append("entered  ", self._s("label"))
            body.append(f"{_counts(*entered)} (the rules that jump here)\n")
        if chain.line is not None:
            body.append("declared ", self._s("label"))
            body.append(f"line {chain.line}\n")

    def _rule(self, body: Text, loc: Loc, rule: Rule) -> None:
        chain = chain_of(self.ruleset, loc)
        total = len(chain.rules) if chain is not None else 0
        self._head(body, loc, f"rule {loc.index} of {total}")
        self._hop(body)
        self._insight(body, loc)  # first: what it does and its pitfalls, then how it is spelled
        body.append("counters ", self._s("label"))
        if rule.counters is None:
            body.append("not in the dump (saved without -c)\n", self._s("label"))
        else:
            body.append(_counts(rule.counters.packets, rule.counters.bytes) + "\n")
        spec = rule.spec
        body.append("\nmatches\n", self._s("heading"))
        if not spec.matches:
            body.append("  (none: every packet)\n", self._s("label"))
        for match in spec.matches:
            module = "" if match.module == HEADER else f"-m {match.module}"
            if match.implicit:
                module += " (implied by -p)"
            if module:
                body.append(f"  {printable(module)}\n", self._s("service"))
            for opt in match.options:
                body.append("    ")
                if opt.negated:
                    body.append("NOT ", self._s("negation"))
                body.append(printable(opt.name), self._s("heading"))
                if opt.args:
                    body.append(" " + printable(_args(opt)))
                body.append("\n")
        body.append("target\n", self._s("heading"))
        target = spec.target
        if target is None:
            body.append("  (none: only the counters change, evaluation continues)\n", self._s("label"))
        else:
            jumps = chain is not None and target.name in self.ruleset.tables[loc.table].chains
            verb = "-g" if target.goto else "-j"
            body.append(f"  {verb} ")
            body.append(printable(target.name), self._s("heading"))
            for opt in target.options:
                body.append(" " + ("! " if opt.negated else "") + printable(opt.name))
                if opt.args:
                    body.append(" " + printable(_args(opt)))
            if jumps:
                note = "   (goto: no return here)" if target.goto else "   (jump: returns here)"
                body.append(note, self._s("label"))
            body.append("\n")
        body.append("\nsource   ", self._s("label"))
        body.append(f"{printable(self.ruleset.source or '<dump>')}:{rule.line}\n")
        body.append("  " + printable(rule.raw) + "\n")

    def _pieces(self, body: Text, pieces: list[tuple[str, str]]) -> None:
        for style, text in pieces:
            body.append("\n".join(map(printable, text.split("\n"))), self._s(style) if style else "")

    def _nft(self, body: Text, loc: Loc, nft: NftRuleset) -> None:
        """An nft table, chain, set or map, rule or element: decoded from the listing (:mod:`.nft_detail`)."""
        family, name = nft_name(loc.table or "")
        table = nft.table(family, name)
        if table is None:
            return
        if loc.chain is None:
            body.append(printable(loc.table or ""), self._s("heading"))
            body.append("  nft table\n")
            self._pieces(body, nft_table_pieces(table))
            about = getattr(self.insights, "explain_table", lambda _t: None)(loc.table)
            if about:
                body.append("what it is for\n", self._s("heading"))
                body.append(printable(about) + "\n")
            return
        st = table.sets.get(loc.chain[1:]) if loc.chain.startswith("@") else None
        chain = table.chains.get(loc.chain) if st is None else None
        if st is None and chain is None:
            return
        if loc.index is None:
            what = st.kind if st is not None else "base chain" if chain is not None and chain.is_base else "chain"
            self._head(body, loc, what)
            self._hop(body)
            self._insight(body, loc)
            self._pieces(body, nft_set_pieces(st) if st is not None else nft_chain_pieces(chain))  # type: ignore[arg-type]
            return
        item = nft_item(nft, loc)
        if item is None:
            return
        n = len(st.elements) if st is not None else len(chain.rules)  # type: ignore[union-attr]
        self._head(body, loc, f"{'element' if st is not None else 'rule'} {loc.index} of {n}")
        self._hop(body)
        self._insight(body, loc)
        if isinstance(item, tuple):
            self._pieces(body, nft_element_pieces(*item))
        else:
            self._pieces(body, nft_rule_pieces(item, nft.source))

    def _insight(self, text: Text, loc: Loc) -> None:
        """The kube engine's explanation and findings (nothing at all when it has none; a big dump's: a word
        that they are coming, until its service index is there)."""
        if is_pending(self.insights):
            text.append(PENDING_NOTE + "\n", self._s("label"))
            return
        if loc.kind == "rule":
            rule = rule_at(self.ruleset, loc)
            explanation = self.insights.explain(rule) if rule is not None else None
            if explanation:
                text.append("what it does\n", self._s("heading"))
                text.append(printable(explanation) + "\n")
        elif loc.kind == "chain" and loc.chain is not None:
            about = self.insights.explain_chain(loc.table, loc.chain)
            if about:
                text.append("what it is for\n", self._s("heading"))
                text.append(printable(about) + "\n")
        for f in self.insights.findings(loc):
            text.append(f"{f.severity}: ", self._s("error") if f.severity == "error" else self._s("warning"))
            text.append(printable(f.text) + "\n")

    def _callers(self, table: str | None, chain: str) -> Sequence[Loc]:
        """The rules that jump or go to ``chain`` (in an nft table, its map elements and inline verdict maps too)."""
        nft = getattr(self.insights, "callers_of", None)
        found: Sequence[Loc] | None = nft(table, chain) if nft is not None else None
        if found is not None:
            return found
        return [Loc(r.table, r.chain, r.index) for r in graph_of(self.ruleset).callers_of(table, chain)]

    def _set_links(self, loc: Loc | None) -> None:
        """"jumped to from": the rules that jump to this chain (rebuilt only when the chain changes)."""
        chain_loc = loc.chain_loc if loc is not None and loc.chain is not None else None
        if chain_loc == self._links_for:
            return
        self._links_for = chain_loc
        box = self.query_one("#detail-links", OptionList)
        links: list[Loc] = []
        options: list[Option] = []
        if chain_loc is not None and chain_loc.chain is not None and not self.callers_indexed:
            self._links_for = None  # asked again once the index is there
            options.append(Option(Text("← finding the rules that jump here …"), disabled=True))
        elif chain_loc is not None and chain_loc.chain is not None:
            callers = self._callers(chain_loc.table, chain_loc.chain)
            for ref in callers[:MAX_LINKS]:
                links.append(ref)
                options.append(Option(Text(f"← {printable(ref.chain or '')}:{ref.index}")))
            if len(callers) > MAX_LINKS:
                options.append(Option(Text(f"… and {len(callers) - MAX_LINKS} more callers"), disabled=True))
        self._links = links
        box.clear_options()
        box.add_options(options)
        box.display = bool(options)

    def reload(self, ruleset: Ruleset, insights: Insights, entries: EntryCounts) -> None:
        """A watch read: the same place on the new rules (its counters, explanation and callers)."""
        self.ruleset, self.insights, self.entries = ruleset, insights, entries
        self._links_for = None
        self.show(self.loc, self.hop)

    def callers_ready(self) -> None:
        self.callers_indexed = True
        self._links_for = None
        self.show(self.loc, self.hop)

    # -- links ---------------------------------------------------------------------------------------------
    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self._links):
            self.post_message(NavigateRequested(self._links[event.option_index]))

    def action_open_link(self) -> None:
        box = self.query_one("#detail-links", OptionList)
        if box.highlighted is not None and box.highlighted < len(self._links):
            self.post_message(NavigateRequested(self._links[box.highlighted]))

    def focus_links(self) -> None:
        box = self.query_one("#detail-links", OptionList)
        focus_now(box if box.display else self.query_one(TextView))
