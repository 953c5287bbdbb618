"""Echo server and probe client programs used by :mod:`tools.netlab`.

Both programs are small, dependency-free Python sources that :class:`tools.netlab.Lab` runs inside a
network namespace with ``ip netns exec NS python3 -c SOURCE ARGS...`` (fixed argument lists, no shell).

* The **echo server** binds one socket per listener on the *specific* served address (a UDP server
  bound to 0.0.0.0 answers from whatever address routing picks, which breaks NAT replies) and answers
  every TCP connection / UDP datagram with one JSON line describing what it saw: its own tag, the
  address it serves and the peer address (so a client learns whether it was masqueraded).
* The **probe client** runs a batch of probes (TCP connect or UDP datagram, each from a fixed source
  address/port with a short timeout) and prints one JSON document with the outcome of each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ECHO_SERVER = r'''
import json, selectors, socket, sys
tag = sys.argv[1]
sel = selectors.DefaultSelector()
for spec in sys.argv[2:]:
    proto, port, addr = spec.split(",", 2)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: address may still be tentative
    s.bind((addr, int(port)))
    if kind == socket.SOCK_STREAM:
        s.listen(128)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, (proto, addr, int(port)))
print("READY", flush=True)
def answer(proto, addr, port, peer):
    return (json.dumps({"server": tag, "proto": proto, "local": [addr, port],
                        "peer": [peer[0], peer[1]]}) + "\n").encode()
while True:
    for key, _ in sel.select():
        proto, addr, port = key.data
        sock = key.fileobj
        try:
            if proto == "tcp":
                conn, peer = sock.accept()
                with conn:
                    conn.settimeout(1.0)
                    conn.sendall(answer(proto, addr, port, peer))
            else:
                _data, peer = sock.recvfrom(4096)
                sock.sendto(answer(proto, addr, port, peer), peer)
        except OSError:
            pass
'''

PROBE_CLIENT = r'''
import errno, json, socket, sys
results = []
for p in json.loads(sys.argv[1]):
    fam = socket.AF_INET6 if ":" in p["dst"] else socket.AF_INET
    kind = socket.SOCK_STREAM if p["proto"] == "tcp" else socket.SOCK_DGRAM
    res = {"ok": False, "error": None, "reply": None, "sport": p.get("sport")}
    s = socket.socket(fam, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if p.get("src") or p.get("sport"):
            s.bind((p.get("src") or "", p.get("sport") or 0))
        s.settimeout(p["timeout"])
        s.connect((p["dst"], p["port"]))
        res["sport"] = s.getsockname()[1]
        if kind == socket.SOCK_DGRAM:
            s.send(b"probe\n")
            data = s.recv(4096)
        else:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        res["reply"] = json.loads(data.decode())
        res["ok"] = True
    except socket.timeout:
        res["error"] = "timeout"
    except ConnectionRefusedError:
        res["error"] = "refused"
    except OSError as e:
        res["error"] = errno.errorcode.get(e.errno or 0, str(e)).lower()
    except ValueError as e:
        res["error"] = "bad-reply: %s" % e
    finally:
        s.close()
    results.append(res)
print(json.dumps(results))
'''

FLUSH_RECENT = r'''
import os
base = "/proc/net/xt_recent"
names = sorted(os.listdir(base)) if os.path.isdir(base) else []
for name in names:
    with open(os.path.join(base, name), "w") as f:
        f.write("/\n")
print(" ".join(names))
'''


@dataclass(frozen=True)
class Probe:
    """One connection attempt: ``proto`` ("tcp"/"udp") to ``dst``:``port``.

    ``src``/``sport`` pin the source address/port (``None`` lets the kernel choose; the Lab fills in a
    unique source port so every probe is a fresh conntrack entry). ``timeout`` is in seconds.
    """

    proto: str
    dst: str
    port: int
    src: str | None = None
    sport: int | None = None
    timeout: float = 1.0

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object the probe client program expects."""
        return {"proto": self.proto, "dst": self.dst, "port": self.port, "src": self.src,
                "sport": self.sport, "timeout": self.timeout}

    def __str__(self) -> str:
        dst = f"[{self.dst}]" if ":" in self.dst else self.dst
        return f"{self.proto} {self.src or '*'}:{self.sport or '*'} -> {dst}:{self.port}"


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of a :class:`Probe`.

    ``ok`` is true when an echo server answered; then ``server`` is its tag, ``served`` the
    ``(address, port)`` it is bound to and ``peer`` the ``(address, port)`` it saw as the client (differs
    from the probe's source when the packet was SNATed/masqueraded). ``error`` is ``"timeout"``,
    ``"refused"`` (TCP RST or ICMP port unreachable), or a lower-case errno name (``"ehostunreach"``,
    ``"eperm"`` for a locally generated packet dropped by netfilter, ...).
    """

    probe: Probe
    ok: bool
    sport: int | None
    error: str | None = None
    server: str | None = None
    served: tuple[str, int] | None = None
    peer: tuple[str, int] | None = None

    @property
    def outcome(self) -> str:
        """Short text: the answering server's tag, or the error."""
        return (self.server or "?") if self.ok else (self.error or "error")

    @classmethod
    def from_json(cls, probe: Probe, data: dict[str, Any]) -> ProbeResult:
        """Build a result from one element of the probe client's output."""
        reply = data.get("reply") or {}
        served = tuple(reply["local"]) if "local" in reply else None
        peer = tuple(reply["peer"]) if "peer" in reply else None
        return cls(probe=probe, ok=bool(data.get("ok")), sport=data.get("sport"),
                   error=data.get("error"), server=reply.get("server"),
                   served=(str(served[0]), int(served[1])) if served else None,
                   peer=(str(peer[0]), int(peer[1])) if peer else None)


def parse_probe_output(probes: list[Probe], text: str) -> list[ProbeResult]:
    """Pair the probe client's JSON output with the probes that produced it."""
    data = json.loads(text)
    if len(data) != len(probes):
        raise ValueError(f"probe client returned {len(data)} results for {len(probes)} probes")
    return [ProbeResult.from_json(p, d) for p, d in zip(probes, data)]
