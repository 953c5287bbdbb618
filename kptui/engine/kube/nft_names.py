"""kube-proxy's nftables-mode names: per-service chain names, their hash, and service port names.

kube-proxy's nftables proxier names a service port's chains ``PREFIX-HASH8-ns/name/proto/portname`` (prefixes
``service-``, ``local-``, ``external-``, ``firewall-``) and an endpoint's ``endpoint-HASH8-ns/name/proto/
portname__IP/port`` (an IPv6 address with its colons as dots), with ``HASH8`` the first 8 characters of
base32(sha256(the part after the hash)): ``service-ULMVA6XW-ns1/svc1/tcp/p80``. The affinity set of an endpoint
is ``affinity-`` + the endpoint chain's base. A name too long for nft is cut and ends in ``...``: its hash
cannot be checked then. Element comments (``no-endpoint-services``) name the service port as Kubernetes prints
it, ``ns/name:portname``.

:func:`parse_chain` reads a chain name (None for any other); :func:`port_name` turns the ``ns/name/proto/port``
part into the service port name the iptables side uses (``ns/name:port``, ``ns/name`` for an unnamed port);
:func:`nft_base` goes the other way.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["KINDS", "PREFIXES", "NftChainName", "hash8", "nft_base", "parse_chain", "port_name"]

# chain prefix → the role it plays, named like the iptables side's chain kinds (so the service index,
# findings and explanations read ``chains["SVC"]`` the same in both modes)
KINDS = {"service": "SVC", "local": "SVL", "external": "EXT", "firewall": "FW", "endpoint": "SEP",
         "affinity": "AFFINITY"}  # fmt: skip
_NAME = re.compile(r"(service|local|external|firewall|endpoint|affinity)-([A-Z2-7]{8})-(.+)")
_V4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
PREFIXES = ("service-", "local-", "external-", "firewall-", "endpoint-", "affinity-")
_PORT = re.compile(r"([^/]+)/([^/]+)/([a-z]+)/([^/]*)")


@lru_cache(maxsize=65536)
def hash8(text: str) -> str:
    """The first 8 characters of base32(sha256(text)): kube-proxy's nftables chain hash."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:5]).decode()


@dataclass(frozen=True, slots=True)
class NftChainName:
    """A per-service (or per-endpoint) chain name taken apart."""

    prefix: str  # "service", "local", "external", "firewall", "endpoint", "affinity"
    hash: str  # the 8 characters
    base: str  # "HASH8-ns/name/proto/port": what the service port's chains share (endpoints: up to "__")
    rest: str  # what was hashed: "ns/name/proto/port" (endpoints: "…__IP/port")
    namespace: str | None
    service: str | None
    protocol: str | None
    port: str | None  # the port's name ("" for an unnamed port)
    endpoint: str | None  # endpoints: "IP:PORT" ("[IP]:PORT" for IPv6) from the name
    truncated: bool  # cut at nft's length limit: the hash cannot be checked

    @property
    def kind(self) -> str:
        return KINDS[self.prefix]

    @property
    def verified(self) -> bool | None:
        """The hash is the hash of the name (None: the name was cut)."""
        return None if self.truncated else hash8(self.rest) == self.hash

    @property
    def port_name(self) -> str | None:
        """``ns/name:port`` (``ns/name`` for an unnamed port), None when the name does not hold it."""
        if self.namespace is None or self.service is None or self.port is None:
            return None
        return f"{self.namespace}/{self.service}" + (f":{self.port}" if self.port else "")

    @property
    def service_base(self) -> str:
        """The base of the service port's chains (for an endpoint or affinity set: the base its service
        port's chains have, ``HASH8`` of the part before ``__``)."""
        if self.prefix not in ("endpoint", "affinity"):
            return self.base
        svc = self.rest.partition("__")[0]
        return f"{hash8(svc)}-{svc}"


@lru_cache(maxsize=65536)
def parse_chain(name: str) -> NftChainName | None:
    """``service-2EUJKCR2-shop/checkout/tcp/http`` → its parts; None for a chain that is not per-service."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    prefix, h, rest = m.groups()
    truncated = rest.endswith("...")
    svc_part, sep, ep_part = rest.partition("__")
    if prefix in ("endpoint", "affinity") and not sep and not truncated:
        return None
    p = _PORT.fullmatch(svc_part)
    ns, svc, proto, port = p.groups() if p else (None, None, None, None)
    endpoint = _endpoint(ep_part) if sep and not truncated else None
    return NftChainName(prefix, h, f"{h}-{rest}", rest, ns, svc, proto, port, endpoint, truncated)


def _endpoint(part: str) -> str | None:
    """``10.244.1.31/8080`` → ``10.244.1.31:8080``; ``fd00.10.244.1..11/8080`` → ``[fd00:10:244:1::11]:8080``."""
    ip, slash, port = part.rpartition("/")
    if not slash or not port.isdigit() or not ip:
        return None
    if _V4.fullmatch(ip):
        return f"{ip}:{port}"
    return f"[{ip.replace('.', ':')}]:{port}"


def port_name(rest: str) -> str | None:
    """``ns/name/proto/port`` → ``ns/name:port`` (``ns/name`` for an unnamed port); None for anything else."""
    p = _PORT.fullmatch(rest.partition("__")[0])
    if p is None:
        return None
    ns, svc, _, port = p.groups()
    return f"{ns}/{svc}" + (f":{port}" if port else "")


def nft_base(name: str, protocol: str) -> str:
    """The chain base kube-proxy gives service port ``name`` (``ns/name:port``) and ``protocol``:
    ``HASH8-ns/name/proto/port``."""
    svc, _, port = name.partition(":")
    rest = f"{svc}/{protocol.lower()}/{port}"
    return f"{hash8(rest)}-{rest}"
