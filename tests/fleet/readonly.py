"""The commands a remote capture may run on a node, spelled out here independently of kptui's own list
(kptui/live/runner.py ALLOWED plus kptui/live/remote_argv.py REMOTE_READS): the stand-in kubectl and ssh
accept only these, and tests/fleet/test_remote_contract.py keeps kptui's list equal to this one. Adding a
command to kptui means adding it here too, on purpose, with the reason it only reads.
"""

from __future__ import annotations

READ_ONLY: frozenset[tuple[str, ...]] = frozenset({
    # rule dumps (iptables-save never changes a table)
    ("iptables-nft-save", "-c"), ("iptables-legacy-save", "-c"),
    ("ip6tables-nft-save", "-c"), ("ip6tables-legacy-save", "-c"),
    ("iptables", "--version"),
    # netlink dumps
    ("ip", "-j", "-d", "addr", "show"),
    ("ip", "-j", "-4", "route", "show"), ("ip", "-j", "-6", "route", "show"),
    ("ip", "-j", "-4", "rule", "show"), ("ip", "-j", "-6", "rule", "show"),
    ("conntrack", "-L", "-f", "ipv4"), ("conntrack", "-L", "-f", "ipv6"),
    ("nft", "list", "tables"), ("nft", "list", "table", "ip", "kube-proxy"),
    ("nft", "list", "table", "ip6", "kube-proxy"), ("nft", "-j", "list", "ruleset"),
    ("ipset", "save"), ("ipvsadm", "-S", "-n"),
    # what a local capture reads in-process: uname, stat of module files, /proc/sys, one GET on 127.0.0.1
    ("uname", "-s", "-n", "-r", "-m"), ("uname", "-v"),
    ("ls", "-d", "/proc/net/ip_tables_names", "/proc/net/ip6_tables_names", "/sys/module/ip_set",
     "/sys/module/ip_vs", "/proc/net/ip_vs"),
    ("grep", "-r", "-s", "-H", ".", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf",
     "/proc/sys/net/ipv6/conf", "/proc/sys/net/bridge", "/proc/sys/net/ipv4/vs"),
    ("curl", "-s", "-S", "--max-time", "1", "--noproxy", "*", "http://127.0.0.1:10249/proxyMode"),
})  # fmt: skip

READ_ONLY_TOOLS = frozenset({"iptables-nft-save", "iptables-legacy-save", "ip6tables-nft-save",
                             "ip6tables-legacy-save", "iptables", "ip", "conntrack", "nft", "ipset", "ipvsadm",
                             "uname", "ls", "grep", "curl"})  # fmt: skip
