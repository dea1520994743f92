"""The house's shape, read from the code's imports (ast): layers only import downwards and no
module import cycle exists. Type-only imports (under ``if TYPE_CHECKING:``) do not count, and
a package's ``__main__`` is an entry point that may import the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("healthmate", "streams", "batch", "web")
#: What each layer must never import (the composition root sits above all three).
FORBIDDEN = {"streams": {"batch", "web", "healthmate"}, "batch": {"web", "healthmate"},
             "web": {"healthmate"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every project module or name that ``source`` (module ``module``) imports at run time."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()

    def visit(node: ast.AST, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            guarded = type_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import) and not type_only:
                names.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and not type_only:
                base = child.module or ""
                if child.level:
                    anchor = package[: len(package) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                names.add(base)
                names.update(f"{base}.{a.name}" for a in child.names)
            visit(child, guarded if isinstance(child, ast.If) else type_only)

    visit(ast.parse(source), False)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets = set()
        source = path.read_text(encoding="utf-8")
        for name in imported_names(source, module, is_package=path.name == "__init__.py"):
            while name and name not in paths:  # a name inside a module: its module
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def layer_breaches(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                  if t.split(".")[0] in FORBIDDEN.get(m.split(".")[0], set()) and not m.endswith("__main__"))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_layers_only_import_downwards() -> None:
    assert layer_breaches(import_graph()) == []


def test_no_module_import_cycle() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(("graph", "breaches", "cycle_count"), [
    ({"streams.a": {"web.b"}, "web.b": set()}, ["streams.a -> web.b"], 0),
    ({"batch.x": {"batch.y"}, "batch.y": {"batch.x"}}, [], 1),
    ({"streams.__main__": {"healthmate.worker"}, "healthmate.worker": {"streams.a"}, "streams.a": set()},
     [], 0),
])
def test_the_checks_see_breaches_and_cycles(graph: dict[str, set[str]], breaches: list[str],
                                            cycle_count: int) -> None:
    assert layer_breaches(graph) == breaches
    assert len(cycles(graph)) == cycle_count


def test_type_only_imports_do_not_count() -> None:
    source = ("from typing import TYPE_CHECKING\nimport web.api\nfrom . import errors\n"
              "if TYPE_CHECKING:\n    from healthmate.worker import WorkerServices\n")
    assert imported_names(source, "web.views") == {"web.api", "web", "web.errors"}
