"""The import graph of ``prime_model``, read statically: no cycle, and never zenml.

Every module is parsed with :mod:`ast`; every ``import`` and ``from ... import`` counts, at module
level or inside a function (a deferred import still ties the two modules together), and so do
``TYPE_CHECKING`` imports. ``from prime_model.x import y`` is an edge to ``prime_model.x.y`` when
that is a module, else to ``prime_model.x`` (a package's ``__init__``); relative imports are
resolved against the importing module's package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = "prime_model"
FORBIDDEN = ("zenml",)


def module_files(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root / package``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every dotted name ``source`` imports, relative imports made absolute."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def import_graph(root: Path, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, plus any outside top-level package names."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for name in imported_names(path.read_text(encoding="utf-8"), module, is_package):
            if name == package or name.startswith(f"{package}."):
                # the longest prefix that is a module: prime_model.x.y (module) or prime_model.x
                target = name
                while target not in modules:
                    target = target.rpartition(".")[0]
                if target != module:
                    targets.add(target)
            else:
                targets.add(name.partition(".")[0])
        graph[module] = targets
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None; names that are not nodes are ignored."""
    done: set[str] = set()  # nodes whose every path has been followed: on no cycle
    for start in sorted(graph):
        if start in done:
            continue
        path = [start]  # depth-first, one iterator of successors per node on the path
        successors = [iter(sorted(graph[start]))]
        while successors:
            node = next((n for n in successors[-1] if n in graph and n not in done), None)
            if node is None:
                successors.pop()
                done.add(path.pop())
            elif node in path:
                return [*path[path.index(node) :], node]
            else:
                path.append(node)
                successors.append(iter(sorted(graph[node])))
    return None


GRAPH = import_graph(REPO_ROOT)


def test_the_package_has_the_modules_it_should() -> None:
    assert "prime_model" in GRAPH and "prime_model.model" in GRAPH
    # a deferred import (inside a function) counts
    assert "prime_model.runtime.loader" in GRAPH["prime_model.cli.predict"]


def reachable(graph: Mapping[str, Iterable[str]], start: str) -> set[str]:
    """Every node ``start`` imports, directly or through others (names that are not nodes too)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_runtime_never_imports_export() -> None:
    """Serving loads what the export built and never builds it: no path from a runtime module
    leads into prime_model.export (export may import runtime, to run and check what it builds)."""
    runtime = [module for module in GRAPH if module.startswith("prime_model.runtime")]
    assert "prime_model.runtime.loader" in runtime
    offenders = {
        module: sorted(m for m in reachable(GRAPH, module) if m.startswith("prime_model.export"))
        for module in runtime
    }
    assert not {m: found for m, found in offenders.items() if found}


def test_prime_model_has_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("forbidden", FORBIDDEN)
def test_prime_model_never_imports(forbidden: str) -> None:
    offenders = sorted(module for module, targets in GRAPH.items() if forbidden in targets)
    assert not offenders, f"{forbidden} imported by {offenders}"


# --- the detector itself, on graphs small enough to check by eye ------------------------------


def test_find_cycle_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = find_cycle(graph)
    assert cycle is not None
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


def test_find_cycle_finds_a_self_loop_and_a_two_cycle() -> None:
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_find_cycle_accepts_a_dag_and_ignores_outside_names() -> None:
    diamond = {"a": {"b", "c", "numpy"}, "b": {"d"}, "c": {"d"}, "d": set()}
    assert find_cycle(diamond) is None


def test_import_graph_reads_relative_deferred_and_aliased_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("import zenml.client as zc\n")
    (package / "sub" / "__init__.py").write_text("from . import leaf\n")
    (package / "sub" / "leaf.py").write_text(
        "def f():\n    from ..low import thing  # deferred\n    return thing\n"
    )
    (package / "high.py").write_text("from pkg.sub.leaf import f as g\nimport pkg.low\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.high": {"pkg.sub.leaf", "pkg.low"},
        "pkg.low": {"zenml"},
        "pkg.sub": {"pkg.sub.leaf"},
        "pkg.sub.leaf": {"pkg.low"},
    }
    assert find_cycle(graph) is None
    (package / "low.py").write_text("from pkg.high import g\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) == ["pkg.high", "pkg.low", "pkg.high"]
