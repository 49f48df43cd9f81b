"""When each output frame is shown, and for how long (spec: frame k shows ``start + k/fps``)."""

from __future__ import annotations

from dataclasses import dataclass

# GIF players clamp delays under 2 cs (often to 10 cs), so a shorter frame is never written.
MIN_GIF_DELAY_CS = 2


@dataclass(frozen=True)
class Timeline:
    """Output frame times (seconds from segment start) and their display durations."""

    times: tuple[float, ...]
    durations: tuple[int, ...]  # in ``unit`` ticks, summing to the segment length
    unit: int  # ticks per second: 100 for GIF, 1000 for WebP

    @property
    def frame_count(self) -> int:
        return len(self.times)

    @property
    def total_seconds(self) -> float:
        return sum(self.durations) / self.unit


def build_timeline(duration: float, fps: float, unit: int, min_ticks: int = 1) -> Timeline:
    """Frame k starts at ``k/fps``; boundaries are rounded with the error carried.

    Each frame's end is the rounded ideal end, so rounding never accumulates and the total
    equals the rounded segment length. A trailing frame shorter than ``min_ticks`` is merged
    into the one before it.
    """
    if duration <= 0 or fps <= 0:
        raise ValueError("duration and fps must be positive")
    total_ticks = max(round(duration * unit), min_ticks)
    starts: list[int] = []
    k = 0
    while True:
        tick = round(k * unit / fps)
        if tick >= total_ticks or k / fps >= duration:
            break
        starts.append(tick)
        k += 1
    if not starts:
        starts = [0]
    ends = [*starts[1:], total_ticks]
    durations = [end - begin for begin, end in zip(starts, ends, strict=True)]
    while len(durations) > 1 and durations[-1] < min_ticks:
        short = durations.pop()
        durations[-1] += short
        starts.pop()
    return Timeline(
        times=tuple(k / fps for k in range(len(starts))),
        durations=tuple(durations),
        unit=unit,
    )
