"""Plain-language explanations of kube-proxy's IPVS-mode chains, rules and ipsets (pkg/proxy/ipvs/proxier.go:
``writeIptablesRules``, ``ipsetInfo``).

In IPVS mode the iptables rules only mark, filter and masquerade: they test ipset membership, and the load
balancing is IPVS's (after filter INPUT for connections from outside or from a pod, after nat OUTPUT for the
node's own). :func:`explain_ipvs_rule` recognises the rules by chain and by the set they match;
:func:`explain_ipvs_chain` says what each chain is for; :func:`explain_set` what kube-proxy keeps in a set.
"""

from __future__ import annotations

from ..ipset import IpSet
from ..model import Chain
from .explain_common import Explanation, RuleView

__all__ = ["IPVS_CHAINS", "SET_MEANING", "explain_ipvs_chain", "explain_ipvs_jump", "explain_ipvs_rule",
           "explain_set"]

# set (without KUBE- / KUBE-6-) → (type, what kube-proxy puts in it, what a packet matching it is)
SET_MEANING = {
    "CLUSTER-IP": ("hash:ip,port", "every service's cluster IP, protocol and port",
                   "to a cluster IP and port"),
    "LOOP-BACK": ("hash:ip,port,ip", "every endpoint on this node, twice (endpoint, protocol, port, endpoint)",
                  "from an endpoint to itself through its own service (hairpin)"),
    "EXTERNAL-IP": ("hash:ip,port", "external IPs and ports of services with externalTrafficPolicy Cluster",
                    "to an external IP and port"),
    "EXTERNAL-IP-LOCAL": ("hash:ip,port", "external IPs and ports of services with externalTrafficPolicy Local",
                          "to an external IP and port of a service with externalTrafficPolicy Local"),
    "LOAD-BALANCER": ("hash:ip,port", "every load-balancer IP and port", "to a load-balancer IP and port"),
    "LOAD-BALANCER-LOCAL": ("hash:ip,port", "load-balancer IPs and ports with externalTrafficPolicy Local",
                            "to a load-balancer IP of a service with externalTrafficPolicy Local"),
    "LOAD-BALANCER-FW": ("hash:ip,port", "load-balancer IPs and ports that have loadBalancerSourceRanges",
                         "to a load-balancer IP with loadBalancerSourceRanges"),
    "LOAD-BALANCER-SOURCE-CIDR": ("hash:ip,port,net", ("each load-balancer IP and port with each of its source "
                                  "ranges"), "to a load-balancer IP from one of its loadBalancerSourceRanges"),
    "LOAD-BALANCER-SOURCE-IP": ("hash:ip,port,ip", ("load-balancer IPs whose source ranges cover this node, with "
                                "the load-balancer IP as the source"), ("to a load-balancer IP from that IP itself "
                                "(this node, which a source range covers)")),
    "NODE-PORT-TCP": ("bitmap:port", "every TCP NodePort", "to a TCP NodePort"),
    "NODE-PORT-LOCAL-TCP": ("bitmap:port", "TCP NodePorts with externalTrafficPolicy Local",
                            "to a TCP NodePort with externalTrafficPolicy Local"),
    "NODE-PORT-UDP": ("bitmap:port", "every UDP NodePort", "to a UDP NodePort"),
    "NODE-PORT-LOCAL-UDP": ("bitmap:port", "UDP NodePorts with externalTrafficPolicy Local",
                            "to a UDP NodePort with externalTrafficPolicy Local"),
    "NODE-PORT-SCTP-HASH": ("hash:ip,port", ("every node address with each SCTP NodePort (bitmap:port cannot hold "
                            "SCTP)"), "to a node address and SCTP NodePort"),
    "NODE-PORT-LOCAL-SCTP-HASH": ("hash:ip,port", ("node addresses and SCTP NodePorts with externalTrafficPolicy "
                                  "Local"), "to an SCTP NodePort with externalTrafficPolicy Local"),
    "HEALTH-CHECK-NODE-PORT": ("bitmap:port", ("the health-check node ports of services with externalTrafficPolicy "
                               "Local"), "to a health-check node port"),
    "IPVS-IPS": ("hash:ip", "every address kube-proxy bound to kube-ipvs0", "to an address on kube-ipvs0"),
}  # fmt: skip

_CHAINS = {
    ("nat", "KUBE-SERVICES"): (
        "kube-proxy's entry point in nat (IPVS mode), from PREROUTING and OUTPUT: it lets localhost traffic go, "
        "marks for masquerade what comes to a service address from outside the pod network, sends load-balancer "
        "IPs to KUBE-LOAD-BALANCER and the node's own addresses to KUBE-NODE-PORT, and ACCEPTs service traffic "
        "so that no later nat rule rewrites it: IPVS balances it, after filter INPUT (or after nat OUTPUT for the "
        "node's own connections). It matches ipsets, so it stays short however many services there are"),
    ("nat", "KUBE-NODE-PORT"): (
        "NodePorts (IPVS mode): marks NodePort traffic for masquerade (KUBE-NODE-PORT-TCP/UDP, "
        "KUBE-NODE-PORT-SCTP-HASH), except NodePorts with externalTrafficPolicy Local, which RETURN first "
        "(…-LOCAL sets): their clients keep their source address"),
    ("nat", "KUBE-LOAD-BALANCER"): (
        "load-balancer IPs (IPVS mode): marks their traffic for masquerade, except for services with "
        "externalTrafficPolicy Local (KUBE-LOAD-BALANCER-LOCAL returns first)"),
    ("nat", "KUBE-POSTROUTING"): (
        "masquerades, as they leave, hairpin connections (KUBE-LOOP-BACK: an endpoint reaching itself through its "
        "service) and the connections marked {masq}. After IPVS this needs net.ipv4.vs.conntrack=1 (kube-proxy "
        "sets it): with 0, IPVS leaves the connection untracked and nat never sees it"),
    ("filter", "KUBE-IPVS-FILTER"): (
        "rejects new connections to an address on kube-ipvs0 (KUBE-IPVS-IPS) on a port that is no service (in no "
        "service set): without it, a service address would reach any socket of the node"),
    ("filter", "KUBE-IPVS-OUT-FILTER"): (
        "drops the node's own connections to load-balancer IPs whose loadBalancerSourceRanges leave the node out "
        "(-m ipvs matches IPVS's virtual service)"),
    ("filter", "KUBE-PROXY-FIREWALL"): (
        "sends traffic to load-balancer IPs with loadBalancerSourceRanges (KUBE-LOAD-BALANCER-FW) to "
        "KUBE-SOURCE-RANGES-FIREWALL"),
    ("filter", "KUBE-SOURCE-RANGES-FIREWALL"): (
        "lets sources inside a load balancer's loadBalancerSourceRanges return (KUBE-LOAD-BALANCER-SOURCE-CIDR, "
        "-SOURCE-IP) and drops the rest"),
    ("filter", "KUBE-NODE-PORT"): "accepts the health-check node ports (KUBE-HEALTH-CHECK-NODE-PORT)",
    ("filter", "KUBE-FORWARD"): (
        "accepts forwarded traffic marked {masq} and established connections, even when the FORWARD policy is DROP"),
    ("nat", "KUBE-MARK-MASQ"): (
        "sets the masquerade bit {masq}: KUBE-POSTROUTING masquerades the connection on the way out"),
}  # fmt: skip
IPVS_CHAINS = frozenset(c for _, c in _CHAINS)
_JUMPS = {"KUBE-SERVICES": "where kube-proxy marks service traffic and leaves it to IPVS",
          "KUBE-POSTROUTING": "which masquerades hairpin and marked connections",
          "KUBE-IPVS-FILTER": "which rejects connections to kube-ipvs0 addresses on ports that are no service",
          "KUBE-IPVS-OUT-FILTER": "which drops the node's connections to load balancers that exclude it",
          "KUBE-PROXY-FIREWALL": "which enforces loadBalancerSourceRanges",
          "KUBE-NODE-PORT": "which accepts health-check node ports",
          "KUBE-FORWARD": "which accepts marked and established forwarded traffic"}  # fmt: skip
_HOOK_WORDS = {"PREROUTING": "arriving at this node", "INPUT": "addressed to this node",
               "FORWARD": "forwarded through this node", "OUTPUT": "sent by this node",
               "POSTROUTING": "leaving this node"}  # fmt: skip
_TARGETS = {"KUBE-MARK-MASQ": "is marked for masquerade", "RETURN": "returns (no mark, no masquerade)",
            "MASQUERADE": "is masqueraded", "REJECT": "is rejected", "DROP": "is dropped",
            "KUBE-LOAD-BALANCER": "goes on in KUBE-LOAD-BALANCER", "KUBE-NODE-PORT": "goes on in KUBE-NODE-PORT",
            "KUBE-SOURCE-RANGES-FIREWALL": "goes on in KUBE-SOURCE-RANGES-FIREWALL"}  # fmt: skip
_CONDITIONS = (("--dst-type", "to an address of this node ({})"), ("--src-type", "from an address of this node ({})"),
               ("--physdev-is-in", "arriving through a bridge port"), ("--ctstate", "in conntrack state {}"),
               ("--mark", "marked {}"))  # fmt: skip
_SERVICE_CHAINS = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-", "KUBE-SEP-")


def _short(name: str) -> str | None:
    for prefix in ("KUBE-6-", "KUBE-"):
        if name.startswith(prefix) and name[len(prefix):] in SET_MEANING:
            return name[len(prefix):]
    return None


def explain_set(name: str, ipset: IpSet | None = None) -> Explanation:
    """What kube-proxy keeps in set ``name`` (with its size and type when the set was given)."""
    short = _short(name)
    have = ""
    if ipset is not None:
        count = f"{len(ipset)} member{'s' if len(ipset) != 1 else ''}" if ipset.members_known else "members not listed"
        have = f" — here {ipset.type}, {count}"
    if short is None:
        return Explanation(f"ipset {name}: not one of kube-proxy's sets{have}", "foreign-set", kube=False)
    set_type, holds, _ = SET_MEANING[short]
    family = "IPv6 " if name.startswith("KUBE-6-") else ""
    return Explanation(f"kube-proxy's {family}ipset {name} ({set_type}): {holds}{have}", "ipvs-set")


def explain_ipvs_chain(table: str | None, chain: Chain, masq: str, *, referenced: bool = True) -> Explanation | None:
    """What an IPVS-mode chain is for; None when it is not one of kube-proxy's IPVS-mode chains."""
    name = chain.name
    if name.startswith(_SERVICE_CHAINS):
        where = "nothing in the IPVS-mode rules jumps to it" if not referenced else "something still jumps to it"
        return Explanation(f"a per-service chain of kube-proxy's iptables mode, left over from before this node ran "
                           f"IPVS mode ({where}): IPVS mode does not use it", "iptables-leftover")  # fmt: skip
    for (t, c), text in _CHAINS.items():
        if c == name and table in (t, None):
            return Explanation(text.format(masq=masq), "ipvs-chain")
    return None


def explain_ipvs_jump(table: str | None, chain: Chain, view: RuleView) -> Explanation | None:
    """A built-in chain's jump to one of kube-proxy's IPVS-mode chains; None for any other jump."""
    target = view.target or ""
    if target not in _JUMPS or not view.unconditional:
        return None
    first = " (nat sees only the first packet of a connection)" if table == "nat" else ""
    return Explanation(f"sends every packet {_HOOK_WORDS.get(chain.name, 'here')} to {target}{first}, "
                       f"{_JUMPS[target]}", "hook-jump")  # fmt: skip


def explain_ipvs_rule(table: str | None, chain: Chain, view: RuleView, masq: str) -> Explanation | None:
    """What one rule of an IPVS-mode chain does; None when kptui does not recognise it."""
    target = view.target or ""
    sets = [(o.args[0], o.args[1] if len(o.args) > 1 else "src", o.negated) for m in view.rule.matches
            if m.module == "set" for o in m.options if o.name == "--match-set" and o.args]  # fmt: skip
    conditions = []
    for name, flags, neg in sets:
        short = _short(name)
        what = SET_MEANING[short][2] if short else f"in ipset {name}"
        if short == "CLUSTER-IP" and flags.startswith("src"):
            what = "from a cluster IP to a service port (the node's own connection from a service address)"
        conditions.append(f"{'not ' if neg else ''}{what} ({name} {flags})")
    src = view.get("-s")
    if src is not None:
        pods = src[1] and any(short == "CLUSTER-IP" for short in (_short(n) for n, _, _ in sets))
        conditions.append(f"{'not ' if src[1] else ''}from {src[0]}" + (" (the pod network)" if pods else ""))
    for opt, words in _CONDITIONS:
        found = view.get(opt)
        if found is not None:
            conditions.append(("not " if found[1] else "") + words.format(found[0]))
    if target == "ACCEPT" and table == "nat" and sets:
        action = "is accepted in nat: no later nat rule rewrites it, IPVS balances it"
    elif target == "MARK" and chain.name == "KUBE-MARK-MASQ":
        return Explanation(f"sets the masquerade bit {masq}", "mark-masq")
    elif target == "MARK":
        return Explanation(f"clears the masquerade bit {masq} so a packet that comes round again is not masqueraded "
                           "twice", "postrouting-clear")  # fmt: skip
    elif target in _TARGETS:
        action = _TARGETS[target]
    elif target == "ACCEPT":
        action = "is accepted"
    else:
        return None
    if chain.name == "KUBE-SERVICES" and src is not None and src[0].startswith("127.") and target == "RETURN":
        return Explanation("lets connections from localhost go without kube-proxy's marks (a local address to "
                           "a local address never needs masquerading)", "ipvs-localhost")  # fmt: skip
    if not conditions:
        return Explanation(f"everything that reaches {chain.name} {action}", "ipvs-rule")
    return Explanation(f"a packet {' and '.join(conditions)} {action}", "ipvs-rule")
