"""``parse_ipvsadm(text) -> IpvsTable``: the IPVS table as ``ipvsadm -S -n`` or ``ipvsadm -L -n`` prints it.

``-S -n`` (``ipvsadm-save -n``) prints one ``-A`` line per virtual service and one ``-a`` line per real server::

    -A -t 10.96.0.1:443 -s rr -p 10800
    -a -t 10.96.0.1:443 -r 10.0.0.2:6443 -m -w 1

``-L -n`` prints a title, a column header and the same in a table (``TCP  10.96.0.1:443 rr persistent 10800``,
``  -> 10.0.0.2:6443  Masq  1  0  0``); with ``--stats``, ``--rate``, ``--thresholds`` or ``--persistent-conn``
the columns change (the header says which) and some of them (scheduler, weight) are no longer shown. Counters
may carry ipvsadm's K/M/G/T suffixes. Output without ``-n`` (host and service names), the connection table
(``-L -c``) and anything else are errors with the file and line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache, partial

from ..errors import Diagnostic, ParseError
from .model import IpvsTable, RealServer, VirtualService

__all__ = ["counter_value", "parse_ipvsadm"]

Err = Callable[..., ParseError]  # (message, token=None) -> the error, located at the line being read

_SERVICE_OPTS = {"-t": "tcp", "--tcp-service": "tcp", "-u": "udp", "--udp-service": "udp", "-q": "sctp",
                 "--sctp-service": "sctp"}  # fmt: skip
_FWD_OPTS = {"-m": "Masq", "--masquerading": "Masq", "-g": "Route", "--gatewaying": "Route", "-i": "Tunnel",
             "--ipip": "Tunnel"}  # fmt: skip
_LIST_PROTOS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
_COLUMNS = {  # the first column header word after "Prot LocalAddress:Port" → the listing
    "Scheduler": "list", "Conns": "stats", "CPS": "rate", "Uthreshold": "thresholds", "Weight": "persistent"}
_SUFFIX = {"K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


class _Src:
    def __init__(self, source: str | None) -> None:
        self.source = source
        self.warnings: list[Diagnostic] = []

    def error(self, number: int, text: str, message: str, token: str | None = None) -> ParseError:
        col = text.find(token) if token else 0
        return ParseError(Diagnostic(message, number, max(col, 0), len(token or text) or 1, text, self.source))


def parse_ipvsadm(text: str, source: str | None = None) -> IpvsTable:
    """The virtual services of ``ipvsadm -S -n`` or ``ipvsadm -L -n`` output (either, with or without
    ``--stats`` / ``--rate``); ParseError (with file and line) on anything else."""
    src = _Src(source)
    lines = [(n, raw.rstrip("\r")) for n, raw in enumerate(text.splitlines(), 1)]
    content = [(n, t) for n, t in lines if t.strip() and not t.lstrip().startswith("#")]
    if not content:
        return IpvsTable((), source, "save")
    first = content[0][1].strip()
    if first.startswith(("IPVS connection entries", "pro expire state")):
        raise src.error(content[0][0], content[0][1], "this is the IPVS connection table (ipvsadm -L -n -c): give "
                        "the output of ipvsadm -S -n or ipvsadm -L -n")  # fmt: skip
    if first.startswith("-") and not first.startswith("->"):
        return _parse_save(content, src)
    return _parse_list(content, src)


# -- ipvsadm -S -n ------------------------------------------------------------------------------------------------
def _parse_save(content: list[tuple[int, str]], src: _Src) -> IpvsTable:
    services: dict[tuple[object, ...], VirtualService] = {}
    servers: dict[tuple[object, ...], list[RealServer]] = {}
    for number, text in content:
        tokens = text.split()
        err: Err = partial(src.error, number, text)
        verb = tokens[0]
        if verb not in ("-A", "-a", "--add-service", "--add-server"):
            raise err(f"not ipvsadm -S output: unexpected '{verb}' (only -A and -a lines are saved)", verb)
        opts = _options(tokens[1:], err)
        key, proto, addr, port, mark, family = _service_spec(opts, err)
        if verb in ("-A", "--add-service"):
            if key in services:
                raise err(f"virtual service {addr or mark} is added twice", tokens[1])
            sched = opts.get("-s") or opts.get("--scheduler") or "wlc"  # ipvsadm's default scheduler
            persist = opts.get("-p", opts.get("--persistent"))
            flags = tuple(f for f in (("ops",) if "-o" in opts or "--ops" in opts else ())
                          + ((f"pe {opts.get('--pe') or opts.get('pe')}",) if opts.get("--pe") or opts.get("pe")
                             else ())
                          + ((f"flags {opts['-b']}",) if opts.get("-b") else ()))  # fmt: skip
            services[key] = VirtualService(proto, addr, port, mark, family, sched,
                                           _int(persist or "300", err) if persist is not None else None,
                                           opts.get("-M") or opts.get("--netmask"), flags, (), (), number)
            servers[key] = []
            continue
        if key not in services:
            raise err("real server of a virtual service that has not been added (its -A line is missing)", tokens[1])
        rs = opts.get("-r") or opts.get("--real-server")
        if not rs:
            raise err("-a needs a real server (-r ADDRESS:PORT)", verb)
        rs_addr, rs_port = _addrport(rs, err, allow_no_port=True)
        forward = next((f for o, f in _FWD_OPTS.items() if o in opts), "Route")  # ipvsadm's default: -g
        weight = _int(opts.get("-w") or opts.get("--weight") or "1", err)
        servers[key].append(RealServer(rs_addr, rs_port if rs_port is not None else (port or 0), forward, weight,
                                       line=number))  # fmt: skip
    out = tuple(vs.with_(real_servers=tuple(servers[k])) for k, vs in services.items())
    return IpvsTable(out, src.source, "save", tuple(src.warnings))


def _options(tokens: list[str], err: Err) -> dict[str, str]:
    out: dict[str, str] = {}
    flags = {"-m", "--masquerading", "-g", "--gatewaying", "-i", "--ipip", "-o", "--ops", "-6", "ops"}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in flags:
            out[tok] = ""
            i += 1
        elif tok in ("-p", "--persistent") and (i + 1 >= len(tokens) or tokens[i + 1].startswith("-")):
            out[tok] = "300"  # -p without a timeout: ipvsadm's default
            i += 1
        elif tok.startswith("-") or tok == "pe":
            if i + 1 >= len(tokens):
                raise err(f"option {tok} needs a value", tok)
            out[tok] = tokens[i + 1]
            i += 2
        else:
            raise err(f"unexpected '{tok}'", tok)
    return out


def _service_spec(opts: dict[str, str], err: Err
                  ) -> tuple[tuple[object, ...], str | None, str | None, int | None, int | None, int]:  # fmt: skip
    for opt, proto in _SERVICE_OPTS.items():
        if opt in opts:
            addr, port = _addrport(opts[opt], err)
            family = 6 if ":" in addr else 4
            return (proto, addr, port), proto, addr, port, None, family
    mark_text = opts.get("-f") or opts.get("--fwmark-service")
    if mark_text is not None:
        mark = _int(mark_text, err)
        family = 6 if "-6" in opts else 4
        return ("fwm", mark, family), None, None, None, mark, family
    raise err("no virtual service (-t, -u, --sctp-service or -f)", None)


def _addrport(text: str, err: Err, *, allow_no_port: bool = False
              ) -> tuple[str, int | None]:  # fmt: skip
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?|([0-9A-Fa-f:]+)", text)
    if m is None:
        raise err(f"'{text}' is not a numeric address and port: was the table listed without -n (host and "
                  "service names)? Give ipvsadm -S -n or ipvsadm -L -n", text)  # fmt: skip
    addr = _canonical(m.group(1) or m.group(3) or m.group(5))
    port_text = m.group(2) if m.group(1) else m.group(4)
    if addr is None:
        raise err(f"'{text}' is not a numeric address and port", text)
    if port_text is None and not allow_no_port:
        raise err(f"'{text}' has no port", text)
    port = int(port_text) if port_text is not None else None
    if port is not None and port > 65535:
        raise err(f"port {port} is out of range", text)
    return addr, port


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


@lru_cache(maxsize=1 << 16)
def _canonical(addr: str) -> str | None:
    """``addr`` in ipaddress's spelling (what ipvsadm -n prints for IPv4 already), None if it is no address."""
    if _CANONICAL_V4.fullmatch(addr):
        return addr
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return None


def _int(text: str, err: Err) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise err(f"'{text}' is not a number", text) from None


# -- ipvsadm -L -n ---------------------------------------------------------------------------------------------
def _parse_list(content: list[tuple[int, str]], src: _Src) -> IpvsTable:
    listing: str | None = None
    columns: list[str] = []
    services: list[VirtualService] = []
    current: VirtualService | None = None
    servers: list[RealServer] = []

    def flush() -> None:
        nonlocal current, servers
        if current is not None:
            services.append(current.with_(real_servers=tuple(servers)))
        current, servers = None, []

    for number, text in content:
        stripped = text.strip()
        err: Err = partial(src.error, number, text)
        if stripped.startswith("IP Virtual Server version"):
            continue
        if stripped.startswith("Prot LocalAddress:Port"):
            words = stripped.split()[2:]
            listing = _COLUMNS.get(words[0] if words else "", None)
            if listing is None:
                raise err("unknown ipvsadm -L column header", stripped)
            columns = words
            continue
        if stripped.startswith("-> RemoteAddress:Port"):
            continue
        if stripped.startswith("Timeout (tcp tcpfin udp)"):
            continue
        if stripped.startswith("->"):
            if current is None:
                raise err("a real server line before any virtual service", "->")
            servers.append(_list_server(stripped[2:].split(), listing, columns, number, err))
            continue
        words = stripped.split()
        if words[0] in _LIST_PROTOS or words[0] == "FWM":
            flush()
            current = _list_service(words, listing, columns, number, err)
            listing = listing or ("list" if current.scheduler else "stats")
            continue
        raise err(f"not ipvsadm -L -n output: unexpected '{words[0]}'", words[0])
    flush()
    return IpvsTable(tuple(services), src.source, listing or "list", tuple(src.warnings))


def _list_service(words: list[str], listing: str | None, columns: list[str], number: int,
                  err: Err) -> VirtualService:  # fmt: skip
    if words[0] == "FWM":
        if len(words) < 2:
            raise err("FWM needs a mark", "FWM")
        mark, rest = _int(words[1], err), words[2:]
        family = 4
        if rest[:1] == ["IPv6"]:
            family, rest = 6, rest[1:]
        proto, addr, port = None, None, None
    else:
        if len(words) < 2:
            raise err(f"{words[0]} needs an address and port", words[0])
        proto = _LIST_PROTOS[words[0]]
        addr, port = _addrport(words[1], err)
        mark, rest, family = None, words[2:], 6 if ":" in addr else 4
    if listing in ("stats", "rate") or (listing is None and rest and _is_count(rest[0])):
        stats = _counters(rest, columns, err)
        return VirtualService(proto, addr, port, mark, family, None, None, None, (), (), stats, number)
    if listing in ("thresholds", "persistent"):  # the service line shows only the address
        return VirtualService(proto, addr, port, mark, family, None, None, None, (), (), (), number)
    if not rest:
        raise err("no scheduler after the virtual service", words[-1])
    sched, rest = rest[0], rest[1:]
    persistence = netmask = None
    flags: list[str] = []
    i = 0
    while i < len(rest):
        w = rest[i]
        if w == "persistent" and i + 1 < len(rest):
            persistence, i = _int(rest[i + 1], err), i + 2
        elif w == "mask" and i + 1 < len(rest):
            netmask, i = rest[i + 1], i + 2
        elif w == "pe" and i + 1 < len(rest):
            flags.append(f"pe {rest[i + 1]}")
            i += 2
        elif w == "ops":
            flags.append("ops")
            i += 1
        elif w.startswith("(") and w.endswith(")"):
            flags.append(f"flags {w[1:-1]}")
            i += 1
        else:
            raise err(f"unexpected '{w}' after the scheduler", w)
    return VirtualService(proto, addr, port, mark, family, sched, persistence, netmask, tuple(flags), (), (), number)


def _list_server(words: list[str], listing: str | None, columns: list[str], number: int,
                 err: Err) -> RealServer:  # fmt: skip
    if not words:
        raise err("a real server line without an address", "->")
    addr, port = _addrport(words[0], err)
    rest = words[1:]
    if listing in (None, "list") and rest and rest[0] in ("Masq", "Local", "Route", "Tunnel"):
        if len(rest) < 4:
            raise err("expected Forward Weight ActiveConn InActConn", words[-1])
        return RealServer(addr, port or 0, rest[0], _int(rest[1], err), _int(rest[2], err), _int(rest[3], err),
                          line=number)  # fmt: skip
    if listing == "persistent":
        if len(rest) < 4:
            raise err("expected Weight PersistConn ActiveConn InActConn", words[-1])
        w, pc, a, ina = (_int(x, err) for x in rest[:4])
        return RealServer(addr, port or 0, None, w, a, ina, pc, line=number)
    if listing == "thresholds":
        if len(rest) < 4:
            raise err("expected Uthreshold Lthreshold ActiveConn InActConn", words[-1])
        return RealServer(addr, port or 0, None, None, _int(rest[2], err), _int(rest[3], err),
                          stats=(("Uthreshold", rest[0]), ("Lthreshold", rest[1])), line=number)  # fmt: skip
    if listing in ("stats", "rate") or (listing is None and rest and _is_count(rest[0])):
        return RealServer(addr, port or 0, None, None, stats=_counters(rest, columns, err), line=number)
    raise err("expected Forward Weight ActiveConn InActConn after the real server", rest[0] if rest else None)


def _is_count(word: str) -> bool:
    return re.fullmatch(r"\d+[KMGT]?", word) is not None


def _counters(words: list[str], columns: list[str], err: Err
              ) -> tuple[tuple[str, str], ...]:  # fmt: skip
    names = columns or ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
    if len(words) != len(names) or not all(_is_count(w) for w in words):
        raise err(f"expected {len(names)} counters ({' '.join(names)})", words[0] if words else None)
    return tuple(zip(names, words, strict=True))


def counter_value(text: str) -> int:
    """An ipvsadm counter as a number (``12K`` is at least 12000: ipvsadm rounds down)."""
    if text[-1:] in _SUFFIX:
        return int(text[:-1]) * _SUFFIX[text[-1]]
    return int(text)
