"""What a value type of an iptables option is: :class:`VType` (its name, its check, its fast patterns), the
:class:`Bad` a check returns, the :data:`ANY` type, and :func:`parse_u32`, libxtables' number reader every
family's checks build on (:mod:`.values` gives every value type by one import; the families are there and in
:mod:`.values_addr` and :mod:`.values_port`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["ANY", "MAX_PARAM", "PLACEHOLDER", "Bad", "Checker", "VType", "parse_u32"]

PLACEHOLDER = "\x00"  # a value the parser blanked out of a rule's shape (NUL never survives into a rule)
MAX_PARAM = 1023  # iptables-restore's parameter buffer: "Parameter too long!"


class Bad(NamedTuple):
    message: str
    fatal: bool = True


Checker = Callable[[str, "int | None"], "Bad | None"]


@dataclass(frozen=True)
class VType:
    """One kind of argument: its name (for messages and docs), its check, and the fast patterns (for IPv4
    and IPv6 dumps; None: always checked as written)."""

    name: str
    check: Checker
    fast4: str | None = None
    fast6: str | None = None
    first4: str | None = None  # a character class every fast match starts with (lets the parser skip fast)
    first6: str | None = None

    def fast(self, family: int | None) -> str | None:
        """The fast pattern for ``family``'s dumps; for a dump whose family is not known, either family's."""
        if family == 6:
            return self.fast6
        if family == 4:
            return self.fast4
        if self.fast4 is None or self.fast6 is None or self.fast4 == self.fast6:
            return self.fast4 if self.fast4 == self.fast6 else None
        return f"(?:{self.fast4})|(?:{self.fast6})"

    def first(self, family: int | None) -> str | None:
        if family is None:
            return self.first4 if self.first4 == self.first6 else None
        return self.first6 if family == 6 else self.first4


def _ok(text: str, family: int | None) -> Bad | None:
    return None


ANY = VType("text", _ok)


# -- numbers ----------------------------------------------------------------------------------------------
_C_NUMBER = re.compile(r"\+?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")  # libxtables refuses a minus sign


def parse_u32(text: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int | None:
    """``xtables_strtoui(text, NULL, &v, lo, hi)``: ``strtoull`` base 0 (``0x…`` hex, ``0…`` octal), the
    whole text, within [lo, hi]; None otherwise."""
    if not _C_NUMBER.fullmatch(text):
        return None
    body = text.lstrip("+")
    value = int(body, 0) if body[:2] in ("0x", "0X") else int(body, 8) if body[0] == "0" else int(body)
    return value if lo <= value <= hi else None
