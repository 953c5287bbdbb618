"""Issue 15 item 5: the explorer on an IPVS-mode node shows its ipsets and IPVS virtual services in the tree
(lazily, with their detail), offers presets for the IPVS services, and its trace steps onto the virtual service
and real server the IPVS step chose. Copy gives the member as ``ipset save`` writes it and the read-only
command that lists a set or virtual service."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kptui.engine.ipvs.display import IPSET_TABLE, IPVS_TABLE
from kptui.ui.locs import Loc

from .conftest import SAMPLES, ready
from .test_nft_panes import explorer, labels, step_all

pytestmark = pytest.mark.asyncio

PARTS = ("--ipset", str(SAMPLES / "ipvs-mode.ipset"), "--ipvs", str(SAMPLES / "ipvs-mode.ipvsadm"))
PACKET = ("--src", "10.244.1.100", "--dst", "10.96.10.20", "--dport", "80", "--node-ip", "10.0.0.2",
          "--pod-cidr", "10.244.1.0/24")  # fmt: skip


async def test_the_tree_shows_the_sets_and_virtual_services_after_the_rules() -> None:
    app = explorer(str(SAMPLES / "ipvs-mode.rules"), *PARTS)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        tree = screen.chains.chain_tree
        tables = [n.data.loc.table for n in tree.root.children]  # type: ignore[union-attr]
        assert tables[-2:] == [IPSET_TABLE, IPVS_TABLE] and "nat" in tables
        ipsets, ipvs = tree.root.children[-2], tree.root.children[-1]
        assert "`ipset save` · " in ipsets.label.plain and " sets · " in ipsets.label.plain
        assert "IPVS table · " in ipvs.label.plain and "virtual services" in ipvs.label.plain
        ipvs.expand()
        await pilot.pause()
        web = next(c for c in ipvs.children if c.label.plain.startswith("TCP 10.96.10.20:80"))
        assert "(rr)" in web.label.plain and "3 real servers" in web.label.plain
        web.expand()
        await pilot.pause()
        assert [label.split(None, 1)[1] for label in labels(web)] == [
            "-> 10.244.1.11:8080 Masq weight 1 share 1/2", "-> 10.244.1.12:8080 Masq weight 1 share 1/2",
            "-> 10.244.2.13:8080 Masq weight 0 draining"]  # fmt: skip
        screen.detail.show(Loc(IPVS_TABLE, "TCP 10.96.10.20:80"))
        text = screen.detail.text
        assert "IPVS virtual service TCP 10.96.10.20:80" in text and "scheduler rr" in text
        assert "Not checked against a kernel here" in text
        screen.detail.show(Loc(IPSET_TABLE, "KUBE-CLUSTER-IP", 1))
        text = screen.detail.text
        assert text.startswith("ipset / KUBE-CLUSTER-IP  member 1 of") and "hash:ip,port" in text
        assert "matched by" in text  # the rules that test the set
        # y: the member as ipset save writes it; Y on a virtual service: the command that lists it
        screen.chains.reveal(Loc(IPSET_TABLE, "KUBE-CLUSTER-IP", 1))
        screen.detail.show(Loc(IPSET_TABLE, "KUBE-CLUSTER-IP", 1))
        screen.action_copy("rule")
        assert app.clipboard == "add KUBE-CLUSTER-IP 10.96.0.10,tcp:53"  # the sample's first member
        screen.detail.show(Loc(IPVS_TABLE, "TCP 10.96.10.20:80"))
        screen.action_copy("list")
        assert app.clipboard == "ipvsadm -L -n -t 10.96.10.20:80"


async def test_a_trace_steps_onto_the_virtual_service_and_real_server_ipvs_chose() -> None:
    app = explorer(str(SAMPLES / "ipvs-mode.rules"), *PARTS, *PACKET)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None and screen.trace is not None
        assert sorted((p.endpoint, p.probability) for p in screen.trace.paths) == [  # type: ignore[attr-defined]
            ("10.244.1.11:8080", Fraction(1, 2)), ("10.244.1.12:8080", Fraction(1, 2))]
        seen = await step_all(app, pilot)  # the tree's cursor and the detail follow every hop
        at = next(i for i, (h, _) in enumerate(seen) if h.verdict == "IPVS")  # type: ignore[attr-defined]
        await pilot.press("g")
        for _ in range(at):
            await pilot.press("n")
        await pilot.pause()
        hop = seen[at][0]
        want = Loc(IPVS_TABLE, "TCP 10.96.10.20:80", 1 if hop.target == "10.244.1.11:8080" else 2)  # type: ignore[attr-defined]
        assert screen.chains.cursor_loc == want
        text = screen.detail.text
        assert text.startswith(f"ipvsadm / TCP 10.96.10.20:80  real server {want.index} of 3")
        assert "trace    INPUT" in text and "→ IPVS" in text and "share 1/2" in text
        assert "\nscheduler rr; round-robin" in text  # the virtual service's detail, line by line


async def test_presets_come_from_the_ipvs_services() -> None:
    app = explorer(str(SAMPLES / "ipvs-mode.rules"), *PARTS)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot)
        screen = app.main_screen
        assert screen is not None
        services = screen.insights.services
        web = next(s for s in services.values() if any(f.ip == "10.96.10.20" for f in s.frontends))
        assert screen.insights.service_of(IPVS_TABLE, "TCP 10.96.10.20:80") == web.name
        screen.builder.set_service(web)
        assert any(p.fields["dst"] == "10.96.10.20" for p in screen.builder.presets)
