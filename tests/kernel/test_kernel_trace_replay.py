"""End to end, ``kptui FILE --kernel-trace LOG`` on a real capture: the lab node (its own network namespaces, torn
down afterwards) runs real traffic with TRACE rules, ``xtables-monitor --trace`` captures it, the log is written to
a file and read the way the CLI reads it, replayed against ``iptables-nft-save``'s dump of the node, and the
explorer's comparison must find the kernel and the simulation in agreement -- then disagree where a rule is
taken out of the dump. Needs root and the netfilter tools (tests/kernel_gate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from kptui.cli.explorer import load_kernel_log
from kptui.engine import parse_ruleset
from kptui.engine.kernel_replay import replay
from kptui.engine.kernel_replay_walks import KernelWalks
from kptui.engine.kernel_trace import KernelTrace
from kptui.engine.trace_compare import kernel_steps
from kptui.ui.app import make_app

from .clusterip import API, DNS, WEB
from .harness import KernelLab, Observation, Send

pytestmark = pytest.mark.kernel



def captured(obs: Observation, tmp_path: Path) -> tuple[KernelWalks, KernelTrace]:
    """The monitor's output as a log file, read as ``--kernel-trace`` reads it; the walk of this probe."""
    log = tmp_path / f"trace-{obs.sport}.log"
    log.write_text(obs.capture)
    walks = load_kernel_log(str(log))
    mine = [w for w in walks.walks if w.first is not None and w.first.sport == obs.sport and w.first.is_first]
    assert len(mine) == 1, f"{obs.describe()}: {len(mine)} walks in\n{obs.capture[:3000]}"
    return walks, mine[0]


@pytest.mark.parametrize("send", [Send("pod", "tcp", *WEB), Send("outside", "tcp", *WEB), Send("node", "tcp", *API),
                                  Send("pod", "udp", *DNS)], ids=["pod-web", "outside-web", "node-api", "pod-dns"])
def test_a_real_capture_agrees_with_the_simulation_hop_by_hop(clusterip_lab: KernelLab, send: Send, tmp_path: Path) -> None:
    (obs,) = clusterip_lab.observe([send])
    assert obs.kernel is not None, f"{obs.describe()}: not captured\n{obs.capture[:3000]}"
    _, walk = captured(obs, tmp_path)
    rs = parse_ruleset(obs.rules, source="kernel-save")
    rp = replay(rs, walk, clusterip_lab.context_for(obs))
    cmp = rp.comparison
    detail = "\n".join(f"{n}. {r.kind}: {r.detail}" for n, r in enumerate(cmp.rows, 1) if not r.ok)
    assert cmp.agree, f"{obs.describe()}\n{cmp.summary}\n{detail}\n{cmp.problems}"
    hops = len(kernel_steps(obs.kernel))
    assert cmp.summary == f"the kernel and the simulation agree on all {hops} hops"
    assert rp.missing == 0 and cmp.path is not None and cmp.path.endpoint == obs.kernel.endpoint
    if send.who == "node":
        assert len(walk.ids) == 2, "the lo half of the node's own packet is joined"
    if send.who == "outside":
        assert cmp.path.masquerade and rp.kernel.masquerade


def test_a_rule_taken_out_of_the_dump_shows_where_they_diverge(clusterip_lab: KernelLab, tmp_path: Path) -> None:
    (obs,) = clusterip_lab.observe([Send("outside", "tcp", *WEB)])
    assert obs.kernel is not None
    _, walk = captured(obs, tmp_path)
    masq = [line for line in obs.rules.splitlines()
            if line.startswith("-A KUBE-SVC-") and "! -s 10.244.0.0/16" in line and "10.96.10.20/32" in line]
    assert len(masq) == 1, "the cluster IP's masquerade rule for traffic from outside the pod network"
    rs = parse_ruleset(obs.rules.replace(masq[0] + "\n", ""), source="kernel-save minus one rule")
    rp = replay(rs, walk, clusterip_lab.context_for(obs))
    cmp = rp.comparison
    assert not cmp.agree and rp.missing == 1
    n = cmp.first_difference
    assert n is not None and cmp.rows[n - 1].kernel is not None and cmp.rows[n - 1].kernel.text == masq[0]
    assert cmp.summary.startswith(f"the kernel and the simulation differ from hop {n}: ")
    assert "masquerade: kernel yes, engine no" in cmp.problems


@pytest.mark.asyncio
async def test_the_explorer_opens_a_real_capture(clusterip_lab: KernelLab, tmp_path: Path) -> None:
    (obs,) = clusterip_lab.observe([Send("pod", "tcp", *WEB)])
    walks, walk = captured(obs, tmp_path)
    app = make_app(ruleset=parse_ruleset(obs.rules, source="kernel-save"), node=clusterip_lab.context_for(obs),
                   kernel=walks, env={"KPTUI_CLIPBOARD": "osc52"})  # fmt: skip
    async with app.run_test(size=(140, 45)) as pilot:
        for _ in range(500):
            screen = app.main_screen
            if screen is not None and screen.kernel is not None and screen.kernel.replay is not None:
                break
            await pilot.pause(0.01)
        await pilot.pause()
        screen = app.main_screen
        assert screen is not None and screen.kernel is not None and screen.kernel.replay is not None
        assert screen.kernel.replay.kernel.ids[0] == walk.ids[0]
        summary = str(screen.trace_view.query_one("#kernel-summary", Static).content)
        assert summary.startswith("the kernel and the simulation agree on all "), summary
        hops = screen.trace_view.hops
        for _ in range(len(hops.rows)):
            hop = hops.hop
            assert hop is not None and hop.kind == "policy" or (hop is not None and hop.index is not None)
            assert screen.chains.cursor_loc is not None and screen.chains.cursor_loc.chain == hop.chain
            await pilot.press("n")
