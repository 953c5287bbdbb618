"""What people paste around a dump: shell prompts and command lines, elision marks, pager and Markdown
decorations. Pure recognisers; the parser (:mod:`.structure`) decides what to do with each line.

- :func:`command_line` reads a prompt or command line (``[root@node ~]# iptables-save``, ``root@k8s:~$ sudo
  iptables -t nat -S``, ``$ ip6tables -S``, ``kubectl exec … -- iptables-save``) and says what output follows:
  the family, the form (save or ``-S``), the table ``-S`` lists (``-t`` or filter), whether the output was cut
  or filtered (``| grep KUBE``, ``| head``).
- :func:`decoration` tells an elision line (``...``, ``…``, ``[...]``, ``<snip>``, ``... 1234 more lines``)
  from a pager or Markdown line (``--More--``, ``(END)``, a code fence).
"""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

__all__ = ["Command", "command_line", "decoration", "listing_header"]

_PROMPT = re.compile(
    r"""^(?:\([\w.-]+\)\s+)?                                              # (venv)
         (?:(?:\[[^\]\n]{1,80}\]|[\w.@-]{1,64}(?::[^\s$#%>]{0,80})?)(?:\s+[~/][^\s$#%>]*)?\s*[$#%]  # user@host:~$
           |[$#%>])                                                       # a bare $, #, % or >
         \s*(?P<cmd>\S.*)?$""",
    re.VERBOSE,
)
_TOOLS = r"(?:ip6?tables(?:-nft|-legacy)?(?:-save)?|ip6?tables-(?:nft-|legacy-)?save|iptables-restore|kptui)"
_BARE = re.compile(rf"^(?:(?:sudo|doas)\s+(?:-\S+\s+)*)?(?:\S*/)?(?:{_TOOLS}|kubectl|oc|crictl|docker|nerdctl|ssh"
                   r"|minikube|kind|nsenter|chroot|ip\s+netns|talosctl|k3s|microk8s|cat|less|more|zcat)\b")
_IPT = re.compile(r"(?:^|[\s/;|&(`'\"])(ip6?tables)(?:-nft|-legacy)?(-save)?(?=$|[\s;|&)`'\"])")
_FILTERS = re.compile(r"\|\s*(?:grep|egrep|fgrep|rg|head|tail|sed|awk|cut|sort|uniq)\b")
_ELISION = re.compile(
    r"""^\s*(?:\.{3,}|…+|\[\s*(?:\.{3}|…)\s*\]|\(\s*(?:\.{3}|…)\s*\)|<\s*(?:snip|snipped|cut|\.{3}|…)\s*>
         |\[\s*(?:snip|snipped|cut|truncated)\s*\]|-{2,}\s*snip\s*-{2,}|[#>]?\s*(?:\.{3}|…)\s*(?:\(?[\w ,.'-]*\)?)?
         |(?:\.{3}|…)?\s*\(?\d[\d,]*\s+more\s+(?:lines|rules)\b.*)\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_DECOR = re.compile(r"^\s*(?:--More--\s*(?:\(\d+%\))?|\(END\)|```[\w+-]*|~~~[\w+-]*|lines \d+-\d+(?:/\d+)?(?: \(END\))?"
                    r"|Press RETURN.*)\s*$", re.IGNORECASE)  # fmt: skip
_LISTING = re.compile(r"^\s*Chain \S+ \((?:policy \S+|\d+ references)")


class Command(NamedTuple):
    """What a command line says about the output after it."""

    text: str  # the command, as typed
    iptables: bool  # an iptables tool runs (the output is rules)
    family: str | None  # "ipv4" / "ipv6" for an iptables tool
    form: str | None  # "save" (iptables-save), "spec" (-S), "list" (-L), None otherwise
    table: str | None  # the table -S lists (-t TABLE, else filter)
    filtered: str | None  # "| grep …": the output holds only some lines
    chain: str | None  # -S CHAIN: one chain only


def command_line(line: str) -> Command | None:
    """The command of a prompt or command line, or None when ``line`` is neither."""
    s = line.strip()
    m = _PROMPT.match(s)
    if m:
        cmd = m.group("cmd") or ""
        if s.startswith("#") and not _BARE.match(cmd):  # a comment of the save format, not a root prompt
            return None
    elif _BARE.match(s):
        cmd = s
    else:
        return None
    ipt = _IPT.search(cmd)
    filtered = _FILTERS.search(cmd)
    if not ipt:
        return Command(cmd, False, None, None, None, filtered.group() if filtered else None, None)
    family = "ipv6" if ipt.group(1) == "ip6tables" else "ipv4"
    rest = cmd[ipt.end():].split("|")[0]
    try:
        words = shlex.split(rest)
    except ValueError:
        words = rest.split()
    table = chain = None
    form: str | None = "save" if ipt.group(2) else None
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("-t", "--table") and i + 1 < len(words):
            table, i = words[i + 1], i + 1
        elif w.startswith("--table="):
            table = w.split("=", 1)[1]
        elif w.startswith("-t") and len(w) > 2 and not w.startswith("--"):
            table = w[2:]
        elif w in ("-S", "--list-rules") or (w.startswith("-") and not w.startswith("--") and "S" in w[1:]):
            form = "spec" if form != "save" else form
            if i + 1 < len(words) and not words[i + 1].startswith("-"):
                chain, i = words[i + 1], i + 1
        elif w in ("-L", "--list") or (w.startswith("-") and not w.startswith("--") and "L" in w[1:]):
            form = "list" if form != "save" else form
        i += 1
    if form == "spec" and table is None:
        table = "filter"  # iptables -S without -t lists the filter table
    return Command(cmd, True, family, form, table, filtered.group() if filtered else None, chain)


def decoration(line: str) -> str | None:
    """``"elision"`` for a line that stands for left-out lines, ``"decoration"`` for a pager or Markdown line,
    None for anything else."""
    if _DECOR.match(line):
        return "decoration"
    if _ELISION.match(line) and ("." in line or "…" in line or re.search(r"snip|cut|truncat|more", line, re.IGNORECASE)):
        return "elision"
    return None


def listing_header(line: str) -> bool:
    """``Chain INPUT (policy ACCEPT)``: the first line of ``iptables -L`` output, which kptui does not read."""
    return _LISTING.match(line) is not None
