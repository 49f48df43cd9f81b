"""Decode one segment and pick the source frame on screen at each output time.

Cost grows with the segment, not with its offset: we seek to the keyframe before the start
and stop as soon as the last output time is covered. Selected frames are converted (scaled,
rotated) on a thread pool; PyAV releases the GIL in the decoder and in swscale, so decoding
and scaling overlap on both cores.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import av
import av.container
from av.video.stream import VideoStream

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.media.types import Limits

T = TypeVar("T")

# A stream with more broken packets than this is malformed, not merely damaged.
_MAX_DECODE_ERRORS = 32
# Frame times and output times are computed differently; equal means equal within this.
_EPSILON = 1e-6


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the media start
    times: tuple[float, ...]  # output times relative to ``start``


@dataclass
class DecodeStats:
    """How much decoding a segment cost: the measure that must not grow with the offset."""

    decoded_frames: int = 0


def check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TaskError(ErrCodeExt.INTERNAL_ERROR, "processing deadline exceeded")


def _frame_seconds(frame: av.VideoFrame, origin: int, stream: VideoStream) -> float | None:
    pts = frame.pts if frame.pts is not None else frame.dts
    if pts is None or stream.time_base is None:
        return None
    return float((pts - origin) * stream.time_base)


def _decoded_frames(
    container: av.container.InputContainer,
    stream: VideoStream,
    limits: Limits,
    deadline: float | None,
    stats: DecodeStats,
) -> Iterator[av.VideoFrame]:
    errors = 0
    for packet in container.demux(stream):
        try:
            frames = stream.decode(packet)
        except av.error.InvalidDataError as exc:
            errors += 1
            if errors > _MAX_DECODE_ERRORS:
                raise TaskError(ErrCodeExt.CONTENT_MALFORMED, f"undecodable video: {exc}") from exc
            continue
        except av.error.FFmpegError as exc:
            raise TaskError(ErrCodeExt.CONTENT_MALFORMED, f"decoding failed: {exc}") from exc
        for frame in frames:
            stats.decoded_frames += 1
            if stats.decoded_frames > limits.max_source_frames_decoded:
                raise TaskError(
                    ErrCodeExt.CONTENT_UNSUPPORTED,
                    f"more than {limits.max_source_frames_decoded} frames decoded for one segment",
                )
            if frame.width * frame.height > limits.max_source_pixels:
                raise TaskError(
                    ErrCodeExt.CONTENT_UNSUPPORTED,
                    f"video frame {frame.width}x{frame.height} exceeds the pixel limit",
                )
            check_deadline(deadline)
            yield frame


def _on_screen(
    container: av.container.InputContainer,
    stream: VideoStream,
    segment: Segment,
    limits: Limits,
    deadline: float | None,
    stats: DecodeStats,
) -> Iterator[av.VideoFrame]:
    """For each output time, the last source frame whose time is not after it."""
    origin = stream.start_time or 0
    if segment.start > 0 and stream.time_base is not None:
        target = origin + int(segment.start / stream.time_base)
        # Unseekable input (raw elementary streams): decode from the start instead.
        with contextlib.suppress(av.error.FFmpegError):
            container.seek(target, stream=stream, backward=True, any_frame=False)
    wanted = [segment.start + t for t in segment.times]
    k = 0
    previous: av.VideoFrame | None = None
    for frame in _decoded_frames(container, stream, limits, deadline, stats):
        seconds = _frame_seconds(frame, origin, stream)
        if seconds is None:
            continue
        if previous is None and seconds > wanted[0]:
            # Nothing decoded is earlier (segment starts before the first picture).
            previous = frame
        while k < len(wanted) and previous is not None and seconds > wanted[k] + _EPSILON:
            yield previous
            k += 1
        if k == len(wanted):
            return
        previous = frame
    if previous is None:
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, "no decodable picture in the segment")
    while k < len(wanted):
        yield previous
        k += 1


class _End:
    """Marks the end of the decoded stream in the hand-over queue."""


def segment_frames(
    container: av.container.InputContainer,
    stream: VideoStream,
    segment: Segment,
    convert: Callable[[av.VideoFrame], T],
    limits: Limits,
    deadline: float | None,
    pool: ThreadPoolExecutor,
    depth: int,
    stats: DecodeStats,
) -> Generator[T, None, None]:
    """Converted output frames in order.

    Decoding runs on its own thread, conversions on ``pool``, and the caller (the encoder)
    on its thread, with at most ``depth`` frames in flight, so all three overlap and memory
    stays bounded. The decoding thread is joined before this generator finishes, so the
    caller may close the container afterwards.
    """
    handover: queue.Queue[Future[T] | BaseException | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Future[T] | BaseException | _End) -> bool:
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for frame in _on_screen(container, stream, segment, limits, deadline, stats):
                if not put(pool.submit(convert, frame)):
                    return
            put(_End())
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    decoder = threading.Thread(target=produce, name="anigraph-decode", daemon=True)
    decoder.start()
    try:
        while True:
            item = handover.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item.result()
    finally:
        stop.set()
        decoder.join()
