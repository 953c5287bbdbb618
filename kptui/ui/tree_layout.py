"""How a table's chains are laid out in the tree, so that a 55,000-chain nat table stays browsable.

A table with few chains shows them all. A big one shows its named chains (built-ins, KUBE-SERVICES, …)
directly and groups kube-proxy's hashed chains by kind (``KUBE-SEP-* (50000 chains)``; in nftables mode
``endpoint-* (50000 chains)``, ``service-*``, …, and the ``@affinity-*`` sets), in pages of
:data:`PAGE` chains (and folders of :data:`FOLDER` pages). Nothing here touches a widget: the layout is data, and the tree fills nodes from it
lazily.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple, TypeAlias

from .locs import Loc

__all__ = ["FOLDER", "GROUP_AT", "PAGE", "Entry", "Group", "arrange", "flatten", "paths"]

GROUP_AT = 300  # a table with more chains than this groups its hashed chains
PAGE = 100  # chains per page inside a group
FOLDER = 100  # pages per folder, when a group has more pages than this
MIN_GROUP = 8  # fewer hashed chains of one kind than this stay ungrouped

_HASHED = re.compile(r"^(.+?-)[A-Z0-9]{16}$|^(@?(?:service|local|external|firewall|endpoint|affinity)-)[A-Z2-7]{8}-")

Entry: TypeAlias = "tuple[str, tuple[int, ...] | None]"  # chain name, None (all rules) or shown rule indices


class Group(NamedTuple):
    label: str  # made of chain names as dumped: untrusted, escaped (printable) where it is shown
    items: list[Entry | Group]


def _pages(prefix: str, entries: Sequence[Entry]) -> list[Entry | Group]:
    """``entries`` in pages of PAGE chains; more than FOLDER pages go in folders of FOLDER pages (a 150,000-chain
    group: 15 folders of 100 pages), so that opening any node, or revealing one chain, makes at most about
    FOLDER + PAGE nodes (a node and its label cost about 2.5 KB and 0.1 ms)."""
    if len(entries) <= PAGE:
        return list(entries)
    pages: list[Entry | Group] = []
    for start in range(0, len(entries), PAGE):
        part = list(entries[start:start + PAGE])
        pages.append(Group(f"{start + 1}–{start + len(part)}  {part[0][0]} … {part[-1][0]}", list(part)))
    if len(pages) <= FOLDER:
        return pages
    folders: list[Entry | Group] = []
    for at in range(0, len(pages), FOLDER):
        start, stop = at * PAGE, min(len(entries), (at + FOLDER) * PAGE)
        folders.append(Group(f"{start + 1}–{stop}  {entries[start][0]} … {entries[stop - 1][0]}",
                             pages[at:at + FOLDER]))  # fmt: skip
    return folders


def arrange(entries: Sequence[Entry]) -> list[Entry | Group]:
    if len(entries) <= GROUP_AT:
        return list(entries)
    flat: list[Entry | Group] = []
    by_prefix: dict[str, list[Entry]] = {}
    for entry in entries:
        m = _HASHED.match(entry[0])
        if m is None:
            flat.append(entry)
        else:
            by_prefix.setdefault(m.group(1) or m.group(2), []).append(entry)
    for prefix, group in by_prefix.items():
        if len(group) < MIN_GROUP:
            flat.extend(group)
        else:
            flat.append(Group(f"{prefix}* ({len(group)} chains)", _pages(prefix, group)))
    return flat


def flatten(items: Sequence[Entry | Group]) -> Iterator[Entry]:
    """Entries in display order."""
    for item in items:
        if isinstance(item, Group):
            yield from flatten(item.items)
        else:
            yield item


def paths(items: Sequence[Entry | Group], prefix: tuple[Group, ...] = ()) -> Iterator[tuple[str, tuple[Group, ...]]]:
    """(chain name, the groups that hold it, outermost first) for every chain."""
    for item in items:
        if isinstance(item, Group):
            yield from paths(item.items, (*prefix, item))
        else:
            yield item[0], prefix


def matches_in_order(table: str | None, items: Sequence[Entry | Group]) -> Iterator[Loc]:
    for chain, shown in flatten(items):
        if shown is None:
            yield Loc(table, chain)
        else:
            for i in shown:
                yield Loc(table, chain, i)
