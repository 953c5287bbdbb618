"""The packet builder shows every field in error at once, and a NodePort preset on a dump that cannot tell the
node's address asks for that address (on the node IPs field), then fills the destination from it and traces."""

from __future__ import annotations

import pytest
from textual.command import CommandList
from textual.widgets import Select, Static

from kptui.engine.packet import Packet
from kptui.ui.app import KptuiApp
from kptui.ui.presets import NODE_NEEDED, OUTSIDE_CLIENT, OUTSIDE_CLIENT6, presets_for
from kptui.ui.services import Frontend, ServiceInfo

from .conftest import app_for, ready

pytestmark = pytest.mark.asyncio

# Bug A's fields: every one of them wrong, none left empty.
TYPOS = {"src": "abc", "sport": "8o", "dst": "10.0.0.300", "dport": "99999", "in_iface": "eth0/1",
         "mark": "0xZZ", "pod_cidr": "10.244.0.0/33"}  # fmt: skip


def shown_errors(builder: object) -> str:
    """Every error line the builder shows, as one text."""
    boxes = builder.query(".pb-error").results(Static)  # type: ignore[attr-defined]
    return "\n".join(str(box.content) for box in boxes if box.display)


async def palette_run(app: KptuiApp, pilot: object, typed: str) -> None:
    """ctrl+p, type ``typed``, enter: as a user runs a palette command."""
    await pilot.press("ctrl+p")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    await pilot.press(*typed)  # type: ignore[attr-defined]
    for _ in range(200):  # the palette searches in the background: wait until the command typed is highlighted
        await pilot.pause(0.02)  # type: ignore[attr-defined]
        options = app.screen.query(CommandList)
        if options and (index := options.first().highlighted) is not None:
            prompt = options.first().get_option_at_index(index).prompt
            if typed in getattr(prompt, "plain", str(prompt)):
                break
    else:
        raise AssertionError(f"the palette never highlighted {typed!r}")
    await pilot.press("enter")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def wait_trace(app: KptuiApp, pilot: object) -> Packet | None:
    screen = app.main_screen
    for _ in range(150):
        if screen.trace is not None:
            return screen.trace.packet
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    return None


# -- bug A: every error at once --------------------------------------------------------------------------------
async def test_t_shows_the_error_of_every_field_at_once_and_focuses_the_first() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        builder = app.main_screen.builder
        await pilot.press("3")
        for name, value in TYPOS.items():
            builder.set_value(name, value)
        await pilot.press("escape", "t")  # out of the text field, then the trace key
        await pilot.pause()
        assert set(builder.errors) == set(TYPOS), builder.errors
        text = shown_errors(builder)
        for message in ("✗ source 'abc' is not an IP address", "✗ destination '10.0.0.300' is not an IP address",
                        "✗ sport '8o' is not a number", "✗ dport 99999 is not a port number (0-65535)",
                        "✗ in-iface 'eth0/1' is not an interface name", "✗ mark '0xZZ' is not a number",
                        "✗ pod CIDR '10.244.0.0/33' is not an address or CIDR"):  # fmt: skip
            assert message in text, (message, text)
        assert all(builder.query_one(f"#pb-{name}").has_class("-error") for name in TYPOS)
        assert app.focused is not None and app.focused.id == "pb-src"  # the first field in error, as before
        assert app.main_screen.trace is None


async def test_errors_no_single_field_shows_come_with_the_others() -> None:
    app = app_for("clusterip.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        builder = app.main_screen.builder
        cases = [  # (fields, field → a piece of its message), all at once
            ({"src": "10.244.1.5", "dst": "fd00::10", "dport": "", "node_ips": "10.0.0.2, nodeA",
              "pod_cidr": "10.244.0.0/16, x"},
             {"dst": "must both be IPv4 or both IPv6", "dport": "a tcp packet needs a destination port",
              "node_ips": "node address 'nodeA' is not an IP address", "pod_cidr": "pod CIDR 'x' is not"}),
            ({"src": "", "dst": "10.96.0.10", "dport": "53", "mark": "1_0", "node_ips": "", "pod_cidr": ""},
             {"src": "source address needed", "mark": "is not a number"}),
        ]  # fmt: skip
        for values, want in cases:
            for name, value in values.items():
                builder.set_value(name, value)
            assert builder.build() is None
            assert set(builder.errors) == set(want), builder.errors
            for name, piece in want.items():
                assert piece in builder.errors[name], (name, builder.errors)
        for name, value in {"src": "10.244.1.5", "dst": "10.96.0.10", "dport": "53", "mark": "0"}.items():
            builder.set_value(name, value)
        built = builder.build()
        assert built is not None and builder.errors == {} and shown_errors(builder) == ""


# -- bug B: a NodePort preset without the node's address -------------------------------------------------------
async def test_a_node_to_nodeport_preset_on_a_dump_asks_for_the_node_address_then_traces() -> None:
    app = app_for("mixed-all.rules")  # a dump: nothing in it says what the node's address is
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        screen, builder = app.main_screen, app.main_screen.builder
        await palette_run(app, pilot, "node → NodePort :30080")
        assert screen.trace is None
        assert builder.errors == {"node_ips": NODE_NEEDED}  # neither source nor destination blamed
        assert f"✗ {NODE_NEEDED}" == shown_errors(builder)
        assert app.focused is not None and app.focused.id == "pb-node_ips"
        assert [builder.value(f) for f in ("proto", "dport", "origin", "src", "dst")] == [
            "tcp", "30080", "local", "", ""]  # what the preset can fill without the node
        await pilot.press(*"10.0.0.7", "enter")  # typed in the node IPs field it focused
        packet = await wait_trace(app, pilot)
        assert packet is not None and (packet.src, packet.dst, packet.dport, packet.origin) == (
            "10.0.0.7", "10.0.0.7", 30080, "local")
        assert (builder.value("src"), builder.value("dst")) == ("10.0.0.7", "10.0.0.7")
        assert builder.errors == {}


async def test_an_outside_to_nodeport_preset_keeps_its_client_and_takes_the_node_address_typed_later() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        screen, builder = app.main_screen, app.main_screen.builder
        await palette_run(app, pilot, "outside → NodePort :30080")
        assert screen.trace is None and builder.errors == {"node_ips": NODE_NEEDED}
        assert (builder.value("src"), builder.value("dst"), builder.value("origin")) == (OUTSIDE_CLIENT, "", "external")
        assert app.focused is not None and app.focused.id == "pb-node_ips"
        await pilot.press(*"fd00::2, 10.0.0.2", "escape", "t")  # the first node IP of the packet's family
        packet = await wait_trace(app, pilot)
        assert packet is not None and (packet.src, packet.dst, packet.dport) == (OUTSIDE_CLIENT, "10.0.0.2", 30080)
        assert screen.trace is not None and any(p.verdict == "ACCEPT" for p in screen.trace.paths)


async def test_a_nodeport_preset_picked_in_the_builder_goes_to_the_node_ips_field() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        screen, builder = app.main_screen, app.main_screen.builder
        builder.set_service(screen.insights.services["shop/frontend:http"])
        await pilot.press("3")
        await pilot.pause()
        labels = [p.label for p in builder.presets]
        builder.query_one("#pb-preset", Select).value = labels.index("node → NodePort :30080/tcp (shop/frontend:http)")
        await pilot.pause()
        assert builder.errors == {"node_ips": NODE_NEEDED}
        assert app.focused is not None and app.focused.id == "pb-node_ips"
        await pilot.press(*"10.0.0.2", "enter")
        packet = await wait_trace(app, pilot)
        assert packet is not None and (packet.src, packet.dst, packet.origin) == ("10.0.0.2", "10.0.0.2", "local")


async def test_a_node_address_typed_wrong_gets_its_own_error_and_a_typed_destination_needs_none() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        screen, builder = app.main_screen, app.main_screen.builder
        service = screen.insights.services["shop/frontend:http"]
        index = [p.label for p in presets_for(service)].index("outside → NodePort :30080/tcp (shop/frontend:http)")
        assert builder.apply_preset(index, service)
        assert builder.errors == {"node_ips": NODE_NEEDED}
        builder.set_value("node_ips", "node-a")
        assert builder.build() is None and builder.errors == {"node_ips": "node address 'node-a' is not an IP address"}
        builder.set_value("node_ips", "")
        builder.set_value("dst", "10.0.0.9")  # the user's own destination: the preset waits for nothing now
        built = builder.build()
        assert built is not None and built[0].dst == "10.0.0.9" and built[1].addresses == ()
        builder.set_value("node_ips", "10.0.0.2")
        built = builder.build()
        assert built is not None and built[0].dst == "10.0.0.9"  # kept: it was never the preset's to fill


async def test_an_ipv6_dump_gets_an_ipv6_outside_client_before_any_node_address() -> None:
    app = app_for("ipv6.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        builder = app.main_screen.builder
        await palette_run(app, pilot, "outside → NodePort :30080")
        assert builder.errors == {"node_ips": NODE_NEEDED}
        assert builder.value("src") == OUTSIDE_CLIENT6
        builder.set_value("node_ips", "10.0.0.2, fd00::2")
        assert builder.request_trace()
        packet = await wait_trace(app, pilot)
        assert packet is not None and (packet.src, packet.dst) == (OUTSIDE_CLIENT6, "fd00::2")


async def test_presets_with_an_address_of_their_own_are_unchanged_and_trace_at_once() -> None:
    service = ServiceInfo("shop/web:http", [Frontend("cluster-ip", "10.96.0.20", 80, "tcp"),
                                            Frontend("loadbalancer", "192.0.2.20", 80, "tcp"),
                                            Frontend("nodeport", None, 30080, "tcp")])  # fmt: skip
    pod, lb, outside, node = presets_for(service, pod_cidrs=("10.244.0.0/16",))
    assert pod.fields == {"proto": "tcp", "dport": "80", "sport": "", "in_iface": "", "mark": "0",
                          "ctstate": "NEW", "origin": "pod", "src": "10.244.1.5", "dst": "10.96.0.20"}  # fmt: skip
    assert (lb.fields["origin"], lb.fields["src"], lb.fields["dst"]) == ("external", OUTSIDE_CLIENT, "192.0.2.20")
    assert pod.node_fields == lb.node_fields == ()
    assert (outside.node_fields, node.node_fields) == (("dst",), ("src", "dst"))
    assert [p.label for p in presets_for(service, node_ips=("10.0.0.2",), family=4)] == [
        p.label for p in (pod, lb, outside, node)]  # the palette's indexes hold whatever the node
    app = app_for("mixed-all.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        for typed, dst in (("outside → LoadBalancer IP 192.0.2.20", "192.0.2.20"),
                           ("pod → ClusterIP 10.96.40.10", "10.96.40.10")):  # fmt: skip
            app.main_screen.trace = None
            await palette_run(app, pilot, typed)
            packet = await wait_trace(app, pilot)
            assert packet is not None and packet.dst == dst, (typed, app.main_screen.builder.errors)
            assert app.main_screen.builder.errors == {}
