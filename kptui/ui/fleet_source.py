"""What the fleet screen shows: the nodes a ``kptui fleet capture`` directory (or several bundles) holds, read by
the command layer into :class:`~kptui.engine.kube.fleet_model.NodeParts`, compared once
(:func:`~kptui.engine.kube.fleet.compare_fleet`) and laid out as the nodes × services table
(:func:`~kptui.engine.kube.fleet_matrix.fleet_matrix`). Pure values: the screen reads no file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kptui.engine.kube.fleet import compare_fleet
from kptui.engine.kube.fleet_matrix import FleetMatrix, fleet_matrix
from kptui.engine.kube.fleet_model import FleetReport, NodeParts
from kptui.engine.kube.fleet_node import fleet_node

__all__ = ["FleetSource", "fleet_source"]


@dataclass(frozen=True)
class FleetSource:
    source: str  # the directory (or the bundles) it came from, for the header
    parts: tuple[NodeParts, ...]  # per node, in the matrix's column order
    report: FleetReport
    matrix: FleetMatrix

    def part(self, node: str) -> NodeParts | None:
        return next((p for p in self.parts if p.name == node), None)


def fleet_source(parts: Sequence[NodeParts], source: str) -> FleetSource:
    """``parts`` compared: the report and its table."""
    report = compare_fleet([fleet_node(p) for p in parts])
    by_name = {p.name: p for p in parts}
    ordered = tuple(by_name[n.name] for n in report.nodes if n.name in by_name)
    return FleetSource(source, ordered, report, fleet_matrix(report))
