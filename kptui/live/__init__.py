"""The door to the live node: :mod:`kptui.live.runner` runs every command kptui runs (a fixed allow-list of
read-only argument lists, no shell, a timeout), makes its only HTTP request (kube-proxy's ``/proxyMode``) and
reads its only kernel settings (a fixed list of sysctls). kptui never writes netfilter state.

What the live node holds is gathered into a snapshot by :mod:`kptui.node.collect`; nothing else calls the
runner.
"""
