"""SegmentMode Highlight lands on the motion of clips whose structure is known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media import highlight
from anigraph.media.animate import animate
from anigraph.media.types import AnimateParams, Limits, OutputFormat, SegmentMode
from media_factory import decode_animation
from structured_clips import (
    Picture,
    black,
    faded_title,
    letterboxed,
    panning,
    periodic,
    still,
    title,
    write_scenes,
)

FPS = 10


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("highlight")
    return {
        # black 0-2, still title 2-4.5, title fading out 4.5-6, motion 6-9, a still 9-12
        "burst": write_scenes(
            folder / "burst.mp4",
            [(2, black), (2.5, title), (1.5, faded_title(15)), (3, panning(1)), (3, still(2))],
            fps=FPS,
            gop=FPS,
        ),
        # motion 0-4.2, a cut, other motion 4.2-8
        "cut": write_scenes(folder / "cut.mp4", [(4.2, periodic(40)), (3.8, panning(5))], fps=FPS),
        # fast motion in a band half the height, black 4-5, slow full-frame motion 5-8
        "letterbox": write_scenes(
            folder / "letterbox.mp4",
            [(4, letterboxed(3, band=48)), (1, black), (3, panning(4, speed=1))],
            fps=FPS,
        ),
        # strong motion 0-3, a still 3-6, gentle motion 6-9
        "two": write_scenes(
            folder / "two.mp4", [(3, panning(1)), (3, still(3)), (3, panning(6, speed=1))], fps=FPS
        ),
    }


def _highlight(source: Path, out: Path, **fields: float) -> tuple[float, float]:
    params = AnimateParams(
        format=OutputFormat.GIF, width=80, fps=FPS, segment_mode=SegmentMode.HIGHLIGHT, **fields
    )  # type: ignore[arg-type]
    result = animate(source, out, params)
    assert result.Duration == pytest.approx(result.EndTimeOffset - result.StartTimeOffset, abs=0.01)
    return result.StartTimeOffset, result.EndTimeOffset


def test_lands_on_the_motion_past_black_title_and_fade(clips: dict[str, Path], tmp_path: Path):
    start, end = _highlight(clips["burst"], tmp_path / "out.gif", duration=3.0)
    assert start == pytest.approx(6.0, abs=0.3)
    assert end - start == pytest.approx(3.0, abs=0.01)
    # The file is the chosen window: as many frames as 3 s at 10 fps.
    assert len(decode_animation(tmp_path / "out.gif").frames) == 30


def test_long_search_ranks_by_packets_first_and_still_lands_on_the_motion(
    clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ranked: list[list[float]] = []
    rank = highlight.packet_candidates

    def spy(*args: object) -> list[float]:
        ranked.append(rank(*args))  # type: ignore[arg-type]
        return ranked[-1]

    monkeypatch.setattr(highlight, "CLOSE_LOOK_PIXELS", 1)
    monkeypatch.setattr(highlight, "packet_candidates", spy)
    start, _ = _highlight(clips["burst"], tmp_path / "out.gif", duration=3.0)
    assert len(ranked) == 1 and len(ranked[0]) == highlight.CANDIDATES
    # Packet sizes alone already point at the motion; the close look places the window.
    assert ranked[0][0] == pytest.approx(6.0, abs=1.0)
    assert start == pytest.approx(6.0, abs=0.3)


def test_the_window_keeps_scene_changes_off_its_edges(clips: dict[str, Path], tmp_path: Path):
    start, end = _highlight(clips["cut"], tmp_path / "out.gif", duration=3.0)
    assert not start < 4.2 < start + 0.5
    assert not end - 0.5 < 4.2 < end


def test_letterboxed_emptiness_loses_to_real_picture(clips: dict[str, Path], tmp_path: Path):
    start, _ = _highlight(clips["letterbox"], tmp_path / "out.gif", duration=3.0)
    assert start == pytest.approx(5.0, abs=0.3)


def test_offsets_bound_the_search(clips: dict[str, Path], tmp_path: Path):
    whole, _ = _highlight(clips["two"], tmp_path / "a.gif", duration=2.0)
    assert whole < 3.0
    # From 3 s to the end: the first burst is out of bounds, the second is found.
    later, end = _highlight(clips["two"], tmp_path / "b.gif", duration=2.0, start=3.0)
    assert later >= 6.0 - 0.3 and end <= 9.0 + 1e-6
    # Negative offsets count from the end, as in Fixed mode.
    tail, _ = _highlight(clips["two"], tmp_path / "c.gif", duration=2.0, start=-4.0)
    assert tail >= 5.0 - 1e-6


def test_bounds_shorter_than_the_duration_are_the_window(clips: dict[str, Path], tmp_path: Path):
    assert _highlight(clips["two"], tmp_path / "out.gif", duration=5.0, start=1, end=3) == (1, 3)


@pytest.mark.parametrize("duration", [0.4, 30.5, float("nan")])
def test_duration_out_of_range_is_a_configuration_error(
    clips: dict[str, Path], tmp_path: Path, duration: float
):
    with pytest.raises(TaskError) as caught:
        _highlight(clips["two"], tmp_path / "out.gif", duration=duration)
    assert caught.value.code is ErrCodeExt.CONFIGURATION_UNSUPPORTED
    assert "duration" in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_unknown_segment_mode_is_refused(clips: dict[str, Path], tmp_path: Path):
    params = AnimateParams(segment_mode="Best")  # type: ignore[arg-type]
    with pytest.raises(TaskError) as caught:
        animate(clips["two"], tmp_path / "out.gif", params)
    assert caught.value.code is ErrCodeExt.CONFIGURATION_UNSUPPORTED


def _real_footage_clip(path: Path, bikes: Path) -> Path:
    """2 s of black, 5 s of the bikes footage, 3 s of its last frame held still."""
    with av.open(str(bikes)) as container:
        frames = [
            frame.to_ndarray(format="rgb24", width=160, height=68)
            for _, frame in zip(range(125), container.decode(video=0), strict=False)
        ]
    footage = frames[::2][:50]  # 25 fps to 10 fps

    def play(i: int, width: int, height: int) -> Picture:
        return footage[i]

    def hold(i: int, width: int, height: int) -> Picture:
        return footage[-1]

    scenes: list[tuple[float, Callable[[int, int, int], Picture]]] = [
        (2, black),
        (5, play),
        (3, hold),
    ]
    return write_scenes(path, scenes, fps=FPS, width=160, height=68)


def test_real_footage_between_black_and_a_held_frame(real_clips: dict[str, Path], tmp_path: Path):
    source = _real_footage_clip(tmp_path / "real.mp4", real_clips["bikes"])
    start, end = _highlight(source, tmp_path / "out.gif", duration=3.0)
    assert start >= 2.0 - 0.3 and end <= 7.0 + 0.3


def test_scores_see_black_stills_and_fades_as_nothing():
    dark = np.zeros((36, 64), dtype=np.float32)
    card = title(0, 64, 36)[..., 0].astype(np.float32)
    dimmer = card * 0.5
    assert highlight.content(dark) == 0.0
    scores, cuts = highlight.step_scores([dark, dark, card, card, dimmer])
    assert scores[1] == 0.0  # black to black
    assert cuts[2] and scores[2] == 0.0  # black to a title is a cut, not motion
    assert scores[3] == pytest.approx(0.0, abs=1e-6)  # a still
    assert scores[4] == pytest.approx(0.0, abs=0.02) and not cuts[4]  # a fade


def test_analysis_respects_the_deadline(clips: dict[str, Path], tmp_path: Path):
    with pytest.raises(TaskError) as caught:
        highlight.choose_window(clips["burst"], 0, 12, 3.0, Limits(), deadline=0.0)
    assert caught.value.code is ErrCodeExt.INTERNAL_ERROR


@pytest.mark.parametrize("name", ["garbage", "truncated_mp4", "audio_only"])
def test_bad_sources_fail_as_in_fixed_mode(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
):
    source = request.getfixturevalue(name)
    codes = []
    for mode in SegmentMode:
        with pytest.raises(TaskError) as caught:
            animate(source, tmp_path / "out.gif", AnimateParams(segment_mode=mode))
        codes.append(caught.value.code)
    assert codes[0] == codes[1]
    assert not list(tmp_path.iterdir())
