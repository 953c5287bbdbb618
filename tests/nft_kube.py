"""Helpers of the nftables-mode kube tests: kube-proxy's ``nft -f`` input (tools/kubegen_nft.py, kube-proxy's own
test expectation) turned into the listing nft prints for it, samples read, listings edited."""

from __future__ import annotations

import collections
from pathlib import Path

from kptui.engine.nft import NftRuleset, parse_nft

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample_text(name: str) -> str:
    return (SAMPLES / f"{name}.nft").read_text()


def listing(text: str, source: str = "test.nft") -> NftRuleset:
    return parse_nft(text, source=source)


def edited(name: str, old: str, new: str) -> NftRuleset:
    """Sample ``name`` with ``old`` replaced by ``new`` (``old`` must be there: the test would prove nothing)."""
    text = sample_text(name)
    assert old in text, old
    return parse_nft(text.replace(old, new), source=f"{name}.nft")


def as_listing(script: str, family: str = "ip") -> str:
    """``add …`` commands (nft -f input) as the listing nft would print for them (good enough for the model)."""
    chains: dict[str, list[str]] = collections.OrderedDict()
    heads: dict[str, str] = {}
    sets: dict[str, list[str]] = collections.OrderedDict()
    elems: dict[str, list[str]] = collections.defaultdict(list)
    for ln in script.splitlines():
        w = ln.split(" ", 5)
        if w[1] == "chain":
            name = w[4].split(" ")[0]
            chains.setdefault(name, [])
            body = ln.partition("{")[2].rpartition("}")[0].strip()
            if body:
                heads[name] = body.replace(" ;", ";")
        elif w[1] == "rule":
            name, _, rule = ln.split(" ", 4)[4].partition(" ")
            chains.setdefault(name, []).append(rule)
        elif w[1] in ("set", "map"):
            name = w[4].split(" ")[0]
            sets[name] = [w[1], ln.partition("{")[2].rpartition("}")[0].strip()]
        elif w[1] == "element":
            name = w[4].split(" ")[0]
            elems[name].append(ln.partition("{")[2].rpartition("}")[0].strip())
    out = [f"table {family} kube-proxy {{"]
    for name, (kind, body) in sets.items():
        out.append(f"\t{kind} {name} {{")
        out += [f"\t\t{p.strip()}" for p in body.split(";") if p.strip()]
        if elems[name]:
            out.append("\t\telements = { " + ", ".join(elems[name]) + " }")
        out.append("\t}")
    for name, rules in chains.items():
        out.append(f"\tchain {name} {{")
        if name in heads:
            out.append(f"\t\t{heads[name]}")
        out += [f"\t\t{r}" for r in rules]
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


