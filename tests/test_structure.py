"""The tree's shape: no import circles in hsnet_jax, no module past ~400 lines, and no file that
points outside the repository (a clone must hold every document it refers to)."""

from __future__ import annotations

import ast
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 400
# Modules allowed over MAX_LINES (none: split a module that grows past it).
OVER_LIMIT: set[str] = set()


def _modules(package: str) -> dict[str, str]:
    """Dotted module name -> file path for every .py under `package` (a package is its __init__)."""
    modules = {}
    for dirpath, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, name), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                modules[".".join(rel)] = os.path.join(dirpath, name)
    return modules


def import_graph(package: str = "hsnet_jax") -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (functions included).
    `from P import name` counts as importing P.name when that is a module, else P."""
    modules = _modules(package)
    graph = {}
    for module, path in modules.items():
        is_package = path.endswith("__init__.py")
        edges = set()
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a non-module c
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    graph = import_graph()
    assert "hsnet_jax.models" in graph["hsnet_jax.evaluate"]  # imports in the module body
    assert "hsnet_jax.evaluate" in graph["hsnet_jax.train"]  # and inside functions are seen
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_find_cycle_reports_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_the_limit():
    too_long = []
    for package in ("hsnet_jax", "convert", "benchmarks"):
        for path in _modules(package).values():
            rel = os.path.relpath(path, ROOT)
            with open(path) as f:
                lines = sum(1 for _ in f)
            if lines > MAX_LINES and rel not in OVER_LIMIT:
                too_long.append(f"{rel}: {lines} lines")
    assert not too_long, f"modules over {MAX_LINES} lines (split them): {too_long}"


def test_no_reference_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    # Spelt in two halves so this file does not match itself.
    needles = ("../" + "shared", "ARCHITECTURE" + ".md")
    hits = []
    for rel in files:
        try:
            with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    hits += [f"{rel}:{number}: {needle}" for needle in needles if needle in line]
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
    assert not hits, "references to documents outside the repository (use docs/design.md):\n" + "\n".join(hits)
