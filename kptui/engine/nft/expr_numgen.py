"""Number generators and hashes: ``numgen random|inc mod N [offset M]``, ``jhash EXPR mod N [seed S] [offset M]``,
``symhash mod N [offset M]``.

Evaluation gives a :class:`evalcore.Dist`: each of the N values ``offset … offset+N-1`` with probability 1/N.
That is exact for ``numgen random``. ``numgen inc`` is a round-robin counter whose position the listing does
not show: every value is as likely for a packet we know nothing about, so 1/N too (the note says so).
``jhash``/``symhash`` are deterministic for a given flow, but depend on a seed the kernel picks at random when
the rule gives none and on hash arithmetic kptui does not reproduce: kptui assumes the hash spreads flows
evenly (1/N each) and says so in the note of every branch. kube-proxy uses only ``numgen random``.
"""

from __future__ import annotations

from typing import Any

from ..flow import Undecidable
from .evalcore import MAX_DIST, Dist
from .exprs import Hash, Numgen
from .unitbase import EvalCtx, ExprUnit, JsonCtx, PrintCtx, TextCtx, ValueFn

__all__ = ["HASH", "NUMGEN"]


def _ng_parse(ctx: TextCtx, word: str) -> Numgen:
    cur = ctx.cur
    mode = cur.word("random or inc")
    if mode not in ("random", "inc"):
        raise cur.error(f"numgen mode '{mode}' is not random or inc", cur.tokens[cur.pos - 1])
    cur.expect("mod")
    mod = cur.int_("the modulus")
    offset = cur.int_("an offset") if cur.accept("offset") else 0
    if mod <= 0:
        raise cur.error("numgen mod must be at least 1", cur.tokens[cur.pos - 1])
    return Numgen(mode, mod, offset)


def _ng_json(ctx: JsonCtx, key: str, obj: Any) -> Numgen:
    if not isinstance(obj, dict):
        raise ctx.error("a numgen expression is an object")
    mod = int(obj.get("mod", 0))
    if mod <= 0:
        raise ctx.error("numgen mod must be at least 1")
    return Numgen(str(obj.get("mode", "random")), mod, int(obj.get("offset", 0) or 0))


def _ng_text(ctx: PrintCtx, node: Numgen) -> str:
    tail = f" offset {node.offset}" if node.offset else ""
    return f"numgen {node.mode} mod {node.mod}{tail}"


def _too_many(kind: str, mod: int) -> ValueFn | None:
    if mod <= MAX_DIST:
        return None
    q = Undecidable(f"nft {kind} mod {mod}", f"{kind} mod {mod}: more values than kptui enumerates ({MAX_DIST})")
    return lambda s, e: q


def _ng_value(ctx: EvalCtx, node: Numgen) -> ValueFn:
    big = _too_many("numgen", node.mod)
    if big is not None:
        return big
    values = tuple(range(node.offset, node.offset + node.mod))
    caveat = "" if node.mode == "random" else (f"a round-robin counter in an unknown position: each value assumed "
                                                f"1/{node.mod}")  # fmt: skip
    dist = Dist(values, f"numgen {node.mode} mod {node.mod}", caveat)
    return lambda s, e: dist


NUMGEN = ExprUnit(
    name="numgen",
    nodes=(Numgen,),
    keywords=("numgen",),
    json_keys=("numgen",),
    parse=_ng_parse,
    from_json=_ng_json,
    text=_ng_text,
    dtype=lambda node, family: "integer",
    value=_ng_value,
)


def _hash_parse(ctx: TextCtx, word: str) -> Hash:
    cur = ctx.cur
    expr = ctx.expr() if word == "jhash" else None
    cur.expect("mod")
    mod = cur.int_("the modulus")
    seed = None
    offset = 0
    while cur.peek() in ("seed", "offset"):
        if cur.word() == "seed":
            seed = cur.int_("a seed")
        else:
            offset = cur.int_("an offset")
    if mod <= 0:
        raise cur.error("hash mod must be at least 1", cur.tokens[cur.pos - 1])
    return Hash(word, mod, expr, seed, offset)


def _hash_json(ctx: JsonCtx, key: str, obj: Any) -> Hash:
    if not isinstance(obj, dict):
        raise ctx.error(f"a {key} expression is an object")
    mod = int(obj.get("mod", 0))
    if mod <= 0:
        raise ctx.error("hash mod must be at least 1")
    expr = ctx.expr(obj["expr"]) if "expr" in obj else None
    seed = obj.get("seed")
    return Hash(key, mod, expr, int(seed) if seed is not None else None, int(obj.get("offset", 0) or 0))


def _hash_text(ctx: PrintCtx, node: Hash) -> str:
    out = [node.kind]
    if node.expr is not None:
        out.append(ctx.expr(node.expr))
    out.append(f"mod {node.mod}")
    if node.seed is not None:
        out.append(f"seed 0x{node.seed:x}")
    if node.offset:
        out.append(f"offset {node.offset}")
    return " ".join(out)


def _hash_value(ctx: EvalCtx, node: Hash) -> ValueFn:
    big = _too_many(node.kind, node.mod)
    if big is not None:
        return big
    values = tuple(range(node.offset, node.offset + node.mod))
    caveat = f"a hash of the packet's fields kptui does not compute: each value assumed 1/{node.mod}"
    dist = Dist(values, f"{node.kind} mod {node.mod}", caveat)
    return lambda s, e: dist


HASH = ExprUnit(
    name="hash",
    nodes=(Hash,),
    keywords=("jhash", "symhash"),
    json_keys=("jhash", "symhash"),
    parse=_hash_parse,
    from_json=_hash_json,
    text=_hash_text,
    dtype=lambda node, family: "integer",
    value=_hash_value,
)

