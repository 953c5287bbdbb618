"""The chain tree: lazy expansion, counters in labels, the filter with n/N and esc, following jumps and
going back, jumping to a chain by name, and the grouping that keeps a 55k-chain table browsable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from textual.widgets import Input

from kptui.engine import parse_ruleset
from kptui.ui.app import make_app
from kptui.ui.locs import Loc
from kptui.ui.tree_layout import GROUP_AT

from .conftest import ROOT, app_for, ready, until

pytestmark = pytest.mark.asyncio


def labels(node: object) -> list[str]:
    return [str(c.label.plain) for c in node.children]  # type: ignore[attr-defined]


async def test_chains_fill_their_rules_only_when_expanded() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        tree = app.main_screen.chains.chain_tree
        node = tree.node_for(Loc("nat", "KUBE-SVC-PY4JZH2ITZYEO4CN"))
        assert node is not None and node.data.loaded is False and not node.children
        assert "shop/frontend:http" in node.label.plain  # the service the chain belongs to
        # what entered it: its two callers' 46 packets (KUBE-SERVICES' cluster IP rule and KUBE-EXT), not the 58
        # its own rules add up to (a packet crosses the masquerade rule and an endpoint rule)
        assert "3 rules · 2 refs · 46 pkts 2760 bytes entered" in node.label.plain
        tree.move_cursor(node)
        await pilot.press("enter")  # expand
        await pilot.pause()
        assert node.is_expanded and node.data.loaded
        rules = labels(node)
        assert len(rules) == 3
        # index, counters in iptables -nvL units, target, then the matches
        assert rules[1].split()[:4] == ["2", "23", "1380", "KUBE-SEP-2ATXUOYIKDUXCR7P"]
        assert "--probability 0.50000000000" in rules[1]
        table = tree.node_for(Loc("filter"))
        assert "11 chains" in table.label.plain
        policy = tree.node_for(Loc("filter", "INPUT"))
        assert "policy ACCEPT 49 pkts, 4359 bytes" in policy.label.plain


async def test_enter_follows_a_jump_and_backspace_goes_back() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        pane = app.main_screen.chains
        assert pane.reveal(Loc("nat", "KUBE-NODEPORTS", 1))
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert pane.cursor_loc == Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN")
        await pilot.press("down", "enter")  # into the EXT chain's first rule, which jumps to KUBE-MARK-MASQ
        await pilot.pause()
        assert pane.cursor_loc == Loc("nat", "KUBE-MARK-MASQ")
        assert app.main_screen.detail.loc == Loc("nat", "KUBE-MARK-MASQ")
        await pilot.press("backspace")
        assert pane.cursor_loc == Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN", 1)
        await pilot.press("backspace")
        assert pane.cursor_loc == Loc("nat", "KUBE-NODEPORTS", 1)
        assert pane.history == []


async def test_jumped_to_from_links_navigate_the_tree() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        screen.chains.reveal(Loc("nat", "KUBE-MARK-MASQ", 1))
        await pilot.pause()
        links = screen.detail.query_one("#detail-links")
        assert links.option_count == 8  # every rule that jumps to KUBE-MARK-MASQ
        await pilot.press("2")
        assert app.focused is links
        while links.highlighted != 1:  # the second caller
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.chains.cursor_loc == Loc("nat", "KUBE-EXT-V5XMLAYKZ6FEXSZC", 1)
        assert app.focused is screen.chains.chain_tree
        await pilot.press("backspace")
        assert screen.chains.cursor_loc == Loc("nat", "KUBE-MARK-MASQ", 1)


FILTERS = [  # query, the first match, how many rules match (None: chains match by name)
    ("10.96.20.10", Loc("nat", "KUBE-SERVICES", 1), 2),  # the cluster IP: KUBE-SERVICES and the SVC masq rule
    ("30514", Loc("nat", "KUBE-NODEPORTS", 2), 1),  # a NodePort, as a whole port token
    ("shop/syslog", Loc("nat", "KUBE-EXT-V5XMLAYKZ6FEXSZC"), None),  # a service: its chains match by name
    ("KUBE-MARK-MASQ", Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN", 1), None),  # jumps to it, and the chain
]


async def test_the_filter_finds_text_ips_ports_and_services() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        pane = app.main_screen.chains
        for query, first, n_rules in FILTERS:
            await pilot.press("slash")
            assert app.focused is not None and app.focused.id == "tree-filter"
            if len(query) <= 5:
                await pilot.press(*query)  # typed, key by key
            else:
                pane.query_one("#tree-filter", Input).value = query  # the same Changed events, without the typing
            await pilot.press("enter")
            await pilot.pause()
            assert app.focused is pane.chain_tree
            assert pane.result is not None and pane.result.query.text == query
            if n_rules is not None:
                assert pane.result.rules == n_rules, query
            assert pane.cursor_loc == first, query
            assert pane.matches and pane.matches[0] == first
            # n/N walk the matches and wrap around
            if len(pane.matches) > 1:
                await pilot.press("n")
                assert pane.cursor_loc == pane.matches[1]
                await pilot.press("N")
                assert pane.cursor_loc == first
            await pilot.press("N")
            assert pane.cursor_loc == pane.matches[-1]
            await pilot.press("escape")
            assert pane.result is None
            assert pane.query_one("#tree-filter").display is False
            assert [n.data.loc.table for n in pane.chain_tree.root.children] == ["mangle", "nat", "filter"]


async def test_the_filter_narrows_the_tree_to_matching_rules() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        pane = app.main_screen.chains
        pane.apply_filter("10.96.20.10")
        await pilot.pause()
        nat = pane.chain_tree.node_for(Loc("nat"))
        assert [c.data.loc.chain for c in nat.children] == ["KUBE-SERVICES", "KUBE-SVC-PY4JZH2ITZYEO4CN"]
        services = pane.chain_tree.node_for(Loc("nat", "KUBE-SERVICES"))
        assert "1 of 3 rules match" in services.label.plain
        assert len(services.children) == 1 and services.is_expanded
        assert pane.chain_tree.node_for(Loc("filter")) is None  # nothing matched there


async def test_colon_jumps_to_a_chain_by_fuzzy_name() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await pilot.press("colon")
        await pilot.pause()
        await pilot.press(*"postrouting")
        for _ in range(100):
            await pilot.pause(0.02)
            options = app.screen.query("CommandList")
            if options and options.first().option_count:
                break
        await pilot.press("enter")
        await pilot.pause()
        loc = app.main_screen.chains.cursor_loc
        assert loc is not None and loc.chain in ("KUBE-POSTROUTING", "POSTROUTING")


async def test_a_big_table_groups_hashed_chains_and_reveal_opens_the_groups(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gen_dump

    text = "\n".join(gen_dump.generate_lines(120, 3)) + "\n"
    ruleset = parse_ruleset(text, source="gen.rules")
    nat = ruleset.tables["nat"]
    assert len(nat.chains) > GROUP_AT
    sep = next(c for c in nat.chains if c.startswith("KUBE-SEP-"))
    app = make_app(ruleset=ruleset, env={})
    async with app.run_test() as pilot:
        await ready(app, pilot)
        tree = app.main_screen.chains.chain_tree
        top = labels(tree.node_for(Loc("nat")))
        assert any(label.startswith("KUBE-SEP-* (") for label in top)
        assert "KUBE-SERVICES" in " ".join(top)
        assert app.main_screen.chains.reveal(Loc("nat", sep, 1))
        assert app.main_screen.chains.cursor_loc == Loc("nat", sep, 1)


async def test_a_new_filter_result_moves_the_detail_and_copy_to_its_first_match() -> None:
    """Two filters whose first matches sit on the same line of their views: the second must still move the
    cursor node, the detail pane and `y` to its own match (Textual's Tree keeps the cursor line across a
    clear, so the same line posted no highlight and the previous filter's rule stayed current)."""
    dump = ("*nat\n:PREROUTING ACCEPT [0:0]\n:A-CHAIN - [0:0]\n:B-CHAIN - [0:0]\n"
            '-A A-CHAIN -s 10.1.0.1/32 -m comment --comment "alpha" -j ACCEPT\n'
            '-A B-CHAIN -s 10.2.0.2/32 -m comment --comment "bravo" -j ACCEPT\nCOMMIT\n')  # fmt: skip
    app = make_app(ruleset=parse_ruleset(dump, source="two.rules"), env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        tree = screen.chains
        for text, loc in (("alpha", Loc("nat", "A-CHAIN", 1)), ("bravo", Loc("nat", "B-CHAIN", 1)),
                          ("alpha", Loc("nat", "A-CHAIN", 1))):  # fmt: skip
            tree.apply_filter(text)
            await until(pilot, lambda: screen.detail.loc == loc, f"the detail pane on {loc}")  # noqa: B023
            assert tree.matches == [loc]
            assert tree.cursor_loc == loc and screen.detail.loc == loc, (text, tree.cursor_loc, screen.detail.loc)
        tree.chain_tree.focus()
        await pilot.press("y")
        assert app.clipboard.startswith("-A A-CHAIN ")
        tree.apply_filter("")  # emptied: everything again, the cursor where it was
        await pilot.pause(0.1)
        assert tree.result is None and tree.cursor_loc == Loc("nat", "A-CHAIN", 1)


@pytest.mark.asyncio
async def test_right_opens_a_chain_and_left_closes_it_as_in_tree_uis() -> None:
    """Issue 10, item 17: the right arrow scrolled the tree sideways instead of opening the chain."""
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        tree = app.main_screen.chains.chain_tree
        chain = Loc("nat", "KUBE-SVC-PY4JZH2ITZYEO4CN")
        app.main_screen.chains.reveal(chain)
        tree.focus()
        await pilot.pause()
        node = tree.node_for(chain)
        assert node is not None and not node.is_expanded
        await pilot.press("right")
        assert node.is_expanded and node.data.loaded and tree.scroll_offset.x == 0
        await pilot.press("right")  # open already: to its first rule
        assert tree.cursor_loc == Loc(chain.table, chain.chain, 1)
        await pilot.press("right")  # a rule: its long line scrolls
        assert tree.scroll_offset.x > 0 and tree.cursor_loc == Loc(chain.table, chain.chain, 1)
        await pilot.press("left")  # back from the scroll first
        assert tree.scroll_offset.x == 0 and tree.cursor_loc == Loc(chain.table, chain.chain, 1)
        await pilot.press("left")  # a rule: to its chain
        assert tree.cursor_loc == chain and node.is_expanded
        await pilot.press("left")  # an open chain: closed
        assert tree.cursor_loc == chain and not node.is_expanded
        await pilot.press("left")  # a closed chain: to its table
        assert tree.cursor_loc == Loc("nat")
