"""Copy and export on the main screen (:class:`kptui.ui.main_screen.MainScreen`): ``y``/``Y`` copy the rule, the
``iptables -L`` command or the trace through the app's clipboard (:mod:`kptui.ui.clipboard`), ``ctrl+s`` saves
the trace through the writer the CLI handed the app (:mod:`kptui.ui.export`)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from textual.screen import Screen

from kptui.engine.ipvs.display import IPSET_TABLE, ipvs_list_command, is_ipvs_table
from kptui.engine.nft.display import is_nft_table, nft_name
from kptui.engine.trace_report import trace_text
from kptui.fmt import printable

from .export import Exists, format_for, saved_message, trace_json, trace_markdown
from .locs import Loc, rule_at
from .modals import SaveScreen
from .nft_insights import copy_command, copy_text

if TYPE_CHECKING:
    from kptui.engine import Ruleset
    from kptui.engine.trace_model import Trace

    from .clipboard import Clipboard
    from .export import Writer
    from .rule_detail import RuleDetail
    from .trace_view import TraceView

    _ScreenBase = Screen[None]
else:
    _ScreenBase = object

__all__ = ["CopyExport"]


class CopyExport(_ScreenBase):
    """Mixed into :class:`kptui.ui.main_screen.MainScreen` (which provides what is declared here)."""

    ruleset: Ruleset
    clipboard: Clipboard
    writer: Writer
    trace: Trace | None

    if TYPE_CHECKING:

        @property
        def detail(self) -> RuleDetail: ...

        @property
        def trace_view(self) -> TraceView: ...

    def _copy(self, text: str, what: str) -> None:
        ok, message = self.clipboard.copy(text, what)
        self.notify(printable(message), severity="information" if ok else "warning", markup=False)

    def action_copy(self, what: str = "auto") -> None:
        loc = self.detail.loc
        if what == "auto":
            in_trace = self.trace_view in self.focused.ancestors_with_self if self.focused else False
            what = "trace" if in_trace and self.trace else "rule" if loc and loc.kind == "rule" else "list"
        if what == "trace":
            if self.trace is None:
                self.notify("No trace to copy yet (t runs one)", severity="warning")
                return
            text = "\n".join(printable(line) for line in trace_text(
                self.trace, all_hops=self.trace_view.hops.all_hops).split("\n"))  # fmt: skip
            self._copy(text, "the trace as text")
        elif loc is not None and is_nft_table(loc.table):
            self._copy_nft(what, loc)
        elif loc is not None and is_ipvs_table(loc.table):
            self._copy_ipvs(what, loc)
        elif what == "rule" and loc is not None and (rule := rule_at(self.ruleset, loc)) is not None:
            self._copy(printable(rule.raw), f"rule {printable(str(loc))} as an iptables-save line")
        elif loc is not None and loc.chain is not None:
            tool = "ip6tables" if self.ruleset.family == "ipv6" else "iptables"
            table = f"-t {shlex.quote(printable(loc.table))} " if loc.table else ""
            cmd = f"{tool} {table}-L {shlex.quote(printable(loc.chain))} -nv"
            self._copy(cmd, f"'{cmd}'")
        else:
            self.notify("Nothing to copy here: put the cursor on a chain or rule", severity="warning")

    def _copy_ipvs(self, what: str, loc: Loc) -> None:
        """``y`` on a set member: its ``ipset save`` line; on a real server: the row. ``Y`` (or ``y`` on a set or
        virtual service): the read-only command that lists it (``ipset list NAME``, ``ipvsadm -L -n -t …``)."""
        rule = rule_at(self.ruleset, loc) if loc.kind == "rule" else None
        if what == "rule" and rule is not None:
            if loc.table == IPSET_TABLE:
                line = f"add {loc.chain} {rule.raw}"  # the member as saved, with its nomatch
                self._copy(printable(line), f"member {printable(str(loc))} as ipset save writes it")
            else:
                self._copy(printable(rule.raw), f"real server {printable(str(loc))}")
            return
        cmd = ipvs_list_command(loc)
        if cmd is None:
            self.notify("Nothing to copy here: put the cursor on a set or virtual service", severity="warning")
            return
        cmd = printable(cmd)
        self._copy(cmd, f"'{cmd}'")

    def _copy_nft(self, what: str, loc: Loc) -> None:
        """``y`` on an nft rule or element: it as nft lists it; ``Y`` (or ``y`` on a chain, set or table): the
        ``nft list chain|set|map|table …`` command that lists it."""
        nft = getattr(self, "nft", None)
        if what == "rule" and nft is not None and (text := copy_text(nft, loc)) is not None:
            self._copy(printable(text), f"{'element' if (loc.chain or '').startswith('@') else 'rule'} "
                       f"{printable(str(loc))} as nft lists it")  # fmt: skip
            return
        kind = "map"
        if nft is not None and (loc.chain or "").startswith("@"):
            family, name = nft_name(loc.table or "")
            table = nft.table(family, name)
            st = table.sets.get((loc.chain or "")[1:]) if table is not None else None
            kind = st.kind if st is not None else kind
        cmd = copy_command(loc, kind=kind)
        if cmd is None:
            self.notify("Nothing to copy here: put the cursor on a chain or rule", severity="warning")
            return
        cmd = printable(cmd)
        self._copy(cmd, f"'{cmd}'")

    def action_export(self, fmt: str = "markdown") -> None:
        if self.trace is None:
            self.notify("No trace to save yet (t runs one)", severity="warning")
            return
        default = "kptui-trace.json" if fmt == "json" else "kptui-trace.md"
        self.app.push_screen(SaveScreen(default, self.save_trace))

    def save_trace(self, path: str, *, replace: bool = False) -> str | Exists | None:
        """Write the current trace to ``path`` (format by extension): None when written, Exists when a file is
        there and ``replace`` is not set (the dialog asks first), else an error message."""
        if self.trace is None:
            return "no trace to save"
        fmt = format_for(path)
        origin = getattr(self, "origin", None) or getattr(self.app, "origin", None)  # a fleet's node: its own
        where = {"source": self.ruleset.source, "origin": origin}
        text = trace_json(self.trace, **where) if fmt == "json" else trace_markdown(self.trace, **where)
        try:
            replaced = self.writer(path, text, replace=replace)
        except FileExistsError:
            return Exists(path)
        except OSError as exc:
            return f"cannot write {path}: {exc.strerror or exc}"
        self.notify(saved_message(path, fmt, replaced=replaced), markup=False)
        return None
