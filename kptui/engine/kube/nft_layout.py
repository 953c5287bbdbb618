"""Which kube-proxy wrote an nft ruleset (nftables mode), and how it was configured, from the listing alone.

kube-proxy's nftables mode keeps everything in ``table ip kube-proxy`` / ``table ip6 kube-proxy``. The revisions
of its layout (REFERENCE §4.1, ``tools/kubegen_nft.py``), newest first, each told by what only it writes:

* ``1.35+``: service chains that DNAT inline (``dnat … to numgen random mod N map { 0 : IP . PORT, … }``) and
  no endpoint chains;
* ``1.33+``: ``filter-prerouting-pre-dnat`` / ``filter-output-pre-dnat`` at dstnat-10 doing only the firewall
  check, ``filter-input``/``-forward``/``-output`` at priority filter (0);
* ``1.31-1.32``: every filter chain at dstnat-10 (``filter-prerouting``, ``filter-input``, …) and a
  ``filter-output-post-dnat`` chain for the cluster-IP check;
* ``1.29-1.30``: the first alpha's one ``endpoints-check`` chain.

Besides the era: the local-traffic detector (the service chains' masquerade rules: ``ip saddr != CIDR``,
``iifname != "cni0"``, ``iifname != "veth*"``, nothing: masquerade-all), the masquerade mark
(``mark-for-masquerade``), ``masquerade fully-random``, the NodePort addresses (``nodeport-ips``, or every local
address with ``fib daddr type local``), the ServiceCIDRs (``cluster-ips-check``'s drop rule) and the base chains.
:func:`nft_layout` reads one table; :func:`kube_layout_of` gives the :class:`~.era.KubeLayout` the service
index carries, with ``mode`` ``"nftables"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..nft.exprs import (
    Binop,
    Concat,
    Fib,
    Mangle,
    MapLookup,
    Match,
    Meta,
    Nat,
    Numgen,
    Payload,
    Prefix,
    SetLit,
    SetRef,  # fmt: skip
    Value,
    Verdict,
)
from ..nft.model import NftChain, NftRuleset, NftTable
from .era import KubeLayout
from .nft_names import parse_chain

__all__ = ["TABLE", "NftBase", "NftKubeLayout", "cidrs_of", "element_key", "kube_layout_of", "kube_tables", "masq_form",
           "nft_layout"]

TABLE = "kube-proxy"
_FAMILY = {"ip": "ipv4", "ip6": "ipv6"}


@dataclass(frozen=True, slots=True)
class NftBase:
    """A base chain of kube-proxy's table: where it hooks in."""

    family: str
    name: str
    type: str | None
    hook: str | None
    priority: int | None
    priority_text: str | None
    policy: str | None
    rules: int


@dataclass(frozen=True, slots=True)
class NftKubeLayout:
    """What one ``table ip|ip6 kube-proxy`` says about the kube-proxy that wrote it. ``evidence``: why."""

    family: str  # "ip" or "ip6"
    era: str | None  # "1.35+", "1.33+", "1.31-1.32", "1.29-1.30"; None when no chain tells
    dnat: str | None  # "endpoint-chains", "inline" (DNAT in the service chain), "mixed"; None: no service
    base_chains: tuple[NftBase, ...]
    local_detector: str | None  # "cidr", "bridge", "interface-prefix", "masquerade-all", "none", "mixed"
    local_detector_values: tuple[str, ...]
    masquerade_mark: str | None  # "0x4000"
    random_fully: bool  # ``masquerade fully-random``
    nodeport_addresses: tuple[str, ...] | None  # ``nodeport-ips``; None: every local address (fib form)
    service_cidrs: tuple[str, ...]  # what cluster-ips-check drops as unallocated
    chain_counts: tuple[tuple[str, int], ...]  # ("SVC", n), ("SVL", n), … per-service chains
    evidence: tuple[str, ...]


def kube_tables(ruleset: NftRuleset | None) -> tuple[NftTable, ...]:
    """kube-proxy's tables in the listing (``ip``, then ``ip6``)."""
    if ruleset is None:
        return ()
    return tuple(t for fam in ("ip", "ip6") if (t := ruleset.table(fam, TABLE)) is not None)


def _mark(chain: NftChain | None) -> str | None:
    for rule in chain.rules if chain else ():
        for s in rule.exprs:
            if isinstance(s, Mangle) and isinstance(s.key, Meta) and s.key.key == "mark" and \
                    isinstance(s.value, Binop) and s.value.op == "|" and isinstance(s.value.right, int):  # fmt: skip
                return hex(s.value.right)
    return None


def _random_fully(chain: NftChain | None) -> bool:
    return any(isinstance(s, Nat) and s.kind == "masquerade" and "fully-random" in s.flags
               for r in (chain.rules if chain else ()) for s in r.exprs)  # fmt: skip


def cidrs_of(v: Value) -> list[str]:
    items = v.items if isinstance(v, SetLit) else (v,)
    return [f"{i.addr}/{i.length}" if isinstance(i, Prefix) else str(i) for i in items
            if isinstance(i, (Prefix, str))]  # fmt: skip


def _service_cidrs(chain: NftChain | None) -> tuple[str, ...]:
    out: list[str] = []
    for rule in chain.rules if chain else ():
        if not any(isinstance(s, Verdict) and s.kind == "drop" for s in rule.exprs):
            continue
        for s in rule.exprs:
            if isinstance(s, Match) and isinstance(s.left, Payload) and s.left.field == "daddr" and s.op == "==":
                out += cidrs_of(s.right)
    return tuple(out)


def _nodeport_addresses(table: NftTable) -> tuple[str, ...] | None:
    services = table.chains.get("services")
    for rule in services.rules if services else ():
        refs = [s for s in rule.exprs if isinstance(s, Match) and isinstance(s.right, SetRef)
                and s.right.name == "nodeport-ips"]  # fmt: skip
        if refs:
            st = table.sets.get("nodeport-ips")
            return tuple(str(e.key[0]) for e in st.elements) if st else ()
        if any(isinstance(s, Match) and isinstance(s.left, Fib) for s in rule.exprs):
            return None
    st = table.sets.get("nodeport-ips")
    return tuple(str(e.key[0]) for e in st.elements) if st else None


def masq_form(rule_exprs: Sequence[object]) -> tuple[str, str | None] | None:
    """The local-traffic detector a service chain's masquerade rule uses: ``("cidr", "10.244.0.0/16")``,
    ``("bridge", "cni0")``, ``("interface-prefix", "veth*")``, ``("masquerade-all", None)``; None when the
    rule is no ``… jump mark-for-masquerade`` kube-proxy writes there."""
    if not any(isinstance(s, Verdict) and s.kind == "jump" and s.target == "mark-for-masquerade"
               for s in rule_exprs):  # fmt: skip
        return None
    daddr = False
    for s in rule_exprs:
        if not isinstance(s, Match):
            continue
        left = s.left
        if isinstance(left, Payload) and left.field == "saddr" and s.op == "!=":
            cidr = cidrs_of(s.right)
            return ("cidr", ",".join(cidr)) if cidr else None
        if isinstance(left, Meta) and left.key == "iifname" and s.op == "!=" and isinstance(s.right, str):
            return ("interface-prefix" if s.right.endswith("*") else "bridge"), s.right
        if isinstance(left, Payload) and left.field == "daddr" and s.op == "==":
            daddr = True
    return ("masquerade-all", None) if daddr else None


def _detector(table: NftTable) -> tuple[str | None, tuple[str, ...]]:
    forms: dict[tuple[str, str | None], None] = {}
    with_endpoints = 0
    for name, chain in table.chains.items():
        parsed = parse_chain(name)
        if parsed is None or parsed.prefix not in ("service", "local"):
            continue
        with_endpoints += 1
        for rule in chain.rules:
            form = masq_form(rule.exprs)
            if form is not None:
                forms[form] = None
        if len(forms) > 1 or with_endpoints >= 512:
            break
    if not forms:
        return ("none", ()) if with_endpoints else (None, ())
    kinds = {k for k, _ in forms}
    values = tuple(v for _, v in forms if v)
    return ("mixed" if len(kinds) > 1 else next(iter(kinds))), values


def _inline(chain: NftChain) -> bool:
    return any(isinstance(s, Nat) and s.kind == "dnat" and isinstance(s.addr, MapLookup)
               and isinstance(s.addr.key, Numgen) for r in chain.rules for s in r.exprs)  # fmt: skip


_LAYOUTS: dict[int, tuple[NftTable, NftKubeLayout]] = {}  # id(table) → (table, its layout): the last few read


def nft_layout(table: NftTable) -> NftKubeLayout:
    """The layout of one kube-proxy table (see the module doc); kept for the last few tables asked about (the
    service index, the findings and the explanations all ask)."""
    found = _LAYOUTS.get(id(table))
    if found is not None and found[0] is table:
        return found[1]
    lay = _nft_layout(table)
    if len(_LAYOUTS) >= 8:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))
    _LAYOUTS[id(table)] = (table, lay)
    return lay


def _nft_layout(table: NftTable) -> NftKubeLayout:
    chains = table.chains
    evidence: list[str] = []
    counts = dict.fromkeys(("SVC", "SVL", "EXT", "FW", "SEP"), 0)
    inline = 0
    for name, chain in chains.items():
        parsed = parse_chain(name)
        if parsed is None or parsed.kind not in counts:
            continue
        counts[parsed.kind] += 1
        if parsed.prefix == "service" and _inline(chain):
            inline += 1
    dnat: str | None = None
    if inline and counts["SEP"]:
        dnat = "mixed"
    elif inline:
        dnat = "inline"
    elif counts["SEP"]:
        dnat = "endpoint-chains"
    era: str | None = None
    if inline:
        era = "1.35+"
        evidence.append(f"{inline} service chains DNAT inline (dnat … to numgen … map): kube-proxy 1.35 or newer")
    if "filter-prerouting-pre-dnat" in chains or "filter-output-pre-dnat" in chains:
        era = era or "1.33+"
        evidence.append("filter-prerouting-pre-dnat / filter-output-pre-dnat: the layout of kube-proxy 1.33 or newer")
    elif "filter-output-post-dnat" in chains or "filter-prerouting" in chains:
        era = era or "1.31-1.32"
        evidence.append("filter-prerouting and filter-output-post-dnat: the layout of kube-proxy 1.31 and 1.32")
    elif "endpoints-check" in chains:
        era = era or "1.29-1.30"
        evidence.append("one endpoints-check chain: the first nftables layout (kube-proxy 1.29, 1.30)")
    elif era is None:
        evidence.append("no base chain that only some kube-proxy releases write: the release is not known")
    bases = tuple(NftBase(table.family, c.name, c.type, c.hook, c.priority, c.priority_text, c.policy,
                          len(c.rules)) for c in chains.values() if c.is_base)  # fmt: skip
    detector, values = _detector(table)
    mark = _mark(chains.get("mark-for-masquerade"))
    if mark is not None and mark != "0x4000":
        evidence.append(f"mark-for-masquerade sets {mark}, not kube-proxy's default 0x4000")
    return NftKubeLayout(
        family=table.family, era=era, dnat=dnat, base_chains=bases, local_detector=detector,
        local_detector_values=values, masquerade_mark=mark,
        random_fully=_random_fully(chains.get("masquerading")), nodeport_addresses=_nodeport_addresses(table),
        service_cidrs=_service_cidrs(chains.get("cluster-ips-check")),
        chain_counts=tuple((k, v) for k, v in counts.items() if v), evidence=tuple(evidence),
    )  # fmt: skip


def kube_layout_of(ruleset: NftRuleset, family: str | None = None) -> KubeLayout:
    """The :class:`KubeLayout` of kube-proxy's nftables tables (of ``family``, "ip"/"ip6", when given):
    ``mode`` "nftables", the era and settings of the first table (both tables of a dual-stack node come from
    the same kube-proxy)."""
    tables = [t for t in kube_tables(ruleset) if family is None or t.family == family]
    if not tables:
        return KubeLayout(
            kube_proxy=False, mode=None, era=None, backend=None, backends_present=(), family=None,
            ipvs_leftovers=False, local_detector=None, local_detector_values=(), localhost_nodeports=None,
            nodeport_addresses=None, localnet_guard=False, nfacct=(), masquerade_mark=None, drop_mark=None,
            random_fully=False, kubelet_chains=(), chain_counts=(),
            evidence=("no table ip kube-proxy or ip6 kube-proxy: not kube-proxy's nftables mode",),
        )  # fmt: skip
    first = nft_layout(tables[0])
    counts: dict[str, int] = {}
    evidence = [f"table {t.family} kube-proxy: kube-proxy in nftables mode" for t in tables]
    for t in tables:
        lay = first if t is tables[0] else nft_layout(t)
        for k, v in lay.chain_counts:
            counts[k] = counts.get(k, 0) + v
        evidence += lay.evidence if t is tables[0] else ()
    return KubeLayout(
        kube_proxy=True, mode="nftables", era=first.era, backend=None, backends_present=(),
        family=_FAMILY.get(first.family) if len(tables) == 1 else "dual-stack", ipvs_leftovers=False,
        local_detector=first.local_detector, local_detector_values=first.local_detector_values,
        localhost_nodeports=False, nodeport_addresses=first.nodeport_addresses, localnet_guard=False, nfacct=(),
        masquerade_mark=first.masquerade_mark, drop_mark=None, random_fully=first.random_fully, kubelet_chains=(),
        chain_counts=tuple(counts.items()), evidence=tuple(evidence),
    )  # fmt: skip


def element_key(key: Sequence[Value]) -> tuple[Value, ...]:
    """An element key as a tuple of its components (a concatenation listed as one value is split)."""
    if len(key) == 1 and isinstance(key[0], Concat):
        return tuple(key[0].items)
    return tuple(key)
