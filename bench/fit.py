"""Benchmark: MaxSize (anigraph's budget search) against the fallback ladder people script.

For each clip, format (GIF, WebP) and budget (256 KiB, 1 MiB, 4 MiB), one template: width 480
(or the source's, if smaller), fps 12, Quality 75, the first ``--seconds`` of the clip.
- anigraph: ``animate`` with MaxSize (in-process), timed against one plain encode of the same
  template run just before it (the same process, the same load).
- ladder: ffmpeg CLI runs until one fits: fps 12→10→8→6 at the template's width, then width
  400→320→240→200→160→120→80 (scaled to the template's) at fps 6. GIF uses
  palettegen/paletteuse (stats_mode=diff, bayer dithering, diff_mode=rectangle), WebP libwebp
  at quality 75.
- viewer SSIM: every output as a viewer sees it (Pillow composites frames, durations), scaled to
  the template's size (Lanczos), against the source decoded by ffmpeg at the template's size at
  every ``--stride``-th source frame time (default every second one): lost fps, pixels and
  colours all lower it. SSIM is luma SSIM (anigraph.media.ssim, equal to scikit-image's).

Usage: python bench/fit.py [--clips bikes,vtest] [--seconds 8] [--stride 2] [--formats gif,webp]
This is a benchmark, not a test: it prints a table (``--markdown`` for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageSequence

from anigraph.domain.errors import TaskError
from anigraph.media.animate import animate
from anigraph.media.ssim import ssim
from anigraph.media.types import AnimateParams, OutputFormat, Result
from engine import discover_jobs, probe
from metrics import reference_frames

WIDTH = 480
FPS = 12
QUALITY = 75
BUDGETS = (("256K", 256 * 1024), ("1M", 1024 * 1024), ("4M", 4 * 1024 * 1024))
LADDER_FPS = (12, 10, 8, 6)
LADDER_WIDTHS = (400, 320, 240, 200, 160, 120, 80)
CRASH_RETRIES = 4
_POOL: ProcessPoolExecutor | None = None
FF = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


@dataclass
class Clip:
    name: str
    path: Path
    seconds: float
    width: int
    height: int
    rate: float


@dataclass
class Row:
    clip: str
    fmt: str
    budget: str
    budget_bytes: int
    plain_bytes: int
    ag_bytes: int | None
    ag_ratio: float | None  # time / plain encode
    ag_ssim: float | None
    ag_adjustments: str
    ladder_bytes: int | None
    ladder_tries: int
    ladder_setting: str
    ladder_ssim: float | None


def frame_rate(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate or 25)


def clips(names: list[str] | None, seconds: float) -> list[Clip]:
    jobs, skipped = discover_jobs(allow_install=True)
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    found = []
    for job in jobs:
        if names and job.name not in names:
            continue
        probe(job)  # source size and length; the template's width is the source's at most
        out_w = min(WIDTH, job.src_w)
        height = round(job.src_h * out_w / job.src_w)
        rate = frame_rate(job.path)
        found.append(Clip(job.name, job.path, min(seconds, job.file_duration), out_w, height, rate))
    return found


def shown_frames(path: Path) -> tuple[list[np.ndarray], list[float]]:
    frames, starts, elapsed = [], [], 0.0
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            rgb = frame.convert("RGB")
            starts.append(elapsed)
            elapsed += float(frame.info.get("duration") or 0) / 1000.0
            frames.append(rgb)
    return frames, starts


def viewer_ssim(path: Path, reference: np.ndarray, rate: float, stride: int) -> float:
    """The better of two phases: shown as written, and half an output interval later.

    A constant delay is invisible to a viewer; ffmpeg's fps filter keeps the source frame
    nearest an output time, anigraph (Tencent's rule) the one on screen at it, so each is
    compared at the phase that centres its frames on the source times they stand for.
    """
    frames, starts = shown_frames(path)
    height, width = reference.shape[1:3]
    interval = (starts[-1] / (len(starts) - 1)) if len(starts) > 1 else 0.0
    cache: dict[int, np.ndarray] = {}
    best = 0.0
    for shift in (0.0, interval / 2):
        scores = []
        for i in range(0, reference.shape[0], stride):
            t = i / rate + shift + 1e-4
            k = max(0, int(np.searchsorted(starts, t, side="right")) - 1)
            if k not in cache:
                image = frames[k]
                if image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.LANCZOS)
                cache[k] = np.asarray(image, dtype=np.uint8)
            scores.append(ssim(reference[i], cache[k]))
        best = max(best, float(np.mean(scores)))
    return best


def ladder_cmd(clip: Clip, fmt: str, fps: int, width: int, out: Path) -> list[str]:
    scale = f"scale={width}:-2:flags=lanczos"
    head = [*FF, "-t", f"{clip.seconds:g}", "-i", str(clip.path)]
    if fmt == "gif":
        graph = (
            f"fps={fps},{scale},split[a][b];[a]palettegen=stats_mode=diff[p];"
            "[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle"
        )
        return [*head, "-filter_complex", graph, "-loop", "0", str(out)]
    return [
        *head,
        "-vf",
        f"fps={fps},{scale}",
        "-c:v",
        "libwebp_anim",
        "-quality",
        str(QUALITY),
        "-loop",
        "0",
        str(out),
    ]


def ladder(clip: Clip, fmt: str, budget: int, work: Path) -> tuple[Path | None, int, str]:
    steps = [(fps, clip.width) for fps in LADDER_FPS]
    steps += [(LADDER_FPS[-1], max(16, round(w * clip.width / WIDTH))) for w in LADDER_WIDTHS]
    out = work / f"ladder.{fmt}"
    for tries, (fps, width) in enumerate(steps, start=1):
        subprocess.run(ladder_cmd(clip, fmt, fps, width, out), check=True)
        if out.stat().st_size <= budget:
            return out, tries, f"{fps} fps, {width} px"
    return None, len(steps), "none fits"


def timed_animate(source: Path, output: Path, params: AnimateParams) -> tuple[Result, float]:
    began = time.perf_counter()
    made = animate(source, output, params)
    return made, time.perf_counter() - began


def isolated(source: Path, output: Path, params: AnimateParams) -> tuple[Result, float]:
    """``animate`` in a child process, timed there, as the service runs every job; a crashed
    child is replaced and the job run again, so one crash costs a row's time, not the run."""
    global _POOL
    for _ in range(CRASH_RETRIES):
        if _POOL is None:
            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=get_context("forkserver"))
        try:
            return _POOL.submit(timed_animate, source, output, params).result()
        except BrokenProcessPool:
            print(f"child crashed on {output.name}; again", file=sys.stderr, flush=True)
            _POOL = None
    raise RuntimeError(f"animate crashed {CRASH_RETRIES} times on {source}")


def bench(clip: Clip, fmt: OutputFormat, stride: int, work: Path) -> list[Row]:
    template = AnimateParams(
        format=fmt, width=clip.width, fps=FPS, quality=QUALITY, end=clip.seconds
    )
    reference = reference_frames(
        clip.path, 0.0, clip.seconds, clip.rate, clip.width, clip.height, fps_round="up"
    )
    rows = []
    for label, budget in BUDGETS:
        plain, plain_s = isolated(clip.path, work / f"plain.{fmt}", template)
        try:
            made, fit_s = isolated(
                clip.path, work / f"fit.{fmt}", replace(template, max_size=budget)
            )
            ag = (
                made.Size,
                fit_s / plain_s,
                viewer_ssim(Path(made.path), reference, clip.rate, stride),
                ", ".join(made.Adjustments) or "none",
            )
        except TaskError as exc:
            ag = (None, None, None, exc.code.value)
        found, tries, setting = ladder(clip, fmt.value, budget, work)
        ladder_ssim = viewer_ssim(found, reference, clip.rate, stride) if found else None
        rows.append(
            Row(
                clip.name,
                fmt.value,
                label,
                budget,
                plain.Size,
                ag[0],
                ag[1],
                ag[2],
                ag[3],
                found.stat().st_size if found else None,
                tries,
                setting,
                ladder_ssim,
            )
        )
        print(format_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


def cells(row: Row) -> list[str]:
    def num(value: float | None, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    used = None if row.ag_bytes is None else row.ag_bytes / row.budget_bytes
    fits = "yes" if row.ag_bytes is not None and row.ag_bytes <= row.budget_bytes else "NO"
    return [
        row.clip,
        row.fmt,
        row.budget,
        f"{row.plain_bytes / 1024:.0f}K",
        fits,
        num(used, ".0%"),
        num(row.ag_ratio, ".2f") + "×",
        num(row.ag_ssim, ".4f"),
        num(row.ladder_ssim, ".4f"),
        f"{row.ladder_tries} ({row.ladder_setting})",
        row.ag_adjustments,
    ]


HEADER = [
    "clip",
    "fmt",
    "budget",
    "plain",
    "fits",
    "used",
    "time/plain",
    "SSIM anigraph",
    "SSIM ladder",
    "ladder tries",
    "anigraph adjustments",
]


def format_row(row: Row) -> str:
    return "  ".join(cells(row))


def table(rows: list[Row], markdown: bool) -> str:
    body = [cells(row) for row in rows]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in body)])
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(HEADER)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [HEADER, *body]
    )


def goals(rows: list[Row]) -> list[str]:
    notes = []
    for row in rows:
        name = f"{row.clip} {row.fmt} {row.budget}"
        if row.ag_bytes is None or row.ag_bytes > row.budget_bytes:
            notes.append(f"{name}: over budget or failed")
            continue
        if row.plain_bytes > row.budget_bytes and row.ag_bytes < 0.8 * row.budget_bytes:
            notes.append(f"{name}: used {row.ag_bytes / row.budget_bytes:.0%} < 80%")
        if row.ag_ratio is not None and row.ag_ratio > 3.0:
            notes.append(f"{name}: {row.ag_ratio:.2f}× a plain encode > 3×")
        if (
            row.ladder_ssim is not None
            and row.ag_ssim is not None
            and row.ag_ssim <= row.ladder_ssim
        ):
            notes.append(f"{name}: viewer SSIM {row.ag_ssim:.4f} ≤ ladder {row.ladder_ssim:.4f}")
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", help="comma-separated names (default: all found)")
    parser.add_argument("--formats", default="gif,webp")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="anigraph-fit-") as folder:
        for clip in clips(args.clips.split(",") if args.clips else None, args.seconds):
            for fmt in args.formats.split(","):
                rows.extend(bench(clip, OutputFormat(fmt), args.stride, Path(folder)))
    print(table(rows, args.markdown))
    notes = goals(rows)
    print("\nGoals: " + ("all met" if not notes else "; ".join(notes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
