"""Quality metrics for the engine benchmark (method of shared/guides/encoders.md).

Reference frames are the segment decoded by ffmpeg (fps, lanczos scale, rgb24). Output frames are
decoded with Pillow, which composites GIF/WebP/AVIF frames and reports per-frame durations (MP4
with PyAV, timed by its frames' pts); each
reference frame i (interval [i/fps, (i+1)/fps)) is compared with the output frame on screen at the
middle of that interval. SSIM is the mean over up to ``max_frames`` evenly spaced reference frames;
PSNR comes from the mean MSE over the same frames.

Output frames are held in memory: fine for the short segments of this benchmark (50 frames at
480 px are ~25 MB).
"""

from __future__ import annotations

import bisect
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageSequence
from skimage.metrics import structural_similarity

Frames = npt.NDArray[np.uint8]


def reference_frames(
    src: Path,
    start: float,
    duration: float,
    fps: float,
    width: int,
    height: int,
    fps_round: str = "near",
) -> Frames:
    """Decode the segment with ffmpeg to rgb24 frames of shape (n, height, width, 3).

    ``fps_round="near"`` (ffmpeg's default) is the reference of the guide. ``"up"`` keeps, for
    output frame k, the last source frame with pts <= k/fps: the source frame on screen at
    start + k/fps, which is the sampling rule of anigraph's design.
    """
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-ss",
        f"{start:g}",
        "-t",
        f"{duration:g}",
        "-i",
        str(src),
        "-vf",
        f"fps={fps:g}:round={fps_round},scale={width}:{height}:flags=lanczos",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"reference decode failed: {err[-1] if err else proc.returncode}")
    frame_bytes = width * height * 3
    n = len(proc.stdout) // frame_bytes
    data = np.frombuffer(proc.stdout[: n * frame_bytes], dtype=np.uint8)
    return data.reshape(n, height, width, 3)


@dataclass
class OutputInfo:
    """What Pillow sees in an animated image."""

    frames: int
    duration_s: float
    size: tuple[int, int]
    resized: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Quality:
    """Comparison of an output against the reference frames."""

    ssim: float
    psnr: float
    compared: int


def sample_indices(n: int, max_frames: int) -> list[int]:
    """Up to ``max_frames`` evenly spaced indices in [0, n)."""
    if n <= 0:
        return []
    k = min(max_frames, n)
    return sorted({round(x) for x in np.linspace(0, n - 1, k)})


def _on_screen(starts: list[float], t: float) -> int:
    """Index of the output frame on screen at time t (the last frame once the animation ends)."""
    return max(0, bisect.bisect_right(starts, t) - 1)


def decode_output(path: Path) -> tuple[tuple[int, int], list[tuple[Image.Image, float]]]:
    """Size and (RGB frame, duration in ms) of an animated image (Pillow: GIF, WebP, AVIF) or
    an MP4 (PyAV: frame k lasts from its pts to the next one's, the last to the track's end)."""
    if path.suffix.lower() != ".mp4":
        with Image.open(path) as im:
            # convert() composites the frame and loads its info["duration"].
            frames = [
                (frame.convert("RGB"), float(frame.info.get("duration") or 0.0))
                for frame in ImageSequence.Iterator(im)
            ]
            return im.size, frames
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pictures = [(frame.pts or 0, frame.to_image()) for frame in container.decode(stream)]
        tick = float(stream.time_base or 0)
        end = (stream.start_time or 0) + (stream.duration or 0)
        starts = [pts for pts, _ in pictures]
        ends = [*starts[1:], end]
        size = (stream.codec_context.width, stream.codec_context.height)
        return size, [
            (image, 1000.0 * (stop - pts) * tick)
            for (pts, image), stop in zip(pictures, ends, strict=True)
        ]


def measure(
    path: Path, references: Sequence[Frames], fps: float, max_frames: int = 40
) -> tuple[OutputInfo, list[Quality]]:
    """Decode ``path`` with Pillow, lay it on each reference's timeline and compute SSIM/PSNR.

    All references must share one frame size (the requested W×H); output frames of another size
    are resized to it with Lanczos and flagged.
    """
    height, width = references[0].shape[1], references[0].shape[2]
    size, decoded = decode_output(path)
    durations: list[float] = []
    frames: list[Frames] = []
    for rgb, duration in decoded:
        durations.append(duration)
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
        frames.append(np.asarray(rgb, dtype=np.uint8))
    starts: list[float] = []
    acc = 0.0
    for d in durations:
        starts.append(acc / 1000.0)
        acc += d
    info = OutputInfo(frames=len(frames), duration_s=acc / 1000.0, size=size)
    if not frames:
        raise RuntimeError("no frames in output")
    if size != (width, height):
        info.resized = True
        info.notes.append(f"resized {size[0]}x{size[1]}->{width}x{height}")

    results: list[Quality] = []
    for reference in references:
        wanted = sample_indices(reference.shape[0], max_frames)
        ssims: list[float] = []
        mses: list[float] = []
        for i in wanted:
            a = reference[i]
            b = frames[_on_screen(starts, (i + 0.5) / fps)]
            ssims.append(float(structural_similarity(a, b, channel_axis=2, data_range=255)))
            diff = a.astype(np.float64) - b.astype(np.float64)
            mses.append(float(np.mean(diff * diff)))
        if not wanted:
            results.append(Quality(float("nan"), float("nan"), 0))
            continue
        mse = float(np.mean(mses))
        psnr = float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))
        results.append(Quality(ssim=float(np.mean(ssims)), psnr=psnr, compared=len(wanted)))
    return info, results
