"""The engine on synthetic clips whose frames carry their index: which source frame each
output frame shows, frame counts and delays, sizes and rotation, result fields, progress
and atomic output."""

from __future__ import annotations

import hashlib
import math
import os
import time
from fractions import Fraction
from pathlib import Path

import pytest

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.media.animate import animate
from anigraph.media.types import AnimateParams, Limits, OutputFormat, Result
from media_factory import CLIP_FPS, decode_animation

GIF = OutputFormat.GIF
WEBP = OutputFormat.WEBP
AVIF = OutputFormat.AVIF
MP4 = OutputFormat.MP4
FORMATS = [GIF, WEBP, AVIF, MP4]
MS_FORMATS = [WEBP, AVIF, MP4]  # timed in milliseconds, no 2 cs floor
OPEN = ResolutionAdaptive.OPEN
CLOSE = ResolutionAdaptive.CLOSE


def on_screen(
    start: float | Fraction, k: int, fps: int, source_fps: int, source_frames: int
) -> int:
    """Index of the source frame on screen at ``start + k/fps``: the last with pts <= t."""
    t = Fraction(start).limit_denominator(10_000) + Fraction(k, fps)
    return min(math.floor(t * source_fps), source_frames - 1)


def expected_count(seconds: float, fps: int) -> int:
    """Frames k with k/fps < seconds (before the GIF short-last-frame merge)."""
    length = Fraction(seconds).limit_denominator(10_000)
    return math.ceil(length * fps)


def run(source: Path, out: Path, **params: object) -> Result:
    return animate(source, out, AnimateParams(**params))  # type: ignore[arg-type]


def boundaries(durations: list[int]) -> list[int]:
    total = 0
    ends = []
    for value in durations:
        total += value
        ends.append(total)
    return ends


# -- which frame is shown -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_frame_on_screen_at_each_output_time(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, start=1.0, end=3.0, fps=10)
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == 20
    expected = [on_screen(1.0, k, 10, CLIP_FPS, 150) for k in range(20)]
    assert expected[:5] == [25, 27, 30, 32, 35]
    assert anim.indices() == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_frame_on_screen_with_unaligned_start_and_rate(
    clip: Path, tmp_path: Path, fmt: OutputFormat
) -> None:
    # 0.37 s + k/7 never falls exactly on a 25 fps frame time.
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, start=0.37, end=2.0, fps=7)
    anim = decode_animation(result.path)
    count = expected_count(2.0 - 0.37, 7)
    assert len(anim.frames) == result.FrameCount == count == 12
    assert anim.indices() == [on_screen(0.37, k, 7, CLIP_FPS, 150) for k in range(count)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_whole_clip_by_default(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, fps=5)
    anim = decode_animation(result.path)
    assert result.StartTimeOffset == pytest.approx(0.0)
    assert result.EndTimeOffset == pytest.approx(6.0, abs=0.01)
    assert len(anim.frames) == 30
    assert anim.indices() == [5 * k for k in range(30)]


def test_late_segment_in_a_single_gop_clip(clip_with_audio: Path, tmp_path: Path) -> None:
    """One keyframe at 0 (x264's default GOP) and an audio track: the seek must land on the
    keyframe before the start and decode forward."""
    result = run(clip_with_audio, tmp_path / "out.gif", start=2.0, end=2.8, fps=10)
    assert decode_animation(result.path).indices() == [50, 52, 55, 57, 60, 62, 65, 67]


@pytest.mark.parametrize("fmt", FORMATS)
def test_mpeg4_in_matroska(mpeg4_mkv: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    result = run(mpeg4_mkv, tmp_path / f"out.{fmt}", format=fmt, start=0.5, end=1.5, fps=10)
    anim = decode_animation(result.path)
    assert anim.indices() == [on_screen(0.5, k, 10, 25, 50) for k in range(10)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_upsampling_repeats_source_frames(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    """30 fps out of a 25 fps source: some source frames are shown twice. FrameCount counts
    output times (k = 0..n-1); libwebp's animation encoder merges identical neighbours into
    one longer frame (AVIF and MP4 keep every frame), so the check is what a viewer sees at
    each output time."""
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, start=0, end=1.0, fps=30)
    anim = decode_animation(result.path)
    expected = [on_screen(0, k, 30, CLIP_FPS, 150) for k in range(30)]
    assert len(set(expected)) == 25
    assert result.FrameCount == 30
    assert 25 <= len(anim.frames) <= 30
    # Sample each output slot in its middle, away from rounding at the boundaries.
    assert [anim.shown_at((k + 0.5) * 1000 / 30) for k in range(30)] == expected
    assert abs(anim.total_ms - 1000) <= 10


# -- offsets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("start", "end", "segment"),
    [
        pytest.param(-2.0, -0.5, (4.0, 5.5), id="both-negative"),
        pytest.param(-1.0, 0, (5.0, 6.0), id="last-second"),
        pytest.param(4.5, 100.0, (4.5, 6.0), id="end-clamped"),
        pytest.param(-100.0, 0.8, (0.0, 0.8), id="start-clamped"),
    ],
)
def test_offsets(
    clip: Path,
    tmp_path: Path,
    fmt: OutputFormat,
    start: float,
    end: float,
    segment: tuple[float, float],
) -> None:
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, start=start, end=end, fps=10)
    assert result.StartTimeOffset == pytest.approx(segment[0], abs=0.01)
    assert result.EndTimeOffset == pytest.approx(segment[1], abs=0.01)
    count = expected_count(segment[1] - segment[0], 10)
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == count
    assert anim.indices() == [on_screen(segment[0], k, 10, CLIP_FPS, 150) for k in range(count)]
    assert abs(anim.total_ms - 1000 * (segment[1] - segment[0])) <= 10


@pytest.mark.parametrize(
    ("start", "end"),
    [(3.0, 3.0), (4.0, 2.0), (6.0, 0), (9.0, 0), (-1.0, -2.0), (0, -6.0)],
)
def test_empty_or_inverted_segment(clip: Path, tmp_path: Path, start: float, end: float) -> None:
    with pytest.raises(TaskError) as caught:
        run(clip, tmp_path / "out.gif", start=start, end=end)
    assert caught.value.code is ErrCodeExt.INVALID_TIME_OFFSET
    assert os.listdir(tmp_path) == []


# -- timing -----------------------------------------------------------------------------------


def test_gif_fps30_delays_carry_rounding(clip30: Path, tmp_path: Path) -> None:
    result = run(clip30, tmp_path / "out.gif", fps=30)
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == 90
    assert anim.indices() == list(range(90))
    assert set(anim.durations_ms) == {30, 40}  # 3 and 4 cs, never under 2 cs
    # Carried rounding: each frame ends within half a centisecond of k/30 s.
    for k, end_ms in enumerate(boundaries(anim.durations_ms)[:-1], start=1):
        assert abs(end_ms - k * 1000 / 30) <= 5 + 1e-9, f"frame {k - 1} ends at {end_ms} ms"
    assert abs(anim.total_ms - 3000) <= 10
    assert result.Duration == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("fmt", MS_FORMATS)
def test_fps30_durations_in_ms(clip30: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    result = run(clip30, tmp_path / f"out.{fmt}", format=fmt, fps=30)
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == 90
    assert anim.indices() == list(range(90))
    assert set(anim.durations_ms) <= {33, 34}
    for k, end_ms in enumerate(boundaries(anim.durations_ms)[:-1], start=1):
        assert abs(end_ms - k * 1000 / 30) <= 0.5 + 1e-9
    assert abs(anim.total_ms - 3000) <= 10


def test_gif_fps50_all_two_centiseconds(clip50: Path, tmp_path: Path) -> None:
    result = run(clip50, tmp_path / "out.gif", fps=50)
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == 100
    assert anim.durations_ms == [20] * 100
    assert anim.indices() == list(range(100))


@pytest.mark.parametrize("fmt", MS_FORMATS)
def test_fps50_in_ms(clip50: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    result = run(clip50, tmp_path / f"out.{fmt}", format=fmt, fps=50)
    anim = decode_animation(result.path)
    assert anim.durations_ms == [20] * 100
    assert anim.indices() == list(range(100))


def test_gif_short_last_frame_merges(clip: Path, tmp_path: Path) -> None:
    """2.01 s at 10 fps: a 21st frame would last 1 cs, under the 2 cs floor, so it merges."""
    result = run(clip, tmp_path / "out.gif", start=1.0, end=3.01, fps=10)
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == 20
    assert anim.durations_ms == [100] * 19 + [110]
    assert anim.indices() == [on_screen(1.0, k, 10, CLIP_FPS, 150) for k in range(20)]
    assert min(anim.durations_ms) >= 20


@pytest.mark.parametrize("fmt", MS_FORMATS)
def test_ms_formats_keep_short_last_frame(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, start=1.0, end=3.01, fps=10)
    anim = decode_animation(result.path)
    assert result.FrameCount == len(anim.frames) == 21
    assert anim.durations_ms == [100] * 20 + [10]
    assert anim.indices()[-1] == on_screen(1.0, 20, 10, CLIP_FPS, 150)


@pytest.mark.parametrize("fps", [1, 3, 7, 12, 24])
def test_gif_delays_for_assorted_rates(clip: Path, tmp_path: Path, fps: int) -> None:
    result = run(clip, tmp_path / "out.gif", start=0.5, end=4.2, fps=fps, width=64)
    anim = decode_animation(result.path)
    assert min(anim.durations_ms) >= 20
    assert all(d % 10 == 0 for d in anim.durations_ms)
    assert abs(anim.total_ms - 3700) <= 10
    assert result.FrameCount == len(anim.frames)
    ideal = expected_count(3.7, fps)
    assert result.FrameCount in (ideal, ideal - 1)  # -1 only through the short-frame merge
    assert anim.indices() == [
        on_screen(0.5, k, fps, CLIP_FPS, 150) for k in range(result.FrameCount)
    ]


@pytest.mark.parametrize("fmt", [GIF, WEBP])
def test_loops_forever(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    result = run(clip, tmp_path / f"out.{fmt}", format=fmt, end=1.0, fps=5)
    assert decode_animation(result.path).loop == 0


# -- sizes and rotation -----------------------------------------------------------------------

LANDSCAPE_CASES = [
    ((0, 0, OPEN), (320, 180)),
    ((256, 0, OPEN), (256, 144)),
    ((0, 144, OPEN), (256, 144)),
    ((200, 100, OPEN), (200, 100)),
    ((150, 0, OPEN), (150, 84)),
    ((0, 0, CLOSE), (320, 180)),
    ((256, 0, CLOSE), (256, 144)),
    ((0, 144, CLOSE), (256, 144)),
    ((100, 200, CLOSE), (100, 200)),
    ((640, 0, OPEN), (640, 360)),
]
# Displayed portrait 180x320: open turns the box (Width = long edge), close does not.
PORTRAIT_CASES = [
    ((0, 0, OPEN), (180, 320)),
    ((256, 0, OPEN), (144, 256)),
    ((0, 144, OPEN), (144, 256)),
    ((200, 100, OPEN), (100, 200)),
    ((0, 0, CLOSE), (180, 320)),
    ((160, 0, CLOSE), (160, 284)),
    ((0, 256, CLOSE), (144, 256)),
    ((0, 100, CLOSE), (56, 100)),
    ((200, 100, CLOSE), (200, 100)),
]


def _size_cases() -> list[object]:
    cases: list[object] = []
    for source, table in (
        ("landscape", LANDSCAPE_CASES),
        ("portrait", PORTRAIT_CASES),
        ("rotate90", PORTRAIT_CASES),
        ("rotate270", PORTRAIT_CASES),
        ("rotate180", LANDSCAPE_CASES[:5]),
    ):
        for (width, height, adaptive), expected in table:
            cases.append(
                pytest.param(
                    source,
                    width,
                    height,
                    adaptive,
                    expected,
                    id=f"{source}-{width}x{height}-{adaptive}",
                )
            )
    return cases


@pytest.fixture(scope="session")
def size_sources(
    clip: Path, portrait_clip: Path, rotated_clips: dict[int, Path]
) -> dict[str, Path]:
    return {
        "landscape": clip,
        "portrait": portrait_clip,
        "rotate90": rotated_clips[90],
        "rotate180": rotated_clips[180],
        "rotate270": rotated_clips[270],
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("source", "width", "height", "adaptive", "expected"), _size_cases())
def test_output_size_and_orientation(
    size_sources: dict[str, Path],
    tmp_path: Path,
    fmt: OutputFormat,
    source: str,
    width: int,
    height: int,
    adaptive: ResolutionAdaptive,
    expected: tuple[int, int],
) -> None:
    result = run(
        size_sources[source],
        tmp_path / f"out.{fmt}",
        format=fmt,
        width=width,
        height=height,
        resolution_adaptive=adaptive,
        start=0.5,
        end=1.0,
        fps=10,
    )
    anim = decode_animation(result.path)
    assert (anim.width, anim.height) == expected
    assert (result.Width, result.Height) == expected
    if expected[0] >= 64:
        # The index reads only from an upright, unmirrored picture: this checks the
        # rotation was applied, and in the right direction.
        assert anim.indices() == [12, 15, 17, 20, 22]


# -- result fields, progress, atomic output ---------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_result_fields(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    out = tmp_path / f"out.{fmt}"
    result = run(clip, out, format=fmt, width=160, start=1.0, end=3.5, fps=10)
    data = out.read_bytes()
    assert Path(result.path) == out
    assert result.Container == fmt.value
    assert result.Md5 == hashlib.md5(data).hexdigest()
    assert result.Size == len(data) == out.stat().st_size
    assert (result.Width, result.Height) == (160, 90)
    assert result.StartTimeOffset == pytest.approx(1.0, abs=0.01)
    assert result.EndTimeOffset == pytest.approx(3.5, abs=0.01)
    assert result.Duration == pytest.approx(2.5, abs=0.01)
    assert result.FrameCount == 25
    assert result.Bitrate == pytest.approx(result.Size * 8 / result.Duration, rel=0.01)
    magic = {
        GIF: (0, b"GIF89a"),
        WEBP: (8, b"WEBP"),
        AVIF: (4, b"ftypavis"),  # the AVIF image-sequence brand
        MP4: (4, b"ftypisom"),
    }
    offset, expected = magic[fmt]
    assert data[offset : offset + len(expected)] == expected
    wire = result.to_dict()
    assert set(wire) == {
        "Container",
        "Width",
        "Height",
        "Size",
        "Bitrate",
        "Md5",
        "StartTimeOffset",
        "EndTimeOffset",
        "FrameCount",
        "Duration",
    }
    assert os.listdir(tmp_path) == [out.name]  # no temporary file left behind


def test_same_input_same_output(clip: Path, tmp_path: Path) -> None:
    first = run(clip, tmp_path / "a.gif", start=1.0, end=2.0, fps=10, width=160)
    second = run(clip, tmp_path / "b.gif", start=1.0, end=2.0, fps=10, width=160)
    assert first.Md5 == second.Md5


@pytest.mark.parametrize("fmt", FORMATS)
def test_progress_and_atomic_output(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    out = tmp_path / f"out.{fmt}"
    seen: list[float] = []
    visible_early: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        if fraction < 1.0 and out.exists():
            visible_early.append(fraction)

    animate(clip, out, AnimateParams(format=fmt, start=1.0, end=3.0, fps=10), progress=progress)
    assert len(seen) >= 5
    assert seen == sorted(seen), "progress went backwards"
    assert all(0.0 <= value <= 1.0 for value in seen)
    assert seen[-1] == 1.0
    assert seen.count(1.0) == 1
    assert visible_early == [], "output appeared under its final name before it was complete"


@pytest.mark.parametrize("fmt", FORMATS)
def test_failure_mid_run_leaves_no_file(clip: Path, tmp_path: Path, fmt: OutputFormat) -> None:
    """The deadline passes while frames are being encoded: InternalError, folder unchanged."""
    (tmp_path / "keep.txt").write_text("unrelated")
    out = tmp_path / f"out.{fmt}"
    deadline = time.monotonic() + 0.5
    calls = 0

    def progress(fraction: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)

    with pytest.raises(TaskError) as caught:
        animate(
            clip,
            out,
            AnimateParams(format=fmt, start=0, end=5.0, fps=10),
            deadline=deadline,
            progress=progress,
        )
    assert caught.value.code is ErrCodeExt.INTERNAL_ERROR
    assert caught.value.code.retryable
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_exception_from_progress_callback_leaves_no_file(
    clip: Path, tmp_path: Path, fmt: OutputFormat
) -> None:
    out = tmp_path / f"out.{fmt}"

    class Cancelled(Exception):
        pass

    def progress(fraction: float) -> None:
        if fraction > 0.3:
            raise Cancelled

    with pytest.raises(Cancelled):
        animate(clip, out, AnimateParams(format=fmt, end=3.0, fps=10), progress=progress)
    assert os.listdir(tmp_path) == []


def test_output_limit_leaves_no_file(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(TaskError) as caught:
        animate(
            clip,
            tmp_path / "out.gif",
            AnimateParams(end=2.0, fps=10),
            Limits(max_output_bytes=1000),
        )
    assert caught.value.code is ErrCodeExt.RESULT_FILE_TOO_LARGE
    assert os.listdir(tmp_path) == []


def test_long_gif_two_pass_palette_matches_frames(clip: Path, tmp_path: Path) -> None:
    """A segment too big for the palette buffer is decoded twice (histogram, then encode);
    the frames must be the same ones a single pass picks."""
    params = AnimateParams(start=1.0, end=4.0, fps=10)
    limits = Limits(palette_buffer_bytes=1)
    result = animate(clip, tmp_path / "out.gif", params, limits)
    anim = decode_animation(result.path)
    assert anim.indices() == [on_screen(1.0, k, 10, CLIP_FPS, 150) for k in range(30)]
