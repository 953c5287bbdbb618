"""MARK and CONNMARK: ``--set-xmark V/M`` ⇒ (x AND NOT M) XOR V, ``--set-mark V/M`` ⇒ (x AND NOT M) OR V,
``--and-mark``, ``--or-mark``, ``--xor-mark``; CONNMARK also ``--save-mark`` / ``--restore-mark`` (under
``--nfmask``/``--ctmask``, or ``--mask`` for both). Both let the packet go on."""

from __future__ import annotations

from ...flow import CONTINUE, Effect
from ...packet import NodeContext
from ...spec import Target
from ...trace_model import PacketState
from ..unitbase import Opt, RuleFacts, TargetUnit, TargetValidate
from ..values import VALUE_MASK, Bad, number, parse_u32, parse_value_mask

__all__ = ["CONNMARK_T", "MARK_T", "mark_op"]


def mark_op(current: int, target: Target) -> int:
    """The MARK/CONNMARK value operations on ``current``."""
    for opt in target.options:
        if not opt.args:
            continue
        got = parse_value_mask(opt.args[0])
        if got is None:
            continue
        v, m = got
        if opt.name == "--set-xmark":
            return ((current & ~m) ^ v) & 0xFFFFFFFF
        if opt.name == "--set-mark":
            return ((current & ~m) | v) & 0xFFFFFFFF
        if opt.name == "--and-mark":
            return current & v
        if opt.name == "--or-mark":
            return (current | v) & 0xFFFFFFFF
        if opt.name == "--xor-mark":
            return (current ^ v) & 0xFFFFFFFF
    return current


def _mark_apply(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    return Effect("CONTINUE", CONTINUE, state.with_(mark=mark_op(state.mark, target)))


def _masks(target: Target) -> tuple[int, int]:
    nf = ct = 0xFFFFFFFF
    for o in target.options:
        value = parse_u32(o.args[0]) if o.args else None
        if value is None:
            continue
        if o.name == "--mask":
            nf = ct = value
        elif o.name == "--nfmask":
            nf = value
        elif o.name == "--ctmask":
            ct = value
    return nf, ct


def _connmark_apply(target: Target, state: PacketState, node: NodeContext, table: str) -> Effect:
    names = {o.name for o in target.options}
    if "--save-mark" in names:
        nf, ct = _masks(target)
        new = state.with_(ctmark=((state.ctmark & ~ct) ^ (state.mark & nf)) & 0xFFFFFFFF)
    elif "--restore-mark" in names:
        nf, ct = _masks(target)
        new = state.with_(mark=((state.mark & ~nf) ^ (state.ctmark & ct)) & 0xFFFFFFFF)
    else:
        new = state.with_(ctmark=mark_op(state.ctmark, target))
    return Effect("CONTINUE", CONTINUE, new)


_OPS = ("--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark")
_BITS = number("mark bits")


def _one_of(unit: str, ops: tuple[str, ...]) -> TargetValidate:
    def validate(target: Target, facts: RuleFacts) -> Bad | None:
        given = [o.name for o in target.options if o.name in ops]
        if len(given) != 1:
            return Bad(f"{unit}: exactly one of {', '.join(ops)} is required")
        return None

    return validate


_VALUES = (Opt(("--set-xmark",), (VALUE_MASK,), invert=False), Opt(("--set-mark",), (VALUE_MASK,), invert=False),
           *(Opt((n,), (_BITS,), invert=False) for n in ("--and-mark", "--or-mark", "--xor-mark")))  # fmt: skip
MARK_T = TargetUnit("MARK", _VALUES, _mark_apply, validate=_one_of("MARK", _OPS),
                    doc="set the packet's mark")  # fmt: skip
_CONNMARK_OPS = _OPS + ("--save-mark", "--restore-mark")
CONNMARK_T = TargetUnit(
    "CONNMARK",
    (*_VALUES, Opt(("--save-mark",), (), invert=False), Opt(("--restore-mark",), (), invert=False),
     *(Opt((n,), (_BITS,), invert=False) for n in ("--mask", "--nfmask", "--ctmask"))),
    _connmark_apply,
    validate=_one_of("CONNMARK", _CONNMARK_OPS),
    doc="set, save or restore the connection's mark",
)
