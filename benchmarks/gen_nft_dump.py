#!/usr/bin/env python3
"""Generate a kube-proxy nftables-mode listing (``nft list ruleset`` of a node) at scale.

The output is what nft 1.0 prints for the ruleset kube-proxy (1.33 layout) writes for ``--services`` ClusterIP
services with ``--endpoints`` endpoints each (every fifth service also a NodePort, every twentieth without
endpoints): ``table ip kube-proxy`` with its sets and verdict maps first, then the fixed chains, then per
service a ``service-HASH-ns/name/tcp/http`` chain (masquerade rule, ``numgen random mod N vmap``) and one
``endpoint-HASH-…`` chain per endpoint (masquerade rule, DNAT). Chain names use kube-proxy's hashes. The text is
also valid ``nft -f`` input (the benchmark's reference checks it with ``nft -c -f``). Stdlib only.

    python3 benchmarks/gen_nft_dump.py --services 5000 --endpoints 10 -o /tmp/nft.txt
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
from collections.abc import Iterator
from typing import TextIO

SERVICE_CIDR = "10.96.0.0/12"
POD_CIDR = "10.244.0.0/16"
NODE_IP = "192.168.0.2"
REJECT_RULE = 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'
DROP_COMMENT = "Drop traffic to unallocated ClusterIPs"


def hash8(text: str) -> str:
    """kube-proxy's nftables chain hash: the first 8 base32 characters of sha256(text)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def cluster_ip(i: int) -> str:
    n = i + 16  # 10.96.0.16 onwards
    return f"10.{96 + n // 65536}.{(n // 256) % 256}.{n % 256}"


def pod_ip(i: int) -> str:
    return f"10.244.{(i // 250) % 250}.{i % 250 + 2}"


def _wrap(items: list[str], per_line: int) -> str:
    """nft's element list: ``{ a, b,\\n\\t\\t\\t     c }``."""
    if not items:
        return ""
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "\t\telements = { " + ",\n\t\t\t     ".join(lines) + " }\n"


def services(n: int, endpoints: int) -> Iterator[tuple[str, str, int, list[str], int | None]]:
    """(name, cluster IP, port, endpoint IPs, node port) per service."""
    ep = 0
    for i in range(n):
        count = 0 if i % 20 == 19 else endpoints
        ips = [pod_ip(ep + k) for k in range(count)]
        ep += count
        yield f"ns{i % 50}/svc{i}", cluster_ip(i), 80, ips, (30000 + i % 2768) if i % 5 == 0 else None


def write(out: TextIO, n: int, endpoints: int) -> None:
    svcs = list(services(n, endpoints))
    w = out.write
    w("table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n")
    w("\tset cluster-ips {\n\t\ttype ipv4_addr\n\t\tcomment \"Active ClusterIPs\"\n")
    w(_wrap([s[1] for s in svcs], 2) + "\t}\n\n")
    w(f"\tset nodeport-ips {{\n\t\ttype ipv4_addr\n\t\tcomment \"IPs that accept NodePort traffic\"\n"
      f"\t\telements = {{ {NODE_IP} }}\n\t}}\n\n")  # fmt: skip
    w("\tmap firewall-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
      "\t\tcomment \"destinations that are subject to LoadBalancerSourceRanges\"\n\t}\n\n")  # fmt: skip
    noep_np = [f"tcp . {np} comment \"{name}:http\" : goto reject-chain" for name, _, _, ips, np in svcs
               if not ips and np]  # fmt: skip
    w("\tmap no-endpoint-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment \"vmap to drop or "
      "reject packets to service nodeports with no endpoints\"\n" + _wrap(noep_np, 1) + "\t}\n\n")  # fmt: skip
    noep = [f"{ip} . tcp . {port} comment \"{name}:http\" : goto reject-chain" for name, ip, port, ips, _ in svcs
            if not ips]  # fmt: skip
    w("\tmap no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"vmap "
      "to drop or reject packets to services with no endpoints\"\n" + _wrap(noep, 1) + "\t}\n\n")  # fmt: skip
    svc_el = [f"{ip} . tcp . {port} : goto service-{hash8(f'{name}/tcp/http')}-{name}/tcp/http"
              for name, ip, port, ips, _ in svcs if ips]  # fmt: skip
    w("\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"ClusterIP, "
      "ExternalIP and LoadBalancer IP traffic\"\n" + _wrap(svc_el, 1) + "\t}\n\n")  # fmt: skip
    np_el = [f"tcp . {np} : goto external-{hash8(f'{name}/tcp/http')}-{name}/tcp/http"
             for name, _, _, ips, np in svcs if ips and np]  # fmt: skip
    w("\tmap service-nodeports {\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment \"NodePort traffic\"\n"
      + _wrap(np_el, 1) + "\t}\n\n")  # fmt: skip
    fixed = [
        ("cluster-ips-check", None, [REJECT_RULE, f'ip daddr {SERVICE_CIDR} drop comment "{DROP_COMMENT}"']),
        ("filter-prerouting-pre-dnat", "type filter hook prerouting priority dstnat - 10; policy accept;",
         ["ct state new jump firewall-check"]),
        ("filter-output-pre-dnat", "type filter hook output priority -110; policy accept;",
         ["ct state new jump firewall-check"]),
        ("filter-forward", "type filter hook forward priority filter; policy accept;",
         ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
        ("filter-input", "type filter hook input priority filter; policy accept;",
         ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"]),
        ("filter-output", "type filter hook output priority filter; policy accept;",
         ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
        ("firewall-check", None, ["ip daddr . meta l4proto . th dport vmap @firewall-ips"]),
        ("mark-for-masquerade", None, ["meta mark set meta mark | 0x00004000"]),
        ("masquerading", None, ["meta mark & 0x00004000 == 0x00000000 return",
                                "meta mark set meta mark ^ 0x00004000", "masquerade fully-random"]),
        ("nat-output", "type nat hook output priority -100; policy accept;", ["jump services"]),
        ("nat-postrouting", "type nat hook postrouting priority srcnat; policy accept;", ["jump masquerading"]),
        ("nat-prerouting", "type nat hook prerouting priority dstnat; policy accept;", ["jump services"]),
        ("nodeport-endpoints-check", None,
         ["ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"]),
        ("reject-chain", None, ["reject"]),
        ("services", None, ["ip daddr . meta l4proto . th dport vmap @service-ips",
                            "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"]),
        ("service-endpoints-check", None, ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"]),
    ]  # fmt: skip
    chains: list[tuple[str, str | None, list[str]]] = list(fixed)
    for name, ip, _port, ips, np in svcs:
        if not ips:
            continue
        svc = f"{name}/tcp/http"
        svc_chain = f"service-{hash8(svc)}-{svc}"
        eps = [f"endpoint-{hash8(f'{svc}__{e}/8080')}-{svc}__{e}/8080" for e in ips]
        vmap = ", ".join(f"{k} : goto {c}" for k, c in enumerate(eps))
        chains.append((svc_chain, None, [f"ip daddr {ip} ip saddr != {POD_CIDR} jump mark-for-masquerade",
                                         f"numgen random mod {len(eps)} vmap {{ {vmap} }}"]))  # fmt: skip
        if np:
            chains.append((f"external-{hash8(svc)}-{svc}", None, ["jump mark-for-masquerade", f"goto {svc_chain}"]))
        for e, c in zip(ips, eps, strict=True):
            chains.append((c, None, [f"ip saddr {e} jump mark-for-masquerade", f"meta l4proto tcp dnat to {e}:8080"]))
    for i, (name, head, rules) in enumerate(chains):
        w(f"\tchain {name} {{\n")
        if head:
            w(f"\t\t{head}\n")
        for r in rules:
            w(f"\t\t{r}\n")
        w("\t}\n" + ("\n" if i < len(chains) - 1 else ""))
    w("}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = ap.parse_args(argv)
    if args.output:
        with open(args.output, "w") as fh:
            write(fh, args.services, args.endpoints)
    else:
        write(sys.stdout, args.services, args.endpoints)
    return 0


if __name__ == "__main__":
    sys.exit(main())
