"""kube-proxy's chain hash, checked against names everyone knows and against tools/kubegen.py."""

from __future__ import annotations

import pytest

from kptui.engine.kube.hashes import NameResolver, chain_hash, hash_matches, names_in, split_chain
from tools.kubegen import Endpoint, ServicePort, port_proto_hash


@pytest.mark.parametrize(("name", "proto", "h"), [
    ("default/kubernetes:https", "tcp", "NPX46M4PTMTKRN6Y"),
    ("kube-system/kube-dns:dns", "udp", "TCOU7JCQXEZGVUNU"),
    ("kube-system/kube-dns:dns-tcp", "tcp", "ERIFXISQEP7F7OF4"),
    ("kube-system/kube-dns:metrics", "tcp", "JD5MR3NA4I4DYORP"),
])  # fmt: skip
def test_well_known_chain_hashes(name: str, proto: str, h: str) -> None:
    assert chain_hash(name, proto) == h


@pytest.mark.parametrize("name", ["default/web:http", "shop/legacy-api", "a/b:c", "ns-1/svc-2:dns"])
@pytest.mark.parametrize("proto", ["tcp", "udp", "sctp"])
def test_same_hash_as_kubegen(name: str, proto: str) -> None:
    assert chain_hash(name, proto) == port_proto_hash(name, proto)
    assert chain_hash(name, proto, "10.244.1.2:8080") == port_proto_hash(name, proto, "10.244.1.2:8080")


def test_chain_names_as_kubegen_writes_them() -> None:
    svc = ServicePort("shop", "checkout", "10.96.30.10", 80, port_name="http")
    for kind in ("SVC", "SVL", "EXT", "FW", "XLB"):
        assert svc.chain(kind) == f"KUBE-{kind}-{chain_hash('shop/checkout:http', 'tcp')}"
    ep = Endpoint("fd00:10:244:1::11", 8080)
    assert svc.sep_chain(ep) == "KUBE-SEP-" + chain_hash("shop/checkout:http", "tcp", "[fd00:10:244:1::11]:8080")


def test_the_protocol_is_part_of_the_hash() -> None:
    assert chain_hash("kube-system/kube-dns:dns", "tcp") != chain_hash("kube-system/kube-dns:dns", "udp")


def test_unnamed_ports_match_either_spelling() -> None:
    """Before 1.19 an unnamed port hashed as "ns/name:"; since then as "ns/name"."""
    old, new = chain_hash("shop/legacy-api:", "tcp"), chain_hash("shop/legacy-api", "tcp")
    assert old != new
    assert hash_matches("shop/legacy-api", "tcp", old) and hash_matches("shop/legacy-api", "tcp", new)
    assert not hash_matches("shop/legacy-api", "udp", new)
    assert NameResolver(["shop/legacy-api"]).lookup(old) == ("shop/legacy-api", "tcp")


def test_split_chain() -> None:
    assert split_chain("KUBE-SVC-NPX46M4PTMTKRN6Y") == ("SVC", "NPX46M4PTMTKRN6Y")
    assert split_chain("KUBE-FW-BTVQPHN42D4J3FOU") == ("FW", "BTVQPHN42D4J3FOU")
    assert split_chain("KUBE-SEP-HSRFD4S3AHFNRYNO") == ("SEP", "HSRFD4S3AHFNRYNO")
    for other in ("KUBE-SERVICES", "KUBE-FIREWALL", "KUBE-EXTERNAL-SERVICES", "KUBE-SVC-short", "KUBE-SVC-NPX46M4PTMTKRN6Y1",
                  "KUBE-SVC-npx46m4ptmtkrn6y", "KUBE-SVC-NPX46M4PTMTKRN01"):  # fmt: skip
        assert split_chain(other) is None


def test_names_in_comments() -> None:
    assert names_in("default/web:http -> 10.244.1.11:8080") == ["default/web:http"]
    assert names_in("Balancing rule 0 for shop/checkout:http") == ["shop/checkout:http"]
    assert names_in("masquerade traffic for shop/legacy-api external destinations") == ["shop/legacy-api"]
    assert names_in("! -s 10.244.0.0/16") == []
    assert names_in("kubernetes service portals") == []


def test_resolver_knows_well_known_names_and_candidates() -> None:
    r = NameResolver(["shop/cart:http"])
    assert r.lookup("NPX46M4PTMTKRN6Y") == ("default/kubernetes:https", "tcp")
    assert r.lookup(chain_hash("shop/cart:http", "udp")) == ("shop/cart:http", "udp")
    assert r.lookup("AAAAAAAAAAAAAAAA") is None
