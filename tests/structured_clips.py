"""Synthetic clips whose structure is known, for the content-aware engine (Highlight, loops).

Written with PyAV only, small and short. Each scene is a function of the frame number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from media_factory import default_codec

Picture = NDArray[np.uint8]
Scene = tuple[float, Callable[[int, int, int], Picture]]  # seconds, (i, w, h) -> RGB


def write_scenes(
    path: str | os.PathLike[str],
    scenes: Sequence[Scene],
    *,
    fps: int = 10,
    width: int = 160,
    height: int = 96,
    gop: int | None = None,
    crf: int = 20,
) -> Path:
    """One clip of the ``scenes`` in order; a scene's function gets its own frame number."""
    out_path = Path(path)
    codec = default_codec()
    with av.open(str(out_path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        options = {"preset": "veryfast", "crf": str(crf)} if codec == "libx264" else {"qscale": "3"}
        if gop is not None:
            options["g"] = str(gop)
        stream.options = options
        pts = 0
        for seconds, draw in scenes:
            for i in range(round(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(draw(i, width, height), format="rgb24")
                frame.pts = pts
                pts += 1
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_path


def black(i: int, width: int, height: int) -> Picture:
    return np.zeros((height, width, 3), dtype=np.uint8)


def title(i: int, width: int, height: int) -> Picture:
    """A still title card: light text-like blocks on dark grey."""
    image = np.full((height, width, 3), 40, dtype=np.uint8)
    for row in range(height // 3, 2 * height // 3, 8):
        image[row : row + 5, width // 6 : 5 * width // 6 : 1] = 220
    return image


def faded_title(frames: int) -> Callable[[int, int, int], Picture]:
    """The title fading to black over ``frames`` frames."""

    def draw(i: int, width: int, height: int) -> Picture:
        level = 1.0 - (i + 1) / frames
        return (title(i, width, height).astype(np.float64) * level).astype(np.uint8)

    return draw


def _texture(width: int, height: int, seed: int) -> Picture:
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    big: Picture = cells.repeat(8, axis=0).repeat(8, axis=1)[:height, :width]
    return big


def panning(seed: int, speed: int = 4) -> Callable[[int, int, int], Picture]:
    """A blocky random texture moving ``speed`` pixels a frame: motion everywhere."""

    def draw(i: int, width: int, height: int) -> Picture:
        return np.ascontiguousarray(np.roll(_texture(width, height, seed), i * speed, axis=1))

    return draw


def still(seed: int) -> Callable[[int, int, int], Picture]:
    """A detailed picture that never moves."""

    def draw(i: int, width: int, height: int) -> Picture:
        return _texture(width, height, seed)

    return draw


def letterboxed(seed: int, band: int = 8) -> Callable[[int, int, int], Picture]:
    """Motion in a band ``band`` rows high across the middle of an otherwise black frame."""

    def draw(i: int, width: int, height: int) -> Picture:
        image = np.zeros((height, width, 3), dtype=np.uint8)
        top = (height - band) // 2
        image[top : top + band] = panning(seed, speed=6)(i, width, height)[top : top + band]
        return image

    return draw


def periodic(period_frames: int) -> Callable[[int, int, int], Picture]:
    """Smooth waves drifting across, repeating exactly every ``period_frames`` frames."""

    def draw(i: int, width: int, height: int) -> Picture:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        phase = 2 * np.pi * i / period_frames
        wave = np.sin(2 * np.pi * xx / width + phase) + 0.6 * np.sin(2 * np.pi * yy / height)
        level = np.clip(128 + 70 * wave, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([level, level[::-1], 255 - level], axis=2))

    return draw


def pendulum(half_period: int) -> Callable[[int, int, int], Picture]:
    """Waves swinging right for ``half_period`` frames, then back: frame 5 and frame
    ``2 * half_period - 5`` are the same picture moving opposite ways."""

    def draw(i: int, width: int, height: int) -> Picture:
        phase = i % (2 * half_period)
        position = phase if phase <= half_period else 2 * half_period - phase
        return np.ascontiguousarray(np.roll(periodic(1000)(0, width, height), 4 * position, axis=1))

    return draw
