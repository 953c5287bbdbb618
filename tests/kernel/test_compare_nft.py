"""compare_nft's step lists on a real capture (no root): a mixed node's first packet, rejected by firewalld.

The kernel's events of iptables-nft tables (printed in translated nft syntax) are located by position in the
node's ``nft -a list ruleset`` taken in the same lab run (``data/nft-mixed-firewalld-reject.ruleset``); an engine
path made of the same steps agrees, one with a step changed does not, and the side-by-side view marks it.
"""

from __future__ import annotations

from pathlib import Path

from kptui.engine.kernel_trace import first_packet, parse_kernel_trace
from kptui.engine.trace_model import Hop, PacketState, TracePath
from tools.netlab import Probe, ProbeResult

from .compare_nft import NStep, engine_nft_steps, kernel_nft_steps, locate, normalise, side_by_side
from .nft_harness import NftObservation, Send, strip_trace
from .test_kernel_trace_nft_parser import FIREWALLD

DATA = Path(__file__).resolve().parent / "data"
NATIVE = (("inet", "firewalld"),)


def observation() -> NftObservation:
    text = (DATA / "nft-mixed-firewalld-reject.txt").read_text()
    k = first_packet(parse_kernel_trace(text, base_chains=FIREWALLD), "tcp", 47002)
    assert k is not None
    send = Send("outside", "tcp", "10.0.0.2", 9999)
    result = ProbeResult(Probe("tcp", "10.0.0.2", 9999, None, 47002), False, 47002, "ehostunreach")
    return NftObservation(send, 47002, "external", result, strip_trace(k), "", text, nft_all=(
        DATA / "nft-mixed-firewalld-reject.ruleset").read_text(), native=NATIVE)


def as_path(steps: tuple[NStep, ...]) -> TracePath:
    """An engine path that walked exactly ``steps``."""
    fam = {"ip": "ip", "inet": "inet"}
    hops = tuple(Hop(s.hook or "?", s.table, s.chain, s.kind, s.index, None, s.text if s.kind == "rule" else None,
                     True, s.verdict, s.target, family=fam[s.family or "ip"]) for s in steps)  # fmt: skip
    state = PacketState(src="10.0.0.1", dst="10.0.0.2", proto="tcp", sport=47002, dport=9999)
    return TracePath(hops[0].probability, "REJECT", hops, state, None)


def test_normalise_drops_counter_values_handles_and_spacing() -> None:
    assert normalise("meta l4proto tcp ip daddr 10.96.10.20  tcp dport 80 counter packets 3 bytes 180 jump X "
                     "# handle 9") == "meta l4proto tcp ip daddr 10.96.10.20 tcp dport 80 counter jump X"


def test_locate_reads_rules_in_order_per_chain() -> None:
    rules = locate((DATA / "nft-mixed-firewalld-reject.ruleset").read_text())
    assert rules[("ip", "nat", "PREROUTING")] == ["counter jump KUBE-SERVICES"]
    assert rules[("inet", "firewalld", "filter_INPUT")][-1] == "reject with icmpx admin-prohibited"
    assert rules[("ip", "filter", "KUBE-SERVICES")] == [], "an empty chain"


def test_kernel_steps_of_a_mixed_node() -> None:
    steps = kernel_nft_steps(observation())
    ipt = [s for s in steps if not s.native]
    assert ipt and all(s.family == "ip" for s in ipt)
    assert all(s.index is not None for s in ipt if s.kind == "rule"), "every iptables-nft rule located"
    first = next(s for s in ipt if s.table == "nat")
    assert (first.hook, first.chain, first.index, first.verdict, first.target) == (
        "PREROUTING", "PREROUTING", 1, "JUMP", "KUBE-SERVICES")
    last = steps[-1]
    assert (last.family, last.table, last.chain, last.verdict, last.native) == (
        "inet", "firewalld", "filter_INPUT", "DROP", True)
    assert last.text == "reject with icmpx admin-prohibited"
    assert not any(s.table == "kptrace" for s in steps), "the trace table is not part of the node's rules"
    assert observation().visits == [
        ("PREROUTING", "ip", "mangle", "PREROUTING"), ("PREROUTING", "inet", "firewalld", "mangle_PREROUTING"),
        ("PREROUTING", "ip", "nat", "PREROUTING"), ("PREROUTING", "inet", "firewalld", "nat_PREROUTING"),
        ("INPUT", "ip", "mangle", "INPUT"), ("INPUT", "ip", "filter", "INPUT"), ("INPUT", "inet", "firewalld", "filter_INPUT")]


def test_an_engine_path_with_the_same_steps_agrees_and_a_changed_one_does_not() -> None:
    ks = kernel_nft_steps(observation())
    same = engine_nft_steps(as_path(ks), NATIVE)
    assert len(same) == len(ks) and all(a.same(b) for a, b in zip(ks, same))
    # an iptables rule is the same by position whatever its text (the engine holds iptables syntax)
    ipt_i = next(i for i, s in enumerate(ks) if not s.native and s.kind == "rule")
    other = list(ks)
    other[ipt_i] = NStep(**{**ks[ipt_i].__dict__, "text": "-A PREROUTING -j KUBE-SERVICES"})
    assert ks[ipt_i].same(engine_nft_steps(as_path(tuple(other)), NATIVE)[ipt_i])
    # a native rule must match by text, and verdicts and targets must agree
    nat_i = len(ks) - 1
    changed = list(ks)
    changed[nat_i] = NStep(**{**ks[nat_i].__dict__, "text": "reject"})
    engine = engine_nft_steps(as_path(tuple(changed)), NATIVE)
    assert not ks[nat_i].same(engine[nat_i])
    view = side_by_side(ks, engine, "(test)")
    assert f"!!{nat_i + 1:2}" in view and "first difference at step" in view
    jump = next(i for i, s in enumerate(ks) if s.verdict == "JUMP")
    wrong = list(ks)
    wrong[jump] = NStep(**{**ks[jump].__dict__, "target": "ELSEWHERE"})
    assert not ks[jump].same(engine_nft_steps(as_path(tuple(wrong)), NATIVE)[jump])
