"""The packet builder: fields, inline errors from the engine's own validation, presets, running a trace."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select, Static

from kptui.ui.locs import Loc

from .conftest import app_for, ready

pytestmark = pytest.mark.asyncio


def error_text(builder: object, row: int) -> str:
    box = builder.query_one(f"#pb-err-{row}", Static)  # type: ignore[attr-defined]
    return str(box.content) if box.display else ""


async def test_typing_a_packet_and_pressing_t_runs_the_trace() -> None:
    app = app_for("clusterip.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        await pilot.press("3")
        await pilot.press(*"10.244.1.100")  # source
        await pilot.press("tab", "tab", "tab")  # sport, dest ... the Select steals none of these keys
        focused = app.focused
        assert isinstance(focused, Input)
        screen.builder.set_value("dst", "10.96.0.10")
        screen.builder.set_value("dport", "53")
        screen.builder.set_value("proto", "udp")
        await pilot.press("escape")  # out of the text field: keys are commands again
        await pilot.press("t")
        for _ in range(100):
            if screen.trace is not None:
                break
            await pilot.pause(0.02)
        trace = screen.trace
        assert trace is not None
        assert trace.packet.src == "10.244.1.100" and trace.packet.dport == 53 and trace.packet.proto == "udp"
        assert len(trace.paths) == 2  # kube-dns has two endpoints
        assert app.focused is screen.trace_view.hops


CASES = [  # field, bad value, the builder row it belongs to, the message, a good value
    ("src", "10.0.0", 1, "source '10.0.0' is not an IP address", "10.244.1.100"),
    ("dst", "fd00::1", 2, "source and destination must both be IPv4 or both IPv6", "10.96.0.10"),
    ("dport", "eighty", 2, "dport 'eighty' is not a number", "53"),
    ("dport", "", 2, "a tcp packet needs a destination port", "53"),
    ("mark", "0xzz", 3, "mark '0xzz' is not a number", "0x4000"),
    ("affinity", "10.244.1.5:http", 4, "affinity port 'http' is not a number", "10.244.1.5:53"),
    ("node_ips", "10.0.0.300", 5, "node address '10.0.0.300' is not an IP address", "10.0.0.2"),
    ("sport", "70000", 1, "sport 70000 is not a port number", "40001"),
]


async def test_bad_values_show_inline_errors_under_their_field() -> None:
    app = app_for("clusterip.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        builder = app.main_screen.builder
        for name, v in (("src", "10.244.1.100"), ("dst", "10.96.0.10"), ("dport", "53")):
            builder.set_value(name, v)
        for field, bad, row, message, good in CASES:
            builder.set_value(field, bad)
            assert builder.request_trace() is False, field
            await pilot.pause()
            assert message in error_text(builder, row)
            assert builder.query_one(f"#pb-{field}").has_class("-error")
            assert app.main_screen.trace is None
            builder.set_value(field, good)
            assert builder.build() is not None, field
            await pilot.pause()
            assert error_text(builder, row) == ""
            assert not builder.query_one(f"#pb-{field}").has_class("-error")


async def test_t_with_an_incomplete_packet_opens_the_builder_on_its_errors() -> None:
    app = app_for("clusterip.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await pilot.press("t")
        await pilot.pause()
        builder = app.main_screen.builder
        assert "source address needed" in error_text(builder, 1)
        assert app.focused is not None and app.focused.id == "pb-src"


async def test_presets_follow_the_service_under_the_tree_cursor() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        screen.chains.reveal(Loc("nat", "KUBE-SVC-PY4JZH2ITZYEO4CN", 2))
        await pilot.press("3")
        await pilot.pause()
        builder = screen.builder
        assert builder.service is not None and builder.service.name == "shop/frontend:http"
        labels = [p.label for p in builder.presets]
        assert labels[0] == "pod → ClusterIP 10.96.20.10:80/tcp (shop/frontend:http)"
        assert "outside → NodePort :30080/tcp (shop/frontend:http)" in labels
        assert "node → NodePort :30080/tcp (shop/frontend:http)" in labels
        builder.set_value("node_ips", "10.0.0.2")
        builder.query_one("#pb-preset", Select).value = labels.index("outside → NodePort :30080/tcp (shop/frontend:http)")
        await pilot.pause()
        assert (builder.value("src"), builder.value("dst"), builder.value("dport"), builder.value("origin")) == (
            "203.0.113.10", "10.0.0.2", "30080", "external")
        builder.query_one("#pb-preset", Select).value = 0
        await pilot.pause()
        # the pod source comes from the dump's local-traffic detector (! -s 10.244.0.0/16)
        assert (builder.value("src"), builder.value("dst"), builder.value("origin")) == ("10.244.1.5", "10.96.20.10", "pod")
