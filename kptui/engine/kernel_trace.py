"""Read what the kernel says a packet did: ``xtables-monitor --trace`` and ``nft monitor trace`` output.

Pure: text in, frozen values out. :func:`parse_kernel_trace` splits a capture into *traversals* (one packet's
walk; :class:`KernelTrace`) of :class:`KernelEvent` s (each rule that matched, each policy applied, in order)
with the packet each table visit reported (:class:`KernelPacket`); :func:`first_packet` picks a connection's
first SYN/datagram and joins the parts of its walk that carry other trace ids. Shapes (iptables 1.8.9, 6.x):

- ``PACKET: 2 9042031b IN=… OUT=… SRC=… DST=… LEN=60 … ID=40132 DF SPORT=… DPORT=… SYN MARK=0x4000``: once per
  table visit, sent with the visit's first traced event -- so MARK already includes that rule's MARK, while
  addresses are pre-NAT (NAT rewrites after the table). UDP/SCTP/DCCP show ports but no protocol name.
- `` TRACE: 2 9042031b nat:KUBE-SERVICES:rule:0x27:JUMP:KUBE-SVC-X  -4 -t nat -A KUBE-SERVICES …``: verdicts
  ACCEPT (also DNAT, SNAT, MASQUERADE), DROP (also REJECT), CONTINUE (MARK, NOTRACK, target-less rules),
  JUMP:C, GOTO:C, QUEUE, STOLEN, BREAK, or hex (``0xfffffffb`` is RETURN). Falling off a user chain is silent
  (old kernels sent ``…:return:``); `` TRACE: 2 id filter:FORWARD:policy:ACCEPT`` when a policy applies.
- nft: ``trace id 9042031b ip nat OUTPUT rule … (verdict jump KUBE-SERVICES)``, ``… policy accept``,
  ``… packet: iif "eth0" ip saddr …``.

Trace ids hash the skb with its input interface: later packets of a connection may reuse the first one's id,
and one packet's walk can change id (looping through ``lo``; between PREROUTING and FORWARD when it arrived
on a bridge). Traversals are split where the IPv4 id changes or the hook/table order goes backwards.

Native nft tables name their base chains freely (``nat-prerouting``), so an nft log alone does not say which
hook a visit belongs to: pass ``base_chains`` (from the ruleset's listing) and every visit of a listed base
chain gets its hook and its place in the hook's order. NAT-type base chains all run inside the kernel's one
NAT hook of their hook point (priority -100 for prerouting/output, 100 for input/postrouting), ordered among
themselves by their own priority: a ``type nat`` chain at priority -90 runs before a filter chain at -95.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

__all__ = ["HOOK_RANK", "NAT_HOOK_PRIORITY", "BaseChains", "KernelEvent", "KernelPacket", "KernelTrace",
           "KernelTraceLog", "first_packet", "parse_kernel_trace", "visit_order"]

HOOK_RANK = {"PREROUTING": 0, "OUTPUT": 0, "INPUT": 1, "FORWARD": 1, "POSTROUTING": 2}
_PRIO = {"raw": -300, "mangle": -150, "filter": 0, "security": 50}
NAT_HOOK_PRIORITY = {"PREROUTING": -100, "OUTPUT": -100, "INPUT": 100, "POSTROUTING": 100}
BaseChains = Mapping[tuple[str, str, str], tuple[str, str, int]]  # (family, table, chain) -> (hook, type, priority)
Order = tuple[int, int]  # where a table visit runs in its hook: (effective priority, own priority)
_NFT_FAMILIES = {"ip": 2, "ip6": 10, "inet": 1, "arp": 3, "bridge": 7, "netdev": 5}
_HEX_VERDICTS = {0xFFFFFFFF: "CONTINUE", 0xFFFFFFFE: "BREAK", 0xFFFFFFFD: "JUMP", 0xFFFFFFFC: "GOTO",
                 0xFFFFFFFB: "RETURN"}  # fmt: skip
_TCP_FLAGS = ("SYN", "ACK", "FIN", "RST", "PSH", "URG")
_NFT_FLAG_BITS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")  # bit 0 upwards, as nft prints "0x11"
_XT_TRACE = re.compile(r"^\s*TRACE:\s+(\d+)\s+([0-9a-fA-F]+)\s+(.*)$")
_XT_PACKET = re.compile(r"^\s*PACKET:\s+(\d+)\s+([0-9a-fA-F]+)\s*(.*)$")
_XT_KIND = re.compile(r":(rule):(0x[0-9a-fA-F]+):|:(policy):|:(return):")
_XT_RULE_PREFIX = re.compile(r"^-[46]\s+-t\s+\S+\s+")
_NFT_LINE = re.compile(r"^\s*trace id ([0-9a-fA-F]+) (\S+) (\S+) (\S+) (packet:|rule|policy|verdict|unknown rule)"
                       r"\s*(.*)$")
_NFT_HANDLE = re.compile(r"\s*# handle (\d+)$")
_NFT_VERDICT = re.compile(r"\(verdict ([a-z]+)(?: (\S+))?\)")
_DNAT_TO = re.compile(r"(?:--to-destination|dnat (?:ip6? )?to) (\S+)")
_MASQ = re.compile(r"-j MASQUERADE\b|\bmasquerade\b")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')  # a comment's text: "… for masquerade and filter purpose" is no masquerade


@dataclass(frozen=True)
class KernelPacket:
    """One ``PACKET:`` line: the packet as a table visit reported it (see the module docstring)."""

    line: int
    iif: str | None = None
    oif: str | None = None
    src: str | None = None
    dst: str | None = None
    proto: str | None = None  # "tcp" when TCP flags show; xtables-monitor prints UDP/SCTP/DCCP alike: "udp"
    sport: int | None = None
    dport: int | None = None
    flags: frozenset[str] = frozenset()
    mark: int = 0
    ip_id: int | None = None
    length: int | None = None
    fields: tuple[tuple[str, str], ...] = ()  # every KEY=VALUE (bare words as (WORD, "")), in order

    @property
    def is_first(self) -> bool:
        """A TCP SYN without ACK, or any non-TCP packet (a UDP datagram has no flags)."""
        return self.flags == frozenset({"SYN"}) if self.proto == "tcp" else True


@dataclass(frozen=True)
class KernelEvent:
    """A rule that matched, a policy that applied, or (old kernels) a user chain that ran out."""

    line: int
    trace_id: str
    family: int
    table: str
    chain: str
    kind: str  # "rule", "policy" or "return"
    verdict: str  # ACCEPT DROP CONTINUE JUMP GOTO RETURN QUEUE STOLEN BREAK, or the hex code as printed
    target: str | None = None  # the chain of a JUMP/GOTO
    handle: int | None = None
    rule_text: str | None = None  # "-A CHAIN …" (xtables) or the nft statement list (nft)
    hook: str | None = None  # the hook of this table visit (the base chain's name), when known
    packet: KernelPacket | None = None  # the packet at the start of this table visit
    order: Order | None = None  # where this visit's base chain runs in its hook (:func:`visit_order`), when known

    @property
    def is_trace_rule(self) -> bool:
        """The ``-j TRACE`` rule that switched tracing on (not part of the ruleset under test)."""
        text = self.rule_text or ""
        return self.kind == "rule" and (text.endswith("-j TRACE") or "nftrace set 1" in text)


@dataclass(frozen=True)
class KernelTrace:
    """One packet's walk: its events in order and the packet at each table visit."""

    id: str
    family: int
    events: tuple[KernelEvent, ...]
    packets: tuple[KernelPacket, ...] = ()
    ids: tuple[str, ...] = ()  # every trace id joined here (the ``lo`` half of a local packet has its own)

    @property
    def line(self) -> int:
        """First input line of this traversal."""
        return min([p.line for p in self.packets[:1]] + [e.line for e in self.events[:1]], default=0)

    @property
    def first(self) -> KernelPacket | None:
        """The packet as the first table saw it (before any NAT)."""
        return self.packets[0] if self.packets else None

    @property
    def visits(self) -> tuple[tuple[str | None, str], ...]:
        """``(hook, table)`` of each table visit, in order."""
        keys: list[tuple[str | None, str, int | None]] = []
        for e in self.events:
            key = (e.hook, e.table, e.packet.line if e.packet else None)
            if not keys or keys[-1] != key:
                keys.append(key)
        return tuple((hook, table) for hook, table, _ in keys)

    @property
    def verdict(self) -> str:
        """DROP, REJECT (a DROP by ``-j REJECT``), QUEUE, STOLEN or ACCEPT."""
        for e in self.events:
            if e.verdict == "DROP":
                return "REJECT" if e.rule_text and re.search(r"-j REJECT\b|\breject\b", e.rule_text) else "DROP"
            if e.verdict in ("QUEUE", "STOLEN"):
                return e.verdict
        return "ACCEPT"

    @property
    def delivery(self) -> str | None:
        """"local" (last seen in INPUT), "forward" (POSTROUTING, not to ``lo``, of a packet that arrived),
        "sent" (likewise, of a packet the node sent: the walk began in OUTPUT), "loopback" (POSTROUTING to
        ``lo`` and the ``lo`` half is missing) or None (dropped, or the hook is unknown)."""
        last = self.events[-1] if self.events and self.verdict == "ACCEPT" else None
        if last is None or last.hook not in ("INPUT", "POSTROUTING"):
            return None
        if last.hook == "INPUT":
            return "local"
        if last.packet and last.packet.oif == "lo":
            return "loopback"
        return "sent" if self.events[0].hook == "OUTPUT" else "forward"

    def _taken(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        found = (pattern.search(_QUOTED.sub('""', e.rule_text)) for e in self.events
                 if e.verdict == "ACCEPT" and e.rule_text)  # fmt: skip
        return [m for m in found if m]

    @property
    def endpoint(self) -> str | None:
        """``IP:PORT`` of the last DNAT that took effect (``--to-destination``), or None."""
        hits = self._taken(_DNAT_TO)
        return hits[-1].group(1) if hits else None

    @property
    def masquerade(self) -> bool:
        """A MASQUERADE rule took effect."""
        return bool(self._taken(_MASQ))

    def without_trace_rules(self) -> KernelTrace:
        """The same traversal without the ``-j TRACE`` rules' events."""
        return replace(self, events=tuple(e for e in self.events if not e.is_trace_rule))


@dataclass(frozen=True)
class KernelTraceLog:
    """Everything in one capture: the traversals in input order, and warnings about lines skipped."""

    traces: tuple[KernelTrace, ...]
    warnings: tuple[str, ...] = ()
    format: str | None = None  # "xtables", "nft", or None when nothing was recognised

    def by_id(self, trace_id: str) -> tuple[KernelTrace, ...]:
        """Traversals that carry ``trace_id``."""
        return tuple(t for t in self.traces if trace_id in t.ids)


@dataclass
class _Open:
    """A traversal under construction."""

    id: str
    family: int
    events: list[KernelEvent] = field(default_factory=list)
    packets: list[KernelPacket] = field(default_factory=list)
    packet: KernelPacket | None = None  # the current visit's packet
    hook: str | None = None
    table: str | None = None
    order: Order | None = None
    visit_started: bool = False  # a PACKET line opened a visit that has no event yet

    def freeze(self) -> KernelTrace:
        return KernelTrace(self.id, self.family, tuple(self.events), tuple(self.packets), (self.id,))


def visit_order(hook: str, chain_type: str, priority: int) -> Order:
    """Where a base chain runs among its hook's chains: NAT-type chains at the NAT hook's priority (then by their
    own), every other type at its own priority."""
    own = int(priority)
    return (NAT_HOOK_PRIORITY.get(hook.upper(), own) if chain_type == "nat" else own, own)


def _visit_key(hook: str | None, table: str | None, order: Order | None = None) -> tuple[int, Order] | None:
    """(hook rank, order): an iptables table's from its name (raw -300, mangle -150, nat -100 (DNAT hooks) or 100,
    filter 0, security 50), a native base chain's from ``order``."""
    if order is None:
        prio = (-100 if hook in ("PREROUTING", "OUTPUT") else 100) if table == "nat" else _PRIO.get(table or "")
        order = None if prio is None else (prio, prio)
    return None if hook not in HOOK_RANK or order is None else (HOOK_RANK[hook], order)


def _goes_back(prev_hook: str | None, prev_table: str | None, hook: str | None, table: str,
               prev_order: Order | None = None, order: Order | None = None) -> bool:  # fmt: skip
    """True when a table visit at (hook, table) cannot follow (prev_hook, prev_table) in one traversal."""
    a, b = _visit_key(prev_hook, prev_table, prev_order), _visit_key(hook, table, order)
    if a is None or b is None:
        return False
    return b[0] < a[0] if a[0] != b[0] else (hook != prev_hook or b[1] <= a[1])


def _int(text: str | None, base: int = 10) -> int | None:
    try:
        return int(text, base) if text is not None else None
    except ValueError:
        return None


def _parse_xt_packet(line: int, rest: str) -> KernelPacket:
    fields: list[tuple[str, str]] = []
    for tok in rest.split():
        key, sep, value = tok.partition("=")
        fields.append((key, value) if sep else (tok, ""))
    kv = {k: v for k, v in fields if v}
    # Some versions print "ID=5DF" (no space before the fragment flags).
    ip_id_text = re.match(r"\d+", kv.get("ID", ""))
    flags = frozenset(k for k, v in fields if not v and k in _TCP_FLAGS)
    sport, dport = _int(kv.get("SPORT") or kv.get("SPT")), _int(kv.get("DPORT") or kv.get("DPT"))
    proto = (kv.get("PROTO") or "").lower() or ("tcp" if flags else ("udp" if sport is not None else None))
    return KernelPacket(line, kv.get("IN"), kv.get("OUT"), kv.get("SRC"), kv.get("DST"), proto, sport, dport,
                        flags, _int(kv.get("MARK"), 16) or 0, _int(ip_id_text.group(0)) if ip_id_text else None,
                        _int(kv.get("LEN")), tuple(fields))  # fmt: skip


def _parse_nft_packet(line: int, rest: str) -> KernelPacket:
    def grab(pattern: str) -> str | None:
        m = re.search(pattern, rest)
        return m.group(1) if m else None

    l4 = re.search(r"\b(tcp|udp|udplite|sctp|dccp) sport (\d+)", rest)
    proto = l4.group(1) if l4 else grab(r"meta l4proto (\S+)")
    flag_text = grab(r"tcp flags == (\([^)]*\)|\S+)") or ""
    bits = _int(flag_text, 16) if flag_text.startswith("0x") else None
    flags = (frozenset(f for i, f in enumerate(_NFT_FLAG_BITS) if bits >> i & 1) if bits is not None else
             frozenset(f.upper() for f in re.findall(r"[a-z]+", flag_text) if f.upper() in _TCP_FLAGS))
    fields = tuple((m.group(1), m.group(2).strip('"')) for m in re.finditer(r"((?:\w+ )?\w+) (\"[^\"]*\"|\S+)",
                                                                                rest))  # fmt: skip
    return KernelPacket(line, grab(r'iif "([^"]*)"'), grab(r'oif "([^"]*)"'), grab(r"\bip6? saddr (\S+)"),
                        grab(r"\bip6? daddr (\S+)"), proto, _int(l4.group(2)) if l4 else None,
                        _int(grab(r"\b(?:tcp|udp|udplite|sctp|dccp) dport (\d+)")), flags,
                        _int(grab(r"meta mark (0x[0-9a-f]+)"), 16) or 0, _int(grab(r"\bip id (\d+)")),
                        _int(grab(r"\bip6? length (\d+)")), fields)  # fmt: skip


def _xt_verdict(text: str) -> tuple[str, str | None]:
    word, _, target = text.partition(":")
    if word.lower().startswith("0x"):
        code = _int(word, 16)
        return (_HEX_VERDICTS.get(code, word) if code is not None else word), (target or None)
    return word.upper(), (target or None)


class _Parser:
    def __init__(self, base_chains: BaseChains | None = None) -> None:
        self.base = base_chains or {}
        self.open: dict[str, _Open] = {}
        self.done: list[KernelTrace] = []
        self.warnings: list[str] = []
        self.formats: set[str] = set()

    def start(self, trace_id: str, family: int) -> _Open:
        """Close the open traversal of ``trace_id`` (if any) and open a new one."""
        old = self.open.get(trace_id)
        if old is not None and (old.events or old.packets):
            self.done.append(old.freeze())
        cur = self.open[trace_id] = _Open(trace_id, family)
        return cur

    def packet(self, trace_id: str, family: int, pkt: KernelPacket, table: str | None = None,
               chain: str | None = None, hook: str | None = None, order: Order | None = None) -> None:  # fmt: skip
        """A packet line; nft's names the visit (``table``, ``chain``; ``hook``/``order`` when it is a listed
        native base chain)."""
        hook = hook or (chain if chain in HOOK_RANK else None)
        cur = self.open.get(trace_id)
        if cur is None:
            cur = self.start(trace_id, family)
        else:
            last = cur.packet
            new_id = last is not None and None not in (last.ip_id, pkt.ip_id) and last.ip_id != pkt.ip_id
            back = table is not None and _goes_back(cur.hook, cur.table, hook, table, cur.order, order)
            if new_id or back:
                cur = self.start(trace_id, family)
        cur.packet, cur.visit_started = pkt, True
        cur.packets.append(pkt)
        if table is not None:  # nft names the visit on the packet line
            cur.hook, cur.table, cur.order, cur.visit_started = hook, table, order, False

    def event(self, ev: KernelEvent) -> None:
        cur = self.open.get(ev.trace_id)
        if cur is None:
            cur = self.start(ev.trace_id, ev.family)
        base = ev.chain in HOOK_RANK
        if cur.visit_started or (base and (ev.table, ev.chain) != (cur.table, cur.hook)):
            if not cur.visit_started and _goes_back(cur.hook, cur.table, ev.chain, ev.table):
                cur = self.start(ev.trace_id, ev.family)
            cur.hook = ev.chain if base else None
            cur.table, cur.order, cur.visit_started = ev.table, None, False
        elif ev.table != cur.table:
            cur.table, cur.hook, cur.order = ev.table, None, None
        cur.events.append(replace(ev, hook=cur.hook, packet=cur.packet, order=cur.order))

    def xt_line(self, n: int, line: str) -> bool:
        m = _XT_PACKET.match(line)
        if m:
            self.formats.add("xtables")
            self.packet(m.group(2).lower(), int(m.group(1)), _parse_xt_packet(n, m.group(3)))
            return True
        m = _XT_TRACE.match(line)
        if not m:
            return False
        self.formats.add("xtables")
        family, trace_id, rest = int(m.group(1)), m.group(2).lower(), m.group(3)
        k = _XT_KIND.search(rest)
        table, sep, _ = rest.partition(":")
        if k is None or not sep or k.start() <= len(table):
            self.warnings.append(f"line {n}: unrecognised TRACE line: {line.strip()[:120]}")
            return True
        chain = rest[len(table) + 1:k.start()]
        tail = rest[k.end():]
        if k.group(1):
            word, _, text = tail.partition(" ")
            verdict, target = _xt_verdict(word)
            text = _XT_RULE_PREFIX.sub("", text.strip()) or None
            self.event(KernelEvent(n, trace_id, family, table, chain, "rule", verdict, target,
                                   int(k.group(2), 16), text))  # fmt: skip
        elif k.group(3):
            verdict, target = _xt_verdict(tail.strip() or "?")
            self.event(KernelEvent(n, trace_id, family, table, chain, "policy", verdict, target))
        else:
            self.event(KernelEvent(n, trace_id, family, table, chain, "return", "RETURN", tail.strip() or None))
        return True

    def nft_line(self, n: int, line: str) -> bool:
        m = _NFT_LINE.match(line)
        if not m:
            return False
        self.formats.add("nft")
        trace_id, fam, table, chain, kind, rest = m.groups()
        family = _NFT_FAMILIES.get(fam, 0)
        if kind == "packet:":
            base = self.base.get((fam, table, chain))
            hook = base[0].upper() if base else None
            order = visit_order(hook, base[1], base[2]) if base and hook else None
            self.packet(trace_id.lower(), family, _parse_nft_packet(n, rest), table, chain, hook, order)
            return True
        if kind in ("rule", "unknown rule"):
            v = _NFT_VERDICT.search(rest)
            verdict, target = (v.group(1).upper(), v.group(2)) if v else ("?", None)
            text = rest[:v.start()].strip() if v else rest.strip()
            handle = _int(text.rsplit(" ", 1)[-1]) if kind == "unknown rule" else None
            h = _NFT_HANDLE.search(text)
            if h and kind == "rule":  # nft -a monitor trace: "… # handle N"
                handle, text = int(h.group(1)), text[:h.start()].rstrip()
            self.event(KernelEvent(n, trace_id.lower(), family, table, chain, "rule", verdict, target, handle,
                                   None if kind == "unknown rule" else text))  # fmt: skip
        else:
            word, _, more = rest.partition(" ")
            target = more.split()[0] if word in ("jump", "goto") and more.split() else None
            self.event(KernelEvent(n, trace_id.lower(), family, table, chain,
                                   "policy" if kind == "policy" else "return", word.upper() or "?", target))
        return True


def parse_kernel_trace(text: str, *, base_chains: BaseChains | None = None) -> KernelTraceLog:
    """Parse ``xtables-monitor --trace`` or ``nft monitor trace`` output. Lines that are neither are
    skipped with a warning (``EVENT:``/``NEWGEN:`` lines and blank lines silently). ``base_chains`` maps a
    native nft base chain ``(family, table, chain)`` (``("ip", "kube-proxy", "nat-prerouting")``) to its
    ``(hook, type, priority)`` (``("prerouting", "nat", -100)``), so its visits get their hook and order."""
    p = _Parser(base_chains)
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("EVENT:", "NEWGEN:", "#")):
            continue
        try:
            if p.xt_line(n, line) or p.nft_line(n, line):
                continue
        except (ValueError, IndexError) as exc:  # a malformed field: keep going
            p.warnings.append(f"line {n}: {exc}: {stripped[:120]}")
            continue
        p.warnings.append(f"line {n}: not a trace line: {stripped[:120]}")
    traces = p.done + [o.freeze() for o in p.open.values() if o.events or o.packets]
    traces.sort(key=lambda t: t.line)
    return KernelTraceLog(tuple(traces), tuple(p.warnings), "/".join(sorted(p.formats)) or None)


def _continues(t: KernelTrace, u: KernelTrace) -> bool:
    """``u`` carries on ``t``'s packet under another trace id: the ``lo`` half of a packet the node sent to
    itself, or the rest of a walk whose id changed between hooks (seen for packets arriving on a bridge)."""
    last, f = (t.packets[-1] if t.packets else None), u.first
    if last is None or f is None or not t.events or not u.events or t.verdict != "ACCEPT":
        return False
    if (f.ip_id != last.ip_id) if (f.ip_id, last.ip_id) != (None, None) else (f.sport != last.sport):
        return False  # IPv4: the IP id must agree; IPv6 (no id): the source port
    if t.delivery == "loopback":
        return f.iif == "lo" and u.events[0].hook == "PREROUTING"
    a, b = t.events[-1], u.events[0]
    return (t.delivery is None and None not in (_visit_key(a.hook, a.table, a.order), _visit_key(b.hook, b.table, b.order))
            and not _goes_back(a.hook, a.table, b.hook, b.table, a.order, b.order))  # fmt: skip


def first_packet(log: KernelTraceLog | Iterable[KernelTrace], proto: str, sport: int, *, dport: int | None = None,
                 src: str | None = None, dst: str | None = None) -> KernelTrace | None:  # fmt: skip
    """The first SYN (TCP) or datagram (other protocols) with source port ``sport`` (and the given
    destination port / addresses, as the first table saw them), joined with the traversals that carry the
    same packet on under other trace ids (see :func:`_continues`; matched by IPv4 id)."""
    traces = list(log.traces if isinstance(log, KernelTraceLog) else log)
    for i, t in enumerate(traces):
        f = t.first
        if (f is None or f.sport != sport or dport not in (None, f.dport) or src not in (None, f.src)
                or dst not in (None, f.dst) or (f.proto == "tcp") != (proto.lower() == "tcp") or not f.is_first):
            continue
        rest = traces[i + 1:]
        while True:
            j = next((j for j, u in enumerate(rest) if _continues(t, u)), None)
            if j is None:
                return t
            u, rest = rest[j], rest[j + 1:]
            t = replace(t, events=t.events + u.events, packets=t.packets + u.packets, ids=t.ids + u.ids)
    return None
