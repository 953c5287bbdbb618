"""Helpers for the UI tests: apps built with make_app (as the CLI builds them), a wait for a condition and one
for the main screen."""

from __future__ import annotations

import time
from collections.abc import Callable
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


WAIT = 60.0  # seconds: what a test waits for (a parse, a trace in a thread) may take long on a loaded machine


async def until(pilot: object, cond: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Wait until ``cond()`` is true, checking between short pauses; AssertionError naming ``what`` when it is
    still false after ``timeout`` seconds. The deadline is wall-clock time, not a number of pauses: on a busy
    machine the app (its workers, its threads) is slower, and so is every pause, but the wait is as long."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"never happened within {timeout:.0f} s: {what}")
        await pilot.pause(0.02)  # type: ignore[attr-defined]


async def ready(app: KptuiApp, pilot: object) -> None:
    """Wait until the main screen is painted (and a start-up trace, if any, is shown)."""

    def up() -> bool:
        screen = app.main_screen
        started = screen is not None and "painted" in app.timings
        return started and (screen.initial[0] is None or screen.trace is not None)  # type: ignore[union-attr]

    await until(pilot, up, "the main screen coming up")
    await pilot.pause()  # type: ignore[attr-defined]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
