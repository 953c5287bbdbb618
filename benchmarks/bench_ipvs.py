#!/usr/bin/env python3
"""Time kptui's IPVS-mode inputs at scale against the kernel's own tool in the same run.

``python3 benchmarks/bench_ipvs.py --services 5000 --endpoints 10``: generates an IPVS-mode node with
tools/kubegen_ipvs.py (NodePorts on every fifth service, two node addresses), then times

- ``ipset restore`` of its sets into a scratch network namespace (the reference; root and ipset needed, else
  skipped) against kptui's ``parse_ipsets`` of what ``ipset save`` prints back;
- ``parse_ipvsadm`` of ``ipvsadm -S -n`` and of ``ipvsadm -L -n``;
- ``build_ipvs_service_index`` (services from the table and the sets);
- one set membership test (``KUBE-CLUSTER-IP dst,dst``) and one virtual service lookup, per call.

Figures only: no target is asserted here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kptui.engine import parse_ruleset
from kptui.engine.flow import Env
from kptui.engine.ipset import SetMatch
from kptui.engine.ipset_match import test_set
from kptui.engine.ipset_parse import parse_ipsets
from kptui.engine.ipvs import ipvs_context, parse_ipvsadm
from kptui.engine.kube.build_ipvs import build_ipvs_service_index
from kptui.engine.packet import NodeContext
from kptui.engine.trace_model import PacketState
from tools.kubegen import Endpoint, NodeConfig, ServicePort, generate
from tools.kubegen_ipvs import IpvsRuleset, ipvsadm_list, ipvsadm_save


def services(n: int, e: int) -> list[ServicePort]:
    out = []
    for i in range(n):
        ip = f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}"
        eps = [Endpoint(f"10.{244 + (i * e + j) // 65536}.{(i * e + j) // 256 % 256}.{(i * e + j) % 256}", 8080,
                        j % 3 == 0) for j in range(e)]  # fmt: skip
        out.append(ServicePort("ns", f"svc{i}", ip, 80, port_name="http", node_port=30000 + i if i % 5 == 0 else 0,
                               endpoints=eps))  # fmt: skip
    return out


def timed(fn, repeat: int = 1) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=10)
    args = ap.parse_args()
    rs = generate(services(args.services, args.endpoints), NodeConfig(node_addresses=("10.0.0.2", "10.0.0.3")),
                  "ipvs")  # fmt: skip
    assert isinstance(rs, IpvsRuleset)
    restore, save, listing = rs.ipset_restore(), ipvsadm_save(rs), ipvsadm_list(rs)
    members = sum(len(v) for v in rs.members.values())
    print(f"node: {args.services} services × {args.endpoints} endpoints: {len(rs.virtual_servers)} virtual services, "
          f"{sum(len(v.servers) for v in rs.virtual_servers)} real servers, {members} ipset members")
    saved = restore
    if os.geteuid() == 0 and shutil.which("ipset"):
        ns = f"kptbench-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            t0 = time.perf_counter()
            subprocess.run(["ip", "netns", "exec", ns, "ipset", "restore"], input=restore, text=True, check=True)
            ref = time.perf_counter() - t0
            saved = subprocess.run(["ip", "netns", "exec", ns, "ipset", "save"], capture_output=True, text=True,
                                   check=True).stdout  # fmt: skip
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        t, sets = timed(lambda: parse_ipsets(saved, "ipset save"), 3)
        print(f"ipset restore (kernel, reference): {ref * 1000:8.1f} ms")
        print(f"parse_ipsets of ipset save:        {t * 1000:8.1f} ms   ratio {t / ref:.2f}× the kernel's restore")
    else:
        t, sets = timed(lambda: parse_ipsets(saved, "ipset restore input"), 3)
        print(f"parse_ipsets:                      {t * 1000:8.1f} ms   (no reference: needs root and ipset)")
    t_s, table = timed(lambda: parse_ipvsadm(save, "ipvsadm -S -n"), 3)
    t_l, _ = timed(lambda: parse_ipvsadm(listing, "ipvsadm -L -n"), 3)
    print(f"parse_ipvsadm -S -n:               {t_s * 1000:8.1f} ms")
    print(f"parse_ipvsadm -L -n:               {t_l * 1000:8.1f} ms")
    node = ipvs_context(saved, save)
    ruleset = parse_ruleset(rs.render())
    t_b, index = timed(lambda: build_ipvs_service_index(ruleset, node), 3)
    print(f"build_ipvs_service_index:          {t_b * 1000:8.1f} ms   ({len(index)} service ports)")  # type: ignore[arg-type]
    env = Env(NodeContext(), 4, "PREROUTING", None, None, frozenset({"SYN"}), None)
    state = PacketState("10.244.1.5", "10.96.0.77", "tcp", 40000, 80)
    m = SetMatch("KUBE-CLUSTER-IP", ("dst", "dst"))
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        test_set(sets, m, state, env)  # type: ignore[arg-type]
    per_set = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        table.lookup("tcp", "10.96.0.77", 80)  # type: ignore[union-attr]
    per_lookup = (time.perf_counter() - t0) / n
    print(f"one set membership test:           {per_set * 1e6:8.2f} µs")
    print(f"one virtual service lookup:        {per_lookup * 1e6:8.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
