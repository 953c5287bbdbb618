"""Targets: what a matched rule does to the packet and to the walk.

:func:`apply_target` returns an :class:`Effect`: the verdict word a hop shows (ACCEPT, DROP, DNAT, CONTINUE,
…), how the walk goes on (``flow``: continue with the next rule, stop this table, end the packet, return,
jump or goto), and the new packet state. Each target is a unit in :mod:`kptui.engine.xt` (its option set, its
apply function), dispatched by name (:mod:`kptui.engine.xt.registry`).
"""

from __future__ import annotations

from .flow import Effect
from .xt.compile import apply_target
from .xt.targets.mark import mark_op

__all__ = ["Effect", "apply_target", "mark_op"]
