"""``kptui diff`` beyond two iptables dumps: two nftables-mode listings, or one of each mode (a mode switch).

:func:`diff_kube` compares two service indexes with :func:`.diff.diff_indexes` and adds the node-level part:

* nftables ↔ nftables: the layout (era, detector, mark, ``fully-random``, NodePort addresses, ServiceCIDRs, base
  chains) and the rules of kube-proxy's fixed chains (base chains, ``services``, ``masquerading``, the checks) as
  multisets of their text; per-service chains belong to the service part.
* iptables ↔ nftables: what the two modes can say alike about the node: the mode itself, the local-traffic
  detector (``veth+`` and ``veth*`` are the same prefix), the masquerade mark and fully-random masquerading, the
  NodePort addresses (iptables mode answers on every local address, 127.0.0.1 included; nftables mode only on
  ``nodeport-ips``). The rules themselves have nothing to be compared with.
"""

from __future__ import annotations

from collections import Counter

from ..nft.model import NftRuleset
from .diff import diff_indexes
from .diff_model import FieldChange, NodeDiff, NodeRule, ServiceDiff
from .diff_node import _value
from .era import KubeLayout, layout_to_dict
from .model import ServiceIndex
from .nft_layout import kube_tables, nft_layout
from .nft_names import parse_chain

__all__ = ["diff_kube"]

_NFT_SKIP = frozenset({"evidence", "chains", "localnet_guard", "family"})
_CROSS = ("mode", "local_detector", "local_detector_values", "masquerade_mark", "random_fully",
          "localhost_nodeports", "nodeport_addresses")  # fmt: skip


def _mark(v: object) -> object:
    try:
        return hex(int(str(v), 0)) if v is not None else None
    except ValueError:
        return v


def _norm(key: str, v: object) -> object:
    if key == "masquerade_mark":
        return _mark(v)
    if key == "local_detector_values" and isinstance(v, list):
        return [x[:-1] + "+" if isinstance(x, str) and x.endswith("*") else x for x in v]
    return v


def _layout_changes(old: KubeLayout, new: KubeLayout, keys: tuple[str, ...] | None) -> tuple[FieldChange, ...]:
    lo, ln = layout_to_dict(old), layout_to_dict(new)
    names = keys if keys is not None else tuple(k for k in lo if k not in _NFT_SKIP)
    out = []
    for k in names:
        a, b = _norm(k, lo.get(k)), _norm(k, ln.get(k))
        if a != b:
            out.append(FieldChange(k, _value(lo.get(k)), _value(ln.get(k))))
    return tuple(out)


def _fixed(nft: NftRuleset | None) -> tuple[Counter[tuple[str, str, str]], dict[str, tuple[str, ...]]]:
    rules: Counter[tuple[str, str, str]] = Counter()
    extra: dict[str, tuple[str, ...]] = {}
    for t in kube_tables(nft):
        where = f"{t.family} {t.name}"
        for c in t.chains.values():
            if parse_chain(c.name) is not None:
                continue
            for r in c.rules:
                rules[(where, c.name, r.text)] += 1
        lay = nft_layout(t)
        extra[f"{t.family} service_cidrs"] = lay.service_cidrs
        extra[f"{t.family} base_chains"] = tuple(f"{b.name} {b.type} {b.hook} {b.priority} {b.policy or 'accept'}"
                                                 for b in lay.base_chains)  # fmt: skip
    return rules, extra


def _nft_node(old: NftRuleset | None, new: NftRuleset | None, lo: KubeLayout, ln: KubeLayout) -> NodeDiff:
    ro, xo = _fixed(old)
    rn, xn = _fixed(new)
    layout = list(_layout_changes(lo, ln, None))
    for k in dict.fromkeys([*xo, *xn]):
        if xo.get(k, ()) != xn.get(k, ()):
            layout.append(FieldChange(k.replace(" ", "_"), xo.get(k, ()), xn.get(k, ())))

    def rules(c: Counter[tuple[str, str, str]]) -> tuple[NodeRule, ...]:
        return tuple(NodeRule(t, ch, text, n) for (t, ch, text), n in sorted(c.items()))

    return NodeDiff(layout=tuple(layout), rules_added=rules(rn - ro), rules_removed=rules(ro - rn))


def diff_kube(old: ServiceIndex, new: ServiceIndex, *, old_nft: NftRuleset | None = None,
              new_nft: NftRuleset | None = None, old_source: str | None = None,
              new_source: str | None = None) -> ServiceDiff:  # fmt: skip
    """Two service indexes of which at least one is nftables mode's (two iptables dumps: use
    :func:`.diff.diff_services`, which compares their fixed chains too)."""
    mo, mn = old.layout.mode, new.layout.mode
    if mo == mn == "nftables":
        node = _nft_node(old_nft, new_nft, old.layout, new.layout)
    else:
        node = NodeDiff(layout=_layout_changes(old.layout, new.layout, _CROSS))
    return diff_indexes(old, new, node, old_source=old_source, new_source=new_source)
