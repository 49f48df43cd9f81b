"""StartTimeOffset / EndTimeOffset semantics (spec 3.1)."""

from __future__ import annotations

import math

from anigraph.domain.errors import ErrCodeExt, TaskError


def resolve_segment(start: float, end: float, duration: float) -> tuple[float, float]:
    """Turn requested offsets into an absolute ``[start, end)`` inside ``[0, duration]``.

    0 means "from the start" / "to the end"; a negative value counts back from the end;
    values past the duration are clamped. An empty or inverted result is an input error.
    """
    for name, value in (("StartTimeOffset", start), ("EndTimeOffset", end)):
        if not math.isfinite(value):
            raise TaskError(ErrCodeExt.INVALID_TIME_OFFSET, f"{name} must be a finite number")
    if not math.isfinite(duration) or duration <= 0:
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, "source has no usable duration")
    abs_start = start if start >= 0 else duration + start
    abs_end = duration if end == 0 else (end if end > 0 else duration + end)
    abs_start = min(max(abs_start, 0.0), duration)
    abs_end = min(max(abs_end, 0.0), duration)
    if abs_start >= abs_end:
        raise TaskError(
            ErrCodeExt.INVALID_TIME_OFFSET,
            f"segment is empty: start {abs_start:.3f}s is not before end {abs_end:.3f}s "
            f"(source duration {duration:.3f}s)",
        )
    return abs_start, abs_end
