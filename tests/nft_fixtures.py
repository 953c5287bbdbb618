"""The nft listing fixtures: rulesets (tests/data/nft/*.nft, *.rules) loaded into a throwaway network namespace
and listed by the real ``nft`` in every form users paste.

Used by tests/data/nft/regenerate.py (writes the listings next to the rulesets) and by the kernel test that
lists them afresh. Everything runs inside namespaces the lab creates and deletes (tools/netlab.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "nft"

# fixture name -> the rulesets loaded for it, in order (.nft: nft -f; .rules: iptables-nft-restore)
RULESETS: dict[str, tuple[str, ...]] = {
    "kube-proxy": ("kube-proxy-ipv4.nft", "kube-proxy-ipv6.nft"),
    "firewalld": ("firewalld.nft",),
    "misc": ("misc.nft",),
    "iptables-nft": ("iptables-nft.rules",),
}
# listing form -> nft arguments; stderr is merged as ``nft list ruleset > FILE 2>&1`` merges it
FORMS: dict[str, tuple[str, ...]] = {
    "list.txt": ("list", "ruleset"),
    "list-a.txt": ("-a", "list", "ruleset"),
    "list-nn.txt": ("-nn", "list", "ruleset"),
    "list.json": ("-j", "list", "ruleset"),
}


def fixture_path(name: str, form: str) -> Path:
    return DATA / f"{name}.{form}"


def load(lab: object, name: str) -> None:
    """Load fixture ``name``'s rulesets into the lab's node namespace."""
    from tools.netlab import Lab

    assert isinstance(lab, Lab)
    if name == "misc":  # its netdev table hooks ingress of d0
        lab.exec(lab.node, ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    for file in RULESETS[name]:
        text = (DATA / file).read_text()
        if file.endswith(".rules"):
            lab.exec(lab.node, ["iptables-nft-restore"], input=text)
        else:
            lab.exec(lab.node, ["nft", "-f", "-"], input=text)


def list_forms(lab: object) -> dict[str, str]:
    """Every listing form of the lab node's ruleset, as ``nft … > FILE 2>&1`` writes it."""
    from tools.netlab import Lab

    assert isinstance(lab, Lab)
    out = {}
    for form, args in FORMS.items():
        proc = subprocess.run(["ip", "netns", "exec", lab.node, "nft", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60, check=True)  # fmt: skip
        out[form] = proc.stdout
    return out


def differences(base: object, other: object) -> list[str]:
    """Where two models of the same ruleset differ, in words (empty: equal). Tables managed by iptables-nft
    are compared without their rules' statements: nft lists those as translations in text and as ``xt``
    expressions in JSON (that difference is the point of flagging them)."""
    from kptui.engine.nft import NftRuleset

    assert isinstance(base, NftRuleset) and isinstance(other, NftRuleset)
    out: list[str] = []
    names = [(t.family, t.name) for t in base.tables]
    if names != [(t.family, t.name) for t in other.tables]:
        return [f"tables {names} != {[(t.family, t.name) for t in other.tables]}"]
    for a in base.tables:
        b = other.table(a.family, a.name)
        assert b is not None
        where = f"table {a.family} {a.name}"
        if a == b:
            continue
        if (a.flags, a.iptables_nft, a.objects, dict(a.sets)) != (b.flags, b.iptables_nft, b.objects, dict(b.sets)):
            for n, s in a.sets.items():
                if b.sets.get(n) != s:
                    out.append(f"{where} set {n}: {s} != {b.sets.get(n)}")
            if (a.flags, a.iptables_nft, a.objects) != (b.flags, b.iptables_nft, b.objects):
                out.append(f"{where}: flags/iptables_nft/objects differ")
        if list(a.chains) != list(b.chains):
            out.append(f"{where}: chains {list(a.chains)} != {list(b.chains)}")
            continue
        for n, c in a.chains.items():
            d = b.chains[n]
            head = (c.type, c.hook, c.priority, c.policy, c.flags, len(c.rules))
            if head != (d.type, d.hook, d.priority, d.policy, d.flags, len(d.rules)):
                out.append(f"{where} chain {n}: {head} != {(d.type, d.hook, d.priority, d.policy, d.flags, len(d.rules))}")
                continue
            for r, s in zip(c.rules, d.rules, strict=True):
                if a.iptables_nft:
                    if (r.index, r.counter, r.comment) != (s.index, s.counter, s.comment):
                        out.append(f"{where} chain {n} rule {r.index}: counter/comment differ")
                elif r != s:
                    out.append(f"{where} chain {n} rule {r.index} {r.text!r}: {r.exprs} != {s.exprs}")
    return out
