"""What the kernel tests of captures share: a stand-in kube-proxy answering /proxyMode, and an independent read
of what a capture must not change (a separate python inside the namespace, not kptui's reader)."""

from __future__ import annotations

import re

# A kube-proxy stand-in on 127.0.0.1:10249 in the namespace it is started in: /proxyMode answers argv[1]
# (default iptables). It prints READY once listening.
FAKE_KUBE_PROXY = """
import http.server, sys
mode = (sys.argv[1] if len(sys.argv) > 1 else "iptables").encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = mode if self.path == "/proxyMode" else b"?"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 10249), H)
print("READY", flush=True)
s.serve_forever()
"""

# Every sysctl file a capture may read, read from inside the namespace, as JSON (name → value).
READ_SYSCTLS = """
import json, os
out = {}
for base in ("net/ipv4/conf", "net/ipv6/conf"):
    for iface in sorted(os.listdir("/proc/sys/" + base)):
        for key in ("rp_filter", "route_localnet", "forwarding"):
            path = f"/proc/sys/{base}/{iface}/{key}"
            if os.path.exists(path):
                out[f"{base}/{iface}/{key}".replace("/", ".")] = open(path).read().strip()
for rel in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
            "net/ipv4/vs/conntrack"):
    if os.path.exists("/proc/sys/" + rel):
        out[rel.replace("/", ".")] = open("/proc/sys/" + rel).read().strip()
print(json.dumps(out, sort_keys=True))
"""


def undated(text: str) -> str:
    """A -save dump without its ``# Generated … on DATE`` / ``# Completed on DATE`` lines and without the
    chains' policy counters (printed even without -c)."""
    lines = (line for line in text.splitlines(keepends=True) if not line.startswith("# "))
    return "".join(re.sub(r"^(:\S+ \S+) \[\d+:\d+\]", r"\1", line) for line in lines)
