"""Replay a kernel trace log against a dump: the kernel's walk as a steppable path, the engine's simulation of the
same packet, and the comparison of the two (:mod:`.trace_compare`).

- :func:`packet_from_kernel`: the engine :class:`Packet` for the kernel's first ``PACKET`` line (addresses, ports
  and protocol as the first table saw them; the input interface; an origin guessed from it).
- :func:`node_from_kernel`: a :class:`NodeContext` with what the log proves about the node added (a locally sent
  packet's source and a locally delivered packet's destination are node addresses; the arrival interface).
- :func:`locate_events`: each kernel event's rule in the dump (table, chain, 1-based index), by decoded rule spec
  in order within the chain -- the ``rule:0x27`` handle is the kernel's, not a position. None: not found.
- :func:`replay`: all of it; :attr:`KernelReplay.trace` holds the kernel's path (path 1) and the engine's
  best-matching path (path 2) as one :class:`Trace`, so the explorer steps through either like a simulation.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from .errors import ParseError
from .kernel_trace import KernelEvent, KernelPacket, KernelTrace
from .model import Rule, Ruleset
from .packet import NodeContext, Packet
from .trace import trace
from .trace_compare import Comparison, Location, compare, rule_spec
from .trace_model import Hop, PacketState, Trace, TracePath

__all__ = ["KernelReplay", "locate_events", "node_from_kernel", "packet_from_kernel", "replay"]

POD_IFACE_PREFIXES = ("veth", "cali", "cni", "cbr", "lxc", "flannel", "weave", "azv", "eni", "gke", "docker", "br-",
                      "cilium", "kube-bridge", "tap", "vxlan")  # fmt: skip
_TARGET = re.compile(r"\s-([jg])\s+(\S+)")
_NFT_TO = re.compile(r"\b(?:dnat|snat) (?:ip6? )?to (\S+)")
_MARKISH = re.compile(r"-j (?:MARK|CONNMARK)\b|meta mark set")
_NATISH = re.compile(r"-j (?:DNAT|REDIRECT)\b|\b(?:dnat|redirect) ")


def _first(k: KernelTrace) -> tuple[KernelPacket, str, str]:
    """The first packet line, its source and its destination."""
    first = k.first
    if first is None or not first.src or not first.dst:
        raise ValueError(f"line {k.line}: the traversal has no PACKET line with addresses")
    return first, first.src, first.dst


def guess_origin(first: KernelPacket, node: NodeContext | None = None) -> str:
    """``local`` (no input interface, or ``lo``), ``pod`` or ``external``: the node context decides when it
    names the interface or the pod CIDR holds the source, else the interface name's usual prefix."""
    iif = first.iif or ""
    if not iif or iif == "lo":
        return "local"
    if node is not None:
        if iif == node.pod_iface:
            return "pod"
        if iif == node.uplink:
            return "external"
        if first.src and any(ipaddress.ip_address(first.src) in ipaddress.ip_network(c) for c in node.pod_cidrs
                             if ipaddress.ip_network(c).version == ipaddress.ip_address(first.src).version):
            return "pod"  # fmt: skip
    return "pod" if iif.startswith(POD_IFACE_PREFIXES) else "external"


def packet_from_kernel(k: KernelTrace, node: NodeContext | None = None) -> Packet:
    """The engine's packet for the kernel's first ``PACKET`` line. ValueError (with the line) when it has no
    addresses or its protocol/ports do not make a packet the engine can trace."""
    first, src, dst = _first(k)
    proto = first.proto
    if proto is None:
        named = dict(first.fields).get("PROTO", "").lower()
        proto = named or ("icmpv6" if ":" in src else "icmp") if first.sport is None else "udp"
    origin = guess_origin(first, node)
    try:
        return Packet(src, dst, proto=proto, sport=first.sport, dport=first.dport, origin=origin,
                      in_iface=first.iif if origin != "local" else None, mark=first.mark,
                      length=first.length)  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"line {first.line}: the kernel's packet cannot be simulated: {exc}") from None


def node_from_kernel(k: KernelTrace, base: NodeContext | None = None) -> NodeContext:
    """``base`` (or an empty context) plus what the log proves: the source of a packet the node sent and the
    destination of a packet it delivered locally are its addresses; a pod packet's arrival interface is the
    pod interface, an outside packet's the uplink (unless ``base`` names them)."""
    node = base or NodeContext()
    first = _first(k)[0]
    addrs = list(node.addresses)
    if not first.iif and first.src:
        addrs.append(first.src)
    for e in k.events:
        if e.hook == "INPUT" and e.packet is not None and e.packet.dst:
            addrs.append(e.packet.dst)
    addrs = [a for a in dict.fromkeys(addrs) if not ipaddress.ip_address(a).is_loopback]
    origin = guess_origin(first, node)
    pod_iface = node.pod_iface or (first.iif if origin == "pod" else None)
    uplink = node.uplink or (first.iif if origin == "external" else None)
    return replace(node, addresses=tuple(addrs), pod_iface=pod_iface, uplink=uplink)


# -- where each event is in the dump ---------------------------------------------------------------------------
def _nft_target(e: KernelEvent) -> str | None:
    """The iptables target an ``nft monitor trace`` rule event stands for (nft prints nft syntax)."""
    text = e.rule_text or ""
    if e.verdict in ("JUMP", "GOTO"):
        return e.target
    if e.verdict == "RETURN":
        return "RETURN"
    for pattern, name in ((r"\bdnat ", "DNAT"), (r"\bsnat ", "SNAT"), (r"\bmasquerade\b", "MASQUERADE"),
                          (r"\bredirect\b", "REDIRECT"), (r"\breject\b", "REJECT"), (r"meta mark set", "MARK"),
                          (r"\bnotrack\b", "NOTRACK")):  # fmt: skip
        if re.search(pattern, text):
            return name
    return e.verdict if e.verdict in ("ACCEPT", "DROP") else None


def _matches(e: KernelEvent, rule: Rule, nft: bool) -> bool:
    text = e.rule_text or ""
    if not nft:
        if rule.raw == text:
            return True
        m = _TARGET.findall(text)
        if m and rule.target_name is not None and m[-1][1] != rule.target_name:
            return False
        spec = rule_spec(text)
        try:
            return spec is not None and spec == rule.spec
        except ParseError:  # the dump's rule does not decode: only identical text matches
            return False
    want = _nft_target(e)
    if want is None or rule.target_name not in (want, "CT" if want == "NOTRACK" else want):
        return False
    to = _NFT_TO.search(text)
    return to is None or f" {to.group(1)}" in rule.raw


def locate_events(ruleset: Ruleset, k: KernelTrace) -> tuple[Location | None, ...]:
    """Per event of ``k``: (table, chain, 1-based index) of its rule in ``ruleset``, or None (a policy, or a rule
    the dump does not hold). Identical rules in one chain are told apart by order: the first one after the rule
    the same chain matched last in this table visit."""
    out: list[Location | None] = []
    last: dict[tuple[str, str], int] = {}
    visit = None
    for e in k.events:
        key = (e.hook, e.table, e.packet.line if e.packet else None)
        if key != visit:
            visit, last = key, {}
        chain = ruleset.chain(e.table, e.chain) if e.kind == "rule" else None
        if chain is None:
            out.append(None)
            continue
        nft = e.rule_text is None or not e.rule_text.startswith("-A ")
        found = [r.index for r in chain.rules if _matches(e, r, nft)]
        after = [i for i in found if i > last.get((e.table, e.chain), 0)]
        if not found:
            out.append(None)
            continue
        index = (after or found)[0]
        last[(e.table, e.chain)] = index
        out.append((e.table, e.chain, index))
    return tuple(out)


# -- the kernel's walk as a path ------------------------------------------------------------------------------
def _state(p: KernelPacket | None, first: KernelPacket, hook: str, proto: str) -> PacketState | None:
    if p is None or not p.src or not p.dst or not first.src or not first.dst:
        return None
    return PacketState(p.src, p.dst, proto, p.sport, p.dport, mark=p.mark, dnat=(p.dst, p.dport) != (first.dst,
                       first.dport), snat=(p.src, p.sport) != (first.src, first.sport), orig_src=first.src,
                       orig_dst=first.dst, orig_sport=first.sport, orig_dport=first.dport, in_iface=p.iif or None,
                       out_iface=p.oif or None, hook=hook)  # fmt: skip


def _visits(events: Sequence[KernelEvent]) -> list[list[int]]:
    groups: list[list[int]] = []
    last = None
    for i, e in enumerate(events):
        key = (e.hook, e.table, e.packet.line if e.packet else None)
        if key != last or not groups:
            groups.append([])
            last = key
        groups[-1].append(i)
    return groups


def kernel_path(k: KernelTrace, packet: Packet, locations: Sequence[Location | None], ruleset: Ruleset,
                notes: dict[int, str] | None = None) -> TracePath:  # fmt: skip
    """The kernel's walk (``k`` without its ``-j TRACE`` rules; ``locations`` per event) as a :class:`TracePath`
    whose hops point at the dump's rules. The packet each hop shows is the one the kernel's PACKET lines report
    per table visit; a change between two visits is put on the rule that made it (DNAT, MARK), else on the
    visit's last hop. ``notes``: event index → a note (the comparison's finding)."""
    first = _first(k)[0]
    groups = _visits(k.events)
    hops: list[Hop] = []
    cur: PacketState | None = None
    for g, idx in enumerate(groups):
        here = k.events[idx[0]]
        hook = here.hook or "?"
        start = _state(here.packet, first, hook, packet.proto)
        if start is not None and cur is not None and _MARKISH.search(here.rule_text or ""):
            start = start.with_(mark=cur.mark)  # the PACKET line already carries this rule's MARK
        cur = start or cur
        nxt = next((k.events[j].packet for j in (groups[g + 1] if g + 1 < len(groups) else [])), None)
        target = _state(nxt, first, hook, packet.proto)
        changer = {}
        if target is not None and cur is not None:
            marks = [i for i in idx if _MARKISH.search(k.events[i].rule_text or "")]
            nats = [i for i in idx if _NATISH.search(k.events[i].rule_text or "") and k.events[i].verdict == "ACCEPT"]
            changer[(marks or idx)[-1]] = {"mark": target.mark}
            moved = {f: getattr(target, f) for f in ("src", "dst", "sport", "dport", "dnat", "snat")}
            changer.setdefault((nats or idx)[-1], {}).update(moved)
        for i in idx:
            e = k.events[i]
            if e.kind not in ("rule", "policy"):
                continue
            before = cur
            if cur is not None and i in changer:
                cur = cur.with_(**changer[i])
            hops.append(_hop(e, hook, locations[i] if i < len(locations) else None, ruleset, before, cur,
                             (notes or {}).get(i)))  # fmt: skip
    final = cur or PacketState(packet.src, packet.dst, packet.proto, packet.sport, packet.dport)
    delivery = k.delivery if k.delivery in ("local", "forward", "sent") else None
    extra = ("the log ends where the packet went out to lo: the rest of its walk is not in it",
             ) if k.delivery == "loopback" else ()  # fmt: skip
    where = f"the kernel's walk: log lines {k.line}-{_last_line(k)}, trace id {', '.join(k.ids)}"
    return TracePath(probability=Fraction(1), verdict=k.verdict, hops=tuple(hops), final=final,
                     delivery=delivery, notes=(where, *extra))


def _last_line(k: KernelTrace) -> int:
    return max([e.line for e in k.events] + [p.line for p in k.packets], default=k.line)


def _hop(e: KernelEvent, hook: str, loc: Location | None, ruleset: Ruleset, before: PacketState | None,
         after: PacketState | None, finding: str | None) -> Hop:  # fmt: skip
    chain = ruleset.chain(e.table, e.chain)
    rule = chain.rules[loc[2] - 1] if chain is not None and loc is not None else None
    counters = rule.counters if rule is not None else (chain.counters if chain is not None and e.kind == "policy"
                                                       else None)  # fmt: skip
    note = f"kernel log line {e.line}"
    if e.kind == "rule" and rule is None:
        note += (", rule not found in the dump" + (f" (kernel handle {e.handle:#x})" if e.handle is not None else "")
                 + f": {e.rule_text or '?'}")
    if finding:
        note += f"; {finding}"
    target = e.target or (rule.target_name if rule is not None else None)
    return Hop(hook, e.table, e.chain, e.kind, loc[2] if loc else None, rule.line if rule is not None else None,
               e.rule_text if e.kind == "rule" else None, True, e.verdict, target, None, before, after,
               (counters.packets, counters.bytes) if counters is not None else None, note)  # fmt: skip


# -- all of it ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelReplay:
    """One kernel traversal replayed against a dump."""

    kernel: KernelTrace  # without its -j TRACE rules
    packet: Packet
    node: NodeContext
    locations: tuple[Location | None, ...]  # per event of ``kernel``
    engine: Trace  # the engine's simulation, every path
    comparison: Comparison
    trace: Trace  # path 1: the kernel's walk; path 2: the engine's best-matching path (differences noted)

    def marks(self) -> frozenset[tuple[int, int]]:
        """(path index, index into that path's hops) of every hop where the kernel and the engine differ: path 0
        is the kernel's walk, path 1 the engine's."""
        kernel_hops = [i for i, e in enumerate(self.kernel.events) if e.kind in ("rule", "policy")]
        hop_of = {event: hop for hop, event in enumerate(kernel_hops)}
        out = {(0, hop_of[pos]) for pos in self.comparison.kernel_marks() if pos in hop_of}
        return frozenset(out | {(1, pos) for pos in self.comparison.engine_marks()})

    @property
    def missing(self) -> int:
        """Kernel rule events whose rule the dump does not hold."""
        return sum(1 for e, loc in zip(self.kernel.events, self.locations) if e.kind == "rule" and loc is None)


def _without_absent_tables(ruleset: Ruleset, k: KernelTrace) -> tuple[KernelTrace, tuple[str, ...]]:
    """Leave out the policy-ACCEPT-only visits of tables the dump does not have (``raw`` exists on the node only
    because the ``-j TRACE`` rule lives there, and a dump taken without it may have no raw table at all)."""
    absent = {e.table for e in k.events if ruleset.table(e.table) is None}
    gone = {t for t in absent if all(e.kind == "policy" and e.verdict == "ACCEPT" for e in k.events if e.table == t)}
    if not gone:
        return k, ()
    note = f"the dump has no {', '.join(sorted(gone))} table: the kernel's policy ACCEPT there is left out"
    return replace(k, events=tuple(e for e in k.events if e.table not in gone)), (note,)


def replay(ruleset: Ruleset, kernel: KernelTrace, node: NodeContext | None = None) -> KernelReplay:
    """Replay ``kernel`` against ``ruleset``: locate its events, simulate its packet (on ``node`` plus what the log
    proves about the node), compare. ValueError (with the log line) when its packet cannot be simulated."""
    k = kernel.without_trace_rules()
    k, dropped = _without_absent_tables(ruleset, k)
    ctx = node_from_kernel(k, node)
    packet = packet_from_kernel(k, ctx)
    locations = locate_events(ruleset, k)
    engine = trace(ruleset, packet, ctx)
    cmp = compare(k, engine, locations=locations)
    knotes = {r.kernel.pos: r.detail for r in cmp.rows if r.kernel is not None and not r.ok}
    paths = [kernel_path(k, packet, locations, ruleset, knotes)]
    if cmp.path is not None:
        enotes = {r.engine.pos: r.detail for r in cmp.rows if r.engine is not None and not r.ok}
        hops = tuple(h._replace(note="; ".join(x for x in (h.note, enotes[i]) if x)) if i in enotes else h
                     for i, h in enumerate(cmp.path.hops))  # fmt: skip
        label = f"the engine's simulation (path {(cmp.path_index or 0) + 1} of {len(engine.paths)})"
        paths.append(replace(cmp.path, hops=hops, notes=(label, *cmp.path.notes)))
    combined = Trace(packet, ctx, tuple(paths), notes=(cmp.summary, *cmp.problems, *dropped))
    return KernelReplay(k, packet, ctx, locations, engine, cmp, combined)
