"""The shape of the code: the layers of docs/architecture.md, checked on every import.

Every module of ``src/anigraph`` belongs to a unit: its sub-package (``api``, ``jobs``…) or, at
the package root, its own name (``server``, ``settings``…). ``LAYERS`` gives each unit a layer;
an import may point to a unit of the same layer or of a lower one, never higher, and the units
must not import each other in a circle. Every import counts, at module level or inside a
function, and under ``TYPE_CHECKING`` too: an import deferred for start-up time is still a
dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "anigraph"

LAYERS: dict[str, int] = {
    # entry points: the `anigraph` command (and `python -m anigraph`)
    "__main__": 9,
    "cli": 9,
    # the composition root: builds the context, wires hooks, starts HTTP and workers
    "server": 8,
    # the drivers: HTTP (with the console's static files) and the workers
    "api": 7,
    "console": 7,
    "jobs": 7,
    # the use cases
    "services": 6,
    "transfer": 6,
    # events: the outbox, PUSH delivery, the PullEvents queue
    "notify": 5,
    # what every unit of work carries: settings, database, store, clock
    "context": 4,
    # the adapters to the outside: database, blob store, SSRF-safe HTTP client
    "db": 3,
    "storage": 3,
    "net": 3,
    # cross-cutting foundations
    "settings": 2,
    "logs": 2,
    "metrics": 2,
    # the engine (and its child process)
    "media": 1,
    # plain rules and values
    "domain": 0,
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing unit
    target: str  # the imported unit
    where: str  # path:line of the import


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported(node: ast.Import | ast.ImportFrom, module: list[str], is_package: bool) -> list[str]:
    """Dotted names ``node`` imports: modules, and ``package.name`` for ``from package import``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module if is_package else module[:-1]
        base = base[: len(base) - (node.level - 1)]
        origin = ".".join([*base, *([node.module] if node.module else [])])
    else:
        origin = node.module or ""
    return [origin, *(f"{origin}.{alias.name}" for alias in node.names)]


def imports_between_units(root: Path) -> Iterator[Import]:
    """Every import in the package at ``root`` from one of its units to another."""
    package = root.name
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        if len(module) < 2:
            continue  # the package's own __init__: it only names the package
        source = module[1]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = {
                name.split(".")[1]
                for name in _imported(node, module, path.name == "__init__.py")
                if name.startswith(f"{package}.")
            }
            for target in sorted(targets - {source}):
                where = f"{path.relative_to(root.parent)}:{node.lineno}"
                yield Import(source, target, where)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        on_stack.add(unit)
        for other in sorted(edges.get(unit, ())):
            if other not in index:
                visit(other)
                low[unit] = min(low[unit], low[other])
            elif other in on_stack:
                low[unit] = min(low[unit], index[other])
        if low[unit] == index[unit]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == unit:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for unit in sorted(edges):
        if unit not in index:
            visit(unit)
    return sorted(found)


def violations(root: Path, layers: dict[str, int]) -> list[str]:
    """What breaks the layering of the package at ``root``: one line each, empty when none."""
    found: list[str] = []
    edges: dict[str, set[str]] = {}
    witness: dict[tuple[str, str], str] = {}
    for item in imports_between_units(root):
        edges.setdefault(item.source, set()).add(item.target)
        witness.setdefault((item.source, item.target), item.where)
        unknown = [unit for unit in (item.source, item.target) if unit not in layers]
        if unknown:
            found.append(f"{item.where}: {', '.join(unknown)} has no layer in the table")
        elif layers[item.source] < layers[item.target]:
            found.append(
                f"{item.where}: upward import {item.source} (layer {layers[item.source]}) -> "
                f"{item.target} (layer {layers[item.target]})"
            )
    for component in _cycles(edges):
        links = [
            f"{source} -> {target} ({witness[source, target]})"
            for source in component
            for target in sorted(edges[source] & set(component))
        ]
        found.append(f"import cycle between {', '.join(component)}: {'; '.join(links)}")
    return sorted(set(found))


def test_every_unit_of_the_package_has_a_layer() -> None:
    units = {
        _module_name(path, PACKAGE)[1]
        for path in PACKAGE.rglob("*.py")
        if len(_module_name(path, PACKAGE)) > 1
    }
    assert units - set(LAYERS) == set()
    assert set(LAYERS) - units == set()  # no stale rows either


def test_imports_point_down_and_form_no_cycle() -> None:
    assert violations(PACKAGE, LAYERS) == []


# -- the checker itself, on a made-up package --------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


TOY_LAYERS = {"top": 2, "middle": 1, "bottom": 0}


def test_a_clean_package_passes(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "__init__.py": "",
            "top/__init__.py": "from pkg.middle import thing\n",
            "top/run.py": "from ..bottom import rules\nimport pkg.middle.thing\n",
            "middle/__init__.py": "",
            "middle/thing.py": "from pkg import bottom\nfrom . import other\n",
            "middle/other.py": "",
            "bottom.py": "import os\n",
        },
    )
    assert violations(package, TOY_LAYERS) == []


@pytest.mark.parametrize(
    "lower_import",
    [
        "from pkg.top import run\n",
        "import pkg.top.run\n",
        "from pkg import top\n",
        "def later() -> None:\n    from pkg.top import run\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.top.run import x\n",
    ],
)
def test_an_upward_import_fails_however_it_is_written(tmp_path: Path, lower_import: str) -> None:
    package = _write(
        tmp_path,
        {"__init__.py": "", "top/__init__.py": "", "top/run.py": "", "bottom.py": lower_import},
    )
    found = violations(package, TOY_LAYERS)
    assert len(found) == 1
    assert "pkg/bottom.py:" in found[0]
    assert "upward import bottom (layer 0) -> top (layer 2)" in found[0]


def test_a_relative_upward_import_fails(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "__init__.py": "",
            "top/__init__.py": "",
            "middle/__init__.py": "",
            "middle/deep.py": "from ..top import anything\n",
        },
    )
    assert violations(package, TOY_LAYERS) == [
        "pkg/middle/deep.py:1: upward import middle (layer 1) -> top (layer 2)"
    ]


def test_a_cycle_within_one_layer_fails(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "__init__.py": "",
            "left/__init__.py": "from pkg.right import b\n",
            "right/__init__.py": "",
            "right/b.py": "def f() -> None:\n    from pkg import left\n",
        },
    )
    assert violations(package, {"left": 1, "right": 1}) == [
        "import cycle between left, right: left -> right (pkg/left/__init__.py:1); "
        "right -> left (pkg/right/b.py:2)"
    ]


def test_a_unit_missing_from_the_table_fails(tmp_path: Path) -> None:
    package = _write(tmp_path, {"__init__.py": "", "new.py": "from pkg import bottom\n"})
    assert violations(package, TOY_LAYERS) == ["pkg/new.py:1: new has no layer in the table"]
