"""LoopMode: how the animation's last frame leads into its first.

- Seamless moves the segment's end, within a quarter of its length either way, to the output
  frame whose successor in the source is most like the first frame (SSIM on small luma), so
  the jump from the last frame to the first is the step the source itself takes.
- Crossfade blends the frames that follow the segment into its first frames (weights rising
  from the tail to the head), so the last frame is followed by what the source shows next and
  the loop dissolves back into the start. Without room after the segment, its own last frames
  are the tail and the output is that much shorter.
- Boomerang plays forward then backward without showing either turn-around frame twice. The
  backward half comes from memory when the frames fit the limit, else from re-decoding the
  segment in chunks that do, last chunk first.

Every mode's timing is the engine's: output frame k of the forward part shows the source frame
on screen at ``start + k/fps``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

import av
import numpy as np
from numpy.typing import NDArray

from anigraph.domain.timeline import Timeline, build_timeline
from anigraph.media.analysis import sampled_planes
from anigraph.media.decode import DecodeStats, Segment
from anigraph.media.ssim import WINDOW, luma, ssim_planes
from anigraph.media.types import AnimateParams, Limits, LoopMode

T = TypeVar("T")
Decode = Callable[[Segment], Iterator[T]]

SEAMLESS_SLACK = 0.25  # the end may move by this share of the requested length
CROSSFADE_SECONDS = 0.5  # or a quarter of the segment, whichever is shorter
# Seamless compares at this width: enough detail for SSIM's 7x7 window to tell frames apart.
_SEAM_WIDTH = 96
# Candidates this close to the best match count as equal; the one nearest the request wins.
_SEAM_TIE = 1e-3


def loop_problems(mode: object) -> list[str]:
    if isinstance(mode, LoopMode):
        return []
    return [f"loop mode must be one of {', '.join(m.value for m in LoopMode)}"]


def loop_end(
    params: AnimateParams,
    source: str | os.PathLike[str],
    start: float,
    end: float,
    source_end: float,
    limits: Limits,
    deadline: float | None,
    stats: DecodeStats,
) -> float:
    """The segment's end: ``end`` itself, or in Seamless mode the best-continuing one."""
    if params.loop_mode is not LoopMode.SEAMLESS:
        return end
    return seamless_end(source, start, end, params.fps, source_end, limits, deadline, stats)


def seamless_end(
    source: str | os.PathLike[str],
    start: float,
    end: float,
    fps: int,
    source_end: float,
    limits: Limits,
    deadline: float | None = None,
    stats: DecodeStats | None = None,
) -> float:
    """The end, within ``SEAMLESS_SLACK`` of ``end - start``, that best continues into ``start``.

    The end is always ``start + k/fps``: output frames k and k+1 (the first ones not shown) are
    then the source frames most like output frames 0 and 1, so the loop resumes the motion in
    its direction (a pendulum's frame k alone could match frame 0 on the swing back).
    """
    length = end - start
    first = max(2, math.ceil((1 - SEAMLESS_SLACK) * length * fps - 1e-9))
    last = min(
        math.floor((1 + SEAMLESS_SLACK) * length * fps + 1e-9),
        math.ceil((source_end - start) * fps - 1e-9) - 2,
    )
    if last < first:
        return end
    offsets = (0.0, 1 / fps, *(k / fps for k in range(first, last + 2)))
    looks = sampled_planes(
        source, start, offsets, limits, deadline, stats or DecodeStats(), fast=False,
        width=_SEAM_WIDTH,
    )  # fmt: skip
    planes = [plane.astype(np.float64) for plane in looks]
    head, after = planes[0], planes[1]
    scores = [
        ssim_planes(head, planes[2 + i]) + ssim_planes(after, planes[3 + i])
        for i in range(last - first + 1)
    ]
    best = max(scores)
    near = [first + i for i, score in enumerate(scores) if score >= best - _SEAM_TIE]
    frames = min(near, key=lambda k: (abs(k / fps - length), k))
    return start + frames / fps


@dataclass(frozen=True)
class LoopPlan:
    """The source frames to decode for one loop mode and the output timeline they fill."""

    mode: LoopMode
    segment: Segment  # played forward, first
    timeline: Timeline  # of the output
    source_seconds: float  # the stretch of source played in order (reported as End - Start)
    tail: Segment | None = None  # Crossfade: the frames blended into the first ones


def plan_loop(
    mode: LoopMode, start: float, forward: Timeline, fps: int, source_end: float, min_ticks: int
) -> LoopPlan:
    """What to decode and show for ``mode`` given the forward timeline of the segment."""
    count = forward.frame_count
    plain = LoopPlan(mode, Segment(start, forward.times), forward, forward.total_seconds)
    if mode is LoopMode.BOOMERANG and count >= 3:
        back = build_timeline((2 * count - 2) / fps, fps, forward.unit, min_ticks)
        return LoopPlan(mode, plain.segment, back, forward.total_seconds)
    fade = min(round(CROSSFADE_SECONDS * fps), count // 4)
    if mode is not LoopMode.CROSSFADE or fade < 1:
        return plain
    shown = count if start + (count + fade) / fps <= source_end + 1e-9 else count - fade
    timeline = (
        forward if shown == count else build_timeline(shown / fps, fps, forward.unit, min_ticks)
    )
    tail = Segment(start + shown / fps, tuple(j / fps for j in range(fade)))
    return LoopPlan(
        mode, Segment(start, timeline.times), timeline, timeline.total_seconds, tail=tail
    )


def _nbytes(frame: object) -> int:
    if isinstance(frame, np.ndarray):
        return int(frame.nbytes)
    if isinstance(frame, av.VideoFrame):
        return sum(plane.buffer_size for plane in frame.planes)
    raise TypeError(f"cannot size a {type(frame).__name__}")


def blend(tail: T, head: T, weight: float) -> T:
    """``(1 - weight) * tail + weight * head``, for converted frames of either kind."""
    if isinstance(tail, np.ndarray) and isinstance(head, np.ndarray):
        mixed = (1.0 - weight) * tail.astype(np.float32) + weight * head.astype(np.float32)
        return cast(T, np.rint(mixed).astype(np.uint8))
    if isinstance(tail, av.VideoFrame) and isinstance(head, av.VideoFrame):
        # Linear in YUV is linear in RGB: the planes blend as they are.
        fmt = head.format.name
        planes = blend(tail.to_ndarray(), head.to_ndarray(), weight)
        return cast(T, av.VideoFrame.from_ndarray(planes, format=fmt))
    raise TypeError(f"cannot blend a {type(tail).__name__} with a {type(head).__name__}")


def _kept(frames: Iterator[T], budget: int) -> list[T]:
    """The frames, or as many as fit in ``budget`` bytes (at least one): a shorter fade."""
    kept: list[T] = []
    used = 0
    with contextlib.closing(cast(Generator[T], frames)):
        for frame in frames:
            used += _nbytes(frame)
            if kept and used > budget:
                break
            kept.append(frame)
    return kept


def _close(frames: Iterable[object]) -> None:
    """Finish a decoding generator now, not when it is collected: its decoder thread reads a
    container that its owner closes next."""
    close = getattr(frames, "close", None)
    if close is not None:
        close()


def _crossfaded(forward: Iterable[T], tail: list[T]) -> Iterator[T]:
    try:
        for index, frame in enumerate(forward):
            if index < len(tail):
                yield blend(tail[index], frame, (index + 1) / (len(tail) + 1))
            else:
                yield frame
    finally:
        _close(forward)


def _boomerang(plan: LoopPlan, forward: Iterable[T], decode: Decode[T], budget: int) -> Iterator[T]:
    count = len(plan.segment.times)
    kept: list[T] | None = []
    chunk = count
    try:
        for frame in forward:
            if kept is not None and not kept:
                chunk = max(1, budget // max(_nbytes(frame), 1))
                kept = kept if chunk >= count else None
            if kept is not None:
                kept.append(frame)
            yield frame
    finally:
        _close(forward)
    if kept is not None:
        yield from reversed(kept[1:-1])
        return
    times = plan.segment.times
    # Backward through frames count-2 .. 1, one decode per chunk, the latest chunk first.
    for last in range(count - 2, 0, -chunk):
        first = max(1, last - chunk + 1)
        part = Segment(
            plan.segment.start + times[first],
            tuple(times[i] - times[first] for i in range(first, last + 1)),
        )
        yield from reversed(list(decode(part)))


def loop_frames(
    plan: LoopPlan, forward: Iterator[T], decode: Decode[T], budget_bytes: int
) -> Iterator[T]:
    """The output frames of ``plan``: ``forward`` decodes ``plan.segment``, ``decode`` any other."""
    if plan.tail is not None:
        return _crossfaded(forward, _kept(decode(plan.tail), budget_bytes))
    if plan.mode is LoopMode.BOOMERANG and plan.timeline.frame_count > len(plan.segment.times):
        return _boomerang(plan, forward, decode, budget_bytes)
    return forward


def _plane(frame: object) -> NDArray[np.float64]:
    if isinstance(frame, np.ndarray):
        return luma(frame)
    if isinstance(frame, av.VideoFrame):
        return np.asarray(frame.to_ndarray(format="gray"), dtype=np.float64)
    raise TypeError(f"cannot measure a {type(frame).__name__}")


@dataclass
class SeamProbe:
    """Remembers the first and last output frames, for ``LoopSeam``."""

    first: object = None
    last: object = None

    def watch(self, frames: Iterator[T]) -> Generator[T]:
        try:
            for index, frame in enumerate(frames):
                if index == 0:
                    self.first = frame
                self.last = frame
                yield frame
        finally:
            _close(frames)

    def seam(self) -> float | None:
        """SSIM of the last output frame against the first (None before any, or if too small)."""
        if self.first is None or self.last is None:
            return None
        last, first = _plane(self.last), _plane(self.first)
        return ssim_planes(last, first) if min(first.shape) >= WINDOW else None
