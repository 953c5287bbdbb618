"""A chain of thousands of rules (KUBE-SERVICES of a 30,000-service node) is shown in pages: revealing one rule
makes the nodes of its page only, a filter's big result is paged the same way, and refilling the chain (a watch
refresh) leaves no stale rule behind."""

from __future__ import annotations

import pytest

from kptui.engine import parse_ruleset
from kptui.ui.app import make_app
from kptui.ui.chain_tree_widget import ELEMENT_PAGE
from kptui.ui.locs import Loc

from .conftest import ready

N = 2 * ELEMENT_PAGE + 500


def _dump() -> str:
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
             "-A PREROUTING -j KUBE-SERVICES"]  # fmt: skip
    proto = ["udp" if i % 5 == 0 else "tcp" for i in range(N)]  # one in five: udp
    lines += [f"-A KUBE-SERVICES -d 10.96.{i // 250}.{i % 250 + 1}/32 -p {p} -m {p} --dport 80 -j KUBE-MARK-MASQ"
              for i, p in enumerate(proto)]  # fmt: skip
    lines += ["-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000", "COMMIT"]
    return "\n".join(lines) + "\n"


def _rules_in_tree(tree: object, chain: str) -> list[int]:
    return sorted(loc.index for loc in tree._index if loc.chain == chain and loc.index is not None)  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_revealing_a_rule_of_a_big_chain_opens_its_page_only() -> None:
    app = make_app(ruleset=parse_ruleset(_dump(), source="big-chain.rules"))
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.chains
        tree = pane.chain_tree
        target = Loc("nat", "KUBE-SERVICES", 2 * ELEMENT_PAGE + 7)
        assert pane.reveal(target)
        await pilot.pause()
        assert tree.cursor_loc == target
        chain = tree.node_for(Loc("nat", "KUBE-SERVICES"))
        pages = [c.label.plain for c in chain.children]
        assert pages == [f"rules 1–{ELEMENT_PAGE}", f"rules {ELEMENT_PAGE + 1}–{2 * ELEMENT_PAGE}",
                         f"rules {2 * ELEMENT_PAGE + 1}–{N}"]  # fmt: skip
        assert _rules_in_tree(tree, "KUBE-SERVICES") == list(range(2 * ELEMENT_PAGE + 1, N + 1))
        # a watch refresh refills the chain: no rule of the old pages is left in the index, the chain stays
        tree.refill([Loc("nat", "KUBE-SERVICES")], tree.keep())
        await pilot.pause()
        assert Loc("nat", "KUBE-SERVICES") in tree._index
        assert tree.node_for(target) is not None and tree.cursor_loc == target
        assert _rules_in_tree(tree, "KUBE-SERVICES") == list(range(2 * ELEMENT_PAGE + 1, N + 1))


@pytest.mark.asyncio
async def test_a_big_filter_result_is_paged_with_the_count_shown() -> None:
    app = make_app(ruleset=parse_ruleset(_dump(), source="big-chain.rules"))
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(app, pilot)
        pane = app.main_screen.chains
        pane.apply_filter("-p tcp")  # 2000 of the 2500 rules: two pages of 1000
        await pilot.pause()
        assert pane.result is not None
        chain = pane.chain_tree.node_for(Loc("nat", "KUBE-SERVICES"))
        labels = [c.label.plain for c in chain.children]
        assert labels == ["rules 2–1250 (1000 shown)", "rules 1252–2500 (1000 shown)"]
        assert pane.matches[0] == Loc("nat", "KUBE-SERVICES", 2) and pane.chain_tree.cursor_loc == pane.matches[0]
