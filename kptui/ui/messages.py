"""The typed messages panes post upwards; :class:`~kptui.ui.main_screen.MainScreen` handles them all.

Panes never call each other: the chain tree says what is highlighted, the detail pane asks to navigate, the
packet builder asks for a trace, the trace view says which hop is current. The screen decides what follows.
"""

from __future__ import annotations

from textual.message import Message

from kptui.engine.packet import NodeContext, Packet
from kptui.engine.trace_model import Hop, Trace

from .locs import Loc

__all__ = ["ChainHighlighted", "FleetCellHighlighted", "FleetTraceRequested", "NavigateRequested",
           "NodeOpenRequested", "RuleHighlighted", "StepChanged", "TraceRequested"]


class RuleHighlighted(Message):
    """The chain tree's cursor is on a rule."""

    def __init__(self, loc: Loc) -> None:
        self.loc = loc
        super().__init__()


class ChainHighlighted(Message):
    """The chain tree's cursor is on a chain (or a table: ``loc.chain`` is None)."""

    def __init__(self, loc: Loc) -> None:
        self.loc = loc
        super().__init__()


class NavigateRequested(Message):
    """Show this chain or rule in the tree (from a link in the detail pane, a command, …)."""

    def __init__(self, loc: Loc, *, history: bool = True) -> None:
        self.loc = loc
        self.history = history
        super().__init__()


class TraceRequested(Message):
    """The packet builder holds a valid packet and the user asked for its trace."""

    def __init__(self, packet: Packet, node: NodeContext) -> None:
        self.packet = packet
        self.node = node
        super().__init__()


class StepChanged(Message):
    """The trace view's current hop changed: ``position`` in the visible hops, ``hop`` itself."""

    def __init__(self, trace: Trace, path_index: int, position: int, hop: Hop) -> None:
        self.trace = trace
        self.path_index = path_index
        self.position = position
        self.hop = hop
        super().__init__()

    @property
    def loc(self) -> Loc:
        return Loc(self.hop.table, self.hop.chain, self.hop.index)


# -- the fleet screen's panes (kptui/ui/fleet_screen.py handles these) --------------------------------------
class FleetCellHighlighted(Message):
    """The fleet table's cursor is on a service port (``key``; None: no row) and a node (None: the service
    column), or the node list's on a node (``key`` None)."""

    def __init__(self, key: str | None, node: str | None) -> None:
        self.key = key
        self.node = node
        super().__init__()


class NodeOpenRequested(Message):
    """Open this node's explorer (enter on a node, a cell or a node's trace outcome; ``packet``: trace it)."""

    def __init__(self, node: str, packet: Packet | None = None) -> None:
        self.node = node
        self.packet = packet
        super().__init__()


class FleetTraceRequested(Message):
    """The fleet trace form holds a packet: trace it on every node (``dst``/``src`` "node": each node's own
    address of the packet's family)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__()
