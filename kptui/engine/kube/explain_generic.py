"""A neutral explanation of any rule, built only from its decoded matches and target.

Used for rules that are not kube-proxy's (Docker, Calico, Flannel, Cilium, the user's own, built-in chains'
non-KUBE rules) and for KUBE rules kptui does not recognise: it says what the rule matches and does, never
what it is for. Options kptui does not describe are named as such rather than guessed at.
"""

from __future__ import annotations

from .explain_common import Explanation, RuleView, host, one_in, rule_probability

__all__ = ["describe_conditions", "explain_generic", "mark_words"]

_ADDRTYPE = {"LOCAL": "one of this node's own addresses", "BROADCAST": "a broadcast address",
             "MULTICAST": "a multicast address", "UNICAST": "a unicast address"}  # fmt: skip
_SET_FLAGS = {"src": "source address", "dst": "destination address", "dst,dst": "destination address and port",
              "src,src": "source address and port", "dst,dst,src": "destination, port and source"}  # fmt: skip
# Options the condition list below describes (or deliberately leaves out: comments, nfacct counters).
_DESCRIBED = frozenset({
    "-s", "-d", "-p", "-i", "-o", "-f", "--dport", "--sport", "--dports", "--sports", "--ports",
    "--ctstate", "--state", "--mark", "--dst-type", "--src-type", "--match-set", "--mode", "--probability",
    "--every", "--packet", "--rcheck", "--update", "--set", "--seconds", "--name", "--reap", "--mask",
    "--rsource", "--rdest", "--comment", "--nfacct-name", "--icmp-type", "--icmpv6-type", "--syn",
    "--tcp-flags", "--limit", "--limit-burst", "--pkt-type", "--src-range", "--dst-range", "--mac-source",
    "--physdev-in", "--physdev-out", "--physdev-is-bridged", "--physdev-is-in", "--physdev-is-out",
    "--loose", "--validmark", "--accept-local", "--invert", "--remove", "--hitcount",
})  # fmt: skip


def mark_words(value: str) -> str:
    """``--set-xmark V/M`` in words (iptables-save prints every MARK target that way)."""
    v, _, m = value.partition("/")
    try:
        vi, mi = int(v, 0), int(m, 0) if m else 0xFFFFFFFF
    except ValueError:
        return f"changes the packet mark ({value})"
    if mi == 0:
        return f"flips bits {v} of the packet mark (XOR)"
    if vi == mi:
        return f"sets bits {v} of the packet mark"
    if vi == 0:
        return f"clears bits {m} of the packet mark"
    if mi == 0xFFFFFFFF:
        return f"sets the packet mark to {v}"
    return f"sets the packet mark bits {m} to {v}"


def _neg(negated: bool, yes: str, no: str) -> str:
    return no if negated else yes


def describe_conditions(view: RuleView) -> list[str]:
    """The rule's conditions as phrases (``to port 80``, ``from 10.0.0.0/8``, ``arriving on eth0``)."""
    out: list[str] = []
    g = view.get
    d = g("-d")
    if d is not None:
        out.append(_neg(d[1], f"to {host(d[0])}", f"not to {host(d[0])}"))
    for name in ("--dport", "--dports", "--ports"):
        if (p := g(name)) is not None:
            many = "," in p[0] or ":" in p[0] or name != "--dport"
            word = "ports" if many else "port"
            phrase = _neg(p[1], f"{word} {p[0]}", f"a port other than {p[0]}")
            if out and out[-1].startswith(("to ", "not to ")) and d is not None:
                out[-1] += f" {phrase}" if not p[1] else f", {phrase}"
            else:
                out.append(f"to {phrase}")
    if (s := g("-s")) is not None:
        out.append(_neg(s[1], f"from {host(s[0])}", f"not from {host(s[0])}"))
    for name in ("--sport", "--sports"):
        if (p := g(name)) is not None:
            out.append(_neg(p[1], f"from port {p[0]}", f"from a port other than {p[0]}"))
    for name, word in (("--src-range", "from"), ("--dst-range", "to")):
        if (r := g(name)) is not None:
            out.append(f"{'not ' if r[1] else ''}{word} the range {r[0]}")
    if (i := g("-i")) is not None:
        out.append(_neg(i[1], f"arriving on {i[0]}", f"not arriving on {i[0]}"))
    if (o := g("-o")) is not None:
        out.append(_neg(o[1], f"leaving by {o[0]}", f"not leaving by {o[0]}"))
    for name, who in (("--dst-type", "addressed to"), ("--src-type", "coming from")):
        if (t := g(name)) is not None:
            what = _ADDRTYPE.get(t[0].upper(), f"an address of type {t[0]}")
            out.append(f"{'not ' if t[1] else ''}{who} {what}")
    for name in ("--ctstate", "--state"):
        if (c := g(name)) is not None:
            out.append(_neg(c[1], f"in conntrack state {c[0]}", f"not in conntrack state {c[0]}"))
    if (m := g("--mark")) is not None:
        what = "connection mark" if "connmark" in view.modules else "mark"
        out.append(_neg(m[1], f"with {what} {m[0]}", f"without {what} {m[0]}"))
    if (ms := g("--match-set")) is not None:
        name, _, flags = ms[0].partition(" ")
        what = _SET_FLAGS.get(flags, f"{flags} address" if flags else "address")
        out.append(f"whose {what} is {'not ' if ms[1] else ''}in ipset {name}")
    chance = rule_probability(view)
    if chance is not None:
        out.append(f"with probability {view.val('--probability')} ({one_in(chance)})")
    elif (e := g("--every")) is not None:
        out.append(f"every {e[0]}th packet")
    if view.has("--rcheck") or view.has("--update"):
        secs = view.val("--seconds")
        within = f" within the last {secs} s" if secs else ""
        out.append(f"whose source is in recent list {view.val('--name') or 'DEFAULT'}{within}")
    elif view.has("--set"):
        out.append(f"(recording the source in recent list {view.val('--name') or 'DEFAULT'})")
    if (t := g("--icmp-type") or g("--icmpv6-type")) is not None:
        out.append(f"of ICMP type {t[0]}")
    if view.has("--syn") or (view.val("--tcp-flags") == "FIN,SYN,RST,ACK SYN"):
        out.append("opening a TCP connection (SYN)")
    elif (f := g("--tcp-flags")) is not None:
        out.append(f"with TCP flags {f[0]}")
    if (lim := g("--limit")) is not None:
        out.append(f"at most {lim[0]}")
    if (pt := g("--pkt-type")) is not None:
        out.append(f"of link-layer type {pt[0]}")
    if (mac := g("--mac-source")) is not None:
        out.append(f"from MAC {mac[0]}")
    if "rpfilter" in view.modules:
        out.append("failing the reverse-path check" if view.has("--invert") else "passing the reverse-path check")
    if "physdev" in view.modules:
        out.append("crossing a bridge port (physdev)")
    if view.has("-f"):
        out.append("that are non-first fragments")
    rest = [n for n in view.opts if n not in _DESCRIBED]
    if view.unknown or rest:
        parts = [f"-m {m}" for m in view.unknown] if view.unknown else rest
        out.append(f"(and {' '.join(parts)}, which kptui does not describe)")
    return out


def _object(view: RuleView) -> str:
    proto = view.get("-p")
    if proto is None:
        return "packets"
    return f"{proto[0].lower()} packets" if not proto[1] else f"non-{proto[0].lower()} packets"


def explain_generic(view: RuleView, *, builtin_chain: bool, chains: frozenset[str] | set[str]) -> Explanation:
    """A neutral sentence: ``accepts tcp packets to port 80 from 10.0.0.0/8``. ``chains`` are the names of
    the table's chains (a target among them is a jump)."""
    conds = describe_conditions(view)
    obj = " ".join([_object(view), *conds]) if conds else ("all " + _object(view))
    t, topts = view.target, view.target_opts
    if t is None:
        text = f"counts {obj}; it has no target, so nothing else happens and evaluation goes on"
    elif t in chains:
        goto = view.rule.goto
        text = f"sends {obj} to chain {t}" + (" with goto (no return here: a RETURN there returns to this "
                                              "chain's caller)" if goto else "")  # fmt: skip
    elif t == "ACCEPT":
        text = f"accepts {obj}"
    elif t == "DROP":
        text = f"drops {obj}"
    elif t == "REJECT":
        how = topts.get("--reject-with")
        text = f"rejects {obj}" + (f" (answering {how})" if how else "")
    elif t == "RETURN":
        text = (f"stops this chain for {obj}: the chain's policy decides" if builtin_chain
                else f"returns {obj} to the calling chain")  # fmt: skip
    elif t == "DNAT":
        text = f"DNATs {obj}: their destination becomes {topts.get('--to-destination', '?')}"
    elif t == "SNAT":
        text = f"SNATs {obj}: their source becomes {topts.get('--to-source', '?')}"
    elif t == "MASQUERADE":
        extra = ", with fully random source ports" if "--random-fully" in topts else ""
        text = f"masquerades {obj}: their source becomes the outgoing interface's address{extra}"
    elif t == "REDIRECT":
        text = f"redirects {obj} to this node" + (f" port {topts['--to-ports']}" if "--to-ports" in topts else "")
    elif t == "MARK":
        how = topts.get("--set-xmark") or topts.get("--set-mark")
        text = f"{mark_words(how) if how else 'changes the packet mark'} on {obj}; evaluation goes on"
    elif t == "CONNMARK":
        text = f"changes the connection mark of {obj}; evaluation goes on"
    elif t in ("LOG", "NFLOG"):
        prefix = topts.get("--log-prefix") or topts.get("--nflog-prefix")
        text = f"logs {obj}" + (f' with prefix "{prefix}"' if prefix else "") + "; evaluation goes on"
    elif t == "NOTRACK" or (t == "CT" and "--notrack" in topts):
        text = f"exempts {obj} from connection tracking (they will never be NATed)"
    elif t == "TRACE":
        text = f"turns on netfilter tracing for {obj}"
    else:
        text = f"applies target {t} to {obj}"
    return Explanation(text, "generic", kube=False)
