"""The clusterip scenario (samples/scenarios.py) as the kernel tests probe it: its services' addresses.

The lab itself is the ``clusterip_lab`` fixture of tests/kernel/conftest.py (one per test module)."""

from __future__ import annotations

WEB = ("10.96.10.20", 80)  # default/web:http, 3 endpoints
API = ("10.96.0.1", 443)  # default/kubernetes:https, the API server on the node
DNS = ("10.96.0.10", 53)  # kube-system/kube-dns:dns (UDP) and dns-tcp
