"""No import cycles in kptui/: every import, at module level and inside functions, is an edge, and the graph
of kptui's modules has no cycle. So the engine never reaches up into the snapshot layer or the commands, the
model never into what is computed from it, and no command module into the dispatch above it.

What counts as an edge: ``import a.b``, ``from a import b`` (``a``, and ``a.b`` when it is a module), relative
imports, ``import_module("…")`` with a constant name, and the lazy-export tables of packages (a ``_HOME`` dict
whose values name the modules ``__getattr__`` imports). Imports under ``if TYPE_CHECKING:`` are left out: they
never run. A package's ``__init__`` is the module of the package's name; a submodule's implicit import of its
parent package is Python's doing, not an edge.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kptui"


def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")  # fmt: skip


def _resolve(package: str, level: int, module: str | None) -> str:
    base = package.split(".")
    if level > 1:
        base = base[: len(base) - (level - 1)]
    prefix = ".".join(base)
    return f"{prefix}.{module}" if module else prefix


def imports_of(name: str, path: Path, is_pkg: bool, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if is_pkg else name.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(package, node.level, node.module) if node.level else (node.module or "")
            targets = [mod, *(f"{mod}.{a.name}" for a in node.names)]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            text = node.args[0].value
            targets = [_resolve(package, 1, text[1:]) if text.startswith(".") else text]
        elif (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_HOME" for t in node.targets)
              and isinstance(node.value, ast.Dict)):
            for v in node.value.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    targets.append(v.value if v.value.startswith("kptui.") else f"{package}.{v.value}")
        found.update(t for t in targets if t in known and t != name)
    return found


@cache
def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, is_pkg, known) for name, (path, is_pkg) in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            nxt = next(todo, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def describe(graph: dict[str, set[str]], comp: list[str]) -> str:
    members = set(comp)
    return "; ".join(f"{m} → {', '.join(sorted(graph[m] & members))}" for m in comp)


def test_no_module_of_kptui_is_part_of_an_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 80 and graph["kptui.cli"]  # the walk sees every module, and their imports
    assert [describe(graph, c) for c in cycles(graph)] == []


def test_the_walk_sees_lazy_imports_and_finds_cycles() -> None:
    graph = import_graph()
    assert "kptui.engine.kube.build" in graph["kptui.engine.kube"]  # a _HOME table's lazy exports
    assert "kptui.node.snapshot" in graph["kptui.node.bundle"]  # an import inside a function
    assert "kptui.engine.kernel_replay_walks" not in graph["kptui.cli.explorer"]  # under TYPE_CHECKING only
    bad = {**graph, "kptui.engine.model": graph["kptui.engine.model"] | {"kptui.engine.graph"}}
    assert ["kptui.engine.graph", "kptui.engine.model"] in cycles(bad)


LAYERS = {  # a package → what it may import of kptui (besides itself)
    "kptui.engine": set(),
    "kptui.fmt": {"kptui.engine"},
    "kptui.top": {"kptui.engine", "kptui.fmt"},
    "kptui.live": set(),
    "kptui.forked": set(),
    "kptui.node": {"kptui", "kptui.engine", "kptui.fmt", "kptui.top", "kptui.live", "kptui.forked"},
    "kptui.ui": {"kptui.engine", "kptui.fmt", "kptui.top", "kptui.forked"},
    "kptui.cli": {"kptui", "kptui.engine", "kptui.fmt", "kptui.top", "kptui.live", "kptui.node", "kptui.ui",
                  "kptui.forked"},
}


def _layer(module: str) -> str:
    for name in sorted(LAYERS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return module


def test_each_layer_imports_only_the_layers_below_it() -> None:
    """docs/architecture.md's table: engine → snapshot → commands / explorer."""
    graph = import_graph()
    offenders = []
    for module, targets in graph.items():
        layer = _layer(module)
        allowed = LAYERS.get(layer)
        if allowed is None:
            continue
        offenders += [f"{module} → {t}" for t in sorted(targets) if _layer(t) != layer and _layer(t) not in allowed]
    assert offenders == []
