"""The IPVS side as display tables (kptui.engine.ipvs.display): the explorer's tree, search and filter show an
IPVS-mode node's ipsets and virtual services next to its iptables tables."""

from __future__ import annotations

from pathlib import Path

from kptui.engine import parse_ruleset
from kptui.engine.ipvs import ipvs_context
from kptui.engine.ipvs.display import IPSET_TABLE, IPVS_TABLE, ipvs_tables, is_ipvs_table, with_ipvs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def node() -> object:
    return ipvs_context((SAMPLES / "ipvs-mode.ipset").read_text(), (SAMPLES / "ipvs-mode.ipvsadm").read_text(),
                        ipset_source="ipvs-mode.ipset", ipvs_source="ipvs-mode.ipvsadm")  # fmt: skip


def test_every_set_and_virtual_service_is_a_chain_of_its_members_or_real_servers() -> None:
    n = node()
    tables = ipvs_tables(n)  # type: ignore[arg-type]
    assert set(tables) == {IPSET_TABLE, IPVS_TABLE}
    sets = tables[IPSET_TABLE].chains
    assert list(sets) == list(n.ipsets.sets)  # type: ignore[attr-defined]
    cluster = [r.raw for r in sets["KUBE-CLUSTER-IP"].rules]
    assert cluster == [e.text for e in n.ipsets.get("KUBE-CLUSTER-IP").elements]  # type: ignore[attr-defined]
    assert "10.96.10.20,tcp:80" in cluster
    services = tables[IPVS_TABLE].chains
    assert len(services) == len(n.table)  # type: ignore[attr-defined]
    web = [r.raw for r in services["TCP 10.96.10.20:80"].rules]
    # weights 1, 1, 0 under rr: halves for the two, the third draining
    assert web == ["-> 10.244.1.11:8080 Masq weight 1 share 1/2", "-> 10.244.1.12:8080 Masq weight 1 share 1/2",
                   "-> 10.244.2.13:8080 Masq weight 0 draining"]  # fmt: skip
    assert [r.raw for r in services["TCP 10.0.0.2:30100"].rules] == []  # a virtual service without real servers
    assert all(r.counters is None for c in services.values() for r in c.rules)  # -S -n has no stats


def test_with_ipvs_puts_them_after_the_dump_and_is_the_dump_itself_without_them() -> None:
    dump = parse_ruleset((SAMPLES / "ipvs-mode.rules").read_text())
    shown = with_ipvs(dump, node())  # type: ignore[arg-type]
    assert list(shown.tables)[: len(dump.tables)] == list(dump.tables)
    assert list(shown.tables)[len(dump.tables) :] == [IPSET_TABLE, IPVS_TABLE]
    assert with_ipvs(dump, None) is dump
    assert not any(is_ipvs_table(t) for t in dump.tables)
    assert is_ipvs_table(IPSET_TABLE) and is_ipvs_table(IPVS_TABLE) and not is_ipvs_table("ip kube-proxy")


def test_stats_columns_become_counters_only_when_exact() -> None:
    listing = """IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.96.0.10:53                       2       10        0      600        0
  -> 10.244.1.2:53                       1        5        0      300        0
  -> 10.244.2.3:53                       1       12K       0      700        0
"""
    tables = ipvs_tables(ipvs_context(None, listing))
    rules = tables[IPVS_TABLE].chains["TCP 10.96.0.10:53"].rules
    assert rules[0].counters is not None and (rules[0].counters.packets, rules[0].counters.bytes) == (5, 300)
    assert rules[1].counters is None  # 12K: ipvsadm's abbreviation, not a count
