"""What the rule explainers share: the :class:`Explanation` value, a flat view of a decoded rule's options,
and the wording helpers (addresses, shares, "1 in 3").

Explanations are plain text built from the dump; callers pass them through ``printable`` before showing them
(a comment or a chain name may hold anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..matches import probability_of
from ..model import Rule
from .model import Endpoint, ServiceIndex, ServicePort

__all__ = [
    "Context",
    "Explanation",
    "RuleView",
    "endpoint_of",
    "host",
    "hostport",
    "masq_reason",
    "one_in",
    "pct",
    "rule_probability",
    "service_words",
]


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a rule (or chain) does, in one or two sentences.

    ``kind`` is a stable slug (``cluster-ip-portal``, ``endpoint-dnat``, ``generic``, …); ``kube`` is False
    for the neutral explanation of a rule kptui does not recognise as kube-proxy's; ``service`` is the
    service port the rule belongs to (``ns/name:port`` or ``?HASH``), when there is one.
    """

    text: str
    kind: str
    kube: bool = True
    service: str | None = None


class RuleView:
    """A decoded rule's options flattened by name: ``view.get("-s")`` → ``("10.0.0.0/8", negated)``."""

    __slots__ = ("modules", "opts", "rule", "target", "target_opts", "unknown")

    _KNOWN_MODULES = frozenset({"", "tcp", "udp", "sctp", "comment", "mark", "conntrack", "state", "statistic",
                                "recent", "addrtype", "nfacct", "multiport", "icmp", "icmp6", "set",
                                "physdev", "connmark", "iprange", "mac", "pkttype", "limit", "length",
                                "owner", "rpfilter", "udplite", "dccp"})  # fmt: skip

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.opts: dict[str, tuple[str, bool]] = {}
        self.modules: list[str] = []
        self.unknown: list[str] = []  # modules kptui does not describe
        for match in rule.matches:
            if match.module:
                self.modules.append(match.module)
                if match.module not in self._KNOWN_MODULES:
                    self.unknown.append(match.module)
            for opt in match.options:
                name = {"--destination-port": "--dport", "--source-port": "--sport"}.get(opt.name, opt.name)
                self.opts.setdefault(name, (opt.value, opt.negated))
        target = rule.target
        self.target = target.name if target is not None else None
        self.target_opts = {o.name: o.value for o in target.options} if target is not None else {}

    def get(self, name: str) -> tuple[str, bool] | None:
        return self.opts.get(name)

    def val(self, name: str) -> str | None:
        found = self.opts.get(name)
        return found[0] if found is not None else None

    def has(self, name: str, *, negated: bool | None = None) -> bool:
        found = self.opts.get(name)
        return found is not None and (negated is None or found[1] == negated)

    @property
    def comment(self) -> str | None:
        return self.val("--comment")

    def conditions(self) -> set[str]:
        """The option names that make the rule conditional (everything but comments and counters)."""
        return {n for n in self.opts if n not in ("--comment", "--nfacct-name")}

    @property
    def unconditional(self) -> bool:
        return not self.conditions()


def host(addr: str) -> str:
    """``10.96.0.1/32`` → ``10.96.0.1`` (iptables-save's host prefix); anything else unchanged."""
    if addr.endswith(("/32", "/128")):
        return addr.rpartition("/")[0]
    return addr


def hostport(ip: str | None, port: int | str | None, proto: str | None = None) -> str:
    """``10.96.0.10:53/udp``; ``[fd00::1]:80/tcp``; a missing part is left out."""
    text = ip or ""
    if text and ":" in text and port is not None:
        text = f"[{text}]"
    if port is not None:
        text += f":{port}"
    if proto:
        text += f"/{proto.lower()}"
    return text


def pct(p: Fraction) -> str:
    """A share as a percentage with one decimal: ``33.3 %`` (``100 %``, ``0 %`` exactly)."""
    if p >= 1:
        return "100 %"
    if p <= 0:
        return "0 %"
    return f"{float(p) * 100:.1f} %"


def one_in(p: Fraction) -> str:
    """``1 in 3`` when p is 1/k up to the kernel's 2⁻³¹ rounding, ``about 1 in 3`` when close, else a
    percentage."""
    if p <= 0:
        return "none"
    if p >= 1:
        return "all"
    k = round(1 / p)
    if k >= 1:
        diff = abs(p - Fraction(1, k))
        if diff <= Fraction(1, 1 << 30):
            return f"1 in {k}"
        if diff <= p / 1000:
            return f"about 1 in {k}"
    return pct(p)


def rule_probability(view: RuleView) -> Fraction | None:
    """The probability of a ``-m statistic --mode random`` rule as the kernel stores it (None: not one)."""
    if "statistic" not in view.modules or view.val("--mode") not in (None, "random"):
        return None
    found = view.get("--probability")
    if found is None:
        return None
    try:
        p = probability_of(found[0])
    except ValueError:
        return None
    return 1 - p if found[1] else p


def service_words(svc: ServicePort | None) -> str:
    """`` (ns/name:port)`` for a known service port, else nothing."""
    return f" ({svc.label})" if svc is not None else ""


def endpoint_of(index: ServiceIndex, sep_chain: str) -> tuple[ServicePort | None, Endpoint | None]:
    """The service port and endpoint a KUBE-SEP chain stands for."""
    svc = index.by_chain(sep_chain)
    if svc is None:
        return None, None
    for ep in svc.endpoints:
        if ep.chain == sep_chain:
            return svc, ep
    return svc, None


@dataclass(frozen=True, slots=True)
class Context:
    """What every kube explainer reads: the service index, the layout and kube-proxy's marks."""

    index: ServiceIndex
    masq: str  # KUBE-MARK-MASQ's bit (0x4000 unless --iptables-masquerade-bit says otherwise)
    drop: str  # KUBE-MARK-DROP's bit (0x8000)
    era: str | None
    pod_cidr: str | None  # the local-traffic detector's CIDR, when it is one

    def svc(self, chain: str | None) -> ServicePort | None:
        return self.index.by_chain(chain) if chain else None


def masq_reason(view: RuleView) -> str | None:
    """Why a cluster-IP masquerade rule fires, from its local-traffic detector; None for a rule kube-proxy
    would not write."""
    src, iface = view.get("-s"), view.get("-i")
    if src is not None and src[1]:
        return f"because it does not come from the pod CIDR {src[0]}"
    if iface is not None and iface[1]:
        if iface[0].endswith("+"):
            return f"because it did not arrive on a pod interface ({iface[0]})"
        return f"because it did not arrive on the pod bridge {iface[0]}"
    if src is None and iface is None:
        return "(every connection: masqueradeAll, or no local-traffic detector)"
    return None
