"""Small formatting helpers shared by the CLI reports and the UI (no I/O, no UI imports)."""

from __future__ import annotations

from kptui.engine.errors import printable

__all__ = ["human", "out_of_memory", "plural", "printable"]


def human(n: int) -> str:
    """Counters the way ``iptables -nvL`` shows them: exact up to 99999, then rounded 1000-based K/M/G/T."""
    if n <= 99999:
        return str(n)
    for unit in ("K", "M", "G", "T", "P"):
        n = (n + 500) // 1000
        if n <= 9999:
            return f"{n}{unit}"
    return f"{n}E"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def out_of_memory(what: str = "") -> str:
    """The message for running out of memory (a command, the explorer): never a traceback."""
    where = f" ({what})" if what else ""
    return (f"kptui: out of memory{where}: this input needs more memory than this machine (or its memory limit) "
            "gives; free memory, raise the limit, or give a smaller input (--max-input caps what is read)")


def parse_progress(done: int, total: int) -> str:
    """What the parse of a dump is doing: ``parsed 120,000 of 707,534 lines (17 %)``, then, the lines done,
    the checks that follow them (jumps, loops, unused chains)."""
    if done < total:
        return f"parsed {done:,} of {total:,} lines ({done * 100 // max(total, 1)} %), checking every rule …"
    return f"parsed all {total:,} lines; checking jumps, loops and unused chains …"
