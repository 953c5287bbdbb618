"""``build_service_index(ruleset)``: kube-proxy's service ports recovered from the nat table's jump graph.

nat KUBE-SERVICES and KUBE-NODEPORTS name a service port's addresses and its chains; the chains' hash ties
KUBE-SVC/SVL/EXT/FW/XLB-h together; KUBE-SVC/SVL (KUBE-XLB in the old layout) jump to the KUBE-SEP chains with
the statistic cascade; each SEP's DNAT rule gives the endpoint address. Comments only supply names (checked
against the hash); every structural fact comes from the jumps, so a dump whose comments were dropped (large
clusters drop them on SEP and SVC→SEP rules) gives the same services. The filter table adds what kube-proxy
refuses: services without (local) endpoints and loadBalancerSourceRanges drops (:mod:`.build_filter`).
"""

from __future__ import annotations

import gc
import re
from fractions import Fraction

from ..model import Chain, Ruleset, Table
from .build_filter import FilterPass
from .draft import Draft, Drafts
from .era import detect_layout, era_at_least, nat_and_filter
from .facts import Facts, facts_of, rows_of
from .hashes import names_in, split_chain
from .model import ServiceIndex
from .shares import CONDITIONAL, UNCONDITIONAL, cascade

__all__ = ["build_service_index", "service_index_of"]

# Fast paths: rules exactly as iptables-save prints them (full matches, so nothing else can hide in them);
# any other spelling is read by facts_of. A comment is one quoted string (escapes allowed) or one word.
_COMMENT = r'(?: -m comment --comment (?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s"]+)))?'
_TO_SEP = re.compile(
    r"-A [^ ]+" + _COMMENT + r"(?: -m statistic --mode random --probability ([^ ]+))? -[jg] KUBE-SEP-[^ ]+"
)
_AFFINITY = re.compile(
    r"-A [^ ]+" + _COMMENT
    + r" -m recent --rcheck --seconds (\d+) --reap --name [^ ]+ --mask [^ ]+ --rsource -[jg] [^ ]+"
)
_PLAIN = re.compile(r"-A [^ ]+" + _COMMENT + r" -[jg] [^ ]+")  # an unconditional jump
_PORTAL = re.compile(  # nat KUBE-SERVICES / KUBE-NODEPORTS → a service chain
    r"-A [^ ]+(?: -d ([^ !]+))? -p (tcp|udp|sctp)" + _COMMENT + r" -m (?:tcp|udp|sctp) --dport (\d+) -j [^ ]+"
)
# Targets that let the packet go on to the next rule.
_CONTINUE = frozenset({"KUBE-MARK-MASQ", "MARK", "CONNMARK", "LOG", "NFLOG", "TRACE", "AUDIT", "NFACCT"})
_SERVICE_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")
_NO_LOCAL = " has no local endpoints"
_ROLES = ((" cluster IP", "cluster"), (" external IP", "external"), (" loadbalancer IP", "lb"))


def build_service_index(ruleset: Ruleset) -> ServiceIndex:
    """Every service port of ``ruleset`` (kube-proxy's iptables mode, any layout); see the module doc."""
    # Hundreds of thousands of small, acyclic objects: the cyclic collector would only walk them in vain.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(ruleset)
    finally:
        if gc_was_enabled:
            gc.enable()


def service_index_of(ruleset: Ruleset) -> ServiceIndex:
    """The service index of ``ruleset``, built once and kept with it (:meth:`Ruleset.derived`)."""
    return ruleset.derived("service_index", build_service_index)


def _build(ruleset: Ruleset) -> ServiceIndex:
    layout = detect_layout(ruleset)
    nat, filt = nat_and_filter(ruleset)
    drafts = Drafts()
    if nat is not None:
        modern = layout.era is None or era_at_least(layout.era, 24)  # EXT/SVL chains: not the XLB layout
        _NatPass(nat, drafts, modern=modern).run()
    drafts.resolve_names(ruleset)
    if filt is not None:
        FilterPass(filt, drafts).run()
    return ServiceIndex(drafts.finish(), layout)


class _NatPass:
    """Reads nat: portals, NodePorts, then each service's chains and endpoints."""

    def __init__(self, nat: Table, drafts: Drafts, *, modern: bool) -> None:
        self.nat = nat
        self.chains = dict(nat.chains)  # a plain dict: 100k lookups through a mappingproxy add up
        self.drafts = drafts
        self.modern = modern  # internalTrafficPolicy is readable (SVL) only in the 1.24+ layouts

    def run(self) -> None:
        for name in self.nat.chains:
            if name.startswith(_SERVICE_PREFIXES):
                parts = split_chain(name)
                if parts:
                    self.drafts.by_hash(parts[1]).chains[parts[0]] = name
        self._portals()
        self._nodeports()
        for draft in self.drafts.hashed():
            self._service_chains(draft)

    def _portals(self) -> None:
        chain = self.nat.chains.get("KUBE-SERVICES")
        for i, row in enumerate(rows_of(chain)):
            target = row[4]
            parts = split_chain(target) if target and target.startswith("KUBE-") else None
            if chain is None or parts is None or parts[0] == "SEP":
                continue
            kind, h = parts
            comment, proto, dst, dport = _portal(chain, i, row[1])
            draft = self.drafts.by_hash(h)
            role = None
            if comment:
                for suffix, what in _ROLES:
                    if comment.endswith(suffix):
                        draft.add_name(comment[: -len(suffix)], "portal")
                        role = what
                        break
            draft.set_proto(proto)
            if dst is None:
                continue
            ip = _host(dst)
            if role is None:
                if kind in ("SVC", "SVL"):
                    role = "cluster" if draft.cluster_ip in (None, ip) else "external"
                else:
                    role = {"EXT": "ext_or_lb", "FW": "lb", "XLB": "external"}.get(kind, "ext_or_lb")
            port = _int(dport)
            if role == "cluster":
                if draft.cluster_ip is None:
                    draft.cluster_ip, draft.port = ip, port
                    if self.modern:
                        draft.itp = "Local" if kind == "SVL" else "Cluster"
                elif draft.cluster_ip != ip:
                    draft.notes.append(f"a second cluster IP {ip} jumps to the same chains")
            else:
                {"external": draft.external, "lb": draft.lb}.get(role, draft.ext_or_lb)[ip] = None
                if draft.port is None:
                    draft.port = port

    def _nodeports(self) -> None:
        chain = self.nat.chains.get("KUBE-NODEPORTS")
        for i, row in enumerate(rows_of(chain)):
            target = row[4]
            parts = split_chain(target) if target and target.startswith("KUBE-") else None
            if chain is None or parts is None or parts[0] == "SEP":
                continue
            comment, proto, _, dport = _portal(chain, i, row[1])
            draft = self.drafts.by_hash(parts[1])
            if comment:
                for name in names_in(comment):
                    draft.add_name(name, "nodeport")
            draft.set_proto(proto)
            np = _int(dport)
            if np is not None:
                draft.node_ports[np] = None
            if parts[0] == "XLB":
                draft.etp = "Local"
            elif parts[0] == "SVC" and draft.etp is None:
                draft.etp = "Cluster"  # the 1.23-and-older layout jumps straight to the SVC chain

    def _service_chains(self, draft: Draft) -> None:
        chains, own = self.chains, draft.chains
        if "SVC" in own and own["SVC"] in chains:
            draft.shares = self._endpoints(draft, chains[own["SVC"]])
        for kind in ("SVL", "XLB"):
            if kind in own and own[kind] in chains:
                draft.local_shares = self._endpoints(draft, chains[own[kind]])
                if kind == "XLB":
                    draft.etp = "Local"
        if "EXT" in own and own["EXT"] in chains:
            self._ext(draft, chains[own["EXT"]])
        if "FW" in own and own["FW"] in chains:
            self._fw(draft, chains[own["FW"]])
        addresses = draft.addresses
        fast = draft.proto is not None
        for sep in draft.shares if draft.local_shares is None else [*draft.shares, *draft.local_shares]:
            if sep in addresses:
                continue
            chain = chains.get(sep)
            rows = rows_of(chain)
            last = rows[-1] if rows else None
            if fast and last is not None and last[4] == "DNAT":
                # the common case: "-A SEP … -j DNAT --to-destination IP:PORT[ …]" is the chain's last rule
                head, found, tail = last[1].rpartition(" --to-destination ")
                if found and head.endswith(" -j DNAT") and '"' not in tail:
                    addresses[sep] = tail.partition(" ")[0]
                    continue
            addresses[sep] = self._sep_address(draft, chain)

    def _endpoints(self, draft: Draft, chain: Chain) -> dict[str, Fraction | None]:
        """The SEP chains a SVC/SVL/XLB chain jumps to, with their exact shares of a first packet."""
        seps: list[str] = []
        steps: list[str] = []
        to_sep = _TO_SEP.fullmatch
        for i, row in enumerate(rows_of(chain)):
            raw, target = row[1], row[4]
            if not target:
                continue
            if target.startswith("KUBE-SEP-"):
                m = to_sep(raw)
                if m:
                    quoted, bare, prob = m.groups()
                    if not draft.names and (quoted or bare):
                        self._name_hint(draft, quoted or bare)
                    seps.append(target)
                    steps.append(prob if prob is not None else UNCONDITIONAL)
                    continue
                m = _AFFINITY.fullmatch(raw)
                if m:  # a session-affinity lookup: not part of a first packet's choice
                    draft.set_affinity(m.group(3))
                    self._name_hint(draft, m.group(1) or m.group(2))
                    continue
                f = facts_of(chain, i, raw)
                self._name_hint(draft, f.comment)
                if f.rcheck:
                    draft.set_affinity(f.seconds)
                    continue
                seps.append(target)
                steps.append(_step(f))
            elif target in _CONTINUE:
                continue
            else:
                f = facts_of(chain, i, raw)
                step = _step(f)
                xlb = chain.name.startswith("KUBE-XLB-")
                if target == "KUBE-MARK-DROP" and xlb and step == UNCONDITIONAL:
                    # 1.23 and older: "S has no local endpoints" ends an XLB chain without local endpoints
                    if f.comment and f.comment.endswith(_NO_LOCAL):
                        draft.add_name(f.comment[: -len(_NO_LOCAL)], "chain")
                    draft.no_local = True
                    draft.add_block(self.nat.name, chain.name, i + 1, row[0], target, "no local endpoints",
                                    None)  # fmt: skip
                if step != CONDITIONAL:  # some traffic leaves for somewhere else: later shares shrink
                    seps.append("")
                    steps.append(step)
                if step == UNCONDITIONAL:
                    break  # later rules are never reached
        shares: dict[str, Fraction | None] = {}
        for sep, share in zip(seps, cascade(tuple(steps))):
            if not sep:
                continue
            if sep in shares:
                prev = shares[sep]
                shares[sep] = None if prev is None or share is None else prev + share
            else:
                shares[sep] = share
        return shares

    def _name_hint(self, draft: Draft, comment: str | None) -> None:
        if comment and not draft.names:
            for name in names_in(comment):
                draft.add_name(name, "chain")

    def _ext(self, draft: Draft, chain: Chain) -> None:
        """externalTrafficPolicy from KUBE-EXT: Cluster jumps to KUBE-SVC unconditionally; Local sends pod
        and node-local sources to KUBE-SVC and the rest to KUBE-SVL (when this node has local endpoints)."""
        local = cluster = False
        for i, row in enumerate(rows_of(chain)):
            target = row[4] or ""
            plain = _PLAIN.fullmatch(row[1]) is not None
            f = None if plain else facts_of(chain, i, row[1])
            if target.startswith("KUBE-SVL-"):
                local = draft.ext_to_local = True
            elif f is not None and (f.src_type == "LOCAL"
                                    or (target.startswith("KUBE-SVC-") and _step(f) == CONDITIONAL)):
                local = True  # fmt: skip
            elif target.startswith("KUBE-SVC-") and (plain or (f is not None and _step(f) == UNCONDITIONAL)):
                cluster = True
        draft.etp = "Local" if local else "Cluster" if cluster else draft.etp

    def _fw(self, draft: Draft, chain: Chain) -> None:
        own = {draft.chains.get(k) for k in ("EXT", "SVC", "XLB")} - {None}
        for i, row in enumerate(rows_of(chain)):
            target = row[4]
            if target not in own and target != "KUBE-MARK-DROP":
                continue
            f = facts_of(chain, i, row[1])
            if target == "KUBE-MARK-DROP":
                if draft.ranges:
                    draft.add_block(self.nat.name, chain.name, i + 1, row[0], target, "source ranges", None)
                break
            if target == draft.chains.get("XLB"):
                draft.etp = "Local"
            elif target == draft.chains.get("SVC") and draft.etp is None:
                draft.etp = "Cluster"
            if f.src and not f.src_neg:
                if _host(f.src) in draft.lb or _host(f.src) in draft.ext_or_lb:
                    draft.notes.append(f"KUBE-FW also admits the load-balancer IP itself ({_host(f.src)}): "
                                       "a source range covers this node")  # fmt: skip
                else:
                    draft.ranges[f.src] = None
            elif _step(f) == UNCONDITIONAL:
                break

    def _sep_address(self, draft: Draft, chain: Chain | None) -> str | None:
        for i, row in enumerate(rows_of(chain)):
            if row[4] != "DNAT" or chain is None:
                continue
            f = facts_of(chain, i, row[1])
            draft.set_proto(f.proto)
            return f.to_destination
        return None


def _portal(chain: Chain, index: int, raw: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(comment, protocol, destination, dport) of a rule jumping to a service chain; no negated -d."""
    m = _PORTAL.fullmatch(raw)
    if m:
        comment = m.group(3) if m.group(3) is not None else m.group(4)
        if comment is not None and "\\" in comment:
            comment = re.sub(r"\\(.)", r"\1", comment)
        return comment, m.group(2), m.group(1), m.group(5)
    f = facts_of(chain, index, raw)
    return f.comment, f.proto, None if f.dst_neg else f.dst, f.dport


def _step(f: Facts) -> str:
    """A rule's place in a cascade: its probability, or always / depends on the packet."""
    conditional = (
        f.other or f.rcheck or f.src is not None or f.dst is not None or f.in_iface is not None
        or f.proto is not None or f.dport is not None or f.dst_type is not None or f.src_type is not None
    )  # fmt: skip
    if conditional:
        return CONDITIONAL
    if f.probability is not None:
        return ("!" if f.probability_neg else "") + f.probability
    return UNCONDITIONAL


def _host(addr: str) -> str:
    """``10.96.0.1/32`` → ``10.96.0.1`` (a host prefix is how iptables-save prints an address)."""
    if addr.endswith(("/32", "/128")):
        return addr.rpartition("/")[0]
    return addr


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
