"""The detail pane shows the kube engine's explanation of a rule (or chain) and the findings about it."""

from __future__ import annotations

import pytest

from kptui.engine import parse_ruleset
from kptui.ui.app import make_app
from kptui.ui.kube_adapter import KubeInsights
from kptui.ui.locs import Loc

from .conftest import SAMPLES, app_for, ready


@pytest.mark.asyncio
async def test_detail_pane_explains_rules_and_chains_and_lists_findings() -> None:
    app = app_for("mixed-all.rules")
    async with app.run_test(size=(160, 60)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert isinstance(screen.detail.insights, KubeInsights)
        screen.chains.reveal(Loc("nat", "KUBE-SVC-CDGGSHYLG3RE2FKL", 2))
        await pilot.pause()
        text = screen.detail.text
        assert ("what it does\nsends 1 in 3 of the remaining connections to endpoint 10.244.1.11:8080 — effective "
                "share 33.3 %") in text  # fmt: skip
        screen.chains.reveal(Loc("filter", "KUBE-SERVICES", 1))
        await pilot.pause()
        text = screen.detail.text
        assert "what it does\nrejects traffic to ClusterIP 10.96.40.10:80/tcp" in text
        assert "warning: default/broken:http has no endpoints [no-endpoints]." in text
        screen.chains.reveal(Loc("nat", "KUBE-SEP-2ATXUOYIKDUXCR7P", 1))
        await pilot.pause()
        assert "info: hairpin traffic is masqueraded (25 endpoint chains) [hairpin-masquerade]" in screen.detail.text
        screen.chains.reveal(Loc("nat", "KUBE-EXT-2Q4INF73LZQHRC4T"))
        await pilot.pause()
        text = screen.detail.text
        assert "what it is for\nthe external-traffic chain of shop/legacy-api" in text
        assert "what it does" not in text


HOSTILE = (SAMPLES / "mixed-all.rules").read_text().replace(
    '"default/broken:http has no endpoints"', '"[bold red]default/broken[/] \x1b[31mx has no endpoints"')


@pytest.mark.asyncio
async def test_explanations_from_hostile_comments_are_shown_literally() -> None:
    app = make_app(ruleset=parse_ruleset(HOSTILE, source="hostile.rules"), env={})
    async with app.run_test(size=(160, 60)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        screen.chains.reveal(Loc("filter", "KUBE-SERVICES", 1))
        await pilot.pause()
        text = screen.detail.text
        assert "[bold red]default/broken[/] \\x1b[31mx has no endpoints, so clients" in text
        assert "\x1b" not in text


def test_a_big_dumps_findings_wait_for_the_background_and_then_come() -> None:
    """The app defers findings on big dumps (they take up to 0.8 s at 220k rules) to after the first paint."""
    from kptui.engine.kube.findings import find_pitfalls
    from kptui.ui.kube_adapter import kube_insights
    from kptui.ui.locs import Loc

    from .conftest import sample

    ruleset = sample("no-endpoints.rules")
    first = next(f for f in find_pitfalls(ruleset) if f.chain is not None and f.index is not None)
    loc = Loc(first.table, first.chain, first.index)
    insights = kube_insights(ruleset)
    assert insights is not None
    insights.defer_findings = True  # type: ignore[attr-defined]
    assert insights.findings(loc) == ()
    insights.prepare_findings()  # type: ignore[attr-defined]
    assert any(first.code in f.text for f in insights.findings(loc))
