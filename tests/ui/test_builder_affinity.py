"""The packet builder's affinity field (issue 10, item 6): a returning client is traced as one, bound to an
endpoint not known which (one scenario per endpoint) or to the endpoint typed; a bad value is an error on that
field. And ``enter`` on the preset list opens the list (issue 14, item 7): it never runs a trace."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from kptui.ui.packet_builder import _affinity

from .conftest import app_for, ready
from .test_builder_errors_and_presets import shown_errors, wait_trace

pytestmark = pytest.mark.asyncio

CART = {"origin": "pod", "src": "10.244.1.5", "dst": "10.96.60.10", "dport": "80", "node_ips": "10.0.0.2"}
CART_ENDPOINTS = {"10.244.1.61:8080", "10.244.1.62:8080", "10.244.2.63:8080"}


async def traced(affinity: str) -> object:
    """The trace of a pod's packet to shop/cart's cluster IP (session affinity on) with ``affinity`` typed."""
    app = app_for("session-affinity.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        builder = app.main_screen.builder
        for name, value in {**CART, "affinity": affinity}.items():
            builder.set_value(name, value)
        await pilot.press("3")
        assert builder.request_trace(), shown_errors(builder)
        assert await wait_trace(app, pilot) is not None
        return app.main_screen.trace


async def test_a_new_client_is_balanced_by_chance_in_one_scenario() -> None:
    trace = await traced("")
    assert {p.endpoint for p in trace.paths} == CART_ENDPOINTS  # type: ignore[attr-defined]
    assert len(trace.scenarios) == 1  # type: ignore[attr-defined]
    assert trace.node.affinity is None  # type: ignore[attr-defined]


async def test_any_returning_client_is_one_scenario_per_endpoint_each_saying_so() -> None:
    trace = await traced("any")
    paths = trace.paths  # type: ignore[attr-defined]
    assert trace.node.affinity == "any"  # type: ignore[attr-defined]
    assert {p.endpoint for p in paths} == CART_ENDPOINTS
    assert len(trace.scenarios) == 3  # type: ignore[attr-defined]
    for path in paths:
        assert path.probability == 1
        assert any("bound to" in a and path.endpoint in a for a in path.assumptions), path.assumptions


async def test_a_client_bound_to_the_endpoint_typed_goes_there_only() -> None:
    trace = await traced("10.244.1.62:8080")
    assert [(p.endpoint, p.probability) for p in trace.paths] == [("10.244.1.62:8080", 1)]  # type: ignore[attr-defined]


async def test_a_bad_affinity_is_an_error_on_its_field_and_nothing_is_traced() -> None:
    app = app_for("session-affinity.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        builder = app.main_screen.builder
        for name, value in {**CART, "affinity": "10.244.1.62:99999"}.items():
            builder.set_value(name, value)
        assert not builder.request_trace()
        assert "affinity port 99999 is not a port number" in shown_errors(builder)
        builder.set_value("affinity", "fd00::1")  # an IPv6 endpoint for an IPv4 packet
        assert not builder.request_trace()
        assert "affinity: endpoint fd00::1 is not IPv4 like the packet" in shown_errors(builder)
        await pilot.pause()
        assert app.main_screen.trace is None


@pytest.mark.parametrize(("typed", "want"), [
    ("", None), ("any", "any"), ("Returning", "any"), ("10.244.1.5", "10.244.1.5"), ("[fd00::1]", "fd00::1"),
    ("10.244.1.5:8080", "10.244.1.5:8080"), ("[fd00:0::1]:80", "[fd00::1]:80"),
])  # fmt: skip
async def test_affinity_values_are_written_as_the_engine_compares_them(typed: str, want: str | None) -> None:
    assert _affinity(typed) == (want, None)


@pytest.mark.parametrize("typed", ["x", "10.1.1.1:", "fd00::1]:80", "10.1.1.1:http", "10.1.1.300"])
async def test_affinity_values_that_are_no_endpoint_are_refused(typed: str) -> None:
    value, error = _affinity(typed)
    assert value is None and error


@pytest.mark.parametrize("with_service", [True, False])
async def test_enter_on_the_preset_list_opens_it_and_traces_nothing(with_service: bool) -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        await pilot.press("3")
        if with_service:
            screen.builder.set_service(screen.insights.services["shop/frontend:http"])
        await pilot.pause()
        select = screen.builder.query_one("#pb-preset", Select)
        select.focus()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert select.expanded
        assert screen.trace is None
        if with_service:  # enter again picks the highlighted preset: its fields, still no trace
            await pilot.press("down", "enter")
            await pilot.pause()
            assert not select.expanded
            assert screen.builder.value("dst")
            assert screen.trace is None
