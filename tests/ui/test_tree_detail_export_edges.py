"""Edges of the chain tree, the rule detail and the Markdown export: group and page labels made of hostile
chain names, a trace step to a rule a filter hides, a theme change, target options that need quoting, and
the export's packet column (IPv6, source ports, conntrack state) and chain column (kernel-trace hops)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.text import Text

from kptui.engine import parse_ruleset
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace import trace
from kptui.ui import tree_layout
from kptui.ui.app import make_app
from kptui.ui.export import packet_after, trace_markdown
from kptui.ui.locs import Loc

from .conftest import app_for, ready

EVIL = "\x1b]0;pwned\x1b\\-"  # retitles the terminal window when printed raw (+ a 16-character hash: 28, the most)


def _hostile_nat(n_plain: int = 300, n_evil: int = 9) -> str:
    names = [f"C{i}" for i in range(n_plain)] + [f"{EVIL}{i:016X}" for i in range(n_evil)]
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", *(f":{n} - [0:0]" for n in names)]
    lines += [f"-A PREROUTING -j {names[-1]}", f"-A {names[-1]} -j RETURN", "COMMIT"]
    return "\n".join(lines) + "\n"


def _screen_lines(tree: object) -> list[str]:
    height = tree.size.height  # type: ignore[attr-defined]
    return ["".join(seg.text for seg in tree.render_line(y)) for y in range(height)]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_group_and_page_labels_show_hostile_chain_names_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_layout, "PAGE", 4)  # 9 hashed chains: three pages, each labelled with chain names
    ruleset = parse_ruleset(_hostile_nat(), source="hostile.rules")
    app = make_app(ruleset=ruleset, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(app, pilot)
        tree = app.main_screen.chains.chain_tree
        last = Loc("nat", f"{EVIL}{8:016X}")
        assert app.main_screen.chains.reveal(last)
        await pilot.pause()
        table = tree.node_for(Loc("nat"))
        group = next(c for c in table.children if c.data.kind == "group")
        pages = [c for c in group.children if c.data.kind == "group"]
        assert "(9 chains)" in group.label.plain and len(pages) == 3
        for label in [group.label.plain, *(p.label.plain for p in pages)]:
            assert "\x1b" not in label and "\\x1b" in label, repr(label)
        painted = "\n".join(_screen_lines(tree))
        assert "\\x1b]0;pwned" in painted  # the group/page lines are on screen, escaped
        assert "\x1b" not in painted


@pytest.mark.asyncio
async def test_revealing_a_rule_the_filter_hides_clears_the_filter_and_lands_on_the_rule() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        pane = screen.chains
        pane.apply_filter("KUBE-MARK-MASQ")
        await pilot.pause()
        ext = Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN")
        assert pane.result is not None
        shown = dict(pane.result.tables["nat"])
        assert shown[ext.chain] == (1,)  # the chain stays in view (its rule 1 jumps to KUBE-MARK-MASQ) …
        assert pane.chain_tree.node_for(ext) is not None
        target = Loc("nat", "KUBE-EXT-PY4JZH2ITZYEO4CN", 2)  # … but its rule 2 (to the SVC chain) is hidden
        assert pane.reveal(target)
        await pilot.pause()
        assert pane.result is None  # the filter was cleared to show the rule
        assert pane.cursor_loc == target
        assert screen.detail.loc == target
        assert "rule 2 of" in screen.detail.text
        # unfiltered, a place past the chain's end (a rule gone since a reload) still finds the chain
        assert pane.chain_tree.node_for(Loc("nat", ext.chain, 99)) is pane.chain_tree.node_for(ext)


@pytest.mark.asyncio
async def test_a_theme_change_restyles_the_tree_labels() -> None:
    app = app_for("nodeport-cluster.rules")
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(app, pilot)
        tree = app.main_screen.chains.chain_tree
        chain = tree.node_for(Loc("nat", "KUBE-SVC-PY4JZH2ITZYEO4CN"))
        rule = tree.node_for(Loc("nat", "KUBE-SVC-PY4JZH2ITZYEO4CN", 1))
        table = tree.node_for(Loc("nat"))
        before = dict(tree.styles_map())
        assert isinstance(chain.label, Text) and chain.label.style == before["jump"]
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        for _ in range(20):
            await pilot.pause()
        after = tree.styles_map()
        assert after["jump"] != before["jump"] and after["table"] != before["table"]
        assert after["jump"] == tree.get_component_rich_style("chain-tree--jump", partial=True)
        assert chain.label.style == after["jump"]
        assert table.label.style == after["table"]
        index_span = rule.label.spans[0]
        assert index_span.style == after["index"] and after["index"] != before["index"]


def _decoded(detail: str) -> str:
    """The detail's decoded matches and target, without the source line (which holds the rule as dumped)."""
    assert "\nmatches\n" in detail and "\nsource " in detail, detail
    return detail.split("\nmatches\n", 1)[1].split("\nsource ", 1)[0]


@pytest.mark.asyncio
async def test_the_detail_quotes_target_options_like_iptables_save() -> None:
    rs = parse_ruleset(
        "*filter\n:INPUT ACCEPT [0:0]\n"
        '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh in" -j LOG --log-prefix "drop it: " '
        "--log-level 4\n"
        "-A INPUT -m comment --comment plain -j NFLOG --nflog-prefix \"a \\\"b\\\"\"\nCOMMIT\n",
        source="log.rules",
    )
    app = make_app(ruleset=rs, env={"KPTUI_CLIPBOARD": "osc52"})
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen.chains.reveal(Loc("filter", "INPUT", 1))
        await pilot.pause()
        text = _decoded(screen.detail.text)
        assert '-j LOG --log-prefix "drop it: " --log-level 4\n' in text, text
        assert '--comment "ssh in"\n' in text and "--dport 22\n" in text
        assert screen.chains.reveal(Loc("filter", "INPUT", 2))
        await pilot.pause()
        text = _decoded(screen.detail.text)
        assert '-j NFLOG --nflog-prefix "a \\"b\\""\n' in text, text
        assert "--comment plain\n" in text  # iptables-save leaves a plain word bare


def _ipv6_trace() -> object:
    rs = parse_ruleset(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        "-A PREROUTING -d fd00::1/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00::5]:8080\n"
        "-A POSTROUTING -p tcp -j SNAT --to-source [fd00::9]:5555\nCOMMIT\n"
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
        source="v6.rules",
    )
    return trace(rs, Packet("fd00::2", "fd00::1", "tcp", 41000, 80, "external"),
                 NodeContext(addresses=("fd00::1",)))  # fmt: skip


def test_markdown_packet_column_brackets_ipv6_and_keeps_ports_and_ctstate() -> None:
    t = _ipv6_trace()
    md = trace_markdown(t)  # type: ignore[arg-type]
    assert "`PREROUTING:1` | `DNAT" in md
    assert "| `[fd00::2]:41000 → [fd00::5]:8080, NEW, mark 0x0` |" in md, md
    snat = [line for line in md.splitlines() if "`POSTROUTING:1`" in line]
    assert snat and "[fd00::9]:5555 → [fd00::5]:8080" in snat[0], md  # the source port rewrite shows
    assert "fd00::2 → fd00::5:8080" not in md  # the old, ambiguous spelling


def test_packet_after_for_ipv4_and_portless() -> None:
    t = _ipv6_trace()
    state = t.paths[0].final  # type: ignore[attr-defined]
    assert packet_after(replace(state, src="10.0.0.1", dst="10.0.0.2", sport=None, dport=None, mark=0x4000)) == (
        f"10.0.0.1 → 10.0.0.2, {state.ctstate}, mark 0x4000 (masq)")  # fmt: skip


def test_markdown_chain_column_says_policy_only_for_a_policy() -> None:
    rs = parse_ruleset("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n")
    t = trace(rs, Packet("10.0.0.1", "10.0.0.2", "udp", None, 53, "external"), NodeContext(addresses=("10.0.0.2",)))
    md = trace_markdown(t)
    assert "`INPUT policy`" in md
    accepted = trace(rs, Packet("10.0.0.1", "10.0.0.2", "tcp", None, 22, "external"),
                     NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    path = accepted.paths[0]
    # a kernel trace's rule hop the dump does not hold has no index: it is a rule, not the policy
    hops = tuple(h._replace(index=None) if h.kind == "rule" else h for h in path.hops)
    unknown = replace(accepted, paths=(replace(path, hops=hops),))
    md = trace_markdown(unknown)
    assert "`INPUT:?`" in md, md
    assert "policy" not in md.split("| # |")[1], md
