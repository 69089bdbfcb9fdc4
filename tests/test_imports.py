"""The import structure of toolkit/ and baselines/, read with `ast` (nothing is imported).

Every import counts: module-level and function-level statements, relative ones, and
``importlib.import_module("...")`` / ``__import__("...")`` calls with a literal name. Checked:
no import cycle between modules; imports only go down (or across) the floors in `FLOORS`;
inference (the harness, reports, `toolkit animate`, every registered method) never reaches the
training package; and no string in toolkit/ names a ``baselines.`` module (the toolkit finds its
methods as plug-ins). What cannot be fixed yet is listed in `KNOWN_VIOLATIONS`, which can only
shrink: a listed violation that no longer exists fails too.
"""

from __future__ import annotations

import ast
import functools
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("toolkit", "baselines")

# Lowest first. A module may import its own floor and those below, never one above. A module sits on the floor
# of the longest prefix naming it ("toolkit" names the package's own __init__ only).
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("toolkit", "toolkit.paths", "toolkit.io", "toolkit.video", "toolkit.keypoints", "toolkit.plugins",
              "toolkit.safe_pickle", "toolkit.ray_executor", "toolkit.weights", "toolkit.package")),
    ("sources", ("toolkit.shards", "toolkit.sources", "toolkit.annotate")),
    ("blocks", ("toolkit.conditions", "toolkit.data", "toolkit.metrics", "toolkit.models")),
    ("harness", ("toolkit.harness",)),
    ("train", ("toolkit.train",)),
    ("applications", ("toolkit.report", "toolkit.prepare", "toolkit.animate")),
    ("cli", ("toolkit.cli", "toolkit.__main__")),
    ("methods", ("baselines",)),
]

# The modules that run a method rather than train one; with every registered method's module (pyproject.toml),
# nothing they import, directly or not, may be in the training package.
INFERENCE = ("toolkit.harness", "toolkit.report", "toolkit.animate", "toolkit.cli.animate", "toolkit.cli.evaluate",
             "toolkit.cli.leaderboard")
TRAINING = "toolkit.train"

# Violations not fixed yet (issue #25, item 1). Each is "importer -> imported" (a floor broken) or
# "module names baselines.X" (a string naming a method's module).
KNOWN_VIOLATIONS: set[str] = set()

_BASELINES_NAME = re.compile(r"(?<![\w./-])baselines(?:\.[A-Za-z_]\w*)+")


@functools.cache
def _modules() -> dict[str, Path]:
    """Module name -> source file, for every module of the two packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


@functools.cache
def _trees() -> dict[str, ast.Module]:
    """Module name -> its parsed source."""
    return {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in _modules().items()}


def _ours(name: str) -> str | None:
    """The module of ours that importing `name` loads (an attribute's module), or None for another package's."""
    modules = _modules()
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_names(module: str, tree: ast.Module) -> set[str]:
    """The dotted names `module` imports anywhere in its source (relative imports made absolute)."""
    package = module if _modules()[module].name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                # `from pkg import mod` loads pkg.mod; `from mod import attr` loads mod
                names.add(f"{base}.{alias.name}" if _ours(f"{base}.{alias.name}") != _ours(base) else base)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__"):
                names.add(node.args[0].value)
    return names


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module -> the modules of ours it imports."""
    graph = {}
    for module, tree in _trees().items():
        targets = {_ours(name) for name in imported_names(module, tree)}
        graph[module] = frozenset(t for t in targets if t is not None and t != module)
    return graph


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def floor(module: str) -> int | None:
    """The index in FLOORS of the module's floor (None when no prefix places it)."""
    best: tuple[int, int] | None = None
    for number, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if module == prefix or (module.startswith(prefix + ".") and prefix != "toolkit"):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), number)
    return None if best is None else best[1]


def floor_violations() -> set[str]:
    """ "importer -> imported" for each import up a floor."""
    graph = import_graph()
    return {f"{a} -> {b}" for a, targets in graph.items() for b in targets
            if None not in (floor(a), floor(b)) and floor(b) > floor(a)}


def baselines_names() -> set[str]:
    """For each string constant (docstrings too) of toolkit/ naming a method's module: "module names baselines.X"."""
    out = set()
    for module, tree in _trees().items():
        if module.split(".")[0] != "toolkit":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.update(f"{module} names {m}" for m in _BASELINES_NAME.findall(node.value))
    return out


def _reached(starts: list[str]) -> set[str]:
    """Every module loaded by importing `starts`: what they import, directly or not, and the packages above."""
    graph, seen, todo = import_graph(), set(), list(starts)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parent = module.rpartition(".")[0]
        todo.extend([*graph[module], *([parent] if parent else [])])
    return seen


def test_the_graph_sees_module_level_function_level_relative_and_literal_imports() -> None:
    source = ("from . import io\nfrom .harness import runner as r\nimport toolkit.video\n"
              "def f():\n    from toolkit.report.board import Leaderboard\n"
              "    importlib.import_module('toolkit.models.run_folder')\n    __import__('numpy')\n")
    names = {_ours(n) for n in imported_names("toolkit", ast.parse(source))}
    assert names == {"toolkit.io", "toolkit.harness.runner", "toolkit.video", "toolkit.report.board",
                     "toolkit.models.run_folder", None}
    assert cycles({"a": frozenset("b"), "b": frozenset("c"), "c": frozenset("a"), "d": frozenset("a")}) \
        == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert cycles(dict(import_graph())) == []


def test_every_module_has_a_floor() -> None:
    assert [m for m in _modules() if floor(m) is None] == []


def test_imports_only_go_down_the_floors() -> None:
    new = floor_violations() - KNOWN_VIOLATIONS
    assert not new, f"imports up a floor (see FLOORS): {sorted(new)}"


def test_toolkit_names_no_baselines_module() -> None:
    new = baselines_names() - KNOWN_VIOLATIONS
    assert not new, f"toolkit/ names a method's module (register it as a plug-in instead): {sorted(new)}"


def test_known_violations_still_exist() -> None:
    fixed = KNOWN_VIOLATIONS - floor_violations() - baselines_names()
    assert not fixed, f"fixed: remove from KNOWN_VIOLATIONS: {sorted(fixed)}"


def package_method_modules(module: str) -> set[str]:
    """The modules a package description in `module` names as its Method (``MethodPackage(method="m:C")``)."""
    out = set()
    for node in ast.walk(ast.parse(_modules()[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MethodPackage":
            out.update(_ours(k.value.value.partition(":")[0]) for k in node.keywords
                       if k.arg == "method" and isinstance(k.value, ast.Constant))
    return out


def test_inference_never_reaches_the_training_package() -> None:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        registered = tomllib.load(fh)["project"]["entry-points"]["toolkit.methods"].values()
    starts = [m for m in _modules() if any(m == p or m.startswith(p + ".") for p in INFERENCE)]
    starts += [_ours(spec.partition(":")[0]) for spec in registered]
    starts += [m for start in list(starts) if start in _modules() for m in package_method_modules(start)]
    reached = _reached(starts)
    assert "baselines.unianimate.method" in reached and "toolkit.harness.runner" in reached
    assert sorted(m for m in reached if m == TRAINING or m.startswith(TRAINING + ".")) == []
