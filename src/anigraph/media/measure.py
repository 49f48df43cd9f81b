"""The measured result: SSIM of what was written against the source frames it shows.

Sampling (``Output.Ssim``): up to ``MAX_SAMPLES`` output frames, evenly spaced over the
animation (always the first and the last), fewer when the frames are large so that the kept
references stay under ``REFERENCE_BYTES``. While the engine encodes, :class:`ReferenceTap` keeps
a copy of the source frame each sampled output frame shows, already scaled to the output size
(so no second decode of the source). After the file is written, :func:`output_ssim` decodes it
once, takes the frame a viewer sees at each sampled frame's time, and returns the mean luma SSIM
(:func:`anigraph.media.ssim.ssim`) against those references. Fps and size are not penalised
here (each output frame is compared with its own source frame at the output size): that is what
the encoder's settings cost. The benchmark's viewer SSIM (bench/fit.py) penalises those too.

Encoders of other formats (AVIF, MP4) or frame orders (loops) call the same two pieces: wrap the
frame iterator in ``tap.wrap`` and call :func:`output_ssim` on the written file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageSequence

from anigraph.domain.timeline import Timeline
from anigraph.media.ssim import WINDOW, ssim

MAX_SAMPLES = 6
REFERENCE_BYTES = 64 * 1024 * 1024
# Pillow composites GIF and animated WebP frames (disposal, transparency) as a viewer does.
_PILLOW_FORMATS = frozenset({"gif", "webp"})
T = TypeVar("T")
Rgb = NDArray[np.uint8]


def sample_indices(frame_count: int, frame_bytes: int) -> list[int]:
    """Evenly spaced output frame indices (first and last included) within the memory cap."""
    if frame_count <= 0:
        return []
    by_memory = max(2, REFERENCE_BYTES // max(frame_bytes, 1))
    count = min(MAX_SAMPLES, frame_count, by_memory)
    if count == 1:
        return [0]
    return sorted({round(i * (frame_count - 1) / (count - 1)) for i in range(count)})


class ReferenceTap:
    """Keeps RGB copies of the sampled frames as they stream to the encoder."""

    def __init__(self, timeline: Timeline, frame_bytes: int) -> None:
        self.timeline = timeline
        self._wanted = set(sample_indices(timeline.frame_count, frame_bytes))
        self.references: dict[int, Rgb] = {}

    def wrap(self, frames: Iterable[T], to_rgb: Callable[[T], Rgb]) -> Iterator[T]:
        for index, frame in enumerate(frames):
            if index in self._wanted and index not in self.references:
                self.references[index] = np.array(to_rgb(frame)[..., :3], dtype=np.uint8)
            yield frame

    def samples(self) -> list[tuple[float, Rgb]]:
        """``(seconds into the animation, reference)`` for each sampled frame, in order."""
        starts = _starts(self.timeline)
        return [(starts[i], self.references[i]) for i in sorted(self.references)]


def _starts(timeline: Timeline) -> list[float]:
    starts, tick = [], 0
    for duration in timeline.durations:
        starts.append(tick / timeline.unit)
        tick += duration
    return starts


def rgba_to_rgb(frame: NDArray[np.uint8]) -> Rgb:
    rgb: Rgb = frame[..., :3]
    return rgb


def video_frame_to_rgb(frame: av.VideoFrame) -> Rgb:
    # One swscale thread, as media.animate's SWSCALE_THREADS: its slice threads crash when other
    # threads scale at the same time (seen here as a segfault in libswscale on vtest.avi).
    converted = frame.reformat(format="rgb24", threads=1)
    rgb: Rgb = np.asarray(converted.to_ndarray(), dtype=np.uint8)
    return rgb


def _shown_frames(path: Path, container: str, times: Sequence[float]) -> list[Rgb]:
    """The frame on screen at each of ``times`` (ascending), as RGB arrays."""
    if container in _PILLOW_FORMATS:
        return _shown_by_pillow(path, list(times))
    return _shown_by_pyav(path, list(times))


def _shown_by_pillow(path: Path, pending: list[float]) -> list[Rgb]:
    shown: list[Rgb] = []
    with Image.open(path) as image:
        elapsed = 0.0
        for frame in ImageSequence.Iterator(image):
            frame.load()  # WebP fills in the frame's duration on load
            elapsed += float(frame.info.get("duration") or 0) / 1000.0
            if pending and pending[0] < elapsed - 1e-9:
                rgb = np.asarray(frame.convert("RGB"), dtype=np.uint8)
                while pending and pending[0] < elapsed - 1e-9:
                    shown.append(rgb)
                    pending.pop(0)
            if not pending:
                break
        if pending:  # times past the end see the last frame
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
            shown.extend(rgb for _ in pending)
    return shown


def _shown_by_pyav(path: Path, pending: list[float]) -> list[Rgb]:
    shown: list[Rgb] = []
    with av.open(str(path)) as media:
        stream = media.streams.video[0]
        origin = stream.start_time or 0
        base = stream.time_base or Fraction(1, 1000)
        previous: Rgb | None = None
        for frame in media.decode(stream):
            seconds = float(((frame.pts or 0) - origin) * base)
            while pending and previous is not None and seconds > pending[0] + 1e-6:
                shown.append(previous)
                pending.pop(0)
            if not pending:
                break
            previous = video_frame_to_rgb(frame)
        if previous is not None:
            shown.extend(previous for _ in pending)
    return shown


def output_ssim(path: Path, container: str, samples: Sequence[tuple[float, Rgb]]) -> float | None:
    """Mean SSIM of the written file's frames at ``samples`` times against their references.

    None when nothing can be compared (no sample, or frames smaller than the SSIM window).
    """
    usable = [(t, ref) for t, ref in samples if min(ref.shape[:2]) >= WINDOW]
    if not usable:
        return None
    # A sample time sits inside its frame's interval: rounding of delays cannot move it across.
    times = [t + 1e-4 for t, _ in usable]
    shown = _shown_frames(path, container, times)
    scores = [
        ssim(reference, frame)
        for (_, reference), frame in zip(usable, shown, strict=False)
        if frame.shape == reference.shape
    ]
    return float(np.mean(scores)) if scores else None
