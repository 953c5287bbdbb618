"""The vocabulary every rule front end (iptables and nft) compiles to, and the trace walker consumes.

A compiled rule is a sequence of *ops*, evaluated in order against the packet state and an :class:`Env`:

- a :class:`Check` answers whether the packet matches: ``True`` / ``False``, a :class:`Chance` (true with a
  probability: ``-m statistic``), an :class:`Undecidable` (the node context cannot tell: an interface name
  kptui was not told, whether an address is the node's, an ipset's members) or :class:`Choices` (exactly one
  of several unknown alternatives holds: which endpoint a returning client is bound to);
- an :class:`Action` does something: it returns an :class:`Effect` (the verdict word a hop shows, how the
  walk goes on, the new packet state), or a :class:`Spread` (several effects, each with its exact probability:
  ``numgen random mod N vmap { … }``).

An iptables rule is its match checks followed by one action (its target); an nft rule interleaves them as
written (``ip saddr 10.0.0.1 counter meta mark set 0x1 accept``). A rule "matched" when every check held.

Unknowns are *variables*: an :class:`Undecidable` names one (``key``) and, for a variable with a value (an
interface name), a predicate on it (``pred``). The walker keeps, per path, what it assumed about each variable
and answers every later question about it the same way, pruning what no value satisfies (``-i cali+`` and
``-i docker0`` cannot both hold). :func:`iface_question` and :func:`local_question` build the standard
questions, so both front ends ask them alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple, Protocol

from .packet import NodeContext
from .trace_model import PacketState

__all__ = [
    "CONTINUE",
    "END",
    "GOTO",
    "JUMP",
    "REINJECT",
    "RETURN",
    "STOP_TABLE",
    "Action",
    "ChainView",
    "Chance",
    "Check",
    "Choices",
    "Effect",
    "Env",
    "Outcome",
    "Pred",
    "RuleRow",
    "Spread",
    "Undecidable",
    "iface_question",
    "local_question",
    "route_iface",
]

# How the walk goes on after an action.
CONTINUE = "continue"  # the next op / rule
STOP_TABLE = "stop-table"  # accept (and NAT's implicit accept): this base chain is done, the hook goes on
END = "end"  # drop, reject, queue: the packet ends here
RETURN = "return"  # back to the calling chain (a base chain: its policy)
JUMP = "jump"  # call Effect.target, come back here
GOTO = "goto"  # continue in Effect.target, do not come back
REINJECT = "reinject"  # IPVS (NAT forwarding) rewrote the destination and sends the packet on itself: it
#                        leaves this hook and goes through LOCAL_OUT's chains (not IPVS again), then POSTROUTING

Pred = tuple[str, str]  # ("eq", "eth0") or ("prefix", "veth"): a fact about a variable's value


class Chance(NamedTuple):
    p: Fraction  # probability that the check is true
    note: str


class Undecidable(NamedTuple):
    """The check's truth depends on something the context does not say.

    ``key`` names the unknown: the same key is decided the same way along a path. With ``pred`` None the key is
    a yes/no question (is 10.0.0.2 a node address?); with a ``pred`` it is a variable with a value (the input
    interface) and the question is whether ``pred`` holds for it. ``negated``: the check is true exactly when
    the question's answer is no (``! -i eth0``, ``! --match-set …``)."""

    key: str
    reason: str
    negated: bool = False
    pred: Pred | None = None


class Choices(NamedTuple):
    """Exactly one of ``options`` holds, and the context does not say which: the walk forks once per option
    (each path states its assumption). ``key`` is the variable, each option a value; the check is true on the
    path where the variable has value ``value``."""

    key: str
    value: str
    options: tuple[tuple[str, str], ...]  # (value, what assuming it means, for the user)
    reason: str


Outcome = bool | Chance | Undecidable | Choices


@dataclass(frozen=True)
class Env:
    """What checks and actions may consult besides the packet state."""

    node: NodeContext
    family: int
    hook: str
    length: int | None
    icmp_type: int | None
    tcp_flags: frozenset[str]
    mac: str | None


CheckFn = Callable[[PacketState, Env], Outcome]


class Check(NamedTuple):
    fn: CheckFn
    text: str  # the match as written, for "which match failed"


class Effect(NamedTuple):
    verdict: str  # what the hop shows: ACCEPT, DROP, REJECT, RETURN, JUMP, GOTO, DNAT, SNAT, MASQUERADE,
    #               REDIRECT, CONTINUE, QUEUE, UNKNOWN
    flow: str
    state: PacketState
    note: str | None = None
    target: str | None = None  # the chain a JUMP/GOTO goes to (the rule's target name otherwise)


class Spread(NamedTuple):
    """Several outcomes of one action, each with its exact probability (they sum to at most 1; what is left
    is the chance that nothing happens and the rule goes on: a numgen value the map has no element for)."""

    branches: tuple[tuple[Fraction, Effect, str], ...]  # (probability, effect, note for the hop)
    rest_note: str = ""  # the hop's note on the path where no branch applied


ActionFn = Callable[[PacketState, Env], "Effect | Spread | Undecidable"]


class Action(NamedTuple):
    fn: ActionFn
    text: str


# -- the standard questions -------------------------------------------------------------------------------
_PODISH = ("cali", "veth", "docker", "cni", "cbr", "lxc", "cilium_", "kube-bridge", "weave", "br-", "vxlan",
           "flannel", "tunl", "genev", "azv", "eni", "gke")  # fmt: skip
PODISH_PREFIXES: tuple[str, ...] = _PODISH  # interfaces that carry pod or container traffic, not the uplink


def iface_question(state: PacketState, which: str, pattern: str, *, negated: bool = False) -> bool | Undecidable:
    """Whether the input (``which="in"``) or output (``"out"``) interface is ``pattern`` (a trailing ``+``
    or ``*``: a prefix), or the question when the state does not know the interface (None)."""
    name = state.in_iface if which == "in" else state.out_iface
    prefix = pattern.endswith(("+", "*"))
    stem = pattern[:-1] if prefix else pattern
    if name is not None:
        hit = name.startswith(stem) if prefix else name == stem
        return hit != negated
    pred: Pred = ("prefix" if prefix else "eq", stem)
    where = "input" if which == "in" else "output"
    key = "iface:in" if which == "in" else f"iface:out {state.dst}"
    return Undecidable(key, f"the {where} interface is not known", negated, pred)


def local_question(addr: str, node: NodeContext, *, negated: bool = False) -> bool | Undecidable:
    """Whether ``addr`` is an address of the node (``addrtype LOCAL``, ``fib daddr type local``, routing to
    INPUT): known from the node context, or the question when it gives no addresses at all."""
    ip = ipaddress.ip_address(addr)
    if ip.is_loopback or node.is_local(addr):
        return not negated
    if ip.is_multicast or addr == "255.255.255.255":
        return negated
    if not node.addresses and not node.interfaces:
        return Undecidable(f"local {addr}", f"whether {addr} is a node address (no node addresses given)", negated)
    return negated


def route_iface(node: NodeContext, dst: str) -> str | None:
    """The interface the node would send ``dst`` out of, when the context says (None: not known)."""
    if node.is_local(dst):
        return "lo"
    ip = ipaddress.ip_address(dst)
    if node.routes is not None:  # the node's own routes: longest prefix (None: no route, or a blackhole)
        best_route: tuple[int, str] | None = None
        for d, dev in node.routes:
            try:
                net = ipaddress.ip_network(("0.0.0.0/0" if ip.version == 4 else "::/0") if d == "default" else d,
                                           strict=False)  # fmt: skip
            except ValueError:
                continue
            if net.version == ip.version and ip in net and (best_route is None or net.prefixlen > best_route[0]):
                best_route = (net.prefixlen, dev)
        if best_route is not None:
            return best_route[1] or None
    best: tuple[int, str] | None = None
    for name, cidrs in node.interfaces.items():
        for c in cidrs:
            net = ipaddress.ip_interface(c).network
            if net.version == ip.version and ip in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, name)
    if best:
        return best[1]
    if node.pod_cidrs and node.pod_iface:
        local_pods = ipaddress.ip_network(node.pod_cidrs[0])
        if local_pods.version == ip.version and ip in local_pods:
            return node.pod_iface
    return node.uplink


# -- what the walker needs of a chain ---------------------------------------------------------------------
class RuleRow(NamedTuple):
    """One rule as a hop shows it, without decoding it."""

    line: int | None  # source line in the dump / listing
    text: str  # the rule exactly as listed (iptables: ``-A CHAIN …`` without counters; nft: the rule's text
    #            stripped, without a trailing ``# handle N``)
    counter: tuple[int, int] | None  # (packets, bytes) as saved, or None
    handle: int | None = None  # nft rule handle, when listed


class ChainView(Protocol):
    """A chain ready for walking (iptables: :class:`kptui.engine.compiled.ChainIndex`; nft: the nft front
    end's). ``ops(i)`` compiles rule ``i`` (0-based) on first use. ``next_candidate`` may skip rules that
    provably cannot match (a prefilter); a chain without one returns ``start``."""

    name: str

    def __len__(self) -> int: ...

    def row(self, i: int) -> RuleRow: ...

    def ops(self, i: int) -> tuple[Check | Action, ...]: ...

    def next_candidate(self, start: int, dst: str, dport: int | None) -> int: ...

    def miss_reason(self, i: int, dst: str, dport: int | None) -> str: ...
