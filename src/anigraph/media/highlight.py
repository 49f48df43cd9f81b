"""SegmentMode Highlight: the window of ``Duration`` seconds with the most meaningful motion.

Each look at the video (small luma planes a few times a second) is scored:

- *content*: how much picture there is: the spread of luma inside the active area, times the
  share of the frame that active area is. Black frames and letterbox bars count as nothing.
- *change*: the mean difference of two neighbouring looks after each is normalised to zero mean
  and unit spread, so a fade (a global change of brightness) is no change and a still is none.
- *cut*: a change that also moves the luma histogram a lot is a scene change, not motion.

A window's score is the change it holds, weighted by content; a cut close to either edge (a
sliver of another scene) costs it nine tenths. Short searches look at every window closely;
long ones first rank windows by packet sizes (:func:`analysis.scan_packets`: the encoder's own
bits per frame, nothing decoded), then look closely around the best two.
"""

from __future__ import annotations

import os
from dataclasses import replace

import av
import numpy as np
from numpy.typing import NDArray

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.offsets import resolve_segment
from anigraph.domain.templates import DURATION_RANGE
from anigraph.media.analysis import PacketScan, Plane, sampled_planes, scan_packets
from anigraph.media.decode import DecodeStats
from anigraph.media.probe import check_video_stream, pick_video_stream, stream_duration
from anigraph.media.safe_open import open_media
from anigraph.media.types import AnimateParams, Limits, SegmentMode

MIN_DURATION, MAX_DURATION = DURATION_RANGE
# A close look decodes every frame (only cheaper); past this many source pixels a search ranks
# windows by packet sizes first and looks closely around the best few only. About 8 s of 1080p
# at 25 fps, 2 s of decoding on a busy core.
CLOSE_LOOK_PIXELS = 8 * 25 * 1920 * 1080
CLOSE_LOOK_SECONDS = 120.0  # and past this length whatever the size (looks are kept in memory)
CANDIDATES = 2
_BAR_LEVEL = 24.0  # a row or column darker than this and flatter than _BAR_SPREAD is a bar
_BAR_SPREAD = 6.0
_FULL_CONTENT_SPREAD = 20.0
_CUT_HISTOGRAM = 0.25  # L1 distance of 16-bin histograms, in [0, 2]
_CUT_CHANGE = 0.4
_EDGE_CUT_FACTOR = 0.1
_HISTOGRAM_BINS = 16


def segment_problems(params: AnimateParams) -> list[str]:
    problems = []
    if not isinstance(params.segment_mode, SegmentMode):
        problems.append(f"segment mode must be one of {', '.join(m.value for m in SegmentMode)}")
    if not MIN_DURATION <= params.duration <= MAX_DURATION:
        problems.append(f"duration must be in [{MIN_DURATION:g}, {MAX_DURATION:g}] seconds")
    return problems


def look_rate(duration: float) -> float:
    """Looks per second: a dozen per window, between 4 and 10 a second."""
    return min(10.0, max(4.0, 12.0 / duration))


def _active_span(dark: NDArray[np.bool_]) -> int:
    """Length of what is left when leading and trailing bars are taken off."""
    inside = np.flatnonzero(~dark)
    return 0 if inside.size == 0 else int(inside[-1] - inside[0] + 1)


def content(plane: Plane) -> float:
    """0 for black or empty, up to 1 for a frame full of detail."""
    rows = (plane.mean(axis=1) < _BAR_LEVEL) & (plane.std(axis=1) < _BAR_SPREAD)
    cols = (plane.mean(axis=0) < _BAR_LEVEL) & (plane.std(axis=0) < _BAR_SPREAD)
    height, width = plane.shape
    active_rows, active_cols = _active_span(rows), _active_span(cols)
    if active_rows == 0 or active_cols == 0:
        return 0.0
    top = int(np.argmax(~rows))
    left = int(np.argmax(~cols))
    active = plane[top : top + active_rows, left : left + active_cols]
    share = active_rows * active_cols / (height * width)
    return float(share * min(float(active.std()) / _FULL_CONTENT_SPREAD, 1.0))


def _normalised(plane: Plane) -> Plane:
    result: Plane = (plane - plane.mean()) / (plane.std() + 4.0)
    return result


def _histogram(plane: Plane) -> NDArray[np.float64]:
    counts, _ = np.histogram(plane, bins=_HISTOGRAM_BINS, range=(0.0, 256.0))
    return counts / max(plane.size, 1)


def step_scores(planes: list[Plane]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Per look: the content-weighted change from the look before, and whether it is a cut."""
    count = len(planes)
    scores = np.zeros(count, dtype=np.float64)
    cuts = np.zeros(count, dtype=np.bool_)
    contents = [content(plane) for plane in planes]
    for i in range(1, count):
        change = float(np.abs(_normalised(planes[i]) - _normalised(planes[i - 1])).mean())
        moved = float(np.abs(_histogram(planes[i]) - _histogram(planes[i - 1])).sum())
        cuts[i] = moved > _CUT_HISTOGRAM and change > _CUT_CHANGE
        if not cuts[i]:
            scores[i] = min(change, 1.0) * min(contents[i - 1], contents[i])
    return scores, cuts


def window_values(
    times: NDArray[np.float64],
    scores: NDArray[np.float64],
    cuts: NDArray[np.bool_],
    length: float,
    lo: float,
    hi: float,
) -> list[tuple[float, float]]:
    """``(start, value)`` of each ``length``-second window inside ``[lo, hi]`` starting at a look.

    ``scores[i]`` and ``cuts[i]`` describe what happens between ``times[i-1]`` and ``times[i]``.
    """
    edge = min(0.5, length / 4)
    totals = np.concatenate([[0.0], np.cumsum(scores)])
    cut_totals = np.concatenate([[0], np.cumsum(cuts)])
    fits = (times >= lo - 1e-9) & (times + length <= hi + 1e-9)
    starts = times[fits]
    first = np.flatnonzero(fits) + 1  # the first step inside a window is the next look's
    last = np.searchsorted(times, starts + length + 1e-9, side="right")
    values = totals[last] - totals[first]
    # Cuts inside a window, in its first or last ``edge`` seconds.
    head = np.searchsorted(times, starts + edge + 1e-9, side="right")
    tail = np.maximum(np.searchsorted(times, starts + length - edge, side="right"), head)
    edge_cuts = (cut_totals[head] - cut_totals[first]) + (cut_totals[last] - cut_totals[tail])
    values = np.where(edge_cuts > 0, values * _EDGE_CUT_FACTOR, values)
    return [(float(t), float(v)) for t, v in zip(starts, values, strict=True)]


def _best(values: list[tuple[float, float]], lo: float) -> tuple[float, float]:
    # The earliest of equals: max() keeps the first maximum.
    return max(values, key=lambda pair: pair[1], default=(lo, 0.0))


def _close_look(
    source: str | os.PathLike[str],
    lo: float,
    hi: float,
    length: float,
    limits: Limits,
    deadline: float | None,
    stats: DecodeStats,
) -> tuple[float, float]:
    """``(start, value)`` of the best window, from looks at every step of ``[lo, hi]``."""
    step = 1.0 / look_rate(length)
    offsets = tuple(k * step for k in range(int((hi - lo) / step + 1e-9) + 1))
    planes = sampled_planes(source, lo, offsets, limits, deadline, stats, fast=True)
    scores, cuts = step_scores(planes)
    times = lo + np.array(offsets, dtype=np.float64)
    return _best(window_values(times, scores, cuts, length, lo, hi), lo)


def packet_candidates(
    scan: PacketScan, lo: float, hi: float, length: float, count: int
) -> list[float]:
    """Starts of the ``count`` best windows that do not overlap, by packet sizes alone.

    Motion is the bytes of inter frames per step against the typical step; content is the size
    of the latest keyframe against the typical keyframe (black, a title card and letterbox bars
    compress to almost nothing).
    """
    step = 1.0 / look_rate(length)
    edges = lo + step * np.arange(int((hi - lo) / step + 1e-9) + 2, dtype=np.float64)
    inter, key = ~scan.keyframe, scan.keyframe
    per_step, _ = np.histogram(scan.times[inter], bins=edges, weights=scan.sizes[inter])
    typical = float(np.median(per_step[per_step > 0])) if np.any(per_step > 0) else 1.0
    motion = np.minimum(per_step / typical, 3.0) / 3.0
    if not inter.any():  # intra-only: no measure of change, rank by detail alone
        motion = np.ones_like(per_step)
    key_sizes = scan.sizes[key]
    typical_key = max(float(np.median(key_sizes)), 1.0) if key_sizes.size else 1.0
    detail = np.concatenate([[0.0], np.minimum(key_sizes / typical_key, 1.0)])
    # detail[0] stands for "no keyframe yet", which only an unseekable scan can meet.
    latest = np.searchsorted(scan.times[key], edges[1:], side="right")
    weight = detail[latest]
    scores = np.concatenate([[0.0], motion * weight])
    values = window_values(edges, scores, np.zeros(scores.size, dtype=np.bool_), length, lo, hi)
    chosen: list[float] = []
    for start, _ in sorted(values, key=lambda pair: -pair[1]):
        if len(chosen) == count:
            break
        if all(abs(start - other) >= 2 * length for other in chosen):
            chosen.append(start)
    return chosen


def _source_pixels(source: str | os.PathLike[str], seconds: float) -> float:
    with open_media(source) as container:
        stream = pick_video_stream(container)
        rate = stream.average_rate or stream.guessed_rate or 30
        return float(rate) * seconds * stream.width * stream.height


def resolved(
    params: AnimateParams,
    source: str | os.PathLike[str],
    limits: Limits,
    deadline: float | None,
) -> AnimateParams:
    """``params`` with a Highlight search's bounds narrowed to the window it chose.

    Done once, before anything renders: a search that renders several times (MaxSize) renders
    the same window, and a window of exactly ``duration`` is its own choice (no second search).
    """
    if params.segment_mode is not SegmentMode.HIGHLIGHT:
        return params
    try:
        with open_media(source) as container:
            stream = pick_video_stream(container)
            check_video_stream(stream, limits)
            seconds = stream_duration(stream, container)
        lo, hi = resolve_segment(params.start, params.end, seconds)
        start, end = choose_window(source, lo, hi, params.duration, limits, deadline)
    except av.error.FFmpegError as exc:
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, f"media error: {exc}") from exc
    return replace(params, start=start, end=end)


def choose_window(
    source: str | os.PathLike[str],
    lo: float,
    hi: float,
    length: float,
    limits: Limits,
    deadline: float | None = None,
    stats: DecodeStats | None = None,
) -> tuple[float, float]:
    """The ``[start, end)`` of the best ``length``-second window inside ``[lo, hi]``."""
    if hi - lo <= length + 1e-9:
        return lo, hi
    stats = stats or DecodeStats()
    if hi - lo <= CLOSE_LOOK_SECONDS and _source_pixels(source, hi - lo) <= CLOSE_LOOK_PIXELS:
        start, _ = _close_look(source, lo, hi, length, limits, deadline, stats)
        return start, start + length
    scan = scan_packets(source, lo, hi, deadline)
    looks = []
    for guess in packet_candidates(scan, lo, hi, length, CANDIDATES):
        near = max(lo, guess - length / 2), min(hi, guess + 1.5 * length)
        looks.append(_close_look(source, *near, length, limits, deadline, stats))
    start, _ = _best(looks, lo)
    return start, start + length
