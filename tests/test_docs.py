"""The reference documents against the code: every action, parameter, error code and setting is
documented, and the example configuration is the code's own (``scripts/update-docs.py``)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from anigraph.api.errors import Code
from anigraph.api.registry import load_actions
from anigraph.settings import Settings, example_toml, load

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "api.md"
UPDATE = "run `.venv/bin/python scripts/update-docs.py`"


def _api_text() -> str:
    return API_DOC.read_text()


def _example_block() -> str:
    match = re.search(r"example-config: generated.*?\n```toml\n(.*?)```", _api_text(), re.DOTALL)
    assert match, "docs/api.md has no generated example config block"
    return match.group(1)


def test_example_config_is_generated_from_the_settings() -> None:
    assert _example_block() == example_toml(), f"docs/api.md's example config is stale: {UPDATE}"


def test_example_config_lists_every_setting_at_its_default(tmp_path: Path) -> None:
    parsed = tomllib.loads(_example_block())
    assert list(parsed) == [spec.name for spec in fields(Settings)]
    for spec in fields(Settings):
        assert parsed[spec.name] == (
            str(spec.default) if isinstance(spec.default, Path) else spec.default
        ), spec.name
    path = tmp_path / "anigraph.toml"
    path.write_text(_example_block())
    assert load(config=path) == Settings()


def test_the_update_script_rewrites_a_stale_block() -> None:
    spec = importlib.util.spec_from_file_location("update_docs", ROOT / "scripts/update-docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale = _api_text().replace("max_frames = 3000", "max_frames = 1")
    assert stale != _api_text()
    assert module.rendered(stale) == _api_text()


def _section(text: str, action: str) -> str:
    """From the ### heading that names ``action`` to the next heading."""
    match = re.search(rf"^### [^\n]*\b{action}\b[^\n]*\n(.*?)(?=^##)", text, re.M | re.DOTALL)
    assert match, f"docs/api.md has no ### section for {action}"
    return match.group(1)


@pytest.mark.parametrize("action", sorted(load_actions()))
def test_every_action_and_parameter_is_documented(action: str) -> None:
    section = _section(_api_text(), action)
    missing = [name for name in load_actions()[action].schema.fields if name not in section]
    assert not missing, f"{action}: parameters missing from docs/api.md: {missing}"


def test_every_error_code_the_api_raises_is_documented() -> None:
    used: set[str] = set()
    for path in (ROOT / "src" / "anigraph").rglob("*.py"):
        used |= set(re.findall(r"\bCode\.([A-Z][A-Z0-9_]+)\b", path.read_text()))
    codes = {Code[name].value for name in used if name in Code.__members__}
    text = _api_text()
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert not missing, f"error codes missing from docs/api.md: {missing}"


def test_the_extension_overview_names_every_extension() -> None:
    overview = _api_text().split("\n## Extensions\n", 1)[1]
    for name in ("MaxSize", "QualityTarget", "SegmentMode", "Duration", "LoopMode"):
        assert f"**{name}**" in overview, name
    for fmt in ("avif", "mp4"):
        assert f"**{fmt}**" in overview, fmt


def test_benchmarks_are_written_for_users() -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    for internal in ("../shared", "/work/", "guides/", "target", "Target"):
        assert internal not in text, internal
    assert "## Rerunning them" in text and "python bench/" in text
