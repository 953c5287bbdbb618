"""kube-proxy's chain names: the hash in ``KUBE-SVC-<hash>`` and how to get a service's name back from it.

kube-proxy names a service port's chains ``KUBE-{SVC,SVL,EXT,FW,XLB}-h`` with
``h = base32(sha256(servicePortName + protocol))[:16]`` (pkg/proxy/iptables, ``servicePortPolicyClusterChain``
and friends), where ``servicePortName`` is ``ns/name:port`` (``ns/name`` for an unnamed port since 1.19,
``ns/name:`` before) and ``protocol`` is lower case (``tcp``, ``udp``, ``sctp``). An endpoint chain
``KUBE-SEP-h`` hashes ``servicePortName + protocol + "IP:PORT"`` (``[IP]:PORT`` for IPv6).

A hash cannot be inverted, but a candidate name can be confirmed: :class:`NameResolver` hashes every name the
dump mentions anywhere (comments survive on most rules even in large-cluster mode) and a few well-known ones,
and looks chains up in that table. A name is only ever reported when its hash matches.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = [
    "CHAIN_KINDS",
    "PROTOCOLS",
    "WELL_KNOWN",
    "NameResolver",
    "chain_hash",
    "hash_matches",
    "names_in",
    "split_chain",
]

CHAIN_KINDS = ("SVC", "SVL", "EXT", "FW", "XLB", "SEP")
PROTOCOLS = ("tcp", "udp", "sctp")
_CHAIN = re.compile(r"KUBE-(SVC|SVL|EXT|FW|XLB|SEP)-([A-Z2-7]{16})")
# A service port name as kube-proxy writes it in comments: a namespace (DNS label), "/", a service name (DNS
# label), and optionally ":" and a port name (IANA service name: lower-case letters, digits and '-').
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_NAME = re.compile(rf"(?<![\w./-])({_LABEL}/{_LABEL}(?::[-a-z0-9]*)?)")

# Service ports found on almost every cluster; confirmed by hash before use, so a wrong guess costs nothing.
WELL_KNOWN: tuple[str, ...] = (
    "default/kubernetes:https",
    "kube-system/kube-dns:dns",
    "kube-system/kube-dns:dns-tcp",
    "kube-system/kube-dns:metrics",
    "kube-system/metrics-server:https",
    "kube-system/metrics-server",
    "kube-system/coredns:dns",
    "kube-system/coredns:dns-tcp",
    "kube-system/coredns:metrics",
    "ingress-nginx/ingress-nginx-controller:http",
    "ingress-nginx/ingress-nginx-controller:https",
    "ingress-nginx/ingress-nginx-controller-admission:https-webhook",
    "cert-manager/cert-manager-webhook:https",
)


def chain_hash(port_name: str, protocol: str, endpoint: str = "") -> str:
    """kube-proxy's 16-character chain hash of a service port (and endpoint ``IP:PORT`` for a SEP chain)."""
    digest = hashlib.sha256((port_name + protocol + endpoint).encode()).digest()
    return base64.b32encode(digest[:10]).decode()  # 10 bytes are exactly the first 16 base32 characters


def split_chain(name: str) -> tuple[str, str] | None:
    """``KUBE-SVC-NPX46M4PTMTKRN6Y`` → ``("SVC", "NPX46M4PTMTKRN6Y")``; None for any other chain name."""
    m = _CHAIN.fullmatch(name)
    return (m.group(1), m.group(2)) if m else None


def _spellings(port_name: str) -> tuple[str, ...]:
    """The strings kube-proxy may have hashed for a port name (an unnamed port: ``ns/name:`` before 1.19)."""
    return (port_name,) if ":" in port_name else (port_name, port_name + ":")


def hash_matches(port_name: str, protocol: str, h: str, endpoint: str = "") -> bool:
    """True when ``h`` is the hash of this port name and protocol (either unnamed-port spelling)."""
    return any(chain_hash(s, protocol, endpoint) == h for s in _spellings(port_name))


def names_in(text: str) -> list[str]:
    """Every service-port-name-looking word in a comment (``"default/web:http -> 10.244.1.11:8080"``)."""
    return _NAME.findall(text)


class NameResolver:
    """Chain hash → (service port name, protocol), over candidate names confirmed by hashing."""

    def __init__(self, candidates: Iterable[str], protocols: Iterable[str] = PROTOCOLS) -> None:
        table: dict[str, tuple[str, str]] = {}
        protos = tuple(protocols)
        for name in dict.fromkeys([*candidates, *WELL_KNOWN]):
            for spelling in _spellings(name):
                for proto in protos:
                    table.setdefault(chain_hash(spelling, proto), (name, proto))
        self._table: Mapping[str, tuple[str, str]] = MappingProxyType(table)

    def __len__(self) -> int:
        return len(self._table)

    def lookup(self, h: str) -> tuple[str, str] | None:
        """The (name, protocol) whose hash is ``h``, or None when no candidate hashes to it."""
        return self._table.get(h)
