"""Endpoint shares: the statistic cascade multiplied out exactly, as the kernel stores each probability."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from kptui.engine import parse_ruleset
from kptui.engine.kube import build_service_index, chain_hash
from kptui.engine.kube.shares import CONDITIONAL, UNCONDITIONAL, cascade


def kernel_probability(remaining: int) -> str:
    """What iptables-save prints for kube-proxy's ``--probability`` of endpoint i of n (remaining = n − i):
    kube-proxy writes ``%0.10f`` of 1/remaining, libxt_statistic stores lround(p·2³¹) and prints ``%.11f`` of
    stored/2³¹."""
    p = float(f"{1.0 / remaining:.10f}")
    stored = int(p * 2147483648.0 + 0.5)
    return f"{stored / 2147483648.0:.11f}"


def service_dump(n: int, name: str = "default/big:http") -> str:
    """A kube-proxy (1.25+) nat table for one service with ``n`` endpoints, as iptables-save prints it."""
    h = chain_hash(name, "tcp")
    eps = [f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}:8080" for i in range(n)]
    seps = ["KUBE-SEP-" + chain_hash(name, "tcp", ep) for ep in eps]
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", f":KUBE-SVC-{h} - [0:0]"]
    lines += [f":{sep} - [0:0]" for sep in seps]
    lines.append(f'-A KUBE-SERVICES -d 10.96.0.42/32 -p tcp -m comment --comment "{name} cluster IP" '
                 f"-m tcp --dport 80 -j KUBE-SVC-{h}")  # fmt: skip
    for i, (ep, sep) in enumerate(zip(eps, seps)):
        stat = f" -m statistic --mode random --probability {kernel_probability(n - i)}" if i < n - 1 else ""
        lines.append(f'-A KUBE-SVC-{h} -m comment --comment "{name} -> {ep}"{stat} -j {sep}')
    for ep, sep in zip(eps, seps):
        lines.append(f'-A {sep} -p tcp -m comment --comment "{name}" -m tcp -j DNAT --to-destination {ep}')
    return "\n".join([*lines, "COMMIT", ""])


def test_kernel_probability_matches_the_samples() -> None:
    assert [kernel_probability(k) for k in (2, 3, 5)] == ["0.50000000000", "0.33333333349", "0.20000000019"]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=1000))
def test_shares_sum_to_one_and_each_is_one_nth(n: int) -> None:
    (svc,) = build_service_index(parse_ruleset(service_dump(n))).services
    shares = [e.probability for e in svc.endpoints]
    assert len(shares) == n and all(isinstance(p, Fraction) for p in shares)
    assert sum(p for p in shares if p is not None) == 1  # exactly: the last rule takes whatever is left
    assert all(abs(float(p) - 1 / n) < 1e-9 for p in shares if p is not None)


def test_extremes() -> None:
    for n in (1, 2, 1000):
        (svc,) = build_service_index(parse_ruleset(service_dump(n))).services
        assert [e.address for e in svc.endpoints][:1] == ["10.1.0.0:8080"]
        assert sum(e.probability for e in svc.endpoints if e.probability is not None) == 1


def test_cascade_rules() -> None:
    assert cascade(("0.50000000000", UNCONDITIONAL)) == (Fraction(1, 2), Fraction(1, 2))
    assert cascade((UNCONDITIONAL, "0.50000000000")) == (Fraction(1), Fraction(0))  # never reached
    assert cascade(("0.50000000000",)) == (Fraction(1, 2),)  # the other half falls through the chain
    assert cascade(("!0.25000000000", UNCONDITIONAL)) == (Fraction(3, 4), Fraction(1, 4))
    assert cascade((CONDITIONAL, UNCONDITIONAL)) == (None, Fraction(1))
    # kube-proxy 1.16 and older printed 5 decimals: still the kernel's stored value
    assert cascade(("0.33332999982",))[0] == Fraction(round(Fraction("0.33332999982") * 2**31), 2**31)
