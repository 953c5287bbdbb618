"""Layouts people still paste (issue 14.4): the userspace proxy's chains, kube-proxy 1.3's masquerade mark
0x4d415351 ("MASQ"), 5-decimal probabilities, the KUBE-XLB era — recognised, explained, traced, and never
placed in the 1.21-1.24 era."""

from __future__ import annotations

from kptui.engine import parse_ruleset
from kptui.engine.kube import chain_hash, detect_layout
from kptui.engine.kube.explain import Explainer
from kptui.engine.packet import NodeContext, Packet
from kptui.engine.summary import summarize
from kptui.engine.trace import trace

from .test_kube_era import old_dump

KUBE = "KUBE-SVC-" + chain_hash("default/kubernetes:https", "tcp")
WEB = "default/web:http"
WEB_SVC = "KUBE-SVC-" + chain_hash(WEB, "tcp")
WEB_SEPS = [(ip, "KUBE-SEP-" + chain_hash(WEB, "tcp", f"{ip}:8080")) for ip in ("10.244.1.11", "10.244.2.12",
                                                                                 "10.244.3.13")]  # fmt: skip
MASQ = "0x4d415351"


def kube_1_3() -> str:
    """nat as kube-proxy 1.3 (2016) wrote it: no KUBE-MARK-MASQ, the mark 0x4d415351 set in the SEP chains,
    5-decimal probabilities (0.33333 saved as 0.33332999982), no canary chains, no cluster CIDR."""
    m = '-m comment --comment "{}"'.format
    seps = [s for _, s in WEB_SEPS]
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]",
             ":KUBE-SERVICES - [0:0]", f":{WEB_SVC} - [0:0]", *(f":{s} - [0:0]" for s in seps),
             '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
             (f'-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark '
              f'{MASQ} -j MASQUERADE'),
             f'-A KUBE-SERVICES -d 10.0.0.20/32 -p tcp {m(WEB + " cluster IP")} -m tcp --dport 80 -j {WEB_SVC}',
             ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
              'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')]  # fmt: skip
    for i, sep in enumerate(seps):
        prob = {0: " -m statistic --mode random --probability 0.33332999982",
                1: " -m statistic --mode random --probability 0.50000000000"}.get(i, "")  # fmt: skip
        lines.append(f"-A {WEB_SVC} {m(WEB)}{prob} -j {sep}")
    for ip, sep in WEB_SEPS:
        lines.append(f"-A {sep} -s {ip}/32 {m(WEB)} -j MARK --set-xmark {MASQ}/0xffffffff")
        lines.append(f"-A {sep} -p tcp {m(WEB)} -m tcp -j DNAT --to-destination {ip}:8080")
    return "\n".join([*lines, "COMMIT", ""])


USERSPACE = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-NODEPORT-CONTAINER - [0:0]
:KUBE-NODEPORT-HOST - [0:0]
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-PORTALS-HOST - [0:0]
-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER
-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-CONTAINER
-A OUTPUT -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-HOST
-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-HOST
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "default/web:" -m tcp --dport 30080 -j REDIRECT --to-ports 41234
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "default/web:" -m tcp --dport 30080 -j DNAT --to-destination 10.240.0.5:41234
-A KUBE-PORTALS-CONTAINER -d 10.0.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j REDIRECT --to-ports 38263
-A KUBE-PORTALS-HOST -d 10.0.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j DNAT --to-destination 10.240.0.5:38263
COMMIT
"""
NODE = NodeContext(addresses=("10.240.0.5",), interfaces={"eth0": ("10.240.0.5/24",), "cbr0": ("10.244.1.1/24",)},
                   uplink="eth0", pod_iface="cbr0", pod_cidrs=("10.244.1.0/24",))  # fmt: skip


def test_a_2016_dump_is_kube_proxy_1_3_not_1_21() -> None:
    layout = detect_layout(parse_ruleset(kube_1_3()))
    assert (layout.mode, layout.era, layout.masquerade_mark) == ("iptables", "<=1.3", MASQ)
    assert any("0x4d415351 ('MASQ')" in e for e in layout.evidence)
    assert summarize(parse_ruleset(kube_1_3()))["kube"]["era"] == "<=1.3"


def test_the_old_masquerade_mark_is_explained_and_traced() -> None:
    rs = parse_ruleset(kube_1_3())
    ex = Explainer(rs)
    ip, sep = WEB_SEPS[0]
    mark = ex.rule("nat", sep, 1)
    assert MASQ in mark.text and "'MASQ'" in mark.text and mark.kube
    post = ex.rule("nat", "KUBE-POSTROUTING", 1)
    assert MASQ in post.text and "masquerade" in post.text
    # hairpin: the endpoint reaches its own service; the path that picks it is masqueraded
    t = trace(rs, Packet(ip, "10.0.0.20", "tcp", 40000, 80, "pod", "cbr0"), NODE)
    hairpin = [p for p in t.paths if p.endpoint == f"{ip}:8080"]
    assert hairpin and all(p.masquerade for p in hairpin)
    assert all(not p.masquerade for p in t.paths if p.endpoint != f"{ip}:8080")
    assert sum(p.probability for p in t.paths) == 1


def test_5_decimal_probabilities_and_the_xlb_layout_without_masquerade_rules_are_old() -> None:
    """kube-proxy 1.16 without a cluster CIDR: KUBE-XLB chains and no masquerade rules in KUBE-SERVICES, which
    looked like 1.21-1.23 to the layout detector."""
    text = "\n".join(ln for ln in old_dump().splitlines()
                     if not (ln.startswith("-A KUBE-SERVICES") and ln.endswith("-j KUBE-MARK-MASQ")))  # fmt: skip
    layout = detect_layout(parse_ruleset(text))
    assert layout.era == "1.4-1.16", layout.evidence
    assert any("5 decimals" in e for e in layout.evidence) and any("CANARY" in e for e in layout.evidence)


def test_the_userspace_proxy() -> None:
    rs = parse_ruleset(USERSPACE)
    layout = detect_layout(rs)
    assert (layout.kube_proxy, layout.mode, layout.era) == (True, "userspace", "<=1.25")
    assert any("userspace proxy" in e for e in layout.evidence)
    ex = Explainer(rs)
    assert "userspace proxy" in ex.chain("nat", "KUBE-PORTALS-CONTAINER").text
    rule = ex.rule("nat", "KUBE-PORTALS-CONTAINER", 1)
    assert "38263" in rule.text and "kube-proxy itself" in rule.text and "default/kubernetes:https" in rule.text
    t = trace(rs, Packet("10.244.1.5", "10.0.0.1", "tcp", 40000, 443, "pod", "cbr0"), NODE)
    (path,) = t.paths
    assert path.delivery == "local" and path.final is not None and path.final.dport == 38263
