"""Which service a rule or chain belongs to, read from kube-proxy's comments (``"ns/name:port cluster IP"``,
``"ns/name:port -> 10.244.1.5:8080"``) and, where a chain has none, from the rules that jump to it. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .graph import graph_of
from .model import Ruleset

__all__ = ["ServiceLabels", "comment_of", "service_of_comment"]

_COMMENT = re.compile(r'--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))')
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9.-]*/[A-Za-z0-9][\w.-]*(?::[\w.-]+)?")
_SERVICE_CHAIN = re.compile(r"^KUBE-(?:SVC|SVL|EXT|FW|XLB|SEP)-")


def comment_of(raw: str) -> str | None:
    """The ``-m comment`` text of a raw rule, unescaped (None without a comment)."""
    m = _COMMENT.search(raw)
    if m is None:
        return None
    return m.group(2) if m.group(1) is None else re.sub(r"\\(.)", r"\1", m.group(1))


def service_of_comment(comment: str | None) -> str | None:
    """``"default/web:http cluster IP"`` → ``default/web:http``; None when the comment names no service."""
    if not comment:
        return None
    m = _SERVICE.match(comment)
    return m.group(0) if m else None


class ServiceLabels:
    """Which service a rule or chain belongs to, read from kube-proxy's comments (computed lazily per chain).

    A rule's own comment wins; otherwise its chain's service: the first service-naming comment in a
    KUBE-SVC/SVL/EXT/FW/XLB/SEP chain, or the comment of a rule that jumps to it (KUBE-SEP chains in large
    clusters have no comments of their own). ``overrides`` (chain → label, e.g. from the service index)
    come first."""

    def __init__(self, ruleset: Ruleset, overrides: Mapping[str, str] | None = None) -> None:
        self._ruleset = ruleset
        self._chains: dict[tuple[str | None, str], str | None] = {}
        self._overrides = overrides or {}

    def rule(self, table: str | None, chain: str, raw: str) -> str | None:
        return service_of_comment(comment_of(raw)) or self.chain(table, chain)

    def chain(self, table: str | None, chain: str, _depth: int = 0) -> str | None:
        if chain in self._overrides:
            return self._overrides[chain]
        key = (table, chain)
        if key in self._chains:
            return self._chains[key]
        found: str | None = None
        if _SERVICE_CHAIN.match(chain):
            c = self._ruleset.chain(table, chain)
            for row in getattr(c.rules, "rows", ()) if c is not None else ():
                found = service_of_comment(comment_of(row[1]))
                if found:
                    break
            if found is None and _depth < 3:
                for ref in graph_of(self._ruleset).callers_of(table, chain)[:4]:
                    caller = self._ruleset.chain(table, ref.chain)
                    if caller is None:
                        continue
                    raw = caller.rules[ref.index - 1].raw
                    found = service_of_comment(comment_of(raw)) or self.chain(table, ref.chain, _depth + 1)
                    if found:
                        break
        self._chains[key] = found
        return found
