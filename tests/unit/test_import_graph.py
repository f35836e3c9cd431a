"""The import graph of `marketstream`: no cycles among modules, none among its top-level parts,
and every part imports only parts of its own layer or below (ARCHITECTURE.md: dependencies
flow one way).

Every import counts, wherever it is written: at module level, inside functions (where cycles
hide, because Python tolerates them there) and under TYPE_CHECKING. `from pkg import name`
imports `pkg`, and `pkg.name` too when that is a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import pytest

import marketstream

ROOT: Final = Path(marketstream.__file__).resolve().parent
PACKAGE: Final = "marketstream"

# The top-level parts, lowest first; a part may import parts of its own layer or a lower one.
# A new part goes in the layer its imports put it in.
LAYERS: Final[tuple[frozenset[str], ...]] = tuple(
    frozenset(layer)
    for layer in (
        {"marketstream", "errors", "closing"},  # the package itself holds only its version
        {
            "schemas",
            "logs",
            "metrics_server",
            "signals",
            "retry",
            "event_loop",
            "http_headers",
            "secret_names",
        },
        {"config", "replay", "http_client", "gc_settings"},
        {"venues", "sources", "tiers"},
        {"ingest", "instruments", "services", "gateway", "writers", "archiver", "query"},
        {"generate", "quality"},
        {"wiring"},
        {"run"},
        {"cli", "serve", "export"},
        {"__main__"},
    )
)
LAYER_OF: Final = {part: n for n, layer in enumerate(LAYERS) for part in layer}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name the module's import statements name, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (names that are not modules dropped)."""
    return {
        module: {name for name in imported_names(module, path) if name in modules} - {module}
        for module, path in modules.items()
    }


def part_of(module: str) -> str:
    """`marketstream.tiers.redis_bus` -> `tiers`; the package itself -> `marketstream`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def part_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {part_of(module): set() for module in graph}
    for module, imported in graph.items():
        parts[part_of(module)].update(part_of(name) for name in imported)
    for part, imported in parts.items():
        imported.discard(part)
    return parts


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one node, as the path
    `a -> b -> ... -> a`, so that a failure shows the imports to break."""
    return [_cycle_in(graph, component) for component in components(graph)]


def components(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """The strongly connected components of more than one node: the nodes on some cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graphs are small
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph[node]):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _cycle_in(graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """The shortest path from the component's first node back to itself, within it."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    return [*paths[node], start]
                if child in component and child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def _shown(graph: Mapping[str, Iterable[str]]) -> str:
    """Each cycle, and every node that is on a cycle with it."""
    return "\n".join(
        f"{' -> '.join(_cycle_in(graph, group))}\n"
        f"  (on a cycle together: {', '.join(sorted(group))})"
        for group in components(graph)
    )


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph(module_files())
    if components(graph):
        pytest.fail(f"import cycles among modules:\n{_shown(graph)}", pytrace=False)


def test_no_part_imports_itself_through_others() -> None:
    graph = part_graph(import_graph(module_files()))
    if components(graph):
        pytest.fail(
            f"import cycles among the parts of marketstream:\n{_shown(graph)}", pytrace=False
        )


def test_every_part_imports_only_its_layer_or_below() -> None:
    parts = part_graph(import_graph(module_files()))
    unplaced = sorted(set(parts) - set(LAYER_OF))
    if unplaced:
        pytest.fail(f"parts in no layer of LAYERS: {unplaced}; place each in one", pytrace=False)
    upward = [
        f"{part} (layer {LAYER_OF[part]}) imports {name} (layer {LAYER_OF[name]})"
        for part, imported in sorted(parts.items())
        for name in sorted(imported)
        if LAYER_OF[name] > LAYER_OF[part]
    ]
    if upward:
        pytest.fail("imports against the layering:\n" + "\n".join(upward), pytrace=False)


def _tree(tmp_path: Path, files: Mapping[str, str]) -> dict[str, set[str]]:
    root = tmp_path / PACKAGE
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(module_files(root))


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "cli/__init__.py": "from marketstream.cli import archive\n",
            "cli/archive.py": "def run():\n    from marketstream.cli.helper import x  # noqa\n",
            "cli/helper.py": "from . import archive\n",
        },
    )
    assert graph["marketstream.cli.helper"] == {"marketstream.cli", "marketstream.cli.archive"}
    assert cycles(graph) == [
        [
            "marketstream.cli",
            "marketstream.cli.archive",
            "marketstream.cli.helper",
            "marketstream.cli",
        ]
    ]


def test_a_cycle_between_parts_is_found_though_modules_have_none(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "tiers/__init__.py": "",
            "tiers/all_tiers.py": "from ..archiver.hot_side import HotTier\n",
            "tiers/questdb.py": "",
            "archiver/__init__.py": "",
            "archiver/hot_side.py": "import marketstream.tiers.questdb\n",
        },
    )
    assert cycles(graph) == []
    assert cycles(part_graph(graph)) == [["archiver", "tiers", "archiver"]]
