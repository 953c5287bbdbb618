"""The explorer on nft listings (kube-proxy's nftables mode, a native table beside an iptables dump): what
``kptui FILE`` opens, the chain tree (tables → base chains with hook, priority and policy → rules; sets and maps
with their elements, paged when big), the detail pane decoding an nft rule, ``y``/``Y``, the packet builder's
presets from nft services, and a trace stepped through nft hops (vmap and numgen forks with 1/N each, the mark,
DNAT, masquerade), through a native table between iptables tables, and through IPVS: the same walker and
netfilter as ``kptui trace``."""

from __future__ import annotations

import base64
from fractions import Fraction
from pathlib import Path

import pytest
from textual.widgets import OptionList

from kptui.cli.common import node_from_args, packet_from_args
from kptui.cli.explorer import app_source, build_app_parser
from kptui.engine.packet import Packet
from kptui.ui.app import KptuiApp, make_app
from kptui.ui.locs import Loc
from kptui.ui.nft_insights import hop_loc

from .conftest import SAMPLES, ready

KP = "ip kube-proxy"
WEB = "service-SUSTUHLJ-default/web/tcp/http"
ENDPOINTS = {"10.244.1.11:8080", "10.244.1.12:8080", "10.244.2.13:8080"}


def explorer(*argv: str) -> KptuiApp:
    """The app as ``kptui ARGV…`` builds it (the CLI's own source, packet and node), clipboard kept in the app."""
    args = build_app_parser().parse_args(list(argv))
    packet = node = None
    if args.src:
        packet, node = packet_from_args(args)
    elif args.node_ip:
        node = node_from_args(args)
    src = app_source(args, node)
    return make_app(ruleset=src.ruleset, data=src.data, snapshot=src.snapshot, source=src.name, node=src.node,
                    packet=packet, origin=src.origin, env={"KPTUI_CLIPBOARD": "osc52"})  # fmt: skip


def labels(node: object) -> list[str]:
    return [c.label.plain for c in node.children]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_an_nft_listing_opens_as_tables_base_chains_rules_and_sets() -> None:
    app = explorer(str(SAMPLES / "nft-clusterip.nft"))
    assert app.snapshot is not None and app.data is None  # parsed behind the loading screen, not by the CLI
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        tree = screen.chains.chain_tree
        assert labels(tree.root) == ["ip kube-proxy  nft · 31 chains · 53 rules · 7 sets/maps"]
        assert screen.chains.cursor_loc == Loc(KP, "services")  # kube-proxy's dispatch, as nat/KUBE-SERVICES
        table = tree.root.children[0]
        chains = labels(table)
        assert chains[0] == "filter-prerouting-pre-dnat (filter hook prerouting priority dstnat - 10 = -110) " \
                            "(policy ACCEPT) · 1 rule"  # fmt: skip
        assert "nat-postrouting (nat hook postrouting priority srcnat = 100) (policy ACCEPT) · 1 rule" in chains
        assert "services · 2 rules · 2 refs" in chains  # a regular chain: no hook, its references
        assert f"{WEB}  default/web:http · 2 rules · 1 ref" in chains  # the service the chain is for
        assert "@service-ips (ipv4_addr . inet_proto . inet_service : verdict) · 5 elements" in chains
        assert "@cluster-ips (ipv4_addr) · 3 elements" in chains
        # an endpoint chain is named only in the service chain's inline numgen vmap: that is its reference
        ep = "endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080"
        assert f"{ep}  default/web:http · 2 rules · 1 ref" in chains
        screen.chains.reveal(Loc(KP, ep))
        await pilot.pause()
        assert "jumped to from (1):" in screen.detail.text and screen.detail._links == [Loc(KP, WEB, 2)]
        # rules and elements are made when their chain opens (lazily), as nft lists them
        web = table.children[chains.index(f"{WEB}  default/web:http · 2 rules · 1 ref")]
        assert not web.children and web.data is not None and not web.data.loaded
        sips = next(n for n in table.children if n.data.loc.chain == "@service-ips")  # type: ignore[union-attr]
        assert not sips.children and sips.data is not None and not sips.data.loaded
        screen.chains.reveal(Loc(KP, "@service-ips", 3))
        await pilot.pause()
        assert sips.is_expanded and labels(sips)[2] == "3 10.96.10.20 . tcp . 80 : goto " + WEB
        screen.chains.reveal(Loc(KP, WEB, 1))
        await pilot.pause()
        assert labels(web)[1].startswith("2 numgen random mod 3 vmap { 0 : goto endpoint-7FUMELAF-")
        assert labels(web)[0] == "1 ip daddr 10.96.10.20 ip saddr != 10.244.0.0/16 jump mark-for-masquerade"


@pytest.mark.asyncio
async def test_the_json_listing_opens_the_same_tree_as_the_text() -> None:
    trees = []
    for name in ("nft-clusterip.nft", "nft-clusterip.json"):
        app = explorer(str(SAMPLES / name))
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(app, pilot)
            tree = app.main_screen.chains.chain_tree  # type: ignore[union-attr]
            screen = app.main_screen
            screen.chains.reveal(Loc(KP, WEB, 2))  # type: ignore[union-attr]
            await pilot.pause()
            trees.append((labels(tree.root), labels(tree.root.children[0]), screen.detail.text.split("source")[0]))  # type: ignore[union-attr]
    assert trees[0] == trees[1]


@pytest.mark.asyncio
async def test_the_detail_pane_decodes_nft_rules_base_chains_sets_and_elements() -> None:
    app = explorer(str(SAMPLES / "nft-clusterip.nft"))
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        screen.chains.reveal(Loc(KP, WEB, 2))
        await pilot.pause()
        text = screen.detail.text
        assert text.startswith(f"ip kube-proxy / {WEB}  rule 2 of 2\nservice  default/web:http")
        assert "10.244.1.11:8080 (1 in 3), 10.244.1.12:8080 (1 in 3), 10.244.2.13:8080 (1 in 3)" in text
        assert "no counter statement (nft counts only the rules that have one" in text
        assert "\nstatements\n  numgen random mod 3 vmap {" in text
        assert "source   samples/nft-clusterip.nft:153" in text or f"{SAMPLES}/nft-clusterip.nft:153" in text
        screen.chains.reveal(Loc(KP, WEB, 1))
        await pilot.pause()
        text = screen.detail.text
        assert "  ip daddr 10.96.10.20   (" in text and "  ip saddr != 10.244.0.0/16   (" in text
        assert "  jump mark-for-masquerade" in text
        screen.chains.reveal(Loc(KP, "filter-prerouting-pre-dnat"))
        await pilot.pause()
        text = screen.detail.text
        assert text.startswith("ip kube-proxy / filter-prerouting-pre-dnat  base chain")
        assert "base     type filter hook prerouting priority dstnat - 10 (-110) · policy accept" in text
        screen.chains.reveal(Loc(KP, "@service-ips"))
        await pilot.pause()
        text = screen.detail.text
        assert text.startswith("ip kube-proxy / @service-ips  map")
        assert "map      ipv4_addr . inet_proto . inet_service : verdict · 5 elements" in text
        screen.chains.reveal(Loc(KP, "@service-ips", 3))
        await pilot.pause()
        text = screen.detail.text
        assert text.startswith("ip kube-proxy / @service-ips  element 3 of 5")
        assert "the cluster IP 10.96.10.20:80/tcp of default/web:http" in text
        assert "element  10.96.10.20 . tcp . 80 : goto " + WEB in text
        screen.chains.reveal(Loc(KP))
        await pilot.pause()
        text = screen.detail.text
        assert text.startswith("ip kube-proxy  nft table\n31 chains (8 base) · 53 rules · 7 sets/maps")
        assert "kube-proxy's table (nftables mode, IPv4)" in text


@pytest.mark.asyncio
async def test_y_copies_the_rule_as_nft_lists_it_and_Y_the_nft_list_command() -> None:
    app = explorer(str(SAMPLES / "nft-no-endpoints.nft"))
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        screen.chains.reveal(Loc(KP, "masquerading", 3))
        await pilot.pause()
        await pilot.press("y")
        assert app.clipboard == "masquerade fully-random"
        await pilot.press("Y")
        assert app.clipboard == "nft list chain ip kube-proxy masquerading"
        screen.chains.reveal(Loc(KP, "@no-endpoint-nodeports", 1))
        await pilot.pause()
        await pilot.press("y")
        assert app.clipboard == 'tcp . 30100 comment "default/broken:http" : goto reject-chain'
        await pilot.press("Y")
        assert app.clipboard == "nft list map ip kube-proxy no-endpoint-nodeports"
        screen.chains.reveal(Loc(KP, "@cluster-ips"))
        await pilot.pause()
        await pilot.press("y")  # on a set: the command that lists it
        assert app.clipboard == "nft list set ip kube-proxy cluster-ips"


def service_chain(i: int) -> str:
    """A per-service chain name shaped as kube-proxy's (8 base32 characters; not the real hash)."""
    return f"service-{base64.b32encode(i.to_bytes(5, 'big')).decode()}-ns/svc{i}/tcp/http"


def big_map_listing(n: int) -> str:
    """kube-proxy's service-ips map with ``n`` services, each element going to a chain of its own."""
    elems = ",\n\t\t\t     ".join(f"10.96.{i // 250}.{i % 250 + 1} . tcp . 80 : goto {service_chain(i)}"
                                   for i in range(n))  # fmt: skip
    chains = "\n".join(f"\tchain {service_chain(i)} {{\n\t}}\n" for i in range(n))
    return ("table ip kube-proxy {\n\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
            f"\t\telements = {{ {elems} }}\n\t}}\n\n\tchain services {{\n"
            "\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n\n"
            "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
            f"\t\tjump services\n\t}}\n{chains}}}\n")  # fmt: skip


@pytest.mark.asyncio
async def test_a_big_map_shows_its_elements_in_pages_filled_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "big.nft"
    path.write_text(big_map_listing(2500))
    app = explorer(str(path))
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        tree = screen.chains.chain_tree
        screen.chains.reveal(Loc(KP, "@service-ips"))
        await pilot.pause()
        node = tree.cursor_node
        assert node is not None and node.label.plain.startswith("@service-ips (ipv4_addr . inet_proto . "  # type: ignore[union-attr]
                                                                "inet_service : verdict) · 2500 elements")
        tree._open(node)  # as the user's enter does
        assert labels(node) == ["elements 1–1000", "elements 1001–2000", "elements 2001–2500"]
        assert all(not p.children for p in node.children)  # nothing made until a page opens
        screen.chains.reveal(Loc(KP, "@service-ips", 1700))  # a place in the second page opens that page only
        await pilot.pause()
        first, second, third = node.children
        assert not first.children and not third.children and len(second.children) == 1000
        assert tree.cursor_loc == Loc(KP, "@service-ips", 1700)
        assert second.children[699].label.plain.endswith("10.96.6.200 . tcp . 80 : goto " + service_chain(1699))  # type: ignore[union-attr]
        # the per-service chains of a table this big are grouped, as KUBE-SEP-* are
        assert any(lbl.startswith("service-* (") for lbl in labels(tree.root.children[0]))


@pytest.mark.asyncio
async def test_presets_come_from_nft_services_and_trace_through_the_numgen_fork() -> None:
    app = explorer(str(SAMPLES / "nft-clusterip.nft"))
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        screen.chains.reveal(Loc(KP, WEB, 2))
        await pilot.pause()
        service = screen.service_info(Loc(KP, WEB, 2))
        assert service is not None and service.name == "default/web:http"
        await pilot.press("3")
        await pilot.pause()
        assert [p.label for p in screen.builder.presets] == ["pod → ClusterIP 10.96.10.20:80/tcp (default/web:http)"]
        screen.run_preset(service, 0)
        for _ in range(200):
            if screen.trace is not None:
                break
            await pilot.pause(0.02)
        trace = screen.trace
        assert trace is not None and len(trace.paths) == 3
        assert {p.probability for p in trace.paths} == {Fraction(1, 3)}
        assert {p.endpoint for p in trace.paths} == ENDPOINTS  # type: ignore[attr-defined]


async def step_all(app: KptuiApp, pilot: object) -> list[tuple[object, str]]:
    """Step through every hop of the path shown: (hop, the trace state text), checking that the tree's cursor
    and the detail pane follow each hop (an nft hop: its table under its family)."""
    screen = app.main_screen
    assert screen is not None
    hops = screen.trace_view.hops
    seen = []
    for position in range(len(hops.rows)):
        hop = hops.hop
        assert hop is not None and hops.cursor == position
        loc = hop_loc(hop, screen.ruleset.tables)
        if loc.table in screen.ruleset.tables:
            assert screen.chains.cursor_loc == loc, (position, hop)
            assert screen.detail.loc == loc and screen.detail.hop is hop
        seen.append((hop, str(screen.trace_view.query_one("#trace-state").content)))
        await pilot.press("n")  # type: ignore[attr-defined]
    return seen


@pytest.mark.asyncio
async def test_stepping_a_nodeport_trace_through_nft_hops() -> None:
    # kptui samples/nft-nodeport-cluster.nft --src 203.0.113.10 --dst 10.0.0.2 --dport 30080 --from external …
    app = explorer(str(SAMPLES / "nft-nodeport-cluster.nft"), "--src", "203.0.113.10", "--dst", "10.0.0.2",
                   "--dport", "30080", "--from", "external", "--node-ip", "10.0.0.2", "--iface", "eth0=10.0.0.2/24",
                   "--uplink", "eth0")  # fmt: skip
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None and screen.trace is not None
        paths = screen.trace_view.query_one("#trace-paths", OptionList)
        prompts = [str(paths.get_option_at_index(i).prompt) for i in range(paths.option_count)]
        n = len(prompts)
        assert n >= 2 and all(f"p={float(Fraction(1, n)):.3g}" in p for p in prompts), prompts
        assert all("MASQUERADE as 10.0.0.2" in p for p in prompts)
        await pilot.pause()
        seen = await step_all(app, pilot)
        kinds = [(h.table, h.chain, h.verdict) for h, _ in seen]  # type: ignore[attr-defined]
        assert all(t == "kube-proxy" for t, _, _ in kinds)
        vmap = next(i for i, (h, _) in enumerate(seen) if h.chain == "services")  # type: ignore[attr-defined]
        assert seen[vmap][0].verdict == "GOTO"  # type: ignore[attr-defined]  # @service-nodeports
        mark = next(i for i, (h, _) in enumerate(seen) if h.chain == "mark-for-masquerade")  # type: ignore[attr-defined]
        assert "mark    0x0 → 0x4000" in seen[mark][1]
        fork = next(i for i, (h, _) in enumerate(seen) if "numgen" in (h.rule or ""))  # type: ignore[attr-defined]
        assert f"numgen random mod {n} = " in seen[fork][1]
        dnat = next(i for i, (h, _) in enumerate(seen) if h.verdict == "DNAT")  # type: ignore[attr-defined]
        assert "dst     10.0.0.2:30080 → 10.244." in seen[dnat][1] and "ctstate NEW → NEW+DNAT" in seen[dnat][1]
        masq = next(i for i, (h, _) in enumerate(seen) if h.verdict == "MASQUERADE")  # type: ignore[attr-defined]
        assert mark < fork < dnat < masq and seen[masq][0].chain == "masquerading"  # type: ignore[attr-defined]
        assert "counter none (no counter statement in the listing)" in seen[dnat][1]


@pytest.mark.asyncio
async def test_a_native_table_shows_between_the_dumps_tables_and_the_trace_walks_it() -> None:
    app = explorer(str(SAMPLES / "mixed-node.rules"), "--nft", str(SAMPLES / "mixed-node.nft"), "--src", "10.0.0.1",
                   "--dst", "10.0.0.2", "--dport", "30080", "--from", "external", "--node-ip", "10.0.0.2",
                   "--iface", "eth0=10.0.0.2/24", "--uplink", "eth0")  # fmt: skip
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        tables = [n.data.loc.table for n in screen.chains.chain_tree.root.children]  # type: ignore[union-attr]
        assert tables == ["mangle", "inet firewalld", "nat", "filter"]  # mangle -150, firewalld mangle + 10, …
        seen = await step_all(app, pilot)
        where = [(h.hook, "nft" if h.table == "firewalld" else "xt") for h, _ in seen]  # type: ignore[attr-defined]
        assert ("PREROUTING", "nft") in where and ("FORWARD", "nft") in where
        first_nft = where.index(("PREROUTING", "nft"))
        assert where[first_nft - 1] == ("PREROUTING", "xt") and seen[first_nft - 1][0].table == "mangle"  # type: ignore[attr-defined]
        assert seen[-1][0].verdict == "MASQUERADE"  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_an_ipvs_mode_dump_with_its_parts_is_traced_through_ipvs() -> None:
    app = explorer(str(SAMPLES / "ipvs-mode.rules"), "--ipset", str(SAMPLES / "ipvs-mode.ipset"), "--ipvs",
                   str(SAMPLES / "ipvs-mode.ipvsadm"), "--src", "10.244.1.100", "--dst", "10.96.10.20", "--dport",
                   "80", "--node-ip", "10.0.0.2", "--pod-cidr", "10.244.1.0/24")  # fmt: skip
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None and screen.trace is not None
        assert sorted((p.endpoint, p.probability) for p in screen.trace.paths) == [  # type: ignore[attr-defined]
            ("10.244.1.11:8080", Fraction(1, 2)), ("10.244.1.12:8080", Fraction(1, 2))]
        seen = await step_all(app, pilot)
        ipvs = next(i for i, (h, _) in enumerate(seen) if h.verdict == "IPVS")  # type: ignore[attr-defined]
        await pilot.press("g")
        for _ in range(ipvs - 1):  # the virtual service's lookup (the choice itself: tests/ui/test_ipvs_panes.py)
            await pilot.press("n")
        assert screen.detail.text.startswith("ipvs / INPUT  a step of the trace outside the rules")
        assert "none (an IPVS step)" in str(screen.trace_view.query_one("#trace-state").content)


@pytest.mark.asyncio
async def test_a_bundle_of_an_nftables_mode_node_opens_and_traces_with_its_node(tmp_path: Path) -> None:
    from types import MappingProxyType

    from kptui.node.bundle import Artifact, Collection, encode_bundle

    from ..test_bundle import ADDR

    listing = (SAMPLES / "nft-clusterip.json").read_bytes()
    arts = (Artifact("nft/ruleset.json", "nft-ruleset", listing, command=("nft", "-j", "list", "ruleset")),
            Artifact("node/ip-addr.json", "ip-addr", ADDR, command=("ip", "-j", "-d", "addr", "show")))
    facts = {"hostname": "node-n", "created": "2025-06-02T12:00:00+00:00", "created_unix": 1748865600.0,
             "proxy_mode": "nftables", "kernel": {"release": "6.1.0"}, "netns": None}  # fmt: skip
    path = tmp_path / "node.kptui"
    path.write_bytes(encode_bundle(Collection(arts, MappingProxyType(facts)), mtime=1748865600))
    app = explorer(str(path), "--src", "10.244.1.5", "--dst", "10.96.10.20", "--dport", "80")
    assert app.snapshot is not None and app.node is not None and "10.0.0.2" in app.node.addresses
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None and screen.trace is not None
        assert {p.endpoint for p in screen.trace.paths} == ENDPOINTS  # type: ignore[attr-defined]
        assert "node-n" in app.sub_title
        assert [n.data.loc.table for n in screen.chains.chain_tree.root.children] == [KP]  # type: ignore[union-attr]


def test_the_explorer_takes_nft_sources_and_keeps_plain_dumps_behind_the_loading_screen() -> None:
    def source(*argv: str) -> object:
        return app_source(build_app_parser().parse_args(list(argv)), None)

    plain = source(str(SAMPLES / "clusterip.rules"))
    assert plain.data is not None and plain.snapshot is None  # type: ignore[attr-defined]
    for argv in ([str(SAMPLES / "nft-ipv6.nft")], [str(SAMPLES / "nft-ipv6.json")],
                 [str(SAMPLES / "mixed-node.rules"), "--nft", str(SAMPLES / "mixed-node.nft")]):  # fmt: skip
        src = source(*argv)
        assert src.data is None and src.snapshot is not None  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_listing_that_does_not_parse_ends_the_app_with_the_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"nftables": [{"metainfo": {"json_schema_version": 1}},\n {"table": 3}\n')
    app = explorer(str(bad))
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if app.error_message:
                break
            await pilot.pause(0.02)
    assert app.return_code == 2
    assert app.error_message is not None and app.error_message.startswith(f"{bad}:3: not valid JSON"), app.error_message


def test_the_filter_finds_addresses_and_services_in_nft_rules_and_elements() -> None:
    from kptui.engine.nft import parse_nft
    from kptui.engine.nft.display import display_ruleset
    from kptui.ui.search import compile_query, run_filter

    nft = parse_nft((SAMPLES / "nft-clusterip.nft").read_text(), source="nft-clusterip.nft")
    view = display_ruleset(None, nft)
    q = compile_query("10.244.1.11")
    assert q is not None
    hits = dict(run_filter(view, q, lambda t, c: None).tables[KP])
    ep = "endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080"
    assert hits[ep] == (1, 2)  # its hairpin rule (ip saddr) and its DNAT
    q = compile_query("10.96.10.20")
    assert q is not None
    hits = dict(run_filter(view, q, lambda t, c: None).tables[KP])
    assert hits["@service-ips"] == (3,) and hits[WEB] == (1,)  # the map element and the masquerade rule
    q = compile_query("10.96.10.0/24")  # a network holding an element's address
    assert q is not None and dict(run_filter(view, q, lambda t, c: None).tables[KP])["@cluster-ips"]


@pytest.mark.asyncio
async def test_rules_that_fail_to_parse_in_the_trace_thread_fail_the_trace_with_their_line() -> None:
    """The snapshot's netfilter parses what the view did not need (a bundle's dump of the other family) on the
    first trace that needs it, in the trace's thread: a ParseError there is a message with its file and line and
    the app goes on (never a worker traceback)."""
    from kptui.engine.errors import Diagnostic, ParseError

    app = explorer(str(SAMPLES / "nft-clusterip.nft"))
    assert app.snapshot is not None

    def broken(family: int | None = None) -> object:
        raise ParseError(Diagnostic("unknown option '--frobnicate'", 2, source="node.kptui: ip6tables-nft-save -c"))

    object.__setattr__(app.snapshot, "netfilter", broken)  # (a frozen snapshot: only this test breaks it)
    notes: list[str] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        screen = app.main_screen
        assert screen is not None
        screen.builder.fill(Packet("10.244.1.5", "10.96.10.20", "tcp", dport=80, origin="pod"), None)
        await pilot.pause()
        assert screen.builder.request_trace()
        for _ in range(300):
            if notes:
                break
            await pilot.pause(0.02)
        assert screen.trace is None and app.return_code is None and app.is_running
        assert notes and notes[0].startswith("node.kptui: ip6tables-nft-save -c:2: unknown option '--frobnicate'")
        assert "no trace: the rules it needs do not parse" in str(screen.trace_view.query_one("#trace-title").content)  # type: ignore[attr-defined]
