"""Assumptions that steer the rest of a path, one unknown per interface, scenarios that sum to 1, the masquerade
address, and returning clients (issue 10, items 1, 2, 5 and 6): each test failed on the engine before."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from kptui.cli import main
from kptui.engine import parse_ruleset
from kptui.engine.assume import Fact, decide, satisfiable
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace import trace
from kptui.engine.trace_model import Trace
from kptui.engine.trace_report import masquerade_address, path_brief

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str):  # type: ignore[no-untyped-def]
    return parse_ruleset((SAMPLES / f"{name}.rules").read_text(), source=name)


def hooks(path) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.hook for h in path.hops]


def world_sums(t: Trace) -> list[Fraction]:
    """For every path as a seed: a world (every path's assumptions that fit, in path order, starting with the
    seed's) and the probability of the paths it admits. An independent check of the scenario property."""
    sums = []
    for seed in t.paths[:: max(1, len(t.paths) // 12)]:  # a dozen seeds spread over the paths
        world: list[Fact] = list(seed.facts)
        for p in t.paths:
            if all(decide(world, k, pr) in (None, v) for k, pr, v in p.facts):
                world.extend(p.facts)
        admitted = [p for p in t.paths if all(decide(world, k, pr) == v for k, pr, v in p.facts)]
        sums.append(sum((p.probability for p in admitted), Fraction(0)))
    return sums


# -- item 1: an assumption about the node holds everywhere later on its path --------------------------------
def test_a_path_that_takes_the_destination_for_a_node_address_is_routed_to_input() -> None:
    # kptui trace samples/nodeport-local.rules --src 203.0.113.10 --dst 10.0.0.2 --dport 32091 --from external
    t = trace(sample("nodeport-local"), Packet("203.0.113.10", "10.0.0.2", dport=32091, origin="external"))
    assert len(t.paths) == 2
    for p in t.paths:
        local = decide(p.facts, "local 10.0.0.2", None)
        assert local is not None, p.facts
        if local:  # addrtype LOCAL held in nat PREROUTING: routing must deliver it (the old engine forwarded it)
            assert "INPUT" in hooks(p) and "FORWARD" not in hooks(p) and p.delivery == "local"
        else:
            assert "INPUT" not in hooks(p) and p.delivery == "forward"
        routing = [h for h in p.hops if h.kind == "routing"]
        assert len(routing) == 1 and routing[0].verdict == ("LOCAL" if local else "ROUTE")


def test_ssh_from_outside_is_never_masqueraded_to_the_clients_own_address() -> None:
    t = trace(sample("foreign-chains"), Packet("203.0.113.10", "10.0.0.2", dport=22, origin="external"))
    assert t.paths
    for p in t.paths:
        assert masquerade_address(p) != "203.0.113.10"
        if decide(p.facts, "local 10.0.0.2", None):
            assert p.delivery == "local" and not p.masquerade, path_brief(p)
    assert any(p.delivery == "local" for p in t.paths)


# -- item 2: one unknown per interface, consistent answers, scenarios that sum to 1 ----------------------------
def test_interface_assumptions_never_contradict_each_other() -> None:
    # kptui trace samples/foreign-chains.rules --src 10.244.1.100 --dst 10.96.10.20 --dport 80 --node-ip 10.0.0.2
    t = trace(sample("foreign-chains"), Packet("10.244.1.100", "10.96.10.20", dport=80),
              NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    assert len(t.paths) < 1000  # 2404 before, many of them impossible
    for p in t.paths:
        by_key: dict[str, list[tuple[tuple[str, str], bool]]] = {}
        for key, pred, truth in p.facts:
            if pred is not None:
                by_key.setdefault(key, []).append((pred, truth))
        for key, constraints in by_key.items():
            assert satisfiable(constraints), (key, constraints)
            trues = {pr[1] for pr, v in constraints if v and pr[0] == "eq"}
            assert len(trues) <= 1, (key, trues)  # cali+ and docker0, or two veths, never both


def test_every_scenario_and_every_world_sums_to_one() -> None:
    t = trace(sample("foreign-chains"), Packet("10.244.1.100", "10.96.10.20", dport=80),
              NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    assert len(t.scenarios) >= 2
    assert all(sc.probability == 1 for sc in t.scenarios)
    assert set(world_sums(t)) == {Fraction(1)}
    assert {i for sc in t.scenarios for i in sc.paths} == set(range(len(t.paths)))  # every path is in one


def test_two_undecidable_addresses_make_four_scenarios_each_summing_to_one() -> None:
    rs = parse_ruleset("""*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m set --match-set A src -j ACCEPT
-A FORWARD -m set --match-set B dst -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
-A PREROUTING -j SVC
-A SVC -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.2.1:80
-A SVC -p tcp -j DNAT --to-destination 10.244.2.2:80
COMMIT
""")
    node = NodeContext(addresses=("10.0.0.2",))
    t = trace(rs, Packet("10.244.1.5", "10.96.0.9", dport=80), node)
    assert len(t.paths) == 6  # 2 endpoints × (A, not A and B, neither)
    assert set(world_sums(t)) == {Fraction(1)}
    doc = json.loads(json.dumps(__import__("kptui.engine.trace_report", fromlist=["x"]).trace_to_dict(t)))
    assert doc["scenarios"] and all(s["probability"] == 1.0 for s in doc["scenarios"])
    assert all(p["scenarios"] for p in doc["paths"])


def test_rpfilter_validmark_invert_is_one_question() -> None:
    rs = parse_ruleset("""*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -m rpfilter --validmark --invert -j DROP
COMMIT
""")
    t = trace(rs, Packet("10.244.1.5", "10.244.2.7", dport=80), NodeContext(addresses=("10.0.0.2",)))
    assert sorted(p.verdict for p in t.paths) == ["ACCEPT", "DROP"]  # two answers to one question, not four
    (key,) = {f[0] for p in t.paths for f in p.facts}
    drop = next(p for p in t.paths if p.verdict == "DROP")
    assert drop.facts == ((key, None, False),)  # --invert: the rule drops when the reverse path is NOT valid


def test_an_outside_packet_arrives_on_the_uplink_not_on_a_pod_or_docker_interface() -> None:
    rs = parse_ruleset("""*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -i cali+ -j DROP
-A FORWARD -i docker0 -j DROP
-A FORWARD -i eth0 -j REJECT
COMMIT
""")
    t = trace(rs, Packet("203.0.113.10", "10.244.2.7", dport=80, origin="external"),
              NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    assert sorted(p.verdict for p in t.paths) == ["ACCEPT", "REJECT"]  # never DROP: not a pod or docker iface
    assert all("uplink" in " ".join(p.notes) for p in t.paths)
    told = trace(rs, Packet("203.0.113.10", "10.244.2.7", dport=80, origin="external", in_iface="docker0"),
                 NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    assert [p.verdict for p in told.paths] == ["DROP"]  # unless told otherwise


# -- item 5: the masquerade address is the outgoing interface's, or not known ---------------------------------
def test_masquerade_toward_a_pod_without_its_interface_is_not_the_node_address() -> None:
    # node → NodePort with a local endpoint, only --node-ip given: the kernel uses the address of the
    # interface toward the pod (the veth gateway), which nothing says
    t = trace(sample("nodeport-local"), Packet("10.0.0.2", "10.0.0.2", dport=30090, origin="local"),
              NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    masq = [p for p in t.paths if p.masquerade]
    assert masq
    for p in masq:
        assert masquerade_address(p) is None
        assert any("masquerade source" in a for a in p.assumptions)
        assert p.delivery == "sent"  # sent by the node, not forwarded
    known = NodeContext(addresses=("10.0.0.2",), interfaces={"eth0": ("10.0.0.2/24",), "cni0": ("10.244.1.1/24",)},
                        pod_cidrs=("10.244.1.0/24",), uplink="eth0", pod_iface="cni0")  # fmt: skip
    t2 = trace(sample("nodeport-local"), Packet("10.0.0.2", "10.0.0.2", dport=30090, origin="local"), known)
    local_ep = next(p for p in t2.paths if p.endpoint == "10.244.1.31:8080")
    assert masquerade_address(local_ep) == "10.244.1.1" and not local_ep.assumptions


def test_cli_json_says_the_masquerade_address_is_not_known_and_lists_why(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["trace", str(SAMPLES / "nodeport-local.rules"), "--src", "10.0.0.2", "--dst", "10.0.0.2",
                 "--dport", "30090", "--from", "local", "--node-ip", "10.0.0.2", "--json"])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    for p in doc["paths"]:
        if p["masquerade"]:
            assert p["masquerade_as"] is None and p["assumptions"] and p["delivery"] == "sent"


# -- item 6: a returning client is bound to one endpoint ----------------------------------------------------
CART = Packet("10.244.1.5", "10.96.60.10", dport=80)
CART_NODE = NodeContext(addresses=("10.0.0.2",), pod_cidrs=("10.244.1.0/24",))


def test_affinity_hit_forks_one_path_per_endpoint_each_stating_it() -> None:
    t = trace(sample("session-affinity"), CART, NodeContext(addresses=CART_NODE.addresses,
                                                            pod_cidrs=CART_NODE.pod_cidrs, affinity="any"))  # fmt: skip
    endpoints = sorted(p.endpoint or "" for p in t.paths)
    assert endpoints == ["10.244.1.61:8080", "10.244.1.62:8080", "10.244.2.63:8080"]  # not always the first
    assert all(p.probability == 1 for p in t.paths) and len(t.scenarios) == 3
    for p in t.paths:
        assert p.assumptions == (f"the client is bound to {p.endpoint} ({_sep(p)})",)
        hop = next(h for h in p.hops if h.matched and "--rcheck" in (h.rule or ""))
        assert hop.note is not None and str(p.endpoint) in hop.note  # the hop says it


def _sep(path) -> str:  # type: ignore[no-untyped-def]
    return next(h.target for h in path.hops if h.matched and "--rcheck" in (h.rule or ""))


@pytest.mark.parametrize("bound", ["10.244.1.62:8080", "10.244.1.62"])
def test_affinity_hit_to_a_named_endpoint_goes_there(bound: str) -> None:
    node = NodeContext(addresses=CART_NODE.addresses, pod_cidrs=CART_NODE.pod_cidrs, affinity=bound)
    (p,) = trace(sample("session-affinity"), CART, node).paths
    assert p.endpoint == "10.244.1.62:8080" and p.assumptions == ()


def test_cli_affinity_hit_takes_an_optional_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["trace", str(SAMPLES / "session-affinity.rules"), "--src", "10.244.1.5", "--dst", "10.96.60.10",
            "--dport", "80", "--node-ip", "10.0.0.2", "--json"]  # fmt: skip
    assert main([*args, "--affinity-hit"]) == 0
    assert len(json.loads(capsys.readouterr().out)["paths"]) == 3
    assert main([*args, "--affinity-hit", "10.244.2.63:8080"]) == 0
    (only,) = json.loads(capsys.readouterr().out)["paths"]
    assert only["endpoint"] == "10.244.2.63:8080"


# -- every sample, iptables and nft: the scenarios' probabilities sum to exactly 1 ------------------------
def _samples() -> list[tuple[str, Packet]]:
    out = []
    for name in ("clusterip", "nodeport-cluster", "nodeport-local", "session-affinity", "no-endpoints",
                 "loadbalancer-sourceranges"):  # fmt: skip
        out.append((f"{name}.rules", Packet("10.244.1.100", "10.96.10.20", dport=80)))
        out.append((f"nft-{name}.nft", Packet("10.244.1.100", "10.96.10.20", dport=80)))
        out.append((f"nft-{name}.json", Packet("203.0.113.10", "10.0.0.2", dport=30080, origin="external")))
        out.append((f"{name}.rules", Packet("203.0.113.10", "10.0.0.2", dport=30080, origin="external")))
    return out


@pytest.mark.parametrize(("name", "packet"), _samples())
def test_every_samples_scenarios_sum_to_one_and_no_path_is_repeated(name: str, packet: Packet) -> None:
    from kptui.engine.nft import parse_nft
    from kptui.engine.schedule import Netfilter

    text = (SAMPLES / name).read_text()
    rules = Netfilter({}, parse_nft(text, source=name)) if name.startswith("nft-") else parse_ruleset(text)
    for node in (NodeContext(), NodeContext(addresses=("10.0.0.2",))):
        t = trace(rules, packet, node)
        assert t.scenarios and all(sc.probability == 1 for sc in t.scenarios), [sc.probability for sc in t.scenarios]
        assert set(world_sums(t)) == {Fraction(1)}
        seen = [(p.facts, tuple((h.chain, h.index, h.matched, h.verdict) for h in p.hops)) for p in t.paths]
        assert len(seen) == len(set(seen)), "two paths took the same way under the same assumptions"


def test_an_nft_interface_set_is_one_question_about_the_same_interface() -> None:
    from kptui.engine.nft import parse_nft
    from kptui.engine.schedule import Netfilter

    listing = """table inet f {
	chain fwd {
		type filter hook forward priority filter; policy accept;
		iifname { "cali*", "veth*" } counter drop
		iifname "cali7" accept
		iifname "eth0" reject
	}
}
"""
    t = trace(Netfilter({}, parse_nft(listing)), Packet("10.244.1.5", "10.244.2.7", dport=80),
              NodeContext(addresses=("10.0.0.2",)))  # fmt: skip
    verdicts = sorted(p.verdict for p in t.paths)
    assert verdicts == ["ACCEPT", "DROP", "REJECT"], verdicts  # never cali7 after "not cali* or veth*"
    assert all(sc.probability == 1 for sc in t.scenarios)
