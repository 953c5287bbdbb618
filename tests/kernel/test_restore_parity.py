"""Differential test against iptables-restore (issue 14.3): a fixed, seeded sample of mutants of the bundled
samples' rule lines (:mod:`.restore_mutants`) is given to ``iptables-legacy-restore --test`` and
``iptables-nft-restore --test`` (the ``ip6tables-`` ones for the IPv6 sample), run inside a network namespace
this test creates, and to kptui (the whole sample with the line changed). The rule it asserts on every mutant:

- both restore tools refuse the line → kptui refuses the dump with an error on that line, or loads it with a
  warning on that line saying the rule is not understood (a trace through it then takes both ways);
- both accept it → kptui loads the dump.

Where the two backends disagree nothing is asserted (they are counted). Many mutants go to one restore call:
a refused line is found by the line number the tool names, taken out, and the rest tried again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest

from kptui.engine import ParseError, parse_ruleset
from tools.netlab import Lab

from .restore_mutants import Mutant, mutants, table_header

pytestmark = pytest.mark.kernel

_AT_LINE = re.compile(r"(?:Error occurred at line: |line )(\d+)(?: failed)?")
# the ipsets the samples' rules name (iptables-restore asks the kernel whether each exists)
_SETS = (("cali40all-hosts-net", "hash:net"), ("cali40all-ipam-pools", "hash:net"),
         ("cali40masq-ipam-pools", "hash:net"))  # fmt: skip
MUTANTS = mutants(per_sample=100)


@pytest.fixture(scope="module")
def lab(kernel_ok: None) -> Iterator[Lab]:
    with Lab("parity") as lab:
        for name, kind in _SETS:
            lab.exec(lab.node, ["ipset", "create", name, kind])
        yield lab


def _tool(backend: str, family: int) -> list[str]:
    base = f"{'ip6tables' if family == 6 else 'iptables'}-{backend}-restore"
    return [base, "--test", *(["-w", "10"] if backend == "legacy" else [])]


def restore_verdicts(lab: Lab, backend: str, family: int, header: list[str], lines: list[str]
                     ) -> list[tuple[bool, str]]:  # fmt: skip
    """(accepted, message) of each of ``lines`` by ``backend``'s restore (each after ``header``)."""
    verdict: list[tuple[bool, str] | None] = [None] * len(lines)
    start = 0
    while start < len(lines):
        text = "\n".join([*header, *lines[start:], "COMMIT", ""])
        r = lab.exec(lab.node, _tool(backend, family), input=text, check=False)
        if r.returncode == 0:
            verdict[start:] = [(True, "")] * (len(lines) - start)
            break
        out = (r.stderr + r.stdout).strip()
        m = _AT_LINE.search(out)
        at = int(m.group(1)) - len(header) - 1 + start if m else -1
        if not start <= at < len(lines):  # not one of the mutants (COMMIT): try them one by one
            for i in range(start, len(lines)):
                one = lab.exec(lab.node, _tool(backend, family), input="\n".join([*header, lines[i], "COMMIT", ""]),
                               check=False)  # fmt: skip
                verdict[i] = (one.returncode == 0, (one.stderr + one.stdout).strip())
            break
        verdict[start:at] = [(True, "")] * (at - start)
        verdict[at] = (False, out.splitlines()[0] if out else "")
        start = at + 1
    return [v or (False, "") for v in verdict]


def restore_accepts(lab: Lab, backend: str, family: int, header: list[str], lines: list[str]) -> list[bool]:
    return [ok for ok, _ in restore_verdicts(lab, backend, family, header, lines)]


def allowed(m: Mutant, messages: tuple[str, str]) -> str | None:
    """Why a disagreement on ``m`` is allowed (None: it is not)."""
    if any("doesn't exist" in msg for msg in messages):
        return "node state: an ipset the lab does not have (iptables-restore asks the kernel)"
    if re.search(r"--to-(?:destination|source) \d\d:\d+(?: |$)", m.text):
        return ("iptables 1.8.9 reads a two-digit 'address' of a NAT target as no address (saves '--to-destination "
                "90:80' as ':80'): kptui refuses it")  # fmt: skip
    return None


def kptui_outcome(m: Mutant) -> tuple[str, str]:
    """"refused" (an error on the mutant's line), "not understood" (loaded, with a warning on that line saying
    so), "warned" (loaded, another warning there), "loaded", or "refused elsewhere"."""
    try:
        rs = parse_ruleset(m.dump(), source=m.sample)
    except ParseError as exc:
        d = exc.diagnostic
        return ("refused" if d.line == m.line else "refused elsewhere"), d.message
    here = [w.message for w in rs.warnings if w.line == m.line]
    if any("not understood" in w for w in here):
        return "not understood", here[0]
    return ("warned", here[0]) if here else ("loaded", "")


def test_every_line_the_restore_tools_refuse_is_refused_or_not_understood(lab: Lab) -> None:
    groups: dict[tuple[str, str, int], list[Mutant]] = {}
    for m in MUTANTS:
        groups.setdefault((m.sample, m.table, m.family), []).append(m)
    tools: dict[Mutant, tuple[bool, bool]] = {}
    messages: dict[Mutant, tuple[str, str]] = {}
    for (sample, table, family), ms in groups.items():
        header = table_header(sample, table)
        lines = [m.text for m in ms]
        legacy = restore_verdicts(lab, "legacy", family, header, lines)
        nft = restore_verdicts(lab, "nft", family, header, lines)
        for m, a, b in zip(ms, legacy, nft, strict=True):
            tools[m], messages[m] = (a[0], b[0]), (a[1], b[1])
    table: Counter[tuple[str, str, str]] = Counter()
    wrong: list[str] = []
    exceptions: Counter[str] = Counter()
    for m, (legacy, nft) in tools.items():
        outcome, message = kptui_outcome(m)
        refused = outcome in ("refused", "refused elsewhere")
        if (legacy and nft and refused) or (not legacy and not nft and outcome in ("loaded", "warned")):
            # a verdict that breaks the rule is taken again with the mutant alone (a batch names lines)
            header = table_header(m.sample, m.table)
            (legacy, la), (nft, lb) = (restore_verdicts(lab, b, m.family, header, [m.text])[0] for b in ("legacy", "nft"))
            tools[m], messages[m] = (legacy, nft), (la, lb)
        table[("accepts" if legacy else "refuses", "accepts" if nft else "refuses", outcome)] += 1
        broken = (not legacy and not nft and outcome not in ("refused", "not understood")) or (
            legacy and nft and outcome not in ("loaded", "warned", "not understood"))
        if broken and (why := allowed(m, messages[m])) is not None:
            exceptions[why] += 1
            continue
        if not legacy and not nft and outcome not in ("refused", "not understood"):
            wrong.append(f"both refuse, kptui {outcome}: {m.sample}:{m.line} ({m.how}) {m.text!r} {message}")
        if legacy and nft and outcome not in ("loaded", "warned", "not understood"):
            wrong.append(f"both accept, kptui {outcome}: {m.sample}:{m.line} ({m.how}) {m.text!r} {message}")
    report = "\n".join(f"  legacy {a:7}  nft {b:7}  kptui {k:16} {n:4}" for (a, b, k), n in sorted(table.items()))
    allowed_text = "".join(f"\n  allowed ({n}): {why}" for why, n in exceptions.items())
    print(f"\n{len(tools)} mutants:\n{report}{allowed_text}")
    assert len(tools) >= 500
    assert not wrong, f"{len(wrong)} mutants break the rule:\n" + "\n".join(wrong[:40]) + f"\n{report}"
