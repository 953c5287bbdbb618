"""``nft -j list ruleset`` (libnftables-json) read into an :class:`NftRuleset`.

The document is ``{"nftables": [{"metainfo": …}, {"table": …}, {"chain": …}, {"set"|"map": …}, {"element": …},
{"rule": …}, {"counter"|"quota"|"ct helper"|…: …}]}``. A rule's text is rebuilt from its statements as
``nft list ruleset`` prints it (:mod:`.printer`), and a base chain's priority text likewise (``dstnat - 10``).

Two things nft 1.0.6's JSON leaves out are restored so that text and JSON give equal models: the ``dynamic``
flag of a set that rules update (nft sets it on such sets; its JSON output omits it), and nothing else the model
compares (``auto-merge``, ``typeof`` are not compared). Objects of an unexpected shape are skipped with a
warning naming their position (``nftables[12]``); invalid JSON raises :class:`ParseError` at the JSON error's
line and column.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import Diagnostic, ParseError
from .build import IPTABLES_NFT_NOTE, canonical_flags, element, has_xt
from .exprs import SetStmt
from .json_exprs import JsonError, JsonReader
from .model import CHAIN_TYPES, HOOKS, NftChain, NftElement, NftObject, NftRule, NftRuleset, NftSet, NftTable
from .printer import rule_text
from .rule_text import rule_counter
from .symbols import priority_text

__all__ = ["parse_json"]

_OBJECTS = ("counter", "quota", "limit", "ct helper", "ct timeout", "ct expectation", "flowtable", "secmark",
            "synproxy", "tunnel")  # fmt: skip


def _types(v: Any) -> tuple[str, ...]:
    if isinstance(v, list):
        return tuple(str(x) for x in v) or ("integer",)
    return tuple(p.strip() for p in str(v).split(" . "))


class _Doc:
    def __init__(self, source: str | None, warnings: list[Diagnostic]) -> None:
        self.source = source
        self.warnings = warnings
        self.order: list[tuple[str, str]] = []
        self.tables: dict[tuple[str, str], dict[str, Any]] = {}
        self.version: str | None = None

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(Diagnostic(f"{where}: {message}", None, severity="warning"))

    def table(self, family: str, name: str, where: str) -> dict[str, Any]:
        key = (family, name)
        t = self.tables.get(key)
        if t is None:
            if where:
                self.warn(where, f"table {family} {name} is not declared before its contents")
            t = self.tables[key] = {"handle": None, "flags": (), "comment": None, "chains": {}, "sets": {},
                                    "objects": []}  # fmt: skip
            self.order.append(key)
        return t

    def add(self, i: int, obj: Any) -> None:
        where = f"nftables[{i}]"
        if not isinstance(obj, dict) or len(obj) != 1:
            self.warn(where, "not an object with one key: skipped")
            return
        kind, body = next(iter(obj.items()))
        if kind == "metainfo":
            if isinstance(body, dict) and body.get("version") is not None:
                self.version = str(body["version"])
            return
        if not isinstance(body, dict):
            self.warn(where, f"{kind} is not an object: skipped")
            return
        family, tname = str(body.get("family", "ip")), str(body.get("table", body.get("name", "")))
        try:
            if kind == "table":
                t = self.table(family, str(body.get("name", "")), "")
                t["handle"] = body.get("handle")
                flags = body.get("flags", ())
                t["flags"] = (flags,) if isinstance(flags, str) else tuple(str(f) for f in flags)
                t["comment"] = body.get("comment")
            elif kind == "chain":
                self.chain(self.table(family, tname, where), family, tname, body, where)
            elif kind in ("set", "map"):
                self.set(self.table(family, tname, where), kind, family, body, where)
            elif kind == "element":
                t = self.table(family, tname, where)
                st = t["sets"].get(str(body.get("name", "")))
                if st is None:
                    self.warn(where, f"elements of an unknown set '{body.get('name')}': skipped")
                    return
                st["elements"].extend(self.elements(st, family, body.get("elem", [])))
            elif kind == "rule":
                self.rule(self.table(family, tname, where), family, tname, body, where)
            elif kind in _OBJECTS:
                t = self.table(family, tname, where)
                t["objects"].append(NftObject(kind, str(body.get("name", "")), body.get("handle")))
            else:
                self.warn(where, f"unknown object '{kind}': skipped")
        except (JsonError, ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
            self.warn(where, f"{kind} of an unexpected shape ({exc}): skipped")

    def chain(self, t: dict[str, Any], family: str, table: str, body: dict[str, Any], where: str) -> None:
        name = str(body.get("name", ""))
        hook = body.get("hook")
        if hook is not None and hook not in HOOKS:  # nft refuses it; no packet ever meets the chain
            self.warn(where, f"unknown hook '{hook}' (nft knows {', '.join(HOOKS)}): no packet meets this chain")
        if hook is not None and body.get("type") not in CHAIN_TYPES:
            self.warn(where, f"unknown chain type '{body.get('type')}' (nft knows {', '.join(CHAIN_TYPES)})")
        prio = body.get("prio")
        dev = body.get("dev", ())
        devices = (dev,) if isinstance(dev, str) else tuple(str(d) for d in dev)
        policy = body.get("policy")
        t["chains"][name] = {
            "args": {"name": name, "family": family, "table": table, "type": body.get("type"), "hook": hook,
                     "priority": int(prio) if prio is not None else None,
                     "policy": (str(policy) if policy else "accept") if hook else None, "devices": devices,
                     "comment": body.get("comment"), "handle": body.get("handle"),
                     "priority_text": priority_text(int(prio), family, hook) if prio is not None else None},
            "rules": [],
        }  # fmt: skip

    def set(self, t: dict[str, Any], kind: str, family: str, body: dict[str, Any], where: str) -> None:
        name = str(body.get("name", ""))
        flags = body.get("flags", ())
        stmts = tuple(next(iter(s)) for s in body.get("stmt", ()) if isinstance(s, dict) and s)
        st: dict[str, Any] = {
            "kind": kind, "name": name, "key_type": _types(body.get("type", "integer")),
            "data_type": _types(body["map"]) if kind == "map" and "map" in body else None,
            "flags": [flags] if isinstance(flags, str) else [str(f) for f in flags],
            "timeout": body.get("timeout"), "gc_interval": body.get("gc-interval"), "size": body.get("size"),
            "policy": body.get("policy"), "comment": body.get("comment"), "handle": body.get("handle"),
            "stmts": stmts, "elements": [],
        }  # fmt: skip
        t["sets"][name] = st
        st["elements"].extend(self.elements(st, family, body.get("elem", [])))

    def elements(self, st: dict[str, Any], family: str, elems: Any) -> list[NftElement]:
        reader = JsonReader(family)
        kt = st["key_type"]
        key = kt if len(kt) > 1 else kt[0]
        dt = st["data_type"]
        data: Any = "verdict" if dt == ("verdict",) else (dt if dt and len(dt) > 1 else (dt or ("integer",))[0])
        return [element(reader.item(e, key, data)) for e in (elems if isinstance(elems, list) else [elems])]

    def rule(self, t: dict[str, Any], family: str, table: str, body: dict[str, Any], where: str) -> None:
        chain = t["chains"].get(str(body.get("chain", "")))
        if chain is None:
            self.warn(where, f"a rule of an unknown chain '{body.get('chain')}': skipped")
            return
        stmts = JsonReader(family).stmts(body.get("expr", []))
        comment = body.get("comment")
        comment = str(comment) if comment is not None else None
        rules = chain["rules"]
        rules.append(NftRule(family, table, chain["args"]["name"], len(rules) + 1, stmts, comment,
                             rule_counter(stmts), body.get("handle"), None,
                             rule_text(family, stmts, comment)))  # fmt: skip

    def build(self) -> list[NftTable]:
        out = []
        for family, name in self.order:
            t = self.tables[(family, name)]
            chains = {n: NftChain(rules=tuple(c["rules"]), **c["args"]) for n, c in t["chains"].items()}
            updated = {s.set for c in chains.values() for r in c.rules for s in r.exprs if isinstance(s, SetStmt)}
            sets = {}
            for n, s in t["sets"].items():
                flags = s["flags"] + (["dynamic"] if n in updated else [])
                sets[n] = NftSet(n, family, name, s["kind"], s["key_type"], s["data_type"], canonical_flags(flags),
                                 s["timeout"], s["gc_interval"], s["size"], s["policy"], s["comment"],
                                 tuple(s["elements"]), s["stmts"], s["handle"])  # fmt: skip
            rules = [r for c in chains.values() for r in c.rules]
            managed = has_xt(rules)
            if managed:
                self.warnings.append(Diagnostic(f"table {family} {name} {IPTABLES_NFT_NOTE}", None,
                                                severity="warning"))
            out.append(NftTable(family, name, chains, sets, tuple(t["objects"]), t["flags"], t["comment"], managed,
                                t["handle"]))  # fmt: skip
        return out


def parse_json(text: str, source: str | None, warnings: list[Diagnostic]) -> NftRuleset:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.split("\n")
        line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        raise ParseError(Diagnostic(f"not valid JSON: {exc.msg}", exc.lineno, exc.colno - 1, 1, line)) from None
    except RecursionError:
        raise ParseError(Diagnostic("not valid nft JSON: nested too deeply", 1)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        first = text.split("\n", 1)[0]
        raise ParseError(Diagnostic('not nft JSON: expected {"nftables": [...]}', 1, 0, 1, first))
    d = _Doc(source, warnings)
    for i, obj in enumerate(doc["nftables"]):
        d.add(i, obj)
    tables = d.build()
    return NftRuleset(tuple(tables), tuple(warnings), source, text.count("\n") + 1, "json", d.version)
