"""Docker- and Calico-style rules that share a node with kube-proxy (for ``foreign-chains.rules``).

The shapes follow what Docker 24 (iptables driver, default bridge, one published port) and Calico 3.2x
(iptables data plane, routed ``cali*`` veths, IPIP allowed from Calico hosts, nat-outgoing via ipsets)
install. Calico's ``cali:XXXXXXXXXXXXXXXX`` rule ids are derived here from the rule text (they look
like the real ones but are not copied from a real node). Everything is functional: traffic from pods,
to pods and to the published container port is accepted although FORWARD's policy is DROP (as Docker
sets it).
"""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.kubegen import Ruleset

DOCKER_NET = "172.17.0.0/16"
DOCKER_GW = "172.17.0.1"
CONTAINER_IP = "172.17.0.2"
PUBLISHED_PORT = 8080
CONTAINER_PORT = 80
IPAM_POOL = "10.244.0.0/16"
CALICO_HOSTS = ("10.0.0.2", "10.0.0.3", "10.0.0.4")


def cali_ifname(pod: str) -> str:
    """Calico-style host-side veth name: ``cali`` + 11 hex chars."""
    return "cali" + hashlib.sha1(pod.encode()).hexdigest()[:11]


def _cid(text: str) -> str:
    """A Calico-looking rule id (``cali:`` + 16 base64url chars) derived from ``text``."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"cali:{digest[:16]}"


def _calico_writer(table: str) -> Callable[[str, str], str]:
    """Return ``c(chain, body)`` -> ``-A CHAIN -m comment --comment "cali:ID" BODY`` for ``table``."""
    def c(chain: str, body: str) -> str:
        return f'-A {chain} -m comment --comment "{_cid(table + chain + body)}" {body}'.rstrip()
    return c


def ipsets() -> str:
    """``ipset restore`` input for the sets Calico's rules reference."""
    lines = ["create cali40all-ipam-pools hash:net family inet",
             f"add cali40all-ipam-pools {IPAM_POOL}",
             "create cali40masq-ipam-pools hash:net family inet",
             f"add cali40masq-ipam-pools {IPAM_POOL}",
             "create cali40all-hosts-net hash:net family inet"]
    lines += [f"add cali40all-hosts-net {ip}" for ip in CALICO_HOSTS]
    return "\n".join(lines) + "\n"


def add_docker(rs: Ruleset) -> None:
    """Docker's chains: default bridge ``docker0``, one container publishing 8080 -> 80."""
    rs.policy("filter", "FORWARD", "DROP")
    rs.chain("filter", "DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER")
    rs.chain("nat", "DOCKER")
    ctr, cport, pport = CONTAINER_IP, CONTAINER_PORT, PUBLISHED_PORT
    filter_rules = [
        "-A FORWARD -j DOCKER-USER",
        "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
        "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -o docker0 -j DOCKER",
        "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
        "-A FORWARD -i docker0 -o docker0 -j ACCEPT",
        f"-A DOCKER -d {ctr}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport {cport} -j ACCEPT",
        "-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
        "-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
        "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
        "-A DOCKER-ISOLATION-STAGE-2 -j RETURN",
        "-A DOCKER-USER -j RETURN",
    ]
    nat_rules = [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
        f"-A POSTROUTING -s {DOCKER_NET} ! -o docker0 -j MASQUERADE",
        f"-A POSTROUTING -s {ctr}/32 -d {ctr}/32 -p tcp -m tcp --dport {cport} -j MASQUERADE",
        "-A DOCKER -i docker0 -j RETURN",
        f"-A DOCKER ! -i docker0 -p tcp -m tcp --dport {pport} -j DNAT --to-destination {ctr}:{cport}",
    ]
    rs.table("filter").rules.extend(filter_rules)
    rs.table("nat").rules.extend(nat_rules)


def add_calico(rs: Ruleset, workload_ifaces: list[str]) -> None:
    """Calico's chains for the given workload interfaces (``cali*``), jumps first in built-in chains."""
    empty = ("cali-from-host-endpoint", "cali-to-host-endpoint")
    c = _calico_writer("raw")
    rs.chain("raw", "cali-PREROUTING", "cali-OUTPUT", "cali-rpf-skip", *empty)
    rs.prepend("raw", [
        c("PREROUTING", "-j cali-PREROUTING"), c("OUTPUT", "-j cali-OUTPUT"),
        c("cali-PREROUTING", "-j MARK --set-xmark 0x0/0xf0000"),
        c("cali-PREROUTING", "-i cali+ -j MARK --set-xmark 0x40000/0x40000"),
        c("cali-PREROUTING", "-m mark --mark 0x40000/0x40000 -j cali-rpf-skip"),
        c("cali-PREROUTING", "-m mark --mark 0x40000/0x40000 -m rpfilter --validmark --invert -j DROP"),
        c("cali-PREROUTING", "-m mark --mark 0x0/0x40000 -j cali-from-host-endpoint"),
        c("cali-PREROUTING", "-m mark --mark 0x10000/0x10000 -j ACCEPT"),
        c("cali-OUTPUT", "-j MARK --set-xmark 0x0/0xf0000"),
        c("cali-OUTPUT", "-j cali-to-host-endpoint"),
        c("cali-OUTPUT", "-m mark --mark 0x10000/0x10000 -j ACCEPT"),
    ])
    c = _calico_writer("mangle")
    rs.chain("mangle", "cali-PREROUTING", "cali-POSTROUTING", *empty)
    rs.prepend("mangle", [
        c("PREROUTING", "-j cali-PREROUTING"), c("POSTROUTING", "-j cali-POSTROUTING"),
        c("cali-PREROUTING", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        c("cali-PREROUTING", "-m mark --mark 0x10000/0x10000 -j ACCEPT"),
        c("cali-PREROUTING", "-j cali-from-host-endpoint"),
        c("cali-PREROUTING", '-m comment --comment "Host endpoint policy accepted packet." '
                             "-m mark --mark 0x10000/0x10000 -j ACCEPT"),
        c("cali-POSTROUTING", "-m mark --mark 0x10000/0x10000 -j RETURN"),
        c("cali-POSTROUTING", "-j MARK --set-xmark 0x0/0xf0000"),
        c("cali-POSTROUTING", "-m conntrack --ctstate DNAT -j cali-to-host-endpoint"),
    ])
    c = _calico_writer("nat")
    rs.chain("nat", "cali-PREROUTING", "cali-OUTPUT", "cali-POSTROUTING", "cali-fip-dnat", "cali-fip-snat",
             "cali-nat-outgoing")
    rs.prepend("nat", [
        c("PREROUTING", "-j cali-PREROUTING"), c("OUTPUT", "-j cali-OUTPUT"),
        c("POSTROUTING", "-j cali-POSTROUTING"),
        c("cali-PREROUTING", "-j cali-fip-dnat"), c("cali-OUTPUT", "-j cali-fip-dnat"),
        c("cali-POSTROUTING", "-j cali-fip-snat"), c("cali-POSTROUTING", "-j cali-nat-outgoing"),
        c("cali-nat-outgoing", "-m set --match-set cali40masq-ipam-pools src -m set ! --match-set "
                               "cali40all-ipam-pools dst -j MASQUERADE --random-fully"),
    ])
    _calico_filter(rs, workload_ifaces)


def _calico_filter(rs: Ruleset, ifaces: list[str]) -> None:
    """Calico's filter table: dispatch chains with ``-g``, per-workload chains, profile chains."""
    rs.chain("filter", "cali-INPUT", "cali-FORWARD", "cali-OUTPUT", "cali-wl-to-host",
             "cali-from-wl-dispatch", "cali-to-wl-dispatch", "cali-from-hep-forward", "cali-to-hep-forward",
             "cali-from-host-endpoint", "cali-to-host-endpoint", "cali-cidr-block", "cali-pri-kns.default",
             "cali-pro-kns.default")
    accept = "-m mark --mark 0x10000/0x10000"
    c = _calico_writer("filter")
    rules = [
        c("INPUT", "-j cali-INPUT"), c("FORWARD", "-j cali-FORWARD"), c("OUTPUT", "-j cali-OUTPUT"),
        c("cali-INPUT", '-p ipencap -m comment --comment "Allow IPIP packets from Calico hosts" '
                        "-m set --match-set cali40all-hosts-net src -m addrtype --dst-type LOCAL -j ACCEPT"),
        c("cali-INPUT", '-p ipencap -m comment --comment "Drop IPIP packets from non-Calico hosts" -j DROP'),
        c("cali-INPUT", "-i cali+ -g cali-wl-to-host"),
        c("cali-INPUT", f"{accept} -j ACCEPT"),
        c("cali-INPUT", "-j MARK --set-xmark 0x0/0xf0000"),
        c("cali-INPUT", "-j cali-from-host-endpoint"),
        c("cali-INPUT", f'-m comment --comment "Host endpoint policy accepted packet." {accept} -j ACCEPT'),
        c("cali-wl-to-host", "-j cali-from-wl-dispatch"),
        c("cali-wl-to-host", '-m comment --comment "Configured DefaultEndpointToHostAction" -j ACCEPT'),
        c("cali-FORWARD", "-j MARK --set-xmark 0x0/0xe0000"),
        c("cali-FORWARD", "-m mark --mark 0x0/0x10000 -j cali-from-hep-forward"),
        c("cali-FORWARD", "-i cali+ -j cali-from-wl-dispatch"),
        c("cali-FORWARD", "-o cali+ -j cali-to-wl-dispatch"),
        c("cali-FORWARD", "-j cali-to-hep-forward"),
        c("cali-FORWARD", "-j cali-cidr-block"),
        c("cali-OUTPUT", f"{accept} -j ACCEPT"),
        c("cali-OUTPUT", "-o cali+ -j RETURN"),
        c("cali-OUTPUT", "-j MARK --set-xmark 0x0/0xf0000"),
        c("cali-OUTPUT", "-m conntrack ! --ctstate DNAT -j cali-to-host-endpoint"),
        c("cali-OUTPUT", f'-m comment --comment "Host endpoint policy accepted packet." {accept} -j ACCEPT'),
        c("cali-pri-kns.default", "-j MARK --set-xmark 0x10000/0x10000"),
        c("cali-pri-kns.default", f"{accept} -j RETURN"),
        c("cali-pro-kns.default", "-j MARK --set-xmark 0x10000/0x10000"),
        c("cali-pro-kns.default", f"{accept} -j RETURN"),
    ]
    for iface in ifaces:
        fw, tw = f"cali-fw-{iface}", f"cali-tw-{iface}"
        rs.chain("filter", fw, tw)
        rules += [c("cali-from-wl-dispatch", f"-i {iface} -g {fw}"),
                  c("cali-to-wl-dispatch", f"-o {iface} -g {tw}")]
        for chain, profile in ((fw, "cali-pro-kns.default"), (tw, "cali-pri-kns.default")):
            rules += [c(chain, "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
                      c(chain, "-m conntrack --ctstate INVALID -j DROP"),
                      c(chain, "-j MARK --set-xmark 0x0/0x10000")]
            if chain == fw:
                rules.append(c(chain, "-p udp -m udp --dport 4789 -j DROP"))
            rules += [c(chain, f"-j {profile}"), c(chain, f"{accept} -j RETURN"),
                      c(chain, '-m comment --comment "Drop if no profiles matched" -j DROP')]
    rules += [c("cali-from-wl-dispatch", '-m comment --comment "Unknown interface" -j DROP'),
              c("cali-to-wl-dispatch", '-m comment --comment "Unknown interface" -j DROP')]
    rs.prepend("filter", rules)
    rs.table("filter").rules += [
        c("FORWARD", f'-m comment --comment "Policy explicitly accepted packet." {accept} -j ACCEPT'),
        c("FORWARD", "-j MARK --set-xmark 0x10000/0x10000"),
    ]
