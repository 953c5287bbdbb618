"""Helpers for the UI tests: apps built with make_app (as the CLI builds them) and a wait for the main screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from kptui.engine import Ruleset, parse_ruleset_bytes
from kptui.engine.packet import NodeContext, Packet
from kptui.ui.app import KptuiApp, make_app

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"

# The NodePort eTP=Cluster case the issue names: outside 10.0.0.1 → node 10.0.0.2:30080.
NODEPORT_PACKET = Packet("10.0.0.1", "10.0.0.2", "tcp", None, 30080, "external")
# --node-ip 10.0.0.2 --iface eth0=10.0.0.2/24 --uplink eth0: the uplink's address is what MASQUERADE takes
NODEPORT_NODE = NodeContext(addresses=("10.0.0.2",), interfaces={"eth0": ("10.0.0.2/24",)}, uplink="eth0")


def sample(name: str) -> Ruleset:
    path = SAMPLES / name
    return parse_ruleset_bytes(path.read_bytes(), source=f"samples/{name}")


def app_for(name: str = "mixed-all.rules", **kwargs: object) -> KptuiApp:
    """The app on a parsed sample, with a clipboard that never touches the machine's own."""
    kwargs.setdefault("env", {"KPTUI_CLIPBOARD": "osc52"})
    return make_app(ruleset=sample(name), **kwargs)  # type: ignore[arg-type]


async def ready(app: KptuiApp, pilot: object) -> None:
    """Wait until the main screen is painted (and a start-up trace, if any, is shown)."""
    for _ in range(500):
        screen = app.main_screen
        started = screen is not None and "painted" in app.timings
        if started and (screen.initial[0] is None or screen.trace is not None):  # type: ignore[union-attr]
            break
        await pilot.pause(0.01)  # type: ignore[attr-defined]
    else:
        raise AssertionError("the main screen never came up")
    await pilot.pause()  # type: ignore[attr-defined]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
