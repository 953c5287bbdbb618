"""``recent`` (session affinity): ``--rcheck``/``--update --name N`` is true when this source is in list N.

A first packet is in no list, unless this path added it (``--set``), the node says so (``NodeContext.recent``),
or the client is a returning one (``NodeContext.affinity``): bound to one endpoint of the service — the one
given, or, with ``"any"``, one of the endpoints whose lists this chain checks (the walk forks, one path per
endpoint). :class:`RecentLists` is what a chain tells about its lists.
"""

from __future__ import annotations

from typing import NamedTuple

from ...flow import Check, CheckFn, Choices, Env, Outcome
from ...spec import Match
from ...trace_model import PacketState
from ..unitbase import MatchUnit, Opt, RuleFacts, opt_text
from ..values import NETMASK, Bad, number, string

__all__ = ["NO_RECENT", "RECENT", "RecentLists"]


class RecentLists(NamedTuple):
    """The recent lists one chain checks (``--rcheck``/``--update``), in order, and the endpoint each belongs
    to (the DNAT of the chain of the same name: kube-proxy names each list after its KUBE-SEP chain)."""

    chain: str
    lists: tuple[str, ...] = ()
    endpoints: tuple[str | None, ...] = ()

    def endpoint(self, name: str) -> str | None:
        for n, ep in zip(self.lists, self.endpoints, strict=True):
            if n == name:
                return ep
        return None

    def label(self, name: str) -> str:
        """``10.244.1.61:8080 (KUBE-SEP-…)``, or the list's name when its endpoint is not known."""
        ep = self.endpoint(name)
        return f"{ep} ({name})" if ep else name

    def endpoint_matches(self, name: str, want: str) -> bool:
        """``want`` (IP:PORT, [IPv6]:PORT or an IP) names the endpoint of list ``name``."""
        ep = self.endpoint(name)
        if ep is None:
            return False
        return want == ep or want == ep.rsplit(":", 1)[0].strip("[]")


NO_RECENT = RecentLists("")


def _check(match: Match, bound: RecentLists) -> CheckFn:
    name_opt = match.option("--name")
    name = name_opt.value if name_opt else "DEFAULT"
    if match.option("--set") is not None:
        return lambda s, e: True  # --set always matches (the rule records the source)
    negated = any(o.negated for o in match.options if o.name in ("--rcheck", "--update", "--remove"))

    def fn(s: PacketState, e: Env) -> Outcome:
        if name in e.node.recent or name in s.recent:
            return not negated
        want = e.node.affinity
        if want is None:
            return negated
        if want == "any" and not negated and bound.lists:
            options = tuple((bound.label(n), f"the client is bound to {bound.label(n)}") for n in bound.lists)
            return Choices(f"affinity {bound.chain}", bound.label(name), options,
                           "which endpoint a returning client is bound to is not known")  # fmt: skip
        hit = name == want or bound.endpoint_matches(name, want)
        return hit != negated

    return fn


def _compile(match: Match, recent: RecentLists) -> list[Check]:
    return [Check(_check(match, recent), "-m recent " + " ".join(opt_text("", o) for o in match.options))]


_COMMANDS = ("--set", "--rcheck", "--update", "--remove")


def _validate(match: Match, facts: RuleFacts) -> Bad | None:
    names = [o.name for o in match.options]
    commands = [n for n in names if n in _COMMANDS]
    if len(commands) != 1:
        return Bad("recent: you must specify one of '--set', '--rcheck', '--update' or '--remove'")
    if "--reap" in names and "--seconds" not in names:
        return Bad("recent: --reap is only valid with --seconds")
    if {"--rsource", "--rdest"} <= set(names):
        return Bad("recent: only one of --rsource or --rdest")
    if commands[0] in ("--set", "--remove") and set(names) & {"--seconds", "--hitcount", "--rttl", "--reap"}:
        return Bad(f"recent: --seconds, --hitcount, --rttl and --reap go with --rcheck or --update, not {commands[0]}")
    return None


RECENT = MatchUnit(
    "recent",
    (*(Opt((c,), ()) for c in _COMMANDS), Opt(("--seconds",), (number("--seconds"),), invert=False),
     Opt(("--reap",), (), invert=False), Opt(("--hitcount",), (number("--hitcount"),), invert=False),
     Opt(("--rttl",), (), invert=False), Opt(("--name",), (string("--name", 200, fast=True),), invert=False),
     Opt(("--mask",), (NETMASK,), invert=False), Opt(("--rsource",), (), invert=False),
     Opt(("--rdest",), (), invert=False)),
    _compile,
    validate=_validate,
    doc="recently seen sources (session affinity)",
)
