"""Pure rules: segment offsets (spec 3.1), output size (spec 2.1) and the frame timeline."""

from __future__ import annotations

import math

import pytest

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.geometry import ResolutionAdaptive, output_size
from anigraph.domain.offsets import resolve_segment
from anigraph.domain.timeline import MIN_GIF_DELAY_CS, build_timeline

OPEN = ResolutionAdaptive.OPEN
CLOSE = ResolutionAdaptive.CLOSE


@pytest.mark.parametrize(
    ("start", "end", "duration", "expected"),
    [
        pytest.param(0, 0, 10, (0, 10), id="zero-zero-whole-clip"),
        pytest.param(2, 5, 10, (2, 5), id="absolute"),
        pytest.param(2, 0, 10, (2, 10), id="end-0-means-to-the-end"),
        pytest.param(0, 4, 10, (0, 4), id="start-0-means-from-the-start"),
        pytest.param(-3, 0, 10, (7, 10), id="negative-start-from-end"),
        pytest.param(1, -2, 10, (1, 8), id="negative-end-from-end"),
        pytest.param(-4, -1, 10, (6, 9), id="both-negative"),
        pytest.param(-20, 0, 10, (0, 10), id="negative-start-clamped-to-0"),
        pytest.param(3, 25, 10, (3, 10), id="end-past-duration-clamped"),
        pytest.param(0, 99, 2.5, (0, 2.5), id="fractional-duration-clamped"),
        pytest.param(0.25, 1.75, 2.5, (0.25, 1.75), id="fractional-offsets"),
        pytest.param(-0.5, 0, 2.5, (2.0, 2.5), id="fractional-negative"),
    ],
)
def test_resolve_segment(
    start: float, end: float, duration: float, expected: tuple[float, float]
) -> None:
    got = resolve_segment(start, end, duration)
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("start", "end", "duration"),
    [
        pytest.param(5, 5, 10, id="empty"),
        pytest.param(6, 4, 10, id="inverted"),
        pytest.param(-1, -3, 10, id="inverted-negative"),
        pytest.param(12, 0, 10, id="start-past-end-of-clip"),
        pytest.param(10, 0, 10, id="start-at-end-of-clip"),
        pytest.param(0, -10, 10, id="end-counted-back-to-0"),
        pytest.param(0, -15, 10, id="end-counted-back-past-0"),
        pytest.param(math.nan, 0, 10, id="nan-start"),
        pytest.param(0, math.nan, 10, id="nan-end"),
        pytest.param(math.inf, 0, 10, id="inf-start"),
        pytest.param(0, -math.inf, 10, id="minus-inf-end"),
    ],
)
def test_resolve_segment_rejects_empty_or_invalid(
    start: float, end: float, duration: float
) -> None:
    with pytest.raises(TaskError) as caught:
        resolve_segment(start, end, duration)
    assert caught.value.code is ErrCodeExt.INVALID_TIME_OFFSET
    assert caught.value.code.legacy_code == 40000
    assert not caught.value.code.retryable


@pytest.mark.parametrize("duration", [0.0, -1.0, math.nan, math.inf])
def test_resolve_segment_needs_a_usable_duration(duration: float) -> None:
    with pytest.raises(TaskError) as caught:
        resolve_segment(0, 0, duration)
    assert caught.value.code.value.startswith("SourceFileError")


@pytest.mark.parametrize(
    ("src", "box", "adaptive", "expected"),
    [
        # Landscape source.
        pytest.param((640, 360), (0, 0), OPEN, (640, 360), id="land-source-size"),
        pytest.param((640, 360), (320, 0), OPEN, (320, 180), id="land-width-only"),
        pytest.param((640, 360), (0, 180), OPEN, (320, 180), id="land-height-only"),
        pytest.param((640, 360), (300, 300), OPEN, (300, 300), id="land-exact-box"),
        pytest.param((640, 360), (320, 0), CLOSE, (320, 180), id="land-close-width"),
        pytest.param((640, 360), (0, 180), CLOSE, (320, 180), id="land-close-height"),
        pytest.param((640, 360), (200, 400), CLOSE, (200, 400), id="land-close-box"),
        pytest.param((640, 360), (0, 0), CLOSE, (640, 360), id="land-close-source"),
        pytest.param((640, 360), (150, 0), OPEN, (150, 84), id="land-round-down"),
        pytest.param((640, 360), (0, 100), OPEN, (178, 100), id="land-round-up"),
        # Portrait source: with open, Width is the long edge (the height here).
        pytest.param((360, 640), (0, 0), OPEN, (360, 640), id="port-source-size"),
        pytest.param((360, 640), (320, 0), OPEN, (180, 320), id="port-open-long-edge"),
        pytest.param((360, 640), (320, 0), CLOSE, (320, 569), id="port-close-width"),
        pytest.param((360, 640), (0, 180), OPEN, (180, 320), id="port-open-short-edge"),
        pytest.param((360, 640), (0, 180), CLOSE, (101, 180), id="port-close-height"),
        pytest.param((360, 640), (320, 240), OPEN, (240, 320), id="port-open-box-turned"),
        pytest.param((360, 640), (320, 240), CLOSE, (320, 240), id="port-close-box"),
        # Square source: nothing to turn.
        pytest.param((500, 500), (200, 100), OPEN, (200, 100), id="square-open-box"),
        pytest.param((500, 500), (200, 0), OPEN, (200, 200), id="square-width"),
        pytest.param((500, 500), (0, 120), CLOSE, (120, 120), id="square-close-height"),
        # Odd sizes and extreme aspect ratios.
        pytest.param((641, 361), (320, 0), OPEN, (320, 180), id="odd-source"),
        pytest.param((4000, 10), (100, 0), OPEN, (100, 1), id="derived-side-at-least-1"),
        # Upscaling is not refused: the values are a box, not a reduction.
        pytest.param((160, 90), (320, 0), OPEN, (320, 180), id="upscale"),
    ],
)
def test_output_size(
    src: tuple[int, int],
    box: tuple[int, int],
    adaptive: ResolutionAdaptive,
    expected: tuple[int, int],
) -> None:
    assert output_size(src[0], src[1], box[0], box[1], adaptive) == expected


def test_output_size_rejects_empty_source() -> None:
    with pytest.raises(ValueError):
        output_size(0, 360, 320, 0, OPEN)


def _boundaries(durations: tuple[int, ...]) -> list[int]:
    total = 0
    out = []
    for value in durations:
        total += value
        out.append(total)
    return out


@pytest.mark.parametrize(
    ("seconds", "fps", "unit", "min_ticks", "count"),
    [
        (3.0, 10, 100, MIN_GIF_DELAY_CS, 30),
        (3.0, 30, 100, MIN_GIF_DELAY_CS, 90),
        (3.0, 50, 100, MIN_GIF_DELAY_CS, 150),
        (2.0, 7, 100, MIN_GIF_DELAY_CS, 14),
        (2.0, 7, 1000, 1, 14),
        (2.55, 10, 100, MIN_GIF_DELAY_CS, 26),
        # 2.01 s at 10 fps: a 21st frame would last 1 cs, so it merges into the 20th.
        (2.01, 10, 100, MIN_GIF_DELAY_CS, 20),
        (2.01, 10, 1000, 1, 21),
        (0.05, 10, 100, MIN_GIF_DELAY_CS, 1),
    ],
)
def test_timeline(seconds: float, fps: int, unit: int, min_ticks: int, count: int) -> None:
    timeline = build_timeline(seconds, fps, unit, min_ticks)
    assert timeline.frame_count == count
    assert timeline.times == pytest.approx([k / fps for k in range(count)])
    assert min(timeline.durations) >= min_ticks
    # Rounding is carried: the total is the segment, every boundary within half a tick
    # of the ideal k/fps (except the last, which is the segment end).
    assert abs(timeline.total_seconds - seconds) <= 0.01
    for k, boundary in enumerate(_boundaries(timeline.durations)[:-1], start=1):
        assert abs(boundary - k * unit / fps) <= 0.5 + 1e-9


def test_timeline_fps30_gif_pattern() -> None:
    timeline = build_timeline(3.0, 30, 100, MIN_GIF_DELAY_CS)
    assert set(timeline.durations) == {3, 4}
    assert sum(timeline.durations) == 300
    assert timeline.durations.count(4) == 30


def test_timeline_fps50_gif_all_two_cs() -> None:
    timeline = build_timeline(2.0, 50, 100, MIN_GIF_DELAY_CS)
    assert timeline.durations == (2,) * 100
