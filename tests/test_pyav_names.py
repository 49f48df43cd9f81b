"""Every PyAV class an ``except`` clause names exists in the PyAV the project pins.

Python evaluates an ``except`` expression only when an exception reaches it, so a name PyAV
dropped (``av.error.ValueError``, now ``ArgumentError``) hides until the rare error that gets
there, and then turns that error into an ``AttributeError``: bad input became InternalError.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

import anigraph

SOURCE = Path(anigraph.__file__).parent
PYPROJECT = SOURCE.parents[1] / "pyproject.toml"


def _dotted(node: ast.expr) -> str | None:
    """``av.error.InvalidDataError`` for that attribute chain, else ``None``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _caught(handler: ast.ExceptHandler) -> list[ast.expr]:
    if handler.type is None:
        return []
    if isinstance(handler.type, ast.Tuple):
        return list(handler.type.elts)
    return [handler.type]


def _av_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the PyAV object it stands for (``import av.error as e``, ``from av...``)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "av" or alias.name.startswith("av."):
                    local = alias.asname or alias.name.split(".")[0]
                    aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and re.match(r"av(\.|$)", node.module or ""):
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def pyav_names_in_except_clauses() -> list[tuple[str, str]]:
    """``(file:line, dotted PyAV name)`` for every PyAV name in an ``except`` of the package."""
    found: list[tuple[str, str]] = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        aliases = _av_aliases(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ExceptHandler):
                continue
            for expr in _caught(node):
                name = _dotted(expr)
                if name is None:
                    continue
                head, _, rest = name.partition(".")
                if head in aliases:
                    full = aliases[head] + (f".{rest}" if rest else "")
                    found.append((f"{path.relative_to(SOURCE)}:{expr.lineno}", full))
    return found


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    target: object = importlib.import_module(parts[0])
    for index, part in enumerate(parts[1:], start=1):
        if not hasattr(target, part):
            # A submodule that nothing imported yet (``av.error`` is imported by ``av``).
            target = importlib.import_module(".".join(parts[: index + 1]))
        else:
            target = getattr(target, part)
    return target


def test_the_scan_finds_the_engines_handlers() -> None:
    names = {name for _, name in pyav_names_in_except_clauses()}
    assert {"av.error.FFmpegError", "av.error.InvalidDataError"} <= names


@pytest.mark.parametrize(("where", "name"), pyav_names_in_except_clauses())
def test_except_clause_names_a_real_pyav_exception(where: str, name: str) -> None:
    try:
        target = _resolve(name)
    except (AttributeError, ImportError):
        pytest.fail(f"{where}: {name} does not exist in PyAV {version('av')}")
    assert isinstance(target, type) and issubclass(target, BaseException), f"{where}: {name}"


def test_pyav_is_pinned_to_the_major_version_it_is_tested_with() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (spec,) = [d.replace(" ", "") for d in dependencies if re.match(r"av\b", d)]
    major = int(version("av").split(".")[0])
    assert re.fullmatch(rf"av>={major}\.[0-9]+,<{major + 1}", spec), spec
