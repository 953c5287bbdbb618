"""Small screens: loading (while a big dump parses), help (generated from the bindings), save a trace, choose
where to follow a rule that leads to several chains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, LoadingIndicator, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from kptui.fmt import printable

from .export import Exists

__all__ = ["ChooseScreen", "HelpScreen", "LoadingScreen", "SaveScreen", "binding_rows"]


class LoadingScreen(Screen[None]):
    """Shown while the dump parses in a thread: what is being read, an indicator, and (told by the parse,
    :meth:`show_progress`) the lines parsed of the total and what the load is doing."""

    def __init__(self, what: str, total: int | None = None) -> None:
        super().__init__()
        self.what = what
        self.total = total  # lines to parse, when known: a bar that fills (else an indicator: a live read)
        self.doing = ""  # the last progress shown (tests and benchmarks read it)

    def compose(self) -> ComposeResult:
        with Vertical(id="loading-box"):
            yield Static(Text(printable(self.what), justify="center"), id="loading-text", markup=False)
            # Animations redraw the screen many times a second, and the parse in the other thread waits for the
            # interpreter lock each time (seconds on a big dump): a parse shows its lines done instead.
            if self.total is None:
                yield LoadingIndicator(id="loading-indicator")
            yield ProgressBar(total=None if self.total is None else max(self.total, 1), show_eta=False,
                              id="loading-bar")
            yield Static("", id="loading-progress", markup=False)

    def show_progress(self, done: int, total: int, doing: str) -> None:
        """``done`` of ``total`` (lines) and what is being done, in words (text from us, never from the dump)."""
        self.doing = doing
        try:
            self.query_one("#loading-bar", ProgressBar).update(total=max(total, 1), progress=done)
            self.query_one("#loading-progress", Static).update(Text(doing, justify="center"))
        except NoMatches:  # not composed yet, or already gone
            pass


def binding_rows(owner: type[DOMNode]) -> list[Binding]:
    """The bindings a class declares itself (``BINDINGS`` in its own body), expanded per key."""
    declared = owner.__dict__.get("BINDINGS", [])
    return [b for b in Binding.make_bindings(declared)]


class HelpScreen(ModalScreen[None]):
    """Every key kptui defines, read from the classes' BINDINGS: help cannot drift from the keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close help", id="help.close"),
    ]

    def __init__(self, sections: Sequence[tuple[str, type[DOMNode]]]) -> None:
        super().__init__()
        self.sections = sections

    def render_help(self) -> Text:
        text = Text(end="")
        for title, owner in self.sections:
            rows: dict[str, list[str]] = {}  # description → keys (a binding with several keys is one row)
            tips: dict[str, str] = {}
            for b in binding_rows(owner):
                rows.setdefault(b.description, []).append(self.app.get_key_display(b))
                if b.tooltip:
                    tips[b.description] = b.tooltip
            if not rows:
                continue
            text.append(f"{title}\n", "bold underline")
            for desc, keys in rows.items():
                text.append(f"  {' '.join(keys):<14}", "bold")
                text.append(desc)
                if desc in tips:
                    text.append(f": {tips[desc]}", "dim")
                text.append("\n")
            text.append("\n")
        text.append("Mouse works everywhere; nothing needs it. ctrl+p lists every command (chain:, trace:, copy:, "
                    "export:).", "dim")  # fmt: skip
        return text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self.render_help(), id="help-text", markup=False)
        yield Footer()

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class Save(Protocol):
    """What the save dialog calls: None when saved, an error to show, or Exists (nothing written)."""

    def __call__(self, path: str, *, replace: bool = False) -> str | Exists | None: ...


class SaveScreen(ModalScreen[str | None]):
    """Ask where to save the trace. ``save(path)`` returns None when saved, an error to show inline, or
    :class:`~kptui.ui.export.Exists` when a file is there: the dialog says so, and only a second enter on the
    same path calls ``save(path, replace=True)``. Changing the path asks again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="save.cancel"),
    ]

    def __init__(self, default: str, save: Save) -> None:
        super().__init__()
        self.default = default
        self.save = save
        self.confirming: str | None = None  # the path whose file a second enter replaces

    def compose(self) -> ComposeResult:
        with Vertical(id="save-box"):
            yield Static(Text("Save the trace to (.json → kptui.trace/1 JSON, anything else → Markdown):"),
                         markup=False)  # fmt: skip
            yield Input(self.default, id="save-path")
            yield Static(id="save-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#save-error").display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if not path:
            return
        problem = self.save(path, replace=True) if path == self.confirming else self.save(path)
        if problem is None:
            self.dismiss(path)
            return
        if isinstance(problem, Exists):
            self.confirming = path
            problem = f"{path} exists — press enter again to replace it, or change the name"
        else:
            self.confirming = None
        box = self.query_one("#save-error", Static)
        box.update(Text(printable(problem)))
        box.display = True

    def on_input_changed(self, event: Input.Changed) -> None:
        """Another path: the confirmation was for the old one (its notice goes too)."""
        if self.confirming is not None and event.value.strip() != self.confirming:
            self.confirming = None
            self.query_one("#save-error").display = False

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseScreen(ModalScreen[str | None]):
    """Pick one of ``choices`` (chain names, from the dump: shown printable, never as markup); dismissed with it,
    or None on escape. For enter on an nft rule whose verdict map leads to several chains."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="choose.cancel"),
    ]

    def __init__(self, title: str, choices: Sequence[str]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = tuple(choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="choose-box"):
            yield Static(Text(printable(self.title_text)), id="choose-title", markup=False)
            yield OptionList(*(Option(Text(printable(c))) for c in self.choices), id="choose-list")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#choose-list", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
