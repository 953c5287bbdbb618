"""The trace view: paths with probability, verdict and endpoint; stepping through every hop with the tree
and the detail following; the packet state at each hop (mark 0x4000 at KUBE-MARK-MASQ, the DNAT); all hops
vs matched only; a trace given on the command line."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList

from kptui.ui.locs import Loc

from .conftest import NODEPORT_NODE, NODEPORT_PACKET, app_for, ready

pytestmark = pytest.mark.asyncio


async def test_stepping_every_hop_of_a_nodeport_etp_cluster_trace() -> None:
    # kptui samples/nodeport-cluster.rules --src 10.0.0.1 --dst 10.0.0.2 --dport 30080 --from external
    #       --node-ip 10.0.0.2: the app opens with the packet traced and the trace view on the first hop.
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        view = screen.trace_view
        hops = view.hops
        assert app.focused is hops and hops.cursor == 0
        trace = screen.trace
        assert trace is not None and len(trace.paths) == 2
        paths = view.query_one("#trace-paths", OptionList)
        first = str(paths.get_option_at_index(0).prompt)
        assert first.startswith("1. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.1.21:8080")  # the verdict first
        # the masquerade the mark asked for, in 80 columns (the mark itself is at its hop, and in the CLI line)
        assert first == "1. ACCEPT (forwarded) · p=0.5 · ⇒ 10.244.1.21:8080 · MASQUERADE as 10.0.0.2"
        assert len(first) <= 78

        seen: list[tuple[str, int | None]] = []
        marked_at = dnat_at = None
        for position in range(len(hops.rows)):
            hop = hops.hop
            assert hop is not None and hops.cursor == position
            loc = Loc(hop.table, hop.chain, hop.index)
            # the tree cursor and the detail pane are on the rule being evaluated
            assert screen.chains.cursor_loc == loc
            assert screen.detail.loc == loc and screen.detail.hop is hop
            state = str(view.query_one("#trace-state").content)
            assert state.startswith(f"{position + 1}/{len(hops.rows)} ")
            if hop.chain == "KUBE-MARK-MASQ":
                marked_at = position
                assert "mark    0x0 → 0x4000 (masq)" in state
                assert "counter 72 → 73 pkts" in state  # the counter this hop increments goes up by one
            if hop.verdict == "DNAT":
                dnat_at = position
                assert hop.chain.startswith("KUBE-SEP-")
                assert "dst     10.0.0.2:30080 → 10.244.1.21:8080" in state
                assert "ctstate NEW → NEW+DNAT" in state
            seen.append((hop.chain, hop.index))
            await pilot.press("n")
        assert marked_at is not None and dnat_at is not None and marked_at < dnat_at
        assert seen[0] == ("PREROUTING", None)  # mangle PREROUTING's policy comes first
        assert seen[-1] == ("KUBE-POSTROUTING", 3)  # MASQUERADE
        assert hops.cursor == len(hops.rows) - 1  # n at the end stays there
        await pilot.press("p")
        assert hops.cursor == len(hops.rows) - 2
        await pilot.press("home")
        assert hops.cursor == 0 and screen.chains.cursor_loc == Loc("mangle", "PREROUTING")
        await pilot.press("end")
        assert hops.cursor == len(hops.rows) - 1


async def test_all_hops_shows_the_misses_and_keeps_the_current_hop() -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        hops = app.main_screen.trace_view.hops
        matched = len(hops.rows)
        await pilot.press("n", "n", "n")  # nat KUBE-NODEPORTS:1
        current = hops.hop
        assert current is not None and current.chain == "KUBE-NODEPORTS"
        await pilot.press("a")
        assert hops.all_hops and len(hops.rows) > matched
        assert hops.hop is current
        await pilot.press("p", "p")  # two hops back, a miss: KUBE-SERVICES:2 (-d 10.96.20.20)
        miss = hops.hop
        assert miss is not None and not miss.matched and miss.chain == "KUBE-SERVICES" and miss.index == 2
        state = str(app.main_screen.trace_view.query_one("#trace-state").content)
        assert "no match: -d 10.96.20.20" in state and "unchanged: no match" in state
        assert app.main_screen.chains.cursor_loc == Loc("nat", "KUBE-SERVICES", 2)
        await pilot.press("a")
        assert not hops.all_hops and len(hops.rows) == matched


async def test_paths_switch_with_brackets_and_the_second_path_ends_at_the_other_endpoint() -> None:
    app = app_for("nodeport-cluster.rules", packet=NODEPORT_PACKET, node=NODEPORT_NODE)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        view = app.main_screen.trace_view
        await pilot.press("right_square_bracket")
        assert view.path_index == 1 and view.hops.cursor == 0
        await pilot.press("end")
        assert view.hops.hop is not None and view.hops.hop.after.dst == "10.244.2.22"
        await pilot.press("left_square_bracket")
        assert view.path_index == 0


async def test_a_preset_from_the_palette_traces_a_service_without_endpoints_to_its_reject() -> None:
    app = app_for("mixed-all.rules")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        commands = {c.text: c for c in screen.command_candidates()}
        name = "trace: pod → ClusterIP 10.96.40.10:80/tcp (default/broken:http)"
        assert name in commands and "copy: trace as text" in commands and "export: trace as Markdown…" in commands
        commands[name].run()
        for _ in range(100):
            if screen.trace is not None:
                break
            await pilot.pause(0.02)
        trace = screen.trace
        assert trace is not None and trace.packet.src == "10.244.1.5"  # a pod address from the detector CIDR
        assert {p.verdict for p in trace.paths} == {"REJECT"}  # (paths differ only in assumptions)
        await pilot.press("end")
        hop = screen.trace_view.hops.hop
        assert hop is not None and hop.verdict == "REJECT" and hop.table == "filter"
        assert screen.chains.cursor_loc == Loc("filter", hop.chain, hop.index)


async def test_paths_are_grouped_by_scenario_and_the_title_says_each_sums_to_1() -> None:
    """Without the node's addresses, whether 10.0.0.2 is the node's decides the NodePort's fate: two scenarios,
    each path tagged with its own, and the state panel names it (issue 10.2: say so in the explorer)."""
    from kptui.engine.packet import NodeContext, Packet

    app = app_for("nodeport-local.rules", packet=Packet("203.0.113.10", "10.0.0.2", dport=32091, origin="external"),
                  node=NodeContext())
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        trace = screen.trace
        assert trace is not None and len(trace.scenarios) == 2
        title = str(screen.trace_view.query_one("#trace-title").content)
        assert "2 paths in 2 scenarios, each summing to 1" in title
        paths = screen.trace_view.query_one("#trace-paths", OptionList)
        prompts = [str(paths.get_option_at_index(i).prompt) for i in range(len(trace.paths))]
        assert prompts[0].startswith("1. [A] ") and prompts[1].startswith("2. [B] "), prompts
        await pilot.pause(0.2)
        state = str(screen.trace_view.query_one("#trace-state").content)
        assert "scenario A: 10.0.0.2 is a node address (its paths sum to 1)" in state
