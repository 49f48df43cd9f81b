"""Cost and memory of a segment do not grow with its offset or its length."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from anigraph.media.animate import animate
from anigraph.media.types import AnimateParams, OutputFormat

FPS = 25
GOP_SECONDS = 2


def _write_long_clip(path: Path, seconds: int, width: int = 640, height: int = 360) -> None:
    """Moving gradients, a moving block and fixed noise: compressible but never static."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], axis=2
    ).astype(np.uint8)
    noise = rng.integers(0, 24, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(GOP_SECONDS * FPS), "preset": "ultrafast"}
        for i in range(seconds * FPS):
            image = np.roll(base, i * 4, axis=1) + noise
            x = (i * 7) % (width - 80)
            image[100:200, x : x + 80] = (255, 40, 40)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long60.mp4"
    _write_long_clip(path, seconds=60)
    return path


@pytest.mark.parametrize("fmt", [OutputFormat.GIF, OutputFormat.WEBP])
def test_late_segment_decodes_no_more_than_an_early_one(
    long_clip: Path, tmp_path: Path, fmt: OutputFormat
) -> None:
    early = animate(
        long_clip, tmp_path / f"early.{fmt}", AnimateParams(format=fmt, width=320, start=0, end=3)
    )
    late = animate(
        long_clip, tmp_path / f"late.{fmt}", AnimateParams(format=fmt, width=320, start=50, end=53)
    )
    assert early.FrameCount == late.FrameCount == 30
    # Without a keyframe seek the late segment would decode ~1300 frames instead of ~75.
    assert late.decoded_frames <= 1.3 * early.decoded_frames + GOP_SECONDS * FPS
    assert late.decoded_frames < 3 * FPS + 2 * GOP_SECONDS * FPS


_MEASURE = """
import json, resource, sys
from anigraph.media.animate import animate
from anigraph.media.types import AnimateParams, OutputFormat
src, out, fmt, end = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
animate(src, out, AnimateParams(format=OutputFormat(fmt), width=480, fps=10, end=end))
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def _peak_kib(src: Path, out: Path, fmt: OutputFormat, end: float) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(src), str(out), fmt.value, str(end)],
        capture_output=True,
        text=True,
        check=True,
    )
    peak: int = json.loads(done.stdout.strip().splitlines()[-1])
    return peak


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_peak_memory_does_not_grow_with_segment_length(
    long_clip: Path, tmp_path: Path, fmt: OutputFormat
) -> None:
    short = _peak_kib(long_clip, tmp_path / f"short.{fmt}", fmt, 5)
    long = _peak_kib(long_clip, tmp_path / f"long.{fmt}", fmt, 60)
    assert long <= 1.5 * short, f"peak {long} KiB for 60 s against {short} KiB for 5 s"
