"""``anigraph convert --segment highlight --duration S --loop MODE`` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from media_factory import decode_animation
from structured_clips import black, panning, still, title, write_scenes
from test_cli import anigraph


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Black 0-2 s, a still title 2-4 s, motion 4-7 s, a still 7-9 s."""
    folder = tmp_path_factory.mktemp("cli-loops")
    scenes = [(2, black), (2, title), (3, panning(1)), (2, still(2))]
    return write_scenes(folder / "burst.mp4", scenes, fps=10)


def test_highlight_and_boomerang_from_the_command_line(burst: Path, tmp_path: Path):
    out = tmp_path / "out.gif"
    done = anigraph(
        "convert", burst, out, "--fps", "10", "--segment", "highlight", "--duration", "2",
        "--loop", "boomerang", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)
    assert 4.0 - 0.3 <= item["StartTimeOffset"] <= 5.0 + 0.3
    assert item["EndTimeOffset"] - item["StartTimeOffset"] == pytest.approx(2.0, abs=0.01)
    # Boomerang: 20 frames forward, 18 back; the measured fields come with an extension.
    assert item["FrameCount"] == 38 == len(decode_animation(out).frames)
    assert 0 <= item["LoopSeam"] <= 1


def test_plain_line_says_which_window_and_how_good_the_seam(burst: Path, tmp_path: Path):
    done = anigraph(
        "convert", burst, tmp_path / "out.webp", "--segment", "highlight", "--loop", "crossfade"
    )
    assert done.returncode == 0, done.stderr
    assert "window " in done.stdout and "loop seam " in done.stdout


def test_without_the_flags_the_output_item_is_tencents(burst: Path, tmp_path: Path):
    done = anigraph("convert", burst, tmp_path / "out.gif", "--end", "1", "--json")
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)
    assert "LoopSeam" not in item and "Fps" not in item
    assert (item["StartTimeOffset"], item["EndTimeOffset"]) == (0, 1)


@pytest.mark.parametrize(
    "args",
    [["--segment", "best"], ["--duration", "0.4"], ["--duration", "31"], ["--loop", "spiral"]],
)
def test_bad_values_are_usage_errors(burst: Path, tmp_path: Path, args: list[str]):
    done = anigraph("convert", burst, tmp_path / "out.gif", *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert list(tmp_path.iterdir()) == []
