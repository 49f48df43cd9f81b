"""LoopMode: Seamless finds a known period, Crossfade and Boomerang make the loops they promise.

Checked on decoded frames: the barcode clip (tests/media_factory.py) tells which source frame
each output frame shows; a clip of waves repeating with a known period tells loop points.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media.animate import animate
from anigraph.media.ssim import ssim
from anigraph.media.types import AnimateParams, Limits, LoopMode, OutputFormat, Result
from media_factory import CLIP_FPS, decode_animation, read_index
from structured_clips import pendulum, periodic, write_scenes

FORMATS = [OutputFormat.GIF, OutputFormat.WEBP]


def _shown(start: float, k: int, fps: int) -> int:
    """Index of the barcode clip's frame on screen at ``start + k/fps``."""
    return math.floor((start + k / fps) * CLIP_FPS + 1e-6)


def _run(source: Path, out: Path, limits: Limits | None = None, **fields: object) -> Result:
    params = AnimateParams(**fields)  # type: ignore[arg-type]
    return animate(source, out, params, limits)


@pytest.fixture(scope="module")
def waves(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 25 fps of waves repeating every 57 frames (2.28 s)."""
    folder = tmp_path_factory.mktemp("loops")
    return write_scenes(folder / "waves.mp4", [(6, periodic(57))], fps=25, gop=25)


@pytest.mark.parametrize("fmt", FORMATS)
def test_seamless_finds_the_period_within_one_output_frame(
    waves: Path, tmp_path: Path, fmt: OutputFormat
):
    plain = _run(waves, tmp_path / f"plain.{fmt}", format=fmt, fps=10, start=0.5, end=2.5)
    result = _run(
        waves, tmp_path / f"out.{fmt}", format=fmt, fps=10, start=0.5, end=2.5,
        loop_mode=LoopMode.SEAMLESS,
    )  # fmt: skip
    assert result.StartTimeOffset == 0.5
    assert abs(result.EndTimeOffset - result.StartTimeOffset - 2.28) <= 0.1
    anim = decode_animation(result.path)
    assert len(anim.frames) == result.FrameCount == round((result.EndTimeOffset - 0.5) * 10)
    assert anim.total_ms == round(result.Duration * 1000)
    # The measured seam, and the decoded one, are as good as a step inside the clip.
    inside = ssim(anim.frames[1], anim.frames[0])
    assert result.LoopSeam is not None and result.LoopSeam > 0.95
    assert ssim(anim.frames[-1], anim.frames[0]) > inside - 0.05
    assert plain.LoopSeam is None  # a template without extensions measures nothing
    jump = decode_animation(plain.path)
    assert ssim(jump.frames[-1], jump.frames[0]) < inside - 0.1


def test_seamless_resumes_the_motion_in_its_direction(tmp_path: Path):
    # Swinging with a period of 30 frames at 10 fps: from frame 5, frame 25 is the same picture
    # on the way back (2.0 s, nearer the 2.4 s asked), frame 35 the same moving on (3.0 s).
    clip = write_scenes(tmp_path / "pendulum.mp4", [(5, pendulum(15))], fps=10)
    result = _run(
        clip, tmp_path / "out.gif", fps=10, start=0.5, end=2.9, loop_mode=LoopMode.SEAMLESS
    )
    assert result.EndTimeOffset - result.StartTimeOffset == pytest.approx(3.0, abs=1e-6)


def test_seamless_stays_within_a_quarter_of_the_length(waves: Path, tmp_path: Path):
    # Asked for 1.2 s: the period (2.28 s) is out of reach, so the end moves at most 0.3 s.
    result = _run(
        waves, tmp_path / "out.gif", fps=10, start=0.5, end=1.7, loop_mode=LoopMode.SEAMLESS
    )
    length = result.EndTimeOffset - result.StartTimeOffset
    assert 0.9 - 1e-6 <= length <= 1.5 + 1e-6


@pytest.mark.parametrize("fmt", FORMATS)
def test_boomerang_plays_back_without_doubling_the_turns(
    clip: Path, tmp_path: Path, fmt: OutputFormat
):
    result = _run(
        clip, tmp_path / f"out.{fmt}", format=fmt, fps=10, start=1, end=2,
        loop_mode=LoopMode.BOOMERANG,
    )  # fmt: skip
    forward = [_shown(1, k, 10) for k in range(10)]
    anim = decode_animation(result.path)
    assert anim.indices() == forward + forward[-2:0:-1]
    assert result.FrameCount == 18 and anim.total_ms == 1800 == round(result.Duration * 1000)
    assert (result.StartTimeOffset, result.EndTimeOffset) == (1, 2)
    # Last frame (source 27) leads into the first (25) as any step does.
    assert result.LoopSeam is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_boomerang_over_the_memory_limit_decodes_backwards_in_chunks(
    clip: Path, tmp_path: Path, fmt: OutputFormat
):
    # Room for 3 frames of 160x90: the backward half comes from 3 re-decoded chunks.
    limits = Limits(palette_buffer_bytes=3 * 160 * 90 * 4)
    kept = _run(
        clip, tmp_path / f"kept.{fmt}", format=fmt, fps=10, width=160, start=1, end=2,
        loop_mode=LoopMode.BOOMERANG,
    )  # fmt: skip
    chunked = _run(
        clip, tmp_path / f"chunked.{fmt}", limits, format=fmt, fps=10, width=160, start=1,
        end=2, loop_mode=LoopMode.BOOMERANG,
    )  # fmt: skip
    assert decode_animation(chunked.path).indices() == decode_animation(kept.path).indices()
    assert chunked.decoded_frames > kept.decoded_frames


@pytest.mark.parametrize("fmt", FORMATS)
def test_crossfade_blends_what_follows_into_the_first_frames(
    clip: Path, tmp_path: Path, fmt: OutputFormat
):
    quality = {"format": fmt, "fps": 10, "quality": 100}
    result = _run(
        clip, tmp_path / f"out.{fmt}", start=1, end=3, loop_mode=LoopMode.CROSSFADE, **quality
    )
    longer = _run(clip, tmp_path / f"longer.{fmt}", start=1, end=3.5, **quality)
    anim, plain = decode_animation(result.path), decode_animation(longer.path)
    assert result.FrameCount == len(anim.frames) == 20
    assert (result.StartTimeOffset, result.EndTimeOffset) == (1, 3)
    fade = 5  # 0.5 s at 10 fps
    # After the fade, each frame is the source frame on screen at its time, as without loops.
    shown = [read_index(frame) for frame in anim.frames[fade:]]
    assert shown == [read_index(frame) for frame in plain.frames[fade:20]]
    for j in range(fade):
        weight = (j + 1) / (fade + 1)
        tail, head = plain.frames[20 + j].astype(float), plain.frames[j].astype(float)
        expected = np.rint((1 - weight) * tail + weight * head).astype(np.uint8)
        assert ssim(anim.frames[j], expected) > 0.9
        assert ssim(anim.frames[j], plain.frames[j]) < ssim(anim.frames[j], expected)


def test_crossfade_of_big_frames_keeps_to_the_memory_limit(clip: Path, tmp_path: Path):
    # Room for 2 frames of 160x90: the blend is 2 frames long, the rest as without loops.
    limits = Limits(palette_buffer_bytes=2 * 160 * 90 * 4)
    result = _run(
        clip, tmp_path / "out.gif", limits, fps=10, width=160, start=1, end=3,
        loop_mode=LoopMode.CROSSFADE,
    )  # fmt: skip
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == 20
    assert [read_index(f) for f in anim.frames[2:]] == [_shown(1, k, 10) for k in range(2, 20)]
    with pytest.raises(ValueError):
        read_index(anim.frames[1])  # a blend


def test_crossfade_closes_the_loop(waves: Path, tmp_path: Path):
    plain = decode_animation(
        _run(waves, tmp_path / "plain.webp", format=OutputFormat.WEBP, end=2).path
    )
    result = _run(
        waves, tmp_path / "out.webp", format=OutputFormat.WEBP, end=2, loop_mode=LoopMode.CROSSFADE
    )
    anim = decode_animation(result.path)
    assert ssim(anim.frames[-1], anim.frames[0]) > ssim(plain.frames[-1], plain.frames[0]) + 0.1
    assert result.LoopSeam is not None and result.LoopSeam > 0.9


def test_crossfade_at_the_source_end_uses_its_own_last_frames(clip: Path, tmp_path: Path):
    result = _run(clip, tmp_path / "out.gif", fps=10, start=4, loop_mode=LoopMode.CROSSFADE)
    anim = decode_animation(result.path)
    # 2 s to the end: no frames follow, so the last 0.5 s is the tail and the loop is 1.5 s.
    assert result.FrameCount == len(anim.frames) == 15
    assert [read_index(f) for f in anim.frames[5:]] == [_shown(4, k, 10) for k in range(5, 15)]
    assert (result.StartTimeOffset, result.EndTimeOffset) == (4, 5.5)


def test_the_default_changes_nothing(clip: Path, tmp_path: Path):
    result = _run(clip, tmp_path / "out.gif", fps=10, start=1, end=3)
    assert (result.StartTimeOffset, result.EndTimeOffset, result.FrameCount) == (1, 3, 20)
    assert result.LoopSeam is None
    assert decode_animation(result.path).indices() == [_shown(1, k, 10) for k in range(20)]


def test_unknown_loop_mode_is_refused(clip: Path, tmp_path: Path):
    with pytest.raises(TaskError) as caught:
        _run(clip, tmp_path / "out.gif", loop_mode="Spiral")
    assert caught.value.code is ErrCodeExt.CONFIGURATION_UNSUPPORTED
    assert "loop mode" in str(caught.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt", [OutputFormat.AVIF, OutputFormat.MP4])
def test_loops_in_the_video_formats(clip: Path, tmp_path: Path, fmt: OutputFormat):
    forward = [_shown(1, k, 10) for k in range(10)]
    common = {"format": fmt, "fps": 10, "width": 160, "start": 1, "end": 2}
    back = _run(clip, tmp_path / f"back.{fmt}", loop_mode=LoopMode.BOOMERANG, **common)
    assert decode_animation(back.path).indices() == forward + forward[-2:0:-1]
    faded = _run(clip, tmp_path / f"fade.{fmt}", loop_mode=LoopMode.CROSSFADE, **common)
    frames = decode_animation(faded.path).frames
    assert len(frames) == faded.FrameCount == 10
    assert [read_index(frame) for frame in frames[2:]] == forward[2:]  # a 2-frame fade (1 s / 4)
