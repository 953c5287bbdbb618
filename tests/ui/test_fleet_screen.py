"""The fleet screen through Pilot (issue 17, item 4): the node list and the service ports × nodes table as the
comparison says (differences and NodePorts that drop highlighted, the failed capture as such), the filter (a
port, an address or CIDR, text; rows that differ), enter on a cell or a node → that node's explorer → escape
back, one packet traced on every node and the outcomes compared, untrusted bundle text shown literally, and
``kptui DIR`` / ``kptui A.kptui B.kptui`` choosing the fleet screen. The fleet: tests/ui/fleet_fixture.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from kptui.cli import UserError
from kptui.cli.explorer import app_source, build_app_parser
from kptui.ui.fleet_matrix_view import FleetTable
from kptui.ui.fleet_screen import FleetScreen
from kptui.ui.node_screen import NodeScreen
from tests.fleet.cluster import NODE_IP

from .fleet_fixture import FAILED, fleet_app, fleet_ready, node_ready, write_fleet_dir


def cells(table: FleetTable) -> dict[str, list[str]]:
    """Row key → the plain text of its cells."""
    return {str(row.key.value): [c.plain for c in table.get_row(row.key)] for row in table.ordered_rows}


def styled(table: FleetTable, row: str, column: int, style: str) -> bool:
    """Whether a cell carries ``style`` (the state's component style) somewhere in its text."""
    cell = table.get_row(row)[column]
    want = table.style_of(style)
    return cell.style == want or any(s.style == want for s in cell.spans)


def screen(app: Any) -> FleetScreen:
    assert isinstance(app.screen, FleetScreen), type(app.screen)
    return app.screen


async def wait_for(pilot: Any, check: Any, what: str) -> None:
    for _ in range(400):
        if check():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"never: {what}")


@pytest.mark.asyncio
async def test_the_table_shows_how_each_node_stands_and_the_failed_capture() -> None:
    app = fleet_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        table = s.matrix.table
        assert [str(c.label) for c in table.ordered_columns] == ["service port", "a", "b", "c", "e", "f ✗"]
        rows = cells(table)
        assert rows["default/web:http tcp"] == ["default/web:http", "=", "=", "≠ endpoints", "=", "✗ failed"]
        assert rows["shop/new:http tcp"][1:5] == ["=", "=", "missing", "="]
        assert rows["shop/checkout:http tcp"][1:5] == ["=", "=", "= · drops", "= · drops"]
        assert rows["shop/frontend:http tcp"][1:5] == ["=", "=", "=", "= · drops"]
        assert rows["default/kubernetes:https tcp"][1:5] == ["="] * 4
        # highlighted: what differs in the differing style, a NodePort that drops in the drops style
        assert styled(table, "default/web:http tcp", 3, "differs") and styled(table, "shop/new:http tcp", 3, "missing")
        assert styled(table, "shop/checkout:http tcp", 3, "drops") and not styled(table, "shop/checkout:http tcp", 1,
                                                                                   "drops")  # fmt: skip
        assert styled(table, "default/web:http tcp", 0, "differs") and styled(table, "default/web:http tcp", 5, "failed")
        nodes = cells(s.nodes)
        assert nodes["c"][4] == "2 ≠ majority" and nodes["a"][4] == "= majority" and nodes["e"][5] == "1"
        assert nodes["f"][4] == "not compared" and nodes["f"][8] == "failed: kubectl debug node/…"  # (the detail says all)
        bar = str(s.query_one("#fleet-bar").content)
        assert bar.startswith("fleet captures/ · 5 nodes, 1 capture failed · 4 compared · 6 service ports, 2 differ")
        status = str(s.query_one("#fleet-status").content)
        assert "6 service ports · 2 differ · 2 with a NodePort that drops somewhere" in status
        # the detail follows the cursor: web's row on c says what differs
        table.move_cursor(row=table.get_row_index("default/web:http tcp"), column=3)
        await pilot.pause()
        detail = str(s.detail.query_one("#fleet-detail-body").content)
        assert "on c       endpoints +10.244.9.99:8080 −10.244.5.15:8080" in detail and "node c" in detail
        # the failed node's row: its cause in full
        await pilot.press("1")
        s.nodes.move_cursor(row=4)
        await pilot.pause()
        detail = str(s.detail.query_one("#fleet-detail-body").content)
        assert f"capture    failed: {FAILED}" in detail


@pytest.mark.asyncio
async def test_the_filter_port_address_cidr_text_and_rows_that_differ() -> None:
    app = fleet_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        table = s.matrix.table

        async def query(text: str) -> list[str]:
            await pilot.press("2", "slash", *text, "enter")
            await pilot.pause()
            return list(cells(table))

        assert await query("30090") == ["shop/checkout:http tcp"]  # a NodePort
        await pilot.press("escape")
        assert await query("10.96.0.10") == ["kube-system/kube-dns:dns udp"]  # a cluster IP
        await pilot.press("escape")
        assert await query("10.244.9.0/24") == ["default/web:http tcp"]  # c's stale endpoint, in a CIDR
        await pilot.press("escape")
        assert await query("shop") == ["shop/checkout:http tcp", "shop/frontend:http tcp", "shop/new:http tcp"]
        assert "/shop" in str(s.query_one("#fleet-status").content)
        await pilot.press("d")  # and only the rows that differ: new lacks on c; checkout and frontend drop
        assert list(cells(table)) == ["shop/checkout:http tcp", "shop/frontend:http tcp", "shop/new:http tcp"]
        await pilot.press("escape")  # the filter cleared; `d` still on
        await pilot.pause()
        assert list(cells(table)) == ["default/web:http tcp", "shop/checkout:http tcp", "shop/frontend:http tcp",
                                      "shop/new:http tcp"]  # fmt: skip
        await pilot.press("d")
        await pilot.pause()
        assert len(cells(table)) == 6
        await pilot.press("1", "slash", *"53", "enter")  # from the node list too
        await pilot.pause()
        assert list(cells(table)) == ["kube-system/kube-dns:dns udp"]
        await pilot.press("escape")
        assert await query("no-such-thing") == []
        assert str(s.query_one("#fleet-status").content).startswith("nothing matches")
        assert "no service port matches the filter" in str(s.detail.query_one("#fleet-detail-body").content)


@pytest.mark.asyncio
async def test_enter_on_a_cell_opens_the_nodes_explorer_and_escape_comes_back() -> None:
    app = fleet_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        table = s.matrix.table
        table.move_cursor(row=table.get_row_index("default/web:http tcp"), column=3)  # node c
        await pilot.pause()
        await pilot.press("enter")
        await node_ready(app, pilot)
        node = app.screen
        assert isinstance(node, NodeScreen) and node.node_name == "c"
        header = str(node.query_one("#source-bar").content)
        assert header.startswith("node c of fleet captures/: capture bundle c.kptui")
        assert node.builder.value("node_ips") == NODE_IP["c"]  # its own node context
        assert node.ruleset.chain("nat", "KUBE-SERVICES") is not None
        await pilot.press("escape")
        await pilot.pause()
        assert screen(app) is s and s.matrix.cursor == ("default/web:http tcp", "c")  # where it was
        # from the node list: node e
        await pilot.press("1", "down", "down", "down", "enter")
        await node_ready(app, pilot)
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == "e"
        assert app.screen.builder.value("node_ips") == NODE_IP["e"]
        # escape clears the tree's filter first, then goes back
        await pilot.press("slash", *"KUBE-NODEPORTS", "enter")
        await pilot.pause(0.5)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert screen(app) is s
        # the failed node has no explorer: a notice says why, the fleet screen stays
        await pilot.press("1", "down", "enter")
        await pilot.pause()
        assert screen(app) is s
        assert any("its capture failed" in str(n.message) for n in app._notifications)


@pytest.mark.asyncio
async def test_one_packet_on_every_node_and_the_outcomes_compared() -> None:
    app = fleet_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        table = s.matrix.table
        table.move_cursor(row=table.get_row_index("shop/frontend:http tcp"), column=0)
        await pilot.press("p")  # its NodePort from an external client to each node's own address
        await wait_for(pilot, lambda: s.trace_result is not None, "the fleet trace")
        assert s.trace_pane.fields() == {"origin": "external", "proto": "tcp", "src": "203.0.113.10", "dst": "node",
                                         "dport": "30080"}  # fmt: skip
        result = s.trace_result
        assert result is not None
        by = {o.node: o for o in result.outcomes}
        assert by["a"].endpoints == ("10.244.1.21:8080", "10.244.2.22:8080") and by["a"].masquerade == "yes"
        assert by["a"].packet == f"203.0.113.10:40000 → {NODE_IP['a']}:30080/tcp"  # each node's own address
        assert by["e"].endpoints == () and "DROP at filter/FORWARD:1" in by["e"].outcome
        assert by["f"].error == FAILED
        assert dict(result.differing).keys() == {"e", "f"}
        rows = cells(s.trace_pane.outcomes)
        assert rows["a"][1] == "= majority" and rows["e"][1].startswith("DROP at filter/FORWARD:1")
        assert rows["f"][1].startswith("not traced: kubectl debug node/f")
        assert styled(s.trace_pane.outcomes, "e", 1, "differs") and styled(s.trace_pane.outcomes, "f", 0, "failed")
        majority = str(s.query_one("#ft-majority").content)
        assert majority.startswith("majority: to 10.244.1.21:8080, 10.244.2.22:8080 · masqueraded (on 3 of 4 nodes)")
        # enter on e's outcome: e's explorer, the same packet traced there
        s.trace_pane.outcomes.move_cursor(row=3)
        await pilot.pause()
        line = str(s.query_one("#ft-outcome").content)  # its whole story, whatever fits in the columns
        assert line.startswith(f"e: 203.0.113.10:40000 → {NODE_IP['e']}:30080/tcp → DROP at filter/FORWARD:1")
        assert "· differs: DROP at filter/FORWARD:1" in line
        await pilot.press("enter")
        await node_ready(app, pilot)
        node = app.screen
        assert isinstance(node, NodeScreen) and node.node_name == "e" and node.trace is not None
        assert node.trace.packet.dst == NODE_IP["e"] and node.trace.paths[0].verdict == "DROP"
        await pilot.press("escape", "escape")  # out of the hop list's … and back
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen), "back on the fleet screen")


@pytest.mark.asyncio
async def test_the_trace_form_typed_and_its_errors() -> None:
    app = fleet_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        await pilot.press("4")  # the trace pane, its source field
        await pilot.press(*"10.244.1.50", "tab", *"10.96.10.20", "tab", *"80")
        await pilot.press("enter")
        await wait_for(pilot, lambda: s.trace_result is not None, "the typed trace")
        result = s.trace_result
        assert result is not None and dict(result.differing).keys() == {"c", "e", "f"}  # e: the foreign DROP
        assert "endpoints +10.244.9.99:8080 −10.244.5.15:8080" in dict(result.differing)["c"]
        # a field that is wrong: said, nothing traced
        s.trace_pane.fill(dport="http")
        assert s.trace_pane.request()
        await pilot.pause()
        assert str(s.query_one("#ft-error").content) == "✗ dport 'http' is not a port number"
        s.trace_pane.fill(dport="80", src="node", dst="node")
        s.trace_pane.request()
        await pilot.pause()
        assert "cannot both be the node" in str(s.query_one("#ft-error").content)
        s.trace_pane.fill(src="")
        assert not s.trace_pane.request()
        await pilot.pause()
        assert "source address needed" in str(s.query_one("#ft-error").content)


@pytest.mark.asyncio
async def test_bundle_text_is_shown_literally() -> None:
    app = fleet_app(hostile=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        labels = [c.label.plain for c in s.matrix.table.ordered_columns]
        assert "[bold red]evil\\x1b[31m" in labels and "[link=x]g[/link] ✗" in labels
        nodes = cells(s.nodes)
        assert nodes["[link=x]g[/link]"][8] == "failed: \\x1b]52;c;aGk=\\x07[blink]…"
        await pilot.press("1")
        s.nodes.move_cursor(row=[p.name for p in s.fleet.parts].index("[link=x]g[/link]"))
        await pilot.pause()
        detail = s.detail.query_one("#fleet-detail-body").content
        assert isinstance(detail, Text) and "[blink]boom[/blink]" in detail.plain and "\x1b" not in detail.plain
        for table in (s.nodes, s.matrix.table):
            for row in table.ordered_rows:
                assert all("\x1b" not in c.plain and "\x07" not in c.plain for c in table.get_row(row.key))


def source_for(*argv: str) -> Any:
    return app_source(build_app_parser().parse_args(list(argv)), None)


def test_kptui_dir_and_several_bundles_open_the_fleet(tmp_path: Path) -> None:
    fleet_dir = write_fleet_dir(tmp_path / "captures")
    src = source_for(str(fleet_dir))
    assert src.fleet is not None and [p.name for p in src.fleet.parts] == ["a", "b", "c", "e", "f"]
    assert src.fleet.part("f").error == FAILED and src.origin == f"fleet {fleet_dir}"
    (c,) = [r for r in src.fleet.matrix.rows if r.service == "default/web:http"]
    assert [cell.state for cell in c.cells] == ["same", "same", "endpoints", "same", "not-compared"]
    two = source_for(str(fleet_dir / "a.kptui"), str(fleet_dir / "c.kptui"))
    assert [p.name for p in two.fleet.parts] == ["a", "c"] and two.name.endswith("and 1 more")
    one = source_for(str(fleet_dir / "a.kptui"))  # one bundle: that node's explorer, as before
    assert one.fleet is None and one.snapshot is not None  # (parsed behind the explorer's loading screen)


@pytest.mark.parametrize(("extra", "message"), [
    (["--watch", "3"], "drop --live, --netns and --watch"),
    (["--kernel-trace", "x.log"], "open that node's bundle"),
])  # fmt: skip
def test_what_a_fleet_refuses(tmp_path: Path, extra: list[str], message: str) -> None:
    fleet_dir = write_fleet_dir(tmp_path / "captures")
    with pytest.raises(UserError, match=message):
        source_for(str(fleet_dir), *extra)


def test_packet_and_node_options_are_refused_on_a_fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kptui import cli

    fleet_dir = write_fleet_dir(tmp_path / "captures")
    for extra in (["--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "80"], ["--node-ip", "10.0.0.2"]):
        code = cli.main([str(fleet_dir), *extra])
        assert code == 2 and "the packet and node options do not apply here" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_a_node_in_another_mode_opens_with_a_notice() -> None:
    import dataclasses

    from kptui.ui.app import make_app
    from kptui.ui.fleet_source import fleet_source

    from .fleet_fixture import fleet_parts

    nodes = fleet_parts()
    nodes[1] = dataclasses.replace(nodes[1], proxy_mode="nftables")  # b: kube-proxy says nftables
    app = make_app(fleet=fleet_source(nodes, "captures/"), env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(140, 40)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        assert cells(s.matrix.table)["default/web:http tcp"][2] == "·"  # not compared
        await pilot.press("1", "down", "enter")
        await node_ready(app, pilot)
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == "b"
        assert any("nftables mode here: the explorer shows the node's iptables rules only" in str(n.message)
                   for n in app._notifications)  # fmt: skip


def test_kptui_dir_starts_the_app_on_the_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's whole way: kptui DIR → the nodes read, compared → make_app(fleet=…) → run."""
    import io
    import os
    import sys

    from kptui import cli
    from kptui.ui import app as app_module

    fleet_dir = write_fleet_dir(tmp_path / "captures")
    given: dict[str, Any] = {}

    class Ran:
        error_message = None
        return_code = 0

        def run(self) -> None:
            given["ran"] = True

    def fake_make_app(**kwargs: Any) -> Ran:
        given.update(kwargs)
        return Ran()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(app_module, "make_app", fake_make_app)
    monkeypatch.setattr(sys, "__stderr__", Tty())
    monkeypatch.setattr(os, "isatty", lambda fd: True)
    err = io.StringIO()
    assert cli.main([str(fleet_dir)], out=io.StringIO(), err=err) == 0
    assert given["ran"] and given["fleet"] is not None and given["ruleset"] is None
    assert [p.name for p in given["fleet"].parts] == ["a", "b", "c", "e", "f"]
    assert given["origin"] == f"fleet {fleet_dir}" and "reading the nodes of" in err.getvalue()


@pytest.mark.asyncio
async def test_a_big_nodes_jump_index_is_built_after_its_explorer_paints(monkeypatch: pytest.MonkeyPatch) -> None:
    from kptui.ui import app as app_module

    monkeypatch.setattr(app_module, "FREEZE_GC_LINES", 10)  # every node counts as big here
    told: list[str] = []
    original = NodeScreen.callers_ready

    def callers_ready(self: NodeScreen) -> None:
        told.append(self.node_name)
        original(self)

    monkeypatch.setattr(NodeScreen, "callers_ready", callers_ready)
    app = fleet_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await fleet_ready(app, pilot)
        await pilot.press("1", "enter")  # node a
        await node_ready(app, pilot)
        node = app.screen
        assert isinstance(node, NodeScreen)
        await wait_for(pilot, lambda: node.callers_indexed, "the jump index of node a")
        assert told == ["a"]  # built in a thread after the paint, and the node's screen told
        insights = app._node_insights["a"]
        assert getattr(insights, "defer_findings", True) is True


@pytest.mark.asyncio
async def test_at_80x24_the_outcomes_take_the_node_lists_rows() -> None:
    app = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await fleet_ready(app, pilot)
        s = screen(app)
        table = s.matrix.table
        table.move_cursor(row=table.get_row_index("shop/frontend:http tcp"), column=0)
        await pilot.press("p")
        await wait_for(pilot, lambda: s.trace_result is not None, "the fleet trace")
        await pilot.pause()
        assert not s.nodes.display and s.trace_pane.outcomes.size.height >= 6  # its header and five nodes
        await pilot.press("1")  # the node list: back, with the detail below
        await pilot.pause()
        assert s.nodes.display and s.nodes.has_focus and s.query_one("#fleet-bottom").current == "fleet-detail"
