"""The engine's one entry point: a video segment and a template in, an animated image out."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import av
import av.container
import numpy as np
from av.video.stream import VideoStream
from numpy.typing import NDArray

from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.geometry import at_least, even_size, output_size
from anigraph.domain.offsets import resolve_segment
from anigraph.domain.timeline import MIN_GIF_DELAY_CS, Timeline, build_timeline
from anigraph.media import highlight, loops
from anigraph.media.decode import DecodeStats, Segment, check_deadline, segment_frames
from anigraph.media.fit_rules import fit_problems
from anigraph.media.measure import ReferenceTap, output_ssim, rgba_to_rgb, video_frame_to_rgb
from anigraph.media.probe import check_video_stream, pick_video_stream, stream_duration
from anigraph.media.quality import EncoderChoices, choices_for
from anigraph.media.safe_open import open_media
from anigraph.media.scaling import reformat
from anigraph.media.types import AnimateParams, Limits, OutputFormat, ProgressCallback, Result

MAX_SIDE = 4096
AVIF_MIN_SIDE = 4  # SVT-AV1's smallest frame; a derived side of an extreme aspect can be 1
# Neighbouring output frames share their colours: a palette from every second frame is as
# good (SSIM within 0.0005 on the benchmark footage) and quantises ~25% faster.
HISTOGRAM_FRAME_STEP = 2
T = TypeVar("T")


def _validate(params: AnimateParams, limits: Limits) -> None:
    problems = []
    if not 1 <= params.fps <= limits.max_fps:
        problems.append(f"fps must be in [1, {limits.max_fps}]")
    if not 1 <= params.quality <= 100:
        problems.append("quality must be in [1, 100]")
    for name, value in (("width", params.width), ("height", params.height)):
        if not 0 <= value <= MAX_SIDE:
            problems.append(f"{name} must be 0 or at most {MAX_SIDE}")
    problems.extend(fit_problems(params))
    problems += highlight.segment_problems(params) + loops.loop_problems(params.loop_mode)
    if problems:
        raise TaskError(ErrCodeExt.CONFIGURATION_UNSUPPORTED, "; ".join(problems))


# Frames are already scaled in parallel on our pool. swscale's own slice threads (PyAV's
# default, threads=0 = auto) add nothing on top of that, and FFmpeg 8's slice-thread pool was
# seen to hang forever in avpriv_slicethread_execute when several pool threads scale at once.
SWSCALE_THREADS = 1


def _rotation(frame: av.VideoFrame) -> int:
    # Counter-clockwise angle from the display matrix, as a multiple of 90 in [0, 360).
    return round(frame.rotation / 90.0) % 4


class FrameConverter:
    """Scales (Lanczos) and rotates one decoded frame to the output size and pixel format."""

    def __init__(self, params: AnimateParams, limits: Limits) -> None:
        self._params = params
        self._limits = limits

    def size(self, frame: av.VideoFrame) -> tuple[int, int, int]:
        turns = _rotation(frame)
        shown_w, shown_h = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
        p = self._params
        width, height = output_size(shown_w, shown_h, p.width, p.height, p.resolution_adaptive)
        if p.format is OutputFormat.MP4:
            width, height = even_size(width, height)
        elif p.format is OutputFormat.AVIF:
            width, height = at_least(width, height, AVIF_MIN_SIDE)
        if width * height > self._limits.max_output_pixels:
            raise TaskError(
                ErrCodeExt.CONFIGURATION_UNSUPPORTED,
                f"output {width}x{height} exceeds the limit of "
                f"{self._limits.max_output_pixels} pixels",
            )
        return width, height, turns

    def _scaled(self, frame: av.VideoFrame, fmt: str) -> tuple[av.VideoFrame, int]:
        width, height, turns = self.size(frame)
        coded_w, coded_h = (height, width) if turns % 2 else (width, height)
        scaled = reformat(
            frame,
            width=coded_w,
            height=coded_h,
            format=fmt,
            interpolation="LANCZOS",
            threads=SWSCALE_THREADS,
        )
        return scaled, turns

    def rgba(self, frame: av.VideoFrame) -> NDArray[np.uint8]:
        scaled, turns = self._scaled(frame, "rgba")
        array: NDArray[np.uint8] = np.asarray(scaled.to_ndarray(), dtype=np.uint8)
        return np.ascontiguousarray(np.rot90(array, turns)) if turns else array

    def yuv(self, frame: av.VideoFrame) -> av.VideoFrame:
        if _rotation(frame) == 0:
            scaled, _ = self._scaled(frame, "yuv420p")
            return scaled
        rgb = av.VideoFrame.from_ndarray(self.rgba(frame), format="rgba")
        return rgb.reformat(format="yuv420p", threads=SWSCALE_THREADS)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Progress:
    """Reports the share of frames handled; a second pass over the frames adds to the total."""

    def __init__(self, total: int, callback: ProgressCallback | None, deadline: float | None):
        self._per_pass = max(total, 1)
        self._total = self._per_pass
        self._done = 0
        self._callback = callback
        self._deadline = deadline

    def add_pass(self) -> None:
        self._total += self._per_pass

    def step(self) -> None:
        self._done += 1
        check_deadline(self._deadline)
        if self._callback is not None:
            # Encoding the last frame is not the end: the file still has to be finished.
            self._callback(min(self._done / self._total, 0.99))


@dataclass(frozen=True)
class _Job:
    """What is fixed before decoding starts: the segment, its timeline and the machinery."""

    source: str | os.PathLike[str]
    part: Path
    params: AnimateParams
    limits: Limits
    deadline: float | None
    loop: loops.LoopPlan
    seam: loops.SeamProbe
    converter: FrameConverter
    pool: ThreadPoolExecutor
    depth: int
    stats: DecodeStats
    choices: EncoderChoices

    def frames(
        self,
        container: av.container.InputContainer,
        stream: VideoStream,
        convert: Callable[[av.VideoFrame], T],
    ) -> Generator[T]:
        """The output frames in order, the loop mode applied; close it before the container."""
        forward = self._decode(container, stream, self.loop.segment, convert)

        def decode_other(segment: Segment) -> Iterator[T]:
            with open_media(self.source) as other:
                yield from self._decode(other, pick_video_stream(other), segment, convert)

        budget = self.limits.palette_buffer_bytes
        return self.seam.watch(loops.loop_frames(self.loop, forward, decode_other, budget))

    def _decode(
        self,
        container: av.container.InputContainer,
        stream: VideoStream,
        segment: Segment,
        convert: Callable[[av.VideoFrame], T],
    ) -> Iterator[T]:
        return segment_frames(
            container,
            stream,
            segment,
            convert,
            self.limits,
            self.deadline,
            self.pool,
            depth=self.depth,
            stats=self.stats,
        )

    def reopened_frames(self, convert: Callable[[av.VideoFrame], T]) -> Iterator[T]:
        with open_media(self.source) as container:
            yield from self.frames(container, pick_video_stream(container), convert)


def _encode_gif(
    job: _Job, frames: Iterator[NDArray[np.uint8]], timeline: Timeline, progress: _Progress
) -> tuple[int, int]:
    # Imported here: the palette stack (libimagequant, Pillow) is only needed for GIF.
    from anigraph.media.gif import GifEncoder, add_to_histogram, palette_builder

    choices = job.choices
    first = next(frames)
    height, width = first.shape[:2]
    builder = palette_builder(choices)
    source: Iterable[NDArray[np.uint8]]
    if timeline.frame_count * first.nbytes <= job.limits.palette_buffer_bytes:
        # Short segment: keep the frames, so they are decoded only once.
        buffered = [first, *frames]
        for frame in buffered[::HISTOGRAM_FRAME_STEP]:
            add_to_histogram(builder, frame)
        source = buffered
    else:
        # Long segment: a first pass only feeds the histogram, a second one encodes,
        # so memory stays flat whatever the length and the whole GIF shares one palette.
        progress.add_pass()
        add_to_histogram(builder, first)
        progress.step()
        for index, frame in enumerate(frames, start=1):
            if index % HISTOGRAM_FRAME_STEP == 0:
                add_to_histogram(builder, frame)
            progress.step()
        source = job.reopened_frames(job.converter.rgba)
    palette = builder.finish()
    gif = GifEncoder(job.part, width, height, timeline, choices, palette)
    try:
        gif.write_all(source, job.pool, job.depth, progress.step)
        gif.close()
    except BaseException:
        gif.abort()
        raise
    return width, height


class _FrameEncoder(Protocol):
    def write(self, frame: av.VideoFrame) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def _write_all(
    encoder: _FrameEncoder,
    first: av.VideoFrame,
    frames: Iterator[av.VideoFrame],
    progress: _Progress,
) -> None:
    try:
        encoder.write(first)
        progress.step()
        for frame in frames:
            encoder.write(frame)
            progress.step()
        encoder.close()
    except BaseException:
        encoder.abort()
        raise


def _encode_webp(
    job: _Job, frames: Iterator[av.VideoFrame], timeline: Timeline, progress: _Progress
) -> tuple[int, int]:
    from anigraph.media.webp import WebpEncoder

    first = next(frames)
    webp = WebpEncoder(job.part, first.width, first.height, timeline, job.choices)
    _write_all(webp, first, frames, progress)
    return first.width, first.height


def _encode_video(
    job: _Job, frames: Iterator[av.VideoFrame], timeline: Timeline, progress: _Progress
) -> tuple[int, int]:
    """AVIF or MP4: a video codec fed the timeline's frames (media/timed_video.py)."""
    from anigraph.media.avif import avif_format
    from anigraph.media.mp4 import mp4_format
    from anigraph.media.timed_video import TimedVideoWriter

    make_format = avif_format if job.params.format is OutputFormat.AVIF else mp4_format
    spec = make_format(job.choices, job.limits.threads or os.cpu_count() or 1)
    first = next(frames)
    writer = TimedVideoWriter(job.part, spec, first.width, first.height, job.params.fps, timeline)
    _write_all(writer, first, frames, progress)
    return first.width, first.height


def animate(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    params: AnimateParams,
    limits: Limits | None = None,
    deadline: float | None = None,
    progress: ProgressCallback | None = None,
) -> Result:
    """Render ``params`` applied to ``source`` into ``output`` (written atomically).

    Raises :class:`TaskError` with the Tencent ``ErrCodeExt`` on any failure, leaving no file.
    ``deadline`` is a :func:`time.monotonic` instant. A job that uses an extension also gets its
    measured ``Ssim``; one with ``MaxSize`` or ``QualityTarget`` is searched (media.fit).
    """
    limits = limits or Limits()
    _validate(params, limits)
    # Highlight picks its window once: a byte-budget search then works on that window.
    params = highlight.resolved(params, source, limits, deadline)
    if params.max_size > 0 or params.quality_target > 0:
        from anigraph.media.fit import fit

        def render_with(
            out: Path, chosen: AnimateParams, choices: EncoderChoices, report: ProgressCallback
        ) -> Result:
            return render(source, out, chosen, limits, deadline, report, choices, measured=True)

        return fit(source, Path(output), params, limits, deadline, progress, render_with)
    return render(
        source,
        output,
        params,
        limits,
        deadline,
        progress,
        choices_for(params.quality),
        measured=params.uses_extension(),
    )


def render(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    params: AnimateParams,
    limits: Limits,
    deadline: float | None,
    progress: ProgressCallback | None,
    choices: EncoderChoices,
    measured: bool,
) -> Result:
    """One encode with these exact settings; ``measured`` adds ``Ssim`` (see media.measure)."""
    target = Path(output)
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    unit, min_ticks = (100, MIN_GIF_DELAY_CS) if params.format is OutputFormat.GIF else (1000, 1)
    try:
        with open_media(source) as container:
            stream = pick_video_stream(container)
            check_video_stream(stream, limits)
            stream.thread_type = "AUTO"
            duration = stream_duration(stream, container)
            start, end = resolve_segment(params.start, params.end, duration)
            stats = DecodeStats()
            end = loops.loop_end(params, source, start, end, duration, limits, deadline, stats)
            if end - start > limits.max_segment_seconds:
                raise TaskError(
                    ErrCodeExt.CONFIGURATION_UNSUPPORTED,
                    f"segment of {end - start:.1f}s is longer than the limit of "
                    f"{limits.max_segment_seconds:g}s",
                )
            forward = build_timeline(end - start, params.fps, unit, min_ticks)
            loop = loops.plan_loop(
                params.loop_mode, start, forward, params.fps, duration, min_ticks
            )
            timeline = loop.timeline
            if timeline.frame_count > limits.max_frames:
                raise TaskError(
                    ErrCodeExt.CONFIGURATION_UNSUPPORTED,
                    f"{timeline.frame_count} output frames exceed the limit of {limits.max_frames}",
                )
            threads = limits.threads or os.cpu_count() or 1
            steps = _Progress(timeline.frame_count, progress, deadline)
            seam = loops.SeamProbe()
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="anigraph") as pool:
                job = _Job(
                    source=source,
                    part=part,
                    params=params,
                    limits=limits,
                    deadline=deadline,
                    loop=loop,
                    seam=seam,
                    converter=FrameConverter(params, limits),
                    pool=pool,
                    depth=2 * threads,
                    stats=stats,
                    choices=choices,
                )
                tap = ReferenceTap(timeline, _frame_bytes(job, stream)) if measured else None
                if params.format is OutputFormat.GIF:
                    # closing(): on any failure the decoding thread is stopped and joined
                    # before the container closes under it (that crashed, in C).
                    with closing(job.frames(container, stream, job.converter.rgba)) as rgba:
                        gif_frames = rgba if tap is None else tap.wrap(rgba, rgba_to_rgb)
                        width, height = _encode_gif(job, gif_frames, timeline, steps)
                else:
                    with closing(job.frames(container, stream, job.converter.yuv)) as yuv:
                        video_frames = yuv if tap is None else tap.wrap(yuv, video_frame_to_rgb)
                        if params.format is OutputFormat.WEBP:
                            width, height = _encode_webp(job, video_frames, timeline, steps)
                        else:
                            width, height = _encode_video(job, video_frames, timeline, steps)
        score = output_ssim(part, params.format.value, tap.samples()) if tap else None
        size = part.stat().st_size
        if size > limits.max_output_bytes:
            raise TaskError(
                ErrCodeExt.RESULT_FILE_TOO_LARGE,
                f"output of {size} bytes exceeds the limit of {limits.max_output_bytes}",
            )
        md5 = _md5(part)
        with part.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(part, target)
    except TaskError:
        part.unlink(missing_ok=True)
        raise
    except av.error.FFmpegError as exc:
        part.unlink(missing_ok=True)
        raise TaskError(ErrCodeExt.CONTENT_MALFORMED, f"media error: {exc}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(1.0)
    seconds = timeline.total_seconds
    return Result(
        path=str(target),
        Container=params.format.value,
        Width=width,
        Height=height,
        Size=size,
        Bitrate=round(size * 8 / seconds) if seconds > 0 else 0,
        Md5=md5,
        StartTimeOffset=round(start, 3),
        EndTimeOffset=round(start + loop.source_seconds, 3),
        FrameCount=timeline.frame_count,
        Duration=round(seconds, 3),
        decoded_frames=stats.decoded_frames,
        Fps=timeline.frame_count / seconds if seconds > 0 else 0.0,
        Ssim=score,
        LoopSeam=seam.seam() if params.uses_extension() else None,
    )


def _frame_bytes(job: _Job, stream: VideoStream) -> int:
    # An estimate from the template's box or the coded size: it only caps the samples kept.
    width = job.params.width or stream.codec_context.width or 1
    height = job.params.height or stream.codec_context.height or 1
    return width * height * 3
