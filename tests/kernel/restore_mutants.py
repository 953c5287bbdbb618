"""Mutants of real rule lines for the differential test against iptables-restore (pure, seeded).

Each :class:`Mutant` is one sample's rule line changed in one way a damaged paste or a hand edit changes it:
a token deleted, duplicated or replaced by another option or word, a value replaced by an invalid one, the line
cut short, a chain, target or module name made too long, a ``!`` put where it may not go, an option
abbreviated, a quote dropped. :func:`mutants` draws a fixed, seeded sample of them from every bundled sample.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kptui.engine.lexer import tokenize

SAMPLES = Path(__file__).resolve().parent.parent.parent / "samples"
_COUNTERS = re.compile(r"^\[\d+:\d+\] ")

# (not --help or --version: iptables-restore prints its help and stops reading, exit status 0)
_WORDS = ("!", "-p", "-s", "-d", "-i", "-o", "-j", "-g", "-m", "--dport", "--sport", "--comment", "--ctstate",
          "--mark", "--to-destination", "--frobnicate", "-f", "tcp", "udp", "ACCEPT", "DROP", "KUBE-MARK-MASQ",
          "NEW,ESTABLISHED", "0x4000/0x4000", "80", "--syn", "-c", "--probability", "--dports", "--set-xmark",
          "--random-fully", "comment", "conntrack", "statistic", "--mode", "random", "--name", "--rcheck",
          "--seconds", "--reject-with", "icmp-port-unreachable", "LOCAL", "--dst-type", "-t", "-v",
          "--to-ports", "--", "-x", "--table", "--src-type", "--tcp-flags")  # fmt: skip
_BAD_VALUES = ("999.1.1.1", "x.x.x.x", "10.0.0.0/33", "1.2.3.4.5", "09.1.1.1", "fd00::1", "10.0.0.1/255.0.255.0",
               "99999", "-1", "0x", "080", "0x50", "90:80", "80:", ":80", "1.5", "2", "-0.5", "nan", "0x1FFFFFFFF",
               "BOGUS", "new", "NEW,BOGUS", "est", "", "a b", "localhost", "10", "1.2.65535", "16909060",
               "http", "ssh:http", "no-such-service", "0.33333", "1e-1", "ALL", "NONE", "SYN,ACK,FOO",
               "icmp-foo", "tcp-reset", "port-unr", "LOCAL,UNICAST", "local", "UNKNOWN", "255.255.255.255",
               "10.0.0.1:70000", "10.0.0.1-10.0.0.9:80-90", "[fd00::1]:80", ":8080", "10.0.0.1:http")  # fmt: skip


@dataclass(frozen=True)
class Mutant:
    sample: str  # the sample file's stem
    family: int
    table: str
    line: int  # the line in the sample it replaces (1-based)
    original: str  # the rule line without its counters
    text: str  # the mutated line
    how: str  # which mutation

    def dump(self) -> str:
        """The whole sample with this line changed (what kptui is given)."""
        lines = (SAMPLES / f"{self.sample}.rules").read_text().split("\n")
        lines[self.line - 1] = self.text
        return "\n".join(lines)


def _rule_lines(text: str) -> Iterator[tuple[int, str, str]]:
    table = ""
    for n, line in enumerate(text.split("\n"), 1):
        if line.startswith("*"):
            table = line[1:]
        body = _COUNTERS.sub("", line)
        if body.startswith("-A "):
            yield n, table, body


def _spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of each token in the original text (quotes included)."""
    out = []
    toks = tokenize(line)
    for i, t in enumerate(toks):
        end = toks[i + 1].column if i + 1 < len(toks) else len(line)
        out.append((t.column, len(line[:end].rstrip())))
    return out


def _mutate(rng: random.Random, line: str) -> tuple[str, str]:
    spans = _spans(line)
    if len(spans) < 3:
        return line + " --frobnicate 1", "append unknown option"
    i = rng.randrange(2, len(spans))
    a, b = spans[i]
    tok = line[a:b]
    kind = rng.choice(("delete", "duplicate", "retype", "bad value", "truncate", "long name", "bang",
                       "abbreviate", "quote", "duplicate option", "bad value", "retype"))  # fmt: skip
    if kind == "delete":
        return (line[:a] + line[b:]).replace("  ", " ").rstrip(), f"delete token {tok!r}"
    if kind == "duplicate":
        return line[:b] + " " + tok + line[b:], f"duplicate token {tok!r}"
    if kind == "retype":
        new = rng.choice(_WORDS)
        return line[:a] + new + line[b:], f"retype {tok!r} as {new!r}"
    if kind == "bad value":
        values = [j for j in range(2, len(spans)) if not line[spans[j][0]:spans[j][1]].startswith("-")]
        j = rng.choice(values) if values else i
        a, b = spans[j]
        new = rng.choice(_BAD_VALUES)
        quoted = f'"{new}"' if " " in new or not new else new
        return line[:a] + quoted + line[b:], f"value {line[a:b]!r} as {new!r}"
    if kind == "truncate":
        cut = rng.randrange(spans[1][1] + 1, len(line))
        return line[:cut].rstrip(), f"cut at column {cut}"
    if kind == "long name":
        which = rng.choice(("chain", "target", "module", "comment", "list"))
        if which == "chain":
            s, e = spans[1]
            return line[:s] + "KUBE-" + "X" * rng.randrange(24, 40) + line[e:], "long chain name"
        if which == "comment":
            return line + ' -m comment --comment "' + "c" * rng.choice((1023, 1024, 1500)) + '"', "long comment"
        flag = {"target": "-j", "module": "-m", "list": "--name"}[which]
        toks = [t.text for t in tokenize(line)]
        if flag in toks:
            k = toks.index(flag) + 1
            if k < len(spans):
                s, e = spans[k]
                return line[:s] + "L" * rng.randrange(27, 33) + line[e:], f"long {which} name"
        return line + f" {flag} " + "L" * rng.randrange(27, 33), f"long {which} name appended"
    if kind == "bang":
        return line[:a] + "! " + line[a:], f"'!' before {tok!r}"
    if kind == "abbreviate":
        longs = [j for j in range(2, len(spans)) if line[spans[j][0]:spans[j][1]].startswith("--")]
        if longs:
            a, b = spans[rng.choice(longs)]
            cut = rng.randrange(3, max(4, b - a))
            return line[:a] + line[a:a + cut] + line[b:], f"abbreviate {line[a:b]!r} to {line[a:a + cut]!r}"
        return line + " --comm x", "abbreviated --comment appended"
    if kind == "quote":
        if '"' in line:
            k = line.rfind('"')
            return line[:k] + line[k + 1:], "closing quote removed"
        return line[:a] + "'" + line[a:b] + "'" + line[b:], f"single quotes around {tok!r}"
    # duplicate option: the option token and its value(s) again
    opts = [j for j in range(2, len(spans)) if line[spans[j][0]:spans[j][1]].startswith("-")]
    j = rng.choice(opts) if opts else i
    end = spans[j + 1][1] if j + 1 < len(spans) and not line[spans[j + 1][0]:spans[j + 1][1]].startswith("-") \
        else spans[j][1]  # fmt: skip
    part = line[spans[j][0]:end]
    return line + " " + part, f"option {part!r} given twice"


def mutants(per_sample: int = 60, seed: int = 14) -> list[Mutant]:
    """A fixed, seeded sample: ``per_sample`` mutants of each bundled sample's rule lines."""
    rng = random.Random(seed)
    out: list[Mutant] = []
    for path in sorted(SAMPLES.glob("*.rules")):
        text = path.read_text()
        family = 6 if "ip6tables" in text.split("\n", 1)[0] else 4
        rules = list(_rule_lines(text))
        seen: set[str] = set()
        for _ in range(per_sample * 3):
            if len([m for m in out if m.sample == path.stem]) >= per_sample:
                break
            n, table, body = rng.choice(rules)
            text2, how = _mutate(rng, body)
            if text2 == body or text2 in seen or "\n" in text2:
                continue
            seen.add(text2)
            out.append(Mutant(path.stem, family, table, n, body, text2, how))
    return out


def table_header(sample: str, table: str) -> list[str]:
    """The ``*table`` line and chain declarations of one table of a sample (what a mutant needs around it)."""
    out: list[str] = []
    inside = False
    for line in (SAMPLES / f"{sample}.rules").read_text().split("\n"):
        if line == f"*{table}":
            inside = True
            out.append(line)
        elif inside and line.startswith(":"):
            out.append(re.sub(r"\[\d+:\d+\]$", "[0:0]", line))
        elif inside and line == "COMMIT":
            break
    return out
