"""A fleet for the fleet screen's tests, without a kernel: five nodes from the kube-proxy generator as
tests/fleet/cluster.py has them (a, b in step; c stale; e with another component's DROP in front of
kube-proxy's FORWARD rules), and f whose capture failed; optionally a node whose bundle text carries markup and
escapes (untrusted)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kptui.engine.kube.fleet_model import NodeParts
from kptui.ui.app import KptuiApp, make_app
from kptui.ui.fleet_source import FleetSource, fleet_source
from tests.test_fleet_engine import parts

FOREIGN = "-A FORWARD -p tcp -m tcp --dport 8080 -j DROP"
FAILED = "kubectl debug node/f: timed out after 60 s (retry: kptui capture --kubectl node/f -o f.kptui)"


def fleet_parts(*, hostile: bool = False) -> list[NodeParts]:
    out = [parts("a"), parts("b"), parts("c", stale=True), parts("e", extra=FOREIGN),
           NodeParts("f", "", error=FAILED)]  # fmt: skip
    if hostile:
        evil = dataclasses.replace(parts("b"), name="[bold red]evil\x1b[31m")
        out.append(NodeParts("[link=x]g[/link]", "", error="\x1b]52;c;aGk=\x07[blink]boom[/blink]"))
        out.insert(2, evil)
    return out


def fleet(*, hostile: bool = False) -> FleetSource:
    return fleet_source(fleet_parts(hostile=hostile), "captures/")


def fleet_app(**kwargs: object) -> KptuiApp:
    hostile = bool(kwargs.pop("hostile", False))
    kwargs.setdefault("env", {"KPTUI_CLIPBOARD": "osc52"})
    return make_app(fleet=fleet(hostile=hostile), source="captures/", **kwargs)  # type: ignore[arg-type]


async def fleet_ready(app: KptuiApp, pilot: object) -> None:
    from kptui.ui.fleet_screen import FleetScreen

    for _ in range(300):
        if isinstance(app.screen, FleetScreen) and app.screen.matrix.table.row_count:
            break
        await pilot.pause(0.01)  # type: ignore[attr-defined]
    else:
        raise AssertionError("the fleet screen never came up")
    await pilot.pause()  # type: ignore[attr-defined]


def _bundle(node: str, rules: str) -> bytes:
    """A capture bundle of one node: its rules, its address, its route; kube-proxy said iptables."""
    import json
    from types import MappingProxyType

    from kptui.node.bundle import Artifact, Collection, encode_bundle
    from tests.fleet.cluster import NODE_IP

    ip = NODE_IP[node]
    addr = json.dumps([{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
                       {"ifname": "eth0", "addr_info": [{"family": "inet", "local": ip, "prefixlen": 24,
                                                         "scope": "global"}]}]).encode()  # fmt: skip
    arts = (Artifact("rules/iptables-nft-save.rules", "rules", rules.encode(), "ipv4", "nf_tables",
                     ("iptables-nft-save", "-c")),
            Artifact("node/ip-addr.json", "ip-addr", addr, command=("ip", "-j", "-d", "addr", "show")),
            Artifact("node/ip-route-ipv4.json", "ip-route", b'[{"dst":"default","gateway":"10.0.0.1","dev":"eth0"}]',
                     "ipv4"))  # fmt: skip
    facts = {"hostname": f"node-{node}", "created": "2026-12-01T12:00:00+00:00", "created_unix": 1796126400.0,
             "proxy_mode": "iptables", "kernel": {"release": "6.1.0"}, "netns": None, "node_name": node}  # fmt: skip
    return encode_bundle(Collection(arts, MappingProxyType(facts)), mtime=1796126400)


def write_fleet_dir(path: Path) -> Path:
    """What ``kptui fleet capture -o PATH`` leaves: a, b, c (stale), e (a foreign DROP first) as bundles, f
    failed, and fleet.json naming them."""
    import json

    from tests.fleet.cluster import iptables_rules
    from tests.test_fleet_engine import first

    path.mkdir(parents=True, exist_ok=True)
    rules = {"a": iptables_rules("a"), "b": iptables_rules("b"), "c": iptables_rules("c", stale=True),
             "e": first(iptables_rules("e"), "filter", FOREIGN)}  # fmt: skip
    entries = []
    for node, text in rules.items():
        (path / f"{node}.kptui").write_bytes(_bundle(node, text))
        entries.append({"name": node, "file": f"{node}.kptui", "status": "ok", "error": None})
    entries.append({"name": "f", "file": None, "status": "failed", "error": FAILED})
    (path / "fleet.json").write_text(json.dumps({"format": "kptui-fleet", "format_version": 1, "nodes": entries}))
    return path


async def node_ready(app: KptuiApp, pilot: object) -> None:
    """Wait until a node's explorer is up (and the packet it was opened with, traced)."""
    from kptui.ui.node_screen import NodeScreen

    for _ in range(500):
        s = app.screen
        if isinstance(s, NodeScreen) and s.ready and (s.initial[0] is None or s.trace is not None):
            break
        await pilot.pause(0.01)  # type: ignore[attr-defined]
    else:
        raise AssertionError("the node's explorer never came up")
    await pilot.pause()  # type: ignore[attr-defined]
