"""Payload expressions: header fields (``ip saddr``, ``tcp dport``, ``th dport``, ``icmp type``) and raw payload
(``@nh,16,16``).

Evaluation: an address or port is read from the packet state; a field of a protocol the packet does not have
(``tcp dport`` of a UDP packet, ``ip saddr`` of an IPv6 one) breaks the rule (nft adds an implicit protocol
match the listing does not show). ``th`` has no such dependency: ``th dport`` is the destination port of any
protocol with ports, and of an ICMP packet the bytes where a port would be (undecidable). Fields the packet
model does not carry (``ip ttl``, ``tcp window``) are undecidable, each under its own key.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ..flow import Env, Undecidable
from ..packet import PORT_PROTOCOLS, PROTOCOLS
from ..trace_model import PacketState
from .evalcore import BROKEN
from .exprs import OtherExpr, Payload, RawPayload
from .symbols import TCP_FLAGS
from .unitbase import DType, EvalCtx, ExprUnit, JsonCtx, PrintCtx, TextCtx, ValueFn

__all__ = ["PAYLOAD", "RAW_PAYLOAD", "payload_dtype"]

_I = "integer"
FIELDS: dict[str, dict[str, str]] = {
    "ip": {"version": _I, "hdrlength": _I, "dscp": "dscp", "ecn": "ecn", "length": _I, "id": _I, "frag-off": _I,
           "ttl": _I, "protocol": "inet_proto", "checksum": _I, "saddr": "ipv4_addr", "daddr": "ipv4_addr"},
    "ip6": {"version": _I, "dscp": "dscp", "ecn": "ecn", "flowlabel": _I, "length": _I, "nexthdr": "inet_proto",
            "hoplimit": _I, "saddr": "ipv6_addr", "daddr": "ipv6_addr"},
    "tcp": {"sport": "inet_service", "dport": "inet_service", "sequence": _I, "ackseq": _I, "doff": _I,
            "reserved": _I, "flags": "tcp_flag", "window": _I, "checksum": _I, "urgptr": _I},
    "udp": {"sport": "inet_service", "dport": "inet_service", "length": _I, "checksum": _I},
    "udplite": {"sport": "inet_service", "dport": "inet_service", "csumcov": _I, "checksum": _I},
    "sctp": {"sport": "inet_service", "dport": "inet_service", "vtag": _I, "checksum": _I},
    "dccp": {"sport": "inet_service", "dport": "inet_service", "type": _I},
    "th": {"sport": "inet_service", "dport": "inet_service"},
    "icmp": {"type": "icmp_type", "code": "icmp_code", "checksum": _I, "id": _I, "sequence": _I,
             "gateway": "ipv4_addr", "mtu": _I},
    "icmpv6": {"type": "icmpv6_type", "code": "icmpv6_code", "checksum": _I, "parameter-problem": _I,
               "packet-too-big": _I, "id": _I, "sequence": _I, "max-delay": _I, "taddr": "ipv6_addr",
               "daddr": "ipv6_addr"},
    "ether": {"saddr": "ether_addr", "daddr": "ether_addr", "type": "ether_type"},
    "vlan": {"id": _I, "dei": _I, "pcp": _I, "cfi": _I, "type": "ether_type"},
    "arp": {"htype": _I, "ptype": "ether_type", "hlen": _I, "plen": _I, "operation": "arp_op"},
    "ah": {"nexthdr": "inet_proto", "hdrlength": _I, "reserved": _I, "spi": _I, "sequence": _I},
    "esp": {"spi": _I, "sequence": _I},
    "comp": {"nexthdr": "inet_proto", "flags": _I, "cpi": _I},
    "igmp": {"type": _I, "mrt": _I, "checksum": _I, "group": "ipv4_addr"},
    "gre": {"flags": _I, "version": _I, "protocol": "ether_type"},
}  # fmt: skip
# Words after a protocol that start an expression kptui keeps verbatim (options, chunks, extension headers).
_OTHER = frozenset({"option", "chunk"})


_NODES: dict[tuple[str, str], Payload] = {}  # one node per known field: nodes are immutable, rules share them


def payload_dtype(node: Any, family: str) -> DType:
    if isinstance(node, Payload):
        return FIELDS.get(node.proto, {}).get(node.field, _I)
    return _I


def _parse(ctx: TextCtx, proto: str) -> Payload | OtherExpr:
    cur = ctx.cur
    start = cur.pos - 1
    word = cur.peek()
    if word in _OTHER:
        # ``tcp option maxseg size``, ``ip option ra type``, ``sctp chunk data flags``: up to four words
        cur.pos += 1
        while cur.peek() and re.fullmatch(r"[a-z][a-z0-9-]*", cur.peek() or "") and cur.pos - start < 4:
            cur.pos += 1
        return OtherExpr(f"{proto} {word}", cur.span_text(start, cur.pos))
    fld = cur.word(f"a field of {proto}")
    node = _NODES.get((proto, fld))
    if node is None:
        if fld not in FIELDS.get(proto, {}):
            ctx.warn(f"unknown field '{fld}' of {proto}: kept, evaluated as undecidable",
                     cur.tokens[cur.pos - 1].col, len(fld))  # fmt: skip
            return Payload(proto, fld)
        node = _NODES[(proto, fld)] = Payload(proto, fld)
    return node


def _from_json(ctx: JsonCtx, key: str, obj: Any) -> Payload | RawPayload:
    if not isinstance(obj, dict):
        raise ctx.error("a payload expression is an object")
    if "base" in obj:
        return RawPayload(str(obj["base"]), int(obj.get("offset", 0)), int(obj.get("len", 0)))
    return Payload(str(obj.get("protocol", "")), str(obj.get("field", "")))


def _text(ctx: PrintCtx, node: Payload) -> str:
    return f"{node.proto} {node.field}"


def _family_of(state: PacketState) -> int:
    return 6 if ":" in state.src else 4


def _value(ctx: EvalCtx, node: Payload) -> ValueFn:
    proto, fld = node.proto, node.field
    key = f"{proto} {fld}"
    unknown = Undecidable(key, f"{key} is not part of the packet kptui models")
    if proto in ("ip", "ip6"):
        want = 4 if proto == "ip" else 6
        if fld in ("saddr", "daddr"):
            attr = "src" if fld == "saddr" else "dst"

            def addr(s: PacketState, e: Env) -> Any:
                if _family_of(s) != want:
                    return BROKEN
                return ipaddress.ip_address(getattr(s, attr))

            return addr
        if fld in ("protocol", "nexthdr"):
            return lambda s, e: BROKEN if _family_of(s) != want else PROTOCOLS.get(s.proto, -1)
        if fld == "length":
            def length(s: PacketState, e: Env) -> Any:
                if _family_of(s) != want:
                    return BROKEN
                if e.length is None:
                    return Undecidable("packet length", "the packet length is not known")
                return e.length - 40 if want == 6 else e.length

            return length
        if fld == "version":
            return lambda s, e: BROKEN if _family_of(s) != want else want
        return lambda s, e: BROKEN if _family_of(s) != want else unknown
    if fld in ("sport", "dport") and (proto in PORT_PROTOCOLS or proto == "th"):
        attr = fld

        def port(s: PacketState, e: Env) -> Any:
            if proto == "th":
                if s.proto not in PORT_PROTOCOLS:
                    return Undecidable(f"th {fld} of {s.proto}", f"th {fld} of an {s.proto} packet reads bytes "
                                       "kptui does not model")  # fmt: skip
            elif s.proto != proto:
                return BROKEN
            return getattr(s, attr)

        return port
    if proto == "tcp" and fld == "flags":
        def flags(s: PacketState, e: Env) -> Any:
            if s.proto != "tcp":
                return BROKEN
            return sum(TCP_FLAGS.get(f.lower(), 0) for f in e.tcp_flags)

        return flags
    if proto in ("icmp", "icmpv6"):
        want_proto = proto

        def icmp(s: PacketState, e: Env) -> Any:
            if s.proto != want_proto:
                return BROKEN
            if fld == "type":
                return e.icmp_type if e.icmp_type is not None else unknown
            if fld == "code" and e.icmp_type in ((0, 8) if want_proto == "icmp" else (128, 129)):
                return 0  # echo request and reply have code 0
            return unknown

        return icmp
    if proto == "ether" and fld == "saddr":
        return lambda s, e: e.mac.lower() if e.mac else Undecidable("ether saddr", "the source MAC is not known")
    if proto in FIELDS and proto not in ("ether", "vlan", "arp"):
        return lambda s, e: BROKEN if s.proto != proto and proto in PROTOCOLS else unknown
    return lambda s, e: unknown


PAYLOAD = ExprUnit(
    name="payload",
    nodes=(Payload,),
    keywords=tuple(FIELDS),
    json_keys=("payload",),
    parse=_parse,
    from_json=_from_json,
    text=_text,
    dtype=payload_dtype,
    value=_value,
)

# -- raw payload: @base,offset,length ---------------------------------------------------------------------
RAW = re.compile(r"@(ll|nh|th|ih),(\d+),(\d+)$")


def _raw_parse(ctx: TextCtx, word: str) -> RawPayload:
    m = RAW.match(word)
    assert m is not None  # the parser only calls this for a word the pattern matched
    return RawPayload(m.group(1), int(m.group(2)), int(m.group(3)))


def _raw_text(ctx: PrintCtx, node: RawPayload) -> str:
    return f"@{node.base},{node.offset},{node.length}"


def _raw_value(ctx: EvalCtx, node: RawPayload) -> ValueFn:
    text = _raw_text(ctx, node)  # type: ignore[arg-type]
    q = Undecidable(f"payload {text}", f"raw payload {text} is not part of the packet kptui models")
    return lambda s, e: q


RAW_PAYLOAD = ExprUnit(
    name="raw payload",
    nodes=(RawPayload,),
    keywords=(),  # recognised by its shape, @base,offset,length
    json_keys=(),  # JSON has it under "payload" with a base
    parse=_raw_parse,
    from_json=_from_json,
    text=_raw_text,
    dtype=lambda node, family: "raw",
    value=_raw_value,
)
