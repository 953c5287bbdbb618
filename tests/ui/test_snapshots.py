"""SVG snapshots (pytest-textual-snapshot) at 80×24 and 160×48. Update after a deliberate change with
``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at the SVGs before committing them."""

from __future__ import annotations

from typing import Any

from .conftest import NODEPORT_NODE, NODEPORT_PACKET, app_for, ready
from .fleet_fixture import fleet_app, fleet_ready


def _wait(steps: int = 0) -> Any:
    async def run_before(pilot: Any) -> None:
        await ready(pilot.app, pilot)
        for _ in range(steps):
            await pilot.press("n")
        await pilot.pause()

    return run_before


def test_start_80x24(snap_compare: Any) -> None:
    assert snap_compare(app_for("mixed-all.rules"), terminal_size=(80, 24), run_before=_wait())


def test_trace_at_kube_mark_masq_80x24(snap_compare: Any) -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_wait(5))


def test_trace_at_the_dnat_160x48(snap_compare: Any) -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_wait(7))


def test_help_160x48(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await ready(pilot.app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app_for("mixed-all.rules"), terminal_size=(160, 48), run_before=run_before)


def test_fleet_screen_120x36(snap_compare: Any) -> None:
    """The fleet screen on its five nodes (c stale, e a foreign DROP first, f failed), the cursor on web's row
    at node c."""

    async def run_before(pilot: Any) -> None:
        await fleet_ready(pilot.app, pilot)
        await pilot.press("down", "right", "right", "right")
        await pilot.pause()

    assert snap_compare(fleet_app(), terminal_size=(120, 36), run_before=run_before)


def test_fleet_screen_80x24(snap_compare: Any) -> None:
    """80×24: the node list and the bottom pane give the services table their rows."""

    async def run_before(pilot: Any) -> None:
        await fleet_ready(pilot.app, pilot)
        await pilot.pause()

    assert snap_compare(fleet_app(), terminal_size=(80, 24), run_before=run_before)
