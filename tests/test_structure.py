"""The tree's shape: the package's layers and their one-way dependencies (docs/design.md, "The
package's layers"), no import circles between modules or packages, no module past ~400 lines,
no file that points outside the repository (a clone must hold every document it refers to), and
no import that changes process-wide state."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

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


# Low to high: a module may import its own layer and the layers below it, never above. The
# commands (the top) import libraries, never each other.
LAYERS = (
    ("hsnet_jax", "hsnet_jax.errors", "hsnet_jax.config"),
    ("hsnet_jax.runtime",),
    ("hsnet_jax.models",),
    ("hsnet_jax.faces",),
    ("hsnet_jax.data",),
    ("hsnet_jax.inference",),
    ("hsnet_jax.training",),
    ("hsnet_jax.serving",),
)
COMMANDS = "commands"


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, unit): the unit is the subpackage, or the module itself for the bottom
    modules and the commands (top-level modules above every layer)."""
    for i, units in enumerate(LAYERS):
        for unit in units:
            if module == unit or (unit != "hsnet_jax" and module.startswith(unit + ".")):
                return i, unit
    return len(LAYERS), module


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The import graph between units (subpackages, bottom modules, commands)."""
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        unit = layer_of(module)[1]
        units.setdefault(unit, set()).update(layer_of(t)[1] for t in targets if layer_of(t)[1] != unit)
    return units


def test_no_import_cycles():
    graph = import_graph()
    assert "hsnet_jax.models" in graph["hsnet_jax.inference.evaluation"]  # imports in the module body
    assert "hsnet_jax.inference.evaluation" in graph["hsnet_jax.training.loop"]  # and inside functions
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)
    cycle = find_cycle(package_graph(graph))
    assert cycle is None, "import circle between packages: " + " -> ".join(cycle)


def test_dependencies_point_down_the_layers():
    graph = import_graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        level, unit = layer_of(module)
        for target in sorted(targets):
            target_level, target_unit = layer_of(target)
            if target_level > level or (level == len(LAYERS) and target_level == level and target_unit != unit):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layers (docs/design.md):\n" + "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_import():
    assert layer_of("hsnet_jax.runtime.cli") == (1, "hsnet_jax.runtime")
    assert layer_of("hsnet_jax.train") == (len(LAYERS), "hsnet_jax.train")
    assert find_cycle(package_graph({"hsnet_jax.data.a": {"hsnet_jax.training.b"},
                                     "hsnet_jax.training.b": {"hsnet_jax.data.c"},
                                     "hsnet_jax.data.c": set()})) is not None


def test_importing_any_module_changes_no_process_state():
    """Signal handlers, logging filters and handlers, and the interpreter's hooks are the same
    after importing every module of the package as before (a command sets what it needs when it
    starts, scoped to what it owns)."""
    out = subprocess.run([sys.executable, "-m", "tests.programs.import_everything"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.strip().endswith("no process state changed"), out.stdout[-3000:]


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
