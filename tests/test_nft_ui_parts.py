"""The explorer's nft parts that know nothing of Textual: insights over a view of iptables and nft tables, the detail
pane's pieces, what y and Y copy, where a trace hop is in the tree, and the presets of nft services."""

from __future__ import annotations

import sys

from kptui.engine import parse_ruleset_bytes
from kptui.engine.nft import parse_nft
from kptui.engine.nft.display import display_ruleset
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.schedule import Netfilter
from kptui.engine.trace import trace
from kptui.ui.locs import Loc, rule_at
from kptui.ui.nft_detail import nft_chain_pieces, nft_element_pieces, nft_rule_pieces, nft_set_pieces
from kptui.ui.nft_insights import NftInsights, copy_command, copy_text, hop_loc
from kptui.ui.presets import presets_for
from kptui.ui.services import load_insights

from .nft_kube import SAMPLES, sample_text

KP = "ip kube-proxy"
WEB = "service-SUSTUHLJ-default/web/tcp/http"


def insights(name: str = "nft-clusterip") -> tuple[NftInsights, object]:
    nft = parse_nft(sample_text(name), source=f"{name}.nft")
    view = display_ruleset(None, nft)
    return NftInsights(view, nft), view


def test_the_ui_modules_for_nft_import_no_textual() -> None:
    import subprocess

    code = ("import sys, kptui.ui.nft_insights, kptui.ui.nft_detail; "
            "print(any(m.startswith(('textual', 'rich')) for m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_insights_name_explain_and_find_on_nft_tables() -> None:
    ins, view = insights()
    assert ins.service_of(KP, WEB) == "default/web:http"
    assert ins.service_of(KP, "endpoint-7FUMELAF-default/web/tcp/http__10.244.1.11/8080") == "default/web:http"
    assert ins.service_of(KP, "services") is None and ins.pod_cidr == "10.244.0.0/16"
    rule = rule_at(view, Loc(KP, WEB, 2))  # type: ignore[arg-type]
    assert rule is not None and "1 in 3" in (ins.explain(rule) or "")
    elem = rule_at(view, Loc(KP, "@service-ips", 3))  # type: ignore[arg-type]
    assert elem is not None and "the cluster IP 10.96.10.20:80/tcp of default/web:http" in (ins.explain(elem) or "")
    assert (ins.explain_chain(KP, "@cluster-ips") or "").startswith("every service's cluster IP")
    assert (ins.explain_table(KP) or "").startswith("kube-proxy's table (nftables mode, IPv4)")
    codes = [f.text for f in ins.findings(Loc(KP, "cluster-ips-check", 2))]
    assert codes and "[cluster-ip-unallocated-drop]" in codes[0]
    web = ins.services["default/web:http"]
    labels = [p.label for p in presets_for(web, node_ips=("10.0.0.2",), pod_cidrs=(ins.pod_cidr or "",))]
    assert labels == ["pod → ClusterIP 10.96.10.20:80/tcp (default/web:http)"]


def test_iptables_tables_keep_their_own_insights() -> None:
    xt = parse_ruleset_bytes((SAMPLES / "mixed-node.rules").read_bytes())
    nft = parse_nft(sample_text("mixed-node"))
    view = display_ruleset(xt, nft)
    ins = NftInsights(view, nft, load_insights(xt))
    sep = next(c for c in xt.tables["nat"].chains if c.startswith("KUBE-SVC-"))
    assert ins.service_of("nat", sep) is not None
    rule = rule_at(view, Loc("inet firewalld", "filter_IN_public_allow", 1))  # type: ignore[arg-type]
    assert rule is not None and (ins.explain(rule) or "").startswith("packets tcp to port { 22, 6443, 30000-32767 }")
    assert "shop/checkout:http" in ins.services  # from the iptables side


def test_copies_are_what_nft_prints_and_the_command_that_lists_it() -> None:
    nft = parse_nft(sample_text("nft-no-endpoints"))
    assert copy_text(nft, Loc(KP, "masquerading", 3)) == "masquerade fully-random"
    assert copy_text(nft, Loc(KP, "@no-endpoint-nodeports", 1)) == \
        'tcp . 30100 comment "default/broken:http" : goto reject-chain'  # fmt: skip
    assert copy_text(nft, Loc("nat", "KUBE-SERVICES", 1)) is None
    assert copy_command(Loc(KP, "services", 1)) == "nft list chain ip kube-proxy services"
    assert copy_command(Loc(KP, "@service-ips")) == "nft list map ip kube-proxy service-ips"
    assert copy_command(Loc(KP, "@cluster-ips"), kind="set") == "nft list set ip kube-proxy cluster-ips"
    assert copy_command(Loc(KP)) == "nft list table ip kube-proxy"
    assert copy_command(Loc("nat", "KUBE-SERVICES")) is None
    counted = parse_nft("table inet c {\n\tchain in {\n\t\ttype filter hook input priority 0; policy accept;\n"
                        "\t\ttcp dport 22 counter packets 7 bytes 420 accept\n\t}\n}\n")  # fmt: skip
    assert copy_text(counted, Loc("inet c", "in", 1)) == "tcp dport 22 counter packets 7 bytes 420 accept"


def test_a_trace_hop_is_found_in_the_view() -> None:
    nft = parse_nft(sample_text("nft-clusterip"))
    view = display_ruleset(None, nft)
    t = trace(Netfilter({}, nft), Packet("10.244.1.100", "10.96.10.20", "tcp", 40000, 80, "pod"),
              NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    for hop in t.paths[0].hops:
        loc = hop_loc(hop, view.tables)
        assert loc.table == KP and view.chain(loc.table, loc.chain or "") is not None, hop
        if hop.kind == "rule":
            rule = rule_at(view, loc)
            assert rule is not None and rule.raw == hop.rule
    xt = parse_ruleset_bytes((SAMPLES / "clusterip.rules").read_bytes())
    ipt = trace(xt, Packet("10.244.1.100", "10.96.10.20", "tcp", 40000, 80, "pod"), NodeContext())
    assert hop_loc(ipt.paths[0].hops[0], display_ruleset(xt, nft).tables).table in ("raw", "mangle", "nat", "filter")


def test_detail_pieces() -> None:
    nft = parse_nft((SAMPLES / "nft-session-affinity.json").read_text(), source="a.json")
    t = nft.table("ip", "kube-proxy")
    assert t is not None
    chain = t.chains["filter-input"]
    text = "".join(x for _, x in nft_chain_pieces(chain))
    assert text.startswith("base     type filter hook input priority filter (0) · policy accept\nrules    2 rules")
    rule = t.chains["service-242WI43H-shop/cart/tcp/http"].rules[0]
    pieces = nft_rule_pieces(rule, "a.json")
    assert ("negation", "ip saddr != 10.244.0.0/16") in pieces and ("label", "   (not from 10.244.0.0/16)\n") in pieces
    assert "no counter statement" in "".join(x for _, x in pieces) and f"handle {rule.handle}" in "".join(x for _, x in pieces)
    st = next(s for s in t.sets.values() if s.name.startswith("affinity-"))
    assert "flags dynamic,timeout · timeout 3h" in "".join(x for _, x in nft_set_pieces(st))  # restored from the JSON
    assert "expires in" in "".join(x for _, x in nft_element_pieces(st, st.elements[0]))


def test_a_big_nft_table_groups_its_per_service_chains_and_affinity_sets() -> None:
    from kptui.ui.tree_layout import Group, arrange

    nft = parse_nft((SAMPLES / "nft-session-affinity.nft").read_text())
    view = display_ruleset(None, nft)
    names = list(view.tables[KP].chains)
    from kptui.engine.kube.nft_names import hash8

    rests = [f"ns/x/tcp/p__10.0.{i // 250}.{i % 250}/80" for i in range(400)]
    many = [(n, None) for n in names] + [(f"endpoint-{hash8(r)}-{r}", None) for r in rests]
    items = arrange(many)
    groups = {g.label.split(" ")[0]: g for g in items if isinstance(g, Group)}
    assert "endpoint-*" in groups and groups["endpoint-*"].label == "endpoint-* (405 chains)"  # the sample's 5 and 400
    assert "services" in [i[0] for i in items if not isinstance(i, Group)]  # the fixed chains stay on top
    assert not any(isinstance(i, Group) and i.label.startswith("@affinity") for i in items)  # 5 sets: too few
