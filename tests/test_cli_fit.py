"""``anigraph convert --max-size/--quality-target``: a real subprocess, as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from test_cli import anigraph


def convert(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    segment = ("--width", "160", "--fps", "5", "--start", "1", "--end", "2")
    return anigraph("convert", source, out, *segment, *extra)


def test_budget_in_kilobytes_reports_size_ssim_and_adjustments(
    real_clips: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.gif"
    done = convert(real_clips["bikes"], out, "--max-size", "12k", "--json")
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)
    assert out.stat().st_size == item["Size"] <= 12_000
    assert 0.5 < item["Ssim"] <= 1.0
    assert item["Adjustments"] and item["FrameCount"] >= 1 and item["Fps"] > 0

    line = convert(real_clips["bikes"], tmp_path / "again.gif", "--max-size", "12k")
    assert line.returncode == 0, line.stderr
    closing = line.stdout.strip().splitlines()[-1]
    assert f"SSIM {item['Ssim']:.4f}" in closing
    assert "gave up: " + ", ".join(item["Adjustments"]) in closing


def test_plain_convert_keeps_tencent_fields(real_clips: dict[str, Path], tmp_path: Path) -> None:
    done = convert(real_clips["bikes"], tmp_path / "out.gif", "--json")
    assert done.returncode == 0, done.stderr
    assert not {"Ssim", "Adjustments", "Fps"} & set(json.loads(done.stdout))


def test_quality_target_is_reported(real_clips: dict[str, Path], tmp_path: Path) -> None:
    done = convert(real_clips["bikes"], tmp_path / "out.webp", "--quality-target", "0.9", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Ssim"] >= 0.9


def test_a_large_budget_in_megabytes_changes_nothing(
    real_clips: dict[str, Path], tmp_path: Path
) -> None:
    done = convert(real_clips["bikes"], tmp_path / "out.gif", "--max-size", "2M", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Adjustments"] == []


def test_unreachable_budget_fails_in_one_line(real_clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.gif"
    done = convert(real_clips["bikes"], out, "--max-size", "300")
    assert done.returncode == 1
    assert done.stderr.startswith("InvalidInput.ResultFileSizeTooLarge: MaxSize of 300 bytes")
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-size", "12q"),
        ("--max-size", "-5"),
        ("--max-size", "nan"),
        ("--quality-target", "0.5"),
    ],
)
def test_bad_values_are_usage_errors(
    real_clips: dict[str, Path], tmp_path: Path, flag: str, value: str
) -> None:
    done = convert(real_clips["bikes"], tmp_path / "out.gif", flag, value)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and flag in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_states_the_size_suffixes() -> None:
    done = anigraph("convert", "--help")
    assert done.returncode == 0
    assert "500k" in done.stdout and "2M" in done.stdout
