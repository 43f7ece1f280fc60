"""The import graph of ``lamina``, imports inside functions included: no cycle, and every import points down the
documented layer order (the README's "Layout" section lists the same layers).

A module belongs to the layer of the longest prefix that names it below; a module in no layer fails the test, so a
new module is placed (and documented) on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lamina"

# Top to bottom: a module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("lamina.cli", "lamina.__main__")),
    ("faces", ("lamina.compare", "lamina.serve", "lamina.recommend.commands", "lamina.recommend.__main__",
               "lamina.tune", "lamina.sklearn", "lamina.api", "lamina.identity")),
    ("report", ("lamina.report",)),
    ("work", ("lamina.run", "lamina.training", "lamina.tasks", "lamina.evaluate", "lamina.explain", "lamina.export",
              "lamina.probes", "lamina.recommend", "lamina.folds", "lamina.ranking.fit", "lamina.ranking.task",
              "lamina.anomaly.fit", "lamina.anomaly.task")),
    ("store", ("lamina.store",)),
    ("flow", ("lamina.predictor", "lamina.preprocessor", "lamina.data", "lamina.config", "lamina.model",
              "lamina.hidden", "lamina.infer", "lamina.sizing", "lamina.checkpoint", "lamina.distributed", "lamina.buckets",
              "lamina.progress", "lamina.ranking", "lamina.ensemble", "lamina.anomaly")),
    ("types", ("lamina.inputs", "lamina.outputs")),
    ("base", ("lamina", "lamina.errors", "lamina.registry", "lamina.logs", "lamina.plots", "lamina.pages",
              "lamina.budget", "lamina.schema")),
]

def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    """Module → the modules it imports (the deepest module each import names, as Python resolves it)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for me, path in paths.items():
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # every import, at any depth
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in paths:
                    name = name.rpartition(".")[0]
                # A package's __init__ re-exporting its children is not a cycle of design: a child's import of
                # its own parent package (``from lamina.inputs import text_pretrained``) is left out.
                if name and name != me and not me.startswith(name + "."):
                    found.add(name)
        edges[me] = found
    return edges


def layer(module: str) -> int:
    best, at = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or (prefix != "lamina" and module.startswith(prefix + "."))) and len(prefix) > best:
                best, at = len(prefix), i
    if at is None:
        raise AssertionError(f"module {module} is in no layer: add it to LAYERS here and to the README's layout")
    return at


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in edges.items() for b in targets if layer(b) < layer(a))


def test_the_graph_sees_function_level_imports() -> None:
    edges = graph()
    assert "lamina.store" in edges["lamina.explain.command"]  # `from lamina.store import load` inside explain()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_has_a_layer() -> None:
    for module in graph():
        layer(module)


def test_no_cycle_and_imports_point_down() -> None:
    edges = graph()
    assert not upward(edges), f"imports against the layer order: {upward(edges)}"
    assert not cycles(edges), f"import cycles: {cycles(edges)}"
