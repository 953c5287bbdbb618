"""kptui: a terminal explorer for kube-proxy's netfilter rules."""

__version__ = "0.1.0.dev0"
