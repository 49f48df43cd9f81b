"""Short probe encodes of sampled seconds: the cheap estimates the MaxSize search runs on.

A sample is a few windows spread over the segment, decoded once at the template's size and fps
(about a fifth of the frames, at least ``MIN_PROBE_FRAMES``). A probe encodes those windows with
one candidate setting (fps, size, encoder level) into a throwaway file and returns:
- ``estimate``: the bytes the whole segment would take. Frames are counted one by one from the
  file (GIF image blocks, WebP ANMF chunks): a window's first frame is a near-full picture, the
  rest are changes, so the estimate is one first frame plus the mean change times the segment's
  other frames.
- ``viewer_ssim``: the probe as a viewer sees it, scaled back to the template's size and compared
  at every template frame time with the template-size source frame (sampled): lost fps, pixels
  and colours all lower it.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from anigraph.domain.offsets import resolve_segment
from anigraph.domain.timeline import Timeline, build_timeline
from anigraph.media.animate import SWSCALE_THREADS, FrameConverter
from anigraph.media.decode import DecodeStats, Segment, segment_frames
from anigraph.media.probe import check_video_stream, pick_video_stream, stream_duration
from anigraph.media.quality import EncoderChoices
from anigraph.media.safe_open import open_media
from anigraph.media.ssim import WINDOW, ssim
from anigraph.media.types import AnimateParams, Limits, OutputFormat

PROBE_SHARE = 0.15
MIN_PROBE_FRAMES = 8
MAX_WINDOWS = 3
PROBE_BYTES = 48 * 1024 * 1024
SSIM_SAMPLES = 4
# Lost fps is judged on the source alone (a stale frame against the one due), at this width:
# the score only ranks settings, and it is the search's most frequent SSIM.
MOTION_WIDTH = 160
MOTION_SAMPLES = 16
CALIBRATION_GAPS = (1, 3)
MAX_GRID_FPS = 60.0
PROBE_PALETTE_SPEED = 8
Rgba = NDArray[np.uint8]


@dataclass(frozen=True)
class Setting:
    """One candidate: output fps and size, and an encoder level (quality and GIF colours)."""

    fps: int
    width: int
    height: int
    quality: float
    colours: int


@dataclass(frozen=True)
class Sample:
    windows: tuple[tuple[Rgba, ...], ...]  # template-size RGBA frames, every source frame
    fps: float  # the windows' frame rate: the source's (at least the template's)
    seconds: float  # the segment's length
    frame_count: int  # the template's frames over the whole segment
    start: float  # the segment's start in the source
    width: int
    height: int

    @property
    def frames(self) -> int:
        return sum(len(window) for window in self.windows)


@dataclass(frozen=True)
class Probe:
    setting: Setting
    estimate: float
    viewer_ssim: float


def take_sample(
    source: str | os.PathLike[str], params: AnimateParams, limits: Limits, deadline: float | None
) -> Sample:
    """Decode the probe windows of the segment (few seconds, bounded memory)."""
    converter = FrameConverter(params, limits)
    with open_media(source) as container:
        stream = pick_video_stream(container)
        check_video_stream(stream, limits)
        stream.thread_type = "AUTO"
        start, end = resolve_segment(params.start, params.end, stream_duration(stream, container))
        timeline = build_timeline(end - start, params.fps, 1000)
        total = timeline.frame_count
        rate = float(stream.average_rate or stream.guessed_rate or params.fps)
        grid = min(max(rate, float(params.fps)), MAX_GRID_FPS)
        threads = limits.threads or os.cpu_count() or 1
        windows: list[tuple[Rgba, ...]] = []
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="anigraph") as pool:
            layout = _layout(total, params.fps)
            for first, count in layout:
                seconds = min(count / params.fps, end - start - first / params.fps)
                frames_in = max(1, math.ceil(seconds * grid - 1e-9))
                segment = Segment(
                    start + first / params.fps, tuple(i / grid for i in range(frames_in))
                )
                frames = segment_frames(
                    container,
                    stream,
                    segment,
                    converter.rgba,
                    limits,
                    deadline,
                    pool,
                    depth=2 * threads,
                    stats=DecodeStats(),
                )
                windows.append(tuple(frames))
                if sum(len(w) for w in windows) * windows[0][0].nbytes > PROBE_BYTES:
                    break
    height, width = windows[0][0].shape[:2]
    return Sample(tuple(windows), grid, end - start, total, start, width, height)


def _layout(total: int, fps: int) -> list[tuple[int, int]]:
    """``(first frame, frame count)`` of each window, spread evenly over the segment."""
    wanted = min(total, max(MIN_PROBE_FRAMES, round(total * PROBE_SHARE)))
    if wanted >= total:
        return [(0, total)]
    count = max(1, min(MAX_WINDOWS, wanted // max(MIN_PROBE_FRAMES // 2, fps // 2)))
    per = wanted // count
    gap = total / count
    return [(min(total - per, max(0, round((j + 0.5) * gap - per / 2))), per) for j in range(count)]


def _candidate_frames(sample: Sample, setting: Setting) -> list[list[Rgba]]:
    """Each window's frames at the setting's fps (the grid frame on screen) and size."""
    result = []
    for window in sample.windows:
        count = max(1, math.ceil(len(window) * setting.fps / sample.fps - 1e-9))
        picked = [
            window[_grid_index(k, setting.fps, sample.fps, len(window))] for k in range(count)
        ]
        if (setting.width, setting.height) != (sample.width, sample.height):
            picked = [_resize(frame, setting.width, setting.height) for frame in picked]
        result.append(picked)
    return result


def _resize(frame: Rgba, width: int, height: int) -> Rgba:
    image = Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def _timeline(count: int, fps: int, unit: int) -> Timeline:
    step = unit / fps
    ticks = [round(k * step) for k in range(count + 1)]
    durations = tuple(max(1, b - a) for a, b in itertools.pairwise(ticks))
    return Timeline(tuple(k / fps for k in range(count)), durations, unit)


def run_probe(
    sample: Sample,
    fmt: OutputFormat,
    setting: Setting,
    choices: EncoderChoices,
    scratch: Path,
    scored: bool = True,
) -> Probe:
    """Encode the sample with ``setting``: the whole segment's estimated bytes, and (``scored``)
    the viewer SSIM at the template's fps (lost fps is :func:`fps_loss`'s part)."""
    windows = _candidate_frames(sample, setting)
    frames = [frame for window in windows for frame in window]
    handle, name = tempfile.mkstemp(prefix=".probe.", suffix=f".{fmt.value}", dir=scratch)
    os.close(handle)
    path = Path(name)
    try:
        total = max(1, math.ceil(sample.seconds * setting.fps - 1e-9))
        if fmt is OutputFormat.GIF:
            _write_gif(path, frames, setting, choices)
            sizes = gif_frame_sizes(path.read_bytes())
        else:
            _write_webp(path, frames, setting, choices)
            sizes = webp_frame_sizes(path.read_bytes())
        estimate = _estimate(path.stat().st_size, sizes, [len(w) for w in windows], total)
        score = _viewer_ssim(path, sample, windows, setting) if scored else math.nan
    finally:
        path.unlink(missing_ok=True)
    return Probe(setting, estimate, score)


def _estimate(file_size: int, sizes: list[int], windows: list[int], total: int) -> float:
    """One first frame plus the mean change times the segment's other frames (see the top)."""
    if len(sizes) != sum(windows):  # frames merged by the encoder: scale the whole file
        return file_size * total / max(1, sum(windows))
    firsts, rest, index = [], [], 0
    for count in windows:
        firsts.append(sizes[index])
        rest.extend(sizes[index + 1 : index + count])
        index += count
    change = float(np.mean(rest)) if rest else float(np.mean(firsts))
    return file_size - sum(sizes) + float(np.mean(firsts)) + change * (total - 1)


def _write_gif(
    path: Path, frames: Sequence[Rgba], setting: Setting, choices: EncoderChoices
) -> None:
    from anigraph.media.gif import GifEncoder, add_to_histogram, palette_builder

    # A faster palette than the real encode's: the probe only estimates (bytes within ~2%).
    builder = palette_builder(replace(choices, palette_speed=PROBE_PALETTE_SPEED))
    for frame in frames[::2]:
        add_to_histogram(builder, frame)
    palette = builder.finish()
    encoder = GifEncoder(
        path,
        setting.width,
        setting.height,
        _timeline(len(frames), setting.fps, 100),
        choices,
        palette,
    )
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            encoder.write_all(frames, pool, 4, lambda: None)
        encoder.close()
    except BaseException:
        encoder.abort()
        raise


def _write_webp(
    path: Path, frames: Sequence[Rgba], setting: Setting, choices: EncoderChoices
) -> None:
    from anigraph.media.webp import WebpEncoder

    encoder = WebpEncoder(
        path, setting.width, setting.height, _timeline(len(frames), setting.fps, 1000), choices
    )
    try:
        for frame in frames:
            video = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgba")
            encoder.write(video.reformat(format="yuv420p", threads=SWSCALE_THREADS))
        encoder.close()
    except BaseException:
        encoder.abort()
        raise


def _viewer_ssim(path: Path, sample: Sample, windows: list[list[Rgba]], setting: Setting) -> float:
    """Mean SSIM of sampled probe frames, shown at the template's size, against their sources."""
    made = [(w, k) for w, window in enumerate(windows) for k in range(len(window))]
    first = [sum(len(window) for window in windows[:w]) for w in range(len(windows))]
    step = max(1, len(made) // SSIM_SAMPLES)
    picked = made[step // 2 :: step]
    decoded: dict[int, Image.Image] = {}
    with Image.open(path) as image:
        last = getattr(image, "n_frames", 1) - 1
        for number in sorted({min(last, first[w] + k) for w, k in picked}):
            image.seek(number)  # GIF frames are composited in order, so seeks only go on
            decoded[number] = image.convert("RGB")
    scores = []
    for w, k in picked:
        reference = sample.windows[w][
            _grid_index(k, setting.fps, sample.fps, len(sample.windows[w]))
        ]
        frame = decoded[min(last, first[w] + k)]
        if frame.size != (sample.width, sample.height):
            frame = frame.resize((sample.width, sample.height), Image.Resampling.LANCZOS)
        if min(sample.width, sample.height) >= WINDOW:
            scores.append(ssim(reference[..., :3], np.asarray(frame, dtype=np.uint8)))
    return float(np.mean(scores)) if scores else 0.0


def _grid_index(k: int, fps: float, grid_fps: float, count: int) -> int:
    """The sample frame on screen at output frame ``k``'s time."""
    return min(count - 1, math.floor(k * grid_fps / fps + 1e-9))


def gif_frame_sizes(data: bytes) -> list[int]:
    """Bytes of each frame in a GIF file (its control extension and image block)."""
    if data[:3] != b"GIF" or len(data) < 13:
        return []
    offset = 13
    if data[10] & 0x80:
        offset += 3 * (2 << (data[10] & 0x07))
    sizes: list[int] = []
    pending = 0
    while offset < len(data):
        block_start = offset
        kind = data[offset]
        if kind == 0x3B:
            break
        if kind == 0x21:
            offset = _skip_sub_blocks(data, offset + 2)
            if data[block_start + 1] == 0xF9:
                pending += offset - block_start
            continue
        if kind != 0x2C:
            break
        flags = data[offset + 9]
        offset += 10
        if flags & 0x80:
            offset += 3 * (2 << (flags & 0x07))
        offset = _skip_sub_blocks(data, offset + 1)
        sizes.append(pending + offset - block_start)
        pending = 0
    return sizes


def webp_frame_sizes(data: bytes) -> list[int]:
    """Bytes of each frame (ANMF chunk) in an animated WebP file."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return []
    sizes, offset = [], 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if data[offset : offset + 4] == b"ANMF":
            sizes.append(8 + size + (size & 1))
        offset += 8 + size + (size & 1)
    return sizes


def _skip_sub_blocks(data: bytes, offset: int) -> int:
    while offset < len(data):
        length = data[offset]
        offset += 1 + length
        if length == 0:
            break
    return offset


class MotionLoss:
    """SSIM lost by showing fps ``f``: each sampled source frame against the output frame
    nearest in time.

    Pairs are compared at ``MOTION_WIDTH`` for speed; a stale frame loses more SSIM at the
    template's size (about 4x on the benchmark footage at 480 px), so the small-size losses are
    scaled by the ratio measured on a few pairs at full size.
    """

    def __init__(self, sample: Sample) -> None:
        self._sample = sample
        self._small: dict[tuple[int, int], NDArray[np.uint8]] = {}
        self._pairs: dict[tuple[int, int, int], float] = {}
        self._by_fps: dict[int, float] = {}
        self._scale: float | None = None

    def _calibration(self) -> float:
        if self._scale is None:
            window = max(self._sample.windows, key=len)
            w = self._sample.windows.index(window)
            small = full = 0.0
            for gap in CALIBRATION_GAPS:
                if gap < len(window) and min(window[0].shape[:2]) >= WINDOW:
                    middle = (len(window) - gap) // 2
                    small += 1.0 - ssim(self._frame(w, middle), self._frame(w, middle + gap))
                    full += 1.0 - ssim(window[middle][..., :3], window[middle + gap][..., :3])
            self._scale = full / small if small > 1e-6 else 1.0
        return self._scale

    def _frame(self, window: int, index: int) -> NDArray[np.uint8]:
        key = (window, index)
        if key not in self._small:
            frame = self._sample.windows[window][index]
            height, width = frame.shape[:2]
            if width > MOTION_WIDTH:
                frame = _resize(
                    frame, MOTION_WIDTH, max(WINDOW, round(height * MOTION_WIDTH / width))
                )
            self._small[key] = frame[..., :3]
        return self._small[key]

    def __call__(self, fps: int) -> float:
        if fps not in self._by_fps:
            self._by_fps[fps] = self._loss(fps)
        return self._by_fps[fps]

    def _loss(self, fps: int) -> float:
        sample = self._sample
        losses = []
        grid = [(w, i) for w, window in enumerate(sample.windows) for i in range(len(window))]
        step = max(1, len(grid) // MOTION_SAMPLES)
        for w, i in grid[step // 2 :: step]:
            # Centred: a constant delay is invisible, so each source frame is compared with the
            # output frame nearest in time (what the benchmark's viewer SSIM does too).
            nearest = math.floor(i * fps / sample.fps + 0.5)
            shown = min(len(sample.windows[w]) - 1, _grid_index(nearest, fps, sample.fps, 1 << 30))
            if shown == i:
                losses.append(0.0)
                continue
            key = (w, shown, i)
            if key not in self._pairs:
                a, b = self._frame(w, shown), self._frame(w, i)
                self._pairs[key] = 1.0 - ssim(a, b) if min(a.shape[:2]) >= WINDOW else 0.0
            losses.append(self._pairs[key])
        return float(np.mean(losses)) * self._calibration() if losses else 0.0
