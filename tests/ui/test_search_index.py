"""The filter's search index gives exactly what the plain filter gives: on every sample, for queries drawn
from each dump's own addresses, networks, ports, words, chain and service names; on hand-built rules for the
edges (non-ASCII lines, IPv6 case, negated networks, marks); and the chain tree filters big dumps as you type."""

from __future__ import annotations

import random
import re
import threading

import pytest
from textual.widgets import Input

from kptui.engine import Ruleset, parse_ruleset_bytes
from kptui.ui import chain_tree, search_index
from kptui.ui.locs import rows_of
from kptui.ui.search import ADDR_TOKEN, POSITIVE_NET, FilterResult, compile_query, run_filter, token_net
from kptui.ui.search_index import LazySearchIndex, build_index, filter_indexed
from kptui.ui.services import CommentInsights, load_insights

from .conftest import SAMPLES, app_for, ready, sample

SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.rules"))
_WORD = re.compile(r"[A-Za-z][\w./:-]{2,}")
_ADDR = re.compile(r"[0-9a-fA-F:.]*[0-9a-fA-F](?:/\d{1,3})?")


def same(a: FilterResult, b: FilterResult) -> bool:
    return (a.tables, a.rules, a.chains) == (b.tables, b.rules, b.chains)


def queries_of(rs: Ruleset, count: int, seed: int) -> list[str]:
    """Queries an SRE might type, drawn from the dump itself: its address tokens (and their networks and
    neighbours), its numbers, words, chain names, and pieces of them (prefixes, other case)."""
    lines = [row[1] for table in rs.tables.values() for chain in table for row in rows_of(chain)]
    names = [chain.name for table in rs.tables.values() for chain in table]
    addrs = sorted({t for line in lines for t in _ADDR.findall(line) if "." in t or ":" in t})
    words = sorted({w for line in lines for w in _WORD.findall(line)} | set(names))
    numbers = sorted({n for line in lines for n in re.findall(r"\d{1,5}", line)})
    rnd = random.Random(seed)
    out = ["KUBE-SEP", "masq", "10.96.0.10", "10.244.0.0/16", "0.0.0.0/0", "::/0", "53", ":53", "fd00::1"]
    for _ in range(count):
        pick = rnd.randrange(6)
        if pick == 0 and addrs:
            a = rnd.choice(addrs).split("/")[0]
            out.append(a if rnd.random() < 0.7 else a.upper())
        elif pick == 1 and addrs:
            a = rnd.choice(addrs).split("/")[0]
            if "." in a and a.count(".") == 3 and ":" not in a:
                out.append(f"{a}/{rnd.choice((8, 12, 16, 24, 32))}")
            else:
                out.append(f"{a}/{rnd.choice((48, 64, 112, 128))}")
        elif pick == 2 and numbers:
            out.append(rnd.choice(("", ":")) + rnd.choice(numbers))
        elif pick == 3 and words:
            w = rnd.choice(words)
            cut = rnd.randrange(1, len(w) + 1)
            out.append(w[:cut] if rnd.random() < 0.5 else w[-cut:].lower())
        elif pick == 4 and addrs:  # a neighbour of a real address: should mostly miss
            a = rnd.choice(addrs).split("/")[0]
            out.append(a[:-1] + str((int(a[-1], 16) + 1) % 10) if a[-1].isdigit() else a)
        else:
            out.append(rnd.choice(names))
    return out


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_indexed_filter_equals_the_plain_filter_on_every_sample(name: str) -> None:
    rs = sample(name)
    service_of = load_insights(rs).service_of
    index = build_index(rs, service_of)
    matched = 0
    for text in queries_of(rs, 60, seed=len(name)):
        q = compile_query(text)
        if q is None:
            continue
        plain = run_filter(rs, q, service_of)
        assert same(filter_indexed(index, q), plain), (name, text)
        matched += not plain.empty
    assert matched > 10  # the draws really hit rules, not only misses


def test_indexed_filter_on_hand_built_edges() -> None:
    dump = (
        "*filter\n"
        ":INPUT ACCEPT [0:0]\n:KUBE-EMPTY - [0:0]\n:KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]\n"
        '-A INPUT -s 10.244.0.0/16 -m comment --comment "caf\u00e9 ns/web:http" -j ACCEPT\n'
        "-A INPUT ! -s 10.10.0.0/16 -j DROP\n"
        "-A INPUT -d FD00::AB/128 -j ACCEPT\n"
        "-A INPUT -s fd00::/64 -j ACCEPT\n"
        "-A INPUT -s 0.0.0.0/0 -j ACCEPT\n"
        "-A INPUT -j MARK --set-xmark 0x4000/0x4000\n"
        '-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment "ns/web:http" -p tcp --dport 4000 -j ACCEPT\n'
        "COMMIT\n"
    ).encode()
    rs = parse_ruleset_bytes(dump, source="edges")
    service_of = CommentInsights(rs).service_of
    index = build_index(rs, service_of)
    assert not index.ascii  # the é: every query falls back to the pattern itself, with the same answer
    checks = {
        "10.244.3.3": [("INPUT", (1,))],  # inside the positive -s network
        "10.10.1.1": [],  # inside a negated one only
        "10.10.0.0/16": [("INPUT", (2,))],  # the network written as such
        "fd00::ab": [("INPUT", (3, 4))],  # IPv6: case-insensitive, and inside fd00::/64
        "4000": [("KUBE-SVC-ABCDEFGHIJKLMNOP", (1,))],  # not in the mark
        "CAFÉ": [("INPUT", (1,))],
        "ns/web": [("INPUT", (1,)), ("KUBE-SVC-ABCDEFGHIJKLMNOP", None)],  # the chain by its service name
        "empty": [("KUBE-EMPTY", None)],  # a chain without rules, by name
    }
    for text, want in checks.items():
        q = compile_query(text)
        assert q is not None
        got = filter_indexed(index, q)
        assert same(got, run_filter(rs, q, service_of)), text
        assert got.tables.get("filter", []) == want, text


def test_indexed_filter_uses_the_prefilter_on_an_ascii_dump_with_the_same_answers() -> None:
    rs = sample("mixed-all.rules")
    service_of = CommentInsights(rs).service_of
    index = build_index(rs, service_of)
    assert index.ascii and index.names_ascii
    for text in ("KUBE-MARK-MASQ", "kube-mark-masq", "KuBe-SeRvIcEs", "shop/frontend", "10.96.0.10", "8080"):
        q = compile_query(text)
        assert q is not None
        got = filter_indexed(index, q)
        assert not got.empty, text
        assert same(got, run_filter(rs, q, service_of)), text


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_the_fast_address_reader_agrees_with_ipaddress(name: str) -> None:
    rs = sample(name)
    lines = [row[1] for table in rs.tables.values() for chain in table for row in rows_of(chain)]
    sets = SAMPLES / name.replace(".rules", ".ipset")  # IPVS mode keeps its addresses in ipsets
    lines += sets.read_text().replace(",", " ").splitlines() if sets.exists() else []
    texts = {t for line in lines for t in (*ADDR_TOKEN.findall(line), *POSITIVE_NET.findall(line))}
    texts |= {"010.1.1.1", "256.1.1.1", "1.2.3.4/33", "1.2.3.4/032", "1.2.3.4/0", "1.2.3.4/24", "10.244.1.5:8080",
              "::ffff:1.2.3.4", "::ffff:1.2.3.4/120", "1.2.3.4.5", "0.0.0.0/0", "FD00::1/64", "1.2.3", "1.2.3.04",
              "1.2.3.4:", "a.b.c.d", "1:2.3.4.5", "\u0661.2.3.4"}  # ١ is a digit to str.isdigit, not to ipaddress
    assert len(texts) > 20
    texts |= {"10.244.2.32:8080", "10.244.2.32:80800", "1:2.3.4.5:80", "1.2.3.4:5:6"}
    for text in texts:
        net = token_net(text)
        want = None if net is None else (net.version, int(net.network_address), net.prefixlen)
        assert search_index._int_net(text) == want, text


@pytest.mark.parametrize("name", ["mixed-all.rules", "nodeport-cluster.rules"])
def test_each_network_lists_its_rules_once_in_order(name: str) -> None:
    index = build_index(sample(name), CommentInsights(sample(name)).service_of)
    assert index.tokens and index.positive
    for postings in (*index.tokens.values(), *index.positive.values()):
        assert list(postings.starts) == sorted(postings.starts)
        assert len(postings.offsets) == len(postings.starts) + 1
        for i in range(len(postings.starts)):
            rules = list(postings.rules[postings.offsets[i]:postings.offsets[i + 1]])
            assert rules and rules == sorted(set(rules))
            assert postings.prefixes[i] in postings.prefix_set


def test_a_cancelled_filter_returns_nothing() -> None:
    rs = sample("mixed-all.rules")
    index = build_index(rs, CommentInsights(rs).service_of)
    q = compile_query("KUBE")
    assert q is not None
    assert filter_indexed(index, q, cancelled=lambda: True).empty


def test_the_lazy_index_is_built_once_whatever_thread_asks() -> None:
    rs = sample("mixed-all.rules")
    lazy = LazySearchIndex(rs, CommentInsights(rs).service_of)
    assert not lazy.ready
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(lazy.get())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lazy.ready and len(got) == 4 and all(g is got[0] for g in got)


@pytest.mark.asyncio
async def test_a_big_dump_filters_as_you_type_in_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_tree, "LIVE_FILTER_MAX_RULES", 0)  # every dump is "big"
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        pane = app.main_screen.chains  # type: ignore[union-attr]
        await pilot.press("slash")
        await pilot.press(*"30080")  # no enter: the filter follows the typing
        for _ in range(200):
            await pilot.pause(0.02)
            if pane.result is not None:
                break
        assert pane.result is not None and pane.result.query.text == "30080"
        assert app.focused is pane.query_one("#tree-filter", Input)  # still typing
        q = compile_query("30080")
        assert q is not None
        assert same(pane.result, run_filter(pane.ruleset, q, pane.insights.service_of))
        assert pane.search.ready


@pytest.mark.asyncio
async def test_a_big_dump_is_indexed_in_the_background_after_the_first_paint(monkeypatch: pytest.MonkeyPatch) -> None:
    from kptui.ui import app as app_module

    monkeypatch.setattr(chain_tree, "LIVE_FILTER_MAX_RULES", 0)  # every dump is "big" for the filter
    monkeypatch.setattr(app_module, "FREEZE_GC_LINES", 0)  # and for the app: jump index and findings deferred
    app = app_for("nodeport-cluster.rules")
    async with app.run_test() as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        for _ in range(200):  # the jump index, then the search index, each in a worker
            if screen.chains.search.ready:
                break
            await pilot.pause(0.02)
        assert screen.callers_indexed and screen.chains.search.ready  # without `/` ever being pressed
        assert not screen.chains.query_one("#tree-filter", Input).display
