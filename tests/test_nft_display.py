"""kptui.engine.nft.display: nft tables beside iptables tables in one ruleset of rows, ordered by hook priority."""

from __future__ import annotations

from kptui.engine import parse_ruleset_bytes
from kptui.engine.counters import counter_snapshot, diff_counters
from kptui.engine.nft import parse_nft
from kptui.engine.nft.display import display_ruleset, is_nft_table, nft_name

from .nft_kube import SAMPLES, sample_text


def test_an_iptables_nft_dump_and_a_native_table_side_by_side_by_priority() -> None:
    xt = parse_ruleset_bytes((SAMPLES / "mixed-node.rules").read_bytes())
    nft = parse_nft(sample_text("mixed-node"))
    rs = display_ruleset(xt, nft)
    assert list(rs.tables) == ["mangle", "inet firewalld", "nat", "filter"]  # -150, mangle + 10, -100, 0
    assert rs.family == "ipv4" and rs.backend == "nf_tables"
    assert is_nft_table("inet firewalld") and not is_nft_table("nat") and nft_name("inet firewalld") == ("inet", "firewalld")
    pre = rs.tables["inet firewalld"].chains["filter_INPUT"]
    assert pre.policy == "ACCEPT" and not pre.builtin
    assert rs.rule_count == xt.rule_count + nft.rule_count + sum(len(s.elements) for t in nft.tables
                                                                 for s in t.sets.values())  # fmt: skip


def test_iptables_nft_tables_of_the_listing_come_from_the_dump() -> None:
    xt = parse_ruleset_bytes((SAMPLES / "clusterip.rules").read_bytes())
    listing = sample_text("nft-clusterip") + ("table ip nat {\n\tchain PREROUTING {\n\t\ttype nat hook prerouting "
                                              "priority dstnat; policy accept;\n\t\tjump KUBE-SERVICES\n\t}\n}\n")
    rs = display_ruleset(xt, parse_nft(listing))
    assert "ip nat" not in rs.tables and rs.tables["nat"] is xt.tables["nat"] and "ip kube-proxy" in rs.tables


def test_rows_carry_targets_sets_are_chains_and_counters_keep_a_rule_s_identity() -> None:
    nft = parse_nft(sample_text("nft-no-endpoints"))
    t = display_ruleset(None, nft).tables["ip kube-proxy"]
    rows = {c.name: list(c.rules.rows) for c in t.chains.values()}  # type: ignore[attr-defined]
    assert rows["nat-prerouting"][0][1:] == ("jump services", None, None, "services", False)
    assert rows["reject-chain"][0][4] == "REJECT" and rows["masquerading"][2][4] == "MASQUERADE"
    assert rows["mark-for-masquerade"][0][4] == "MARK" and rows["cluster-ips-check"][1][4] == "DROP"
    elem = rows["@no-endpoint-nodeports"][0]
    assert elem[1] == 'tcp . 30100 comment "default/broken:http" : goto reject-chain' and elem[4:] == ("reject-chain", True)
    counting = ("table inet c {{\n\tchain in {{\n\t\ttype filter hook input priority 0; policy drop;\n"
                "\t\ttcp dport 22 counter packets {p} bytes {b} accept\n\t}}\n}}\n")
    a = display_ruleset(None, parse_nft(counting.format(p=1, b=60)))
    b = display_ruleset(None, parse_nft(counting.format(p=4, b=240)))
    row = a.tables["inet c"].chains["in"].rules.rows[0]  # type: ignore[attr-defined]
    assert row[1] == "tcp dport 22 counter accept" and row[2:5] == ("1", "60", "ACCEPT")
    d = diff_counters(counter_snapshot(a), counter_snapshot(b), 1.0)
    assert d.counters and [(x.key.table, x.packets, x.bytes) for x in d.rules] == [("inet c", 3, 180)]
    assert a.tables["inet c"].chains["in"].policy == "DROP"


def test_a_listing_without_counters_is_said_to_have_none() -> None:
    a = counter_snapshot(display_ruleset(None, parse_nft(sample_text("nft-clusterip"))))
    d = diff_counters(a, a, 1.0)
    assert not d.counters and any("kube-proxy's nftables mode writes none" in n for n in d.notes)
