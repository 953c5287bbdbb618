"""Dump text is shown literally (markup and escapes never interpreted); help is generated from the bindings,
and every binding has an id and a description."""

from __future__ import annotations

import inspect
from typing import ClassVar

import pytest
from textual.binding import Binding, BindingType
from textual.dom import DOMNode

import kptui.ui as ui_package
from kptui.engine import parse_ruleset
from kptui.ui import app as app_module
from kptui.ui.app import HELP_SECTIONS, make_app
from kptui.ui.locs import Loc
from kptui.ui.modals import HelpScreen, binding_rows

from .conftest import ready

HOSTILE = (
    "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n"
    "-A PREROUTING -j KUBE-SERVICES\n"
    '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "[bold red]evil[/] \x1b[31mred\x1b[0m cluster IP" '
    "-m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA\n"
    '-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment "[link=http://x]click[/link]" -j ACCEPT\n'
    "COMMIT\n"
)


@pytest.mark.asyncio
async def test_comments_with_markup_and_escapes_are_shown_literally() -> None:
    app = make_app(ruleset=parse_ruleset(HOSTILE, source="hostile.rules"), env={})
    async with app.run_test(size=(160, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        screen.chains.reveal(Loc("nat", "KUBE-SERVICES", 1))
        await pilot.pause()
        label = screen.chains.chain_tree.cursor_node.label.plain
        assert "[bold red]evil[/]" in label
        assert "\\x1b[31mred\\x1b[0m" in label and "\x1b" not in label
        detail = screen.detail.text
        assert '"[bold red]evil[/] \\x1b[31mred\\x1b[0m cluster IP"' in detail
        assert "\x1b" not in detail
        screen.chains.reveal(Loc("nat", "KUBE-SVC-AAAAAAAAAAAAAAAA", 1))
        await pilot.pause()
        assert "[link=http://x]click[/link]" in screen.detail.text
        await pilot.press("y")
        assert "\x1b" not in app.clipboard  # even the clipboard gets the escaped form


def _ui_classes() -> list[type[DOMNode]]:
    found = []
    for name in ("app", "chain_tree", "chain_tree_widget", "rule_detail", "packet_builder", "trace_view", "hop_list", "text_view",
                 "main_screen", "modals"):  # fmt: skip
        module = __import__(f"kptui.ui.{name}", fromlist=["_"])
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, DOMNode) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_binding_has_an_id_and_a_description() -> None:
    classes = _ui_classes()
    assert len(classes) >= 10
    for cls in classes:
        for binding in binding_rows(cls):
            assert binding.id, f"{cls.__name__}: {binding.key} has no id"
            assert binding.description, f"{cls.__name__}: {binding.key} has no description"


def test_help_covers_every_class_that_defines_keys() -> None:
    with_keys = {cls for cls in _ui_classes() if binding_rows(cls)}
    in_help = {owner for _title, owner in HELP_SECTIONS}
    assert with_keys - in_help <= {ui_package.text_view.TextView}, with_keys - in_help  # plain scrolling keys
    assert app_module.KptuiApp in in_help


@pytest.mark.asyncio
async def test_question_mark_shows_help_generated_from_the_bindings() -> None:
    app = make_app(ruleset=parse_ruleset(HOSTILE), env={})
    async with app.run_test(size=(120, 60)) as pilot:
        await ready(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").content)
        for _title, owner in HELP_SECTIONS:
            for binding in binding_rows(owner):
                assert binding.description in text, (owner.__name__, binding.key)
        assert "Follow/expand" in text and "Next hop" in text and "Jump to chain" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_binding_rows_expand_comma_keys() -> None:
    class W(DOMNode):
        BINDINGS: ClassVar[list[BindingType]] = [Binding("a,b", "x", "X", id="w.x")]

    assert [b.key for b in binding_rows(W)] == ["a", "b"]


@pytest.mark.asyncio
async def test_the_detail_pane_shows_what_an_insights_provider_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension point for the kube engine's explanations and pitfall findings."""
    from kptui.ui import services as services_mod  # the app takes its insights from services.load_insights
    from kptui.ui.services import CommentInsights, Finding

    class Explaining(CommentInsights):
        def explain(self, rule: object) -> str | None:
            return "sends new connections to \x1b[1mthe service"

        def findings(self, loc: Loc) -> list[Finding]:
            return [Finding("warning", f"something about {loc}")] if loc.kind == "rule" else []

    monkeypatch.setattr(services_mod, "load_insights", Explaining)
    app = make_app(ruleset=parse_ruleset(HOSTILE), env={})
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert "what it does" not in screen.detail.text  # a chain: nothing to explain
        screen.chains.reveal(Loc("nat", "KUBE-SERVICES", 1))
        await pilot.pause()
        text = screen.detail.text
        assert "what it does\nsends new connections to \\x1b[1mthe service" in text
        assert "warning: something about nat/KUBE-SERVICES:1" in text


def test_palette_entries_are_literal_text() -> None:
    from textual.style import Style

    from kptui.ui.commands import highlight

    shown = highlight("chain: nat/[b]EVIL[/b]", "evil", Style(bold=True))
    assert shown.plain == "chain: nat/[b]EVIL[/b]"
