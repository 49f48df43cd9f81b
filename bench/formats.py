"""Benchmark: anigraph's four output formats (GIF, WebP, AVIF, MP4) at the same Quality.

The clips and segments are the engine benchmark's (bench/engine.py: 480 px wide, 10 fps). Each
run is a fresh process that calls the engine once (``animate``) and reports its wall time,
CPU time (all threads) and peak RSS; runs of the formats are interleaved and the median is kept.
SSIM is bench/metrics.py's (scikit-image, RGB) against the source frame on screen at
start + k/fps (the spec's rule, which anigraph follows), over up to 40 frames; outputs are
decoded independently (Pillow for GIF/WebP/AVIF, PyAV for MP4). An MP4 of an odd height is
one row shorter (H.264 needs even sizes) and is scaled back to the reference size to compare.

Usage: python bench/formats.py [--jobs bikes,vtest] [--qualities 50,75,90] [--runs 3]
                               [--formats gif,webp,avif,mp4] [--markdown] [--no-install]
This is a benchmark, not a test: it prints a table and the targets of issue 13.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import FPS, REPO_DIR, SSIM_FRAMES, TIMEOUT_S, Job, discover_jobs, probe
from metrics import measure, reference_frames

FORMATS = ("gif", "webp", "avif", "mp4")

_ONE_RUN = """
import json, resource, sys, time
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.media.animate import animate
from anigraph.media.types import AnimateParams, OutputFormat
src, out, fmt, start, end, width, height, quality, fps = sys.argv[1:10]
params = AnimateParams(format=OutputFormat(fmt), width=int(width), height=int(height),
                       resolution_adaptive=ResolutionAdaptive.CLOSE, fps=int(fps),
                       quality=float(quality), start=float(start), end=float(end))
wall, cpu = time.perf_counter(), time.process_time()
result = animate(src, out, params)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "bytes": result.Size, "width": result.Width, "height": result.Height}))
"""


@dataclass
class Row:
    job: str
    fmt: str
    quality: int
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    bytes: int = 0
    size: str = ""
    ssim: float | None = None
    frames: int | None = None
    duration_s: float | None = None
    error: str = ""

    @property
    def wall(self) -> float | None:
        return statistics.median(self.walls) if self.walls else None

    @property
    def cpu(self) -> float | None:
        return statistics.median(self.cpus) if self.cpus else None


def run_once(job: Job, row: Row, out: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_DIR / "src"), env.get("PYTHONPATH")])
    )
    args = [str(job.path), str(out), row.fmt, f"{job.start:g}", f"{job.end:g}"]
    args += [str(job.width), str(job.height), str(row.quality), str(round(FPS))]
    done = subprocess.run(
        [sys.executable, "-c", _ONE_RUN, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        row.error = lines[-1] if lines else f"exit {done.returncode}"
        return
    data = json.loads(done.stdout.strip().splitlines()[-1])
    row.walls.append(data["wall"])
    row.cpus.append(data["cpu"])
    row.rss_mb = max(row.rss_mb, data["rss_mb"])
    row.bytes = data["bytes"]
    row.size = f"{data['width']}x{data['height']}"


def bench_job(
    job: Job, formats: list[str], qualities: list[int], runs: int, tmp: Path
) -> list[Row]:
    rows = [Row(job.name, fmt, q) for q in qualities for fmt in formats]
    for round_number in range(runs):
        print(f"{job.name}: round {round_number + 1}/{runs}", file=sys.stderr, flush=True)
        for row in rows:
            if not row.error:
                run_once(job, row, tmp / f"{job.name}-q{row.quality}.{row.fmt}")
    reference = reference_frames(
        job.path, job.start, job.duration, FPS, job.width, job.height, "up"
    )
    for row in rows:
        if row.error:
            continue
        info, (quality,) = measure(
            tmp / f"{job.name}-q{row.quality}.{row.fmt}", [reference], FPS, SSIM_FRAMES
        )
        row.ssim, row.frames, row.duration_s = quality.ssim, info.frames, info.duration_s
    return rows


COLUMNS = ["job", "Q", "format", "size", "bytes k", "× WebP", "SSIM", "Δ WebP", "wall s",
           "× WebP ", "cpu s", "peak MB", "frames", "dur s"]  # fmt: skip


def webp_of(rows: list[Row], row: Row) -> Row | None:
    for other in rows:
        if (other.job, other.quality, other.fmt) == (row.job, row.quality, "webp"):
            return other
    return None


def cells(rows: list[Row], row: Row) -> list[str]:
    if row.error:
        return [row.job, str(row.quality), row.fmt, "ERROR " + row.error] + [""] * 10
    webp = webp_of(rows, row)
    ratio = f"{row.bytes / webp.bytes:.2f}" if webp and webp.bytes else "-"
    delta = "-"
    if webp and webp.ssim is not None and row.ssim is not None:
        delta = f"{row.ssim - webp.ssim:+.4f}"
    wall, webp_wall = row.wall, webp.wall if webp else None
    time_ratio = f"{wall / webp_wall:.2f}" if wall and webp_wall else "-"
    return [
        row.job,
        str(row.quality),
        row.fmt,
        row.size,
        f"{row.bytes / 1000:.1f}",
        ratio,
        "-" if row.ssim is None else f"{row.ssim:.4f}",
        delta,
        "-" if wall is None else f"{wall:.2f}",
        time_ratio,
        "-" if row.cpu is None else f"{row.cpu:.2f}",
        f"{row.rss_mb:.0f}",
        "-" if row.frames is None else str(row.frames),
        "-" if row.duration_s is None else f"{row.duration_s:.2f}",
    ]


def text_table(rows: list[Row]) -> str:
    body = [cells(rows, r) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(COLUMNS, widths, strict=True))]
    for values in body:
        lines.append("  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True)))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(h.strip() for h in COLUMNS) + " |"]
    lines.append("|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|")
    lines += ["| " + " | ".join(cells(rows, r)) + " |" for r in rows]
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[str]:
    """Issue 13's goals, per clip and Quality: AVIF and MP4 at most 0.3x WebP's bytes at no
    lower SSIM; AVIF at most 1.5x WebP's time."""
    lines = []
    for row in rows:
        webp = webp_of(rows, row)
        if row.fmt not in ("avif", "mp4") or row.error or webp is None or webp.error:
            continue
        if row.ssim is None or webp.ssim is None or not (row.wall and webp.wall):
            continue
        checks = [
            ("bytes ≤ 0.3× WebP", row.bytes <= 0.3 * webp.bytes, f"{row.bytes / webp.bytes:.2f}×"),
            ("SSIM ≥ WebP", row.ssim >= webp.ssim, f"{row.ssim - webp.ssim:+.4f}"),
        ]
        if row.fmt == "avif":
            ratio = row.wall / webp.wall
            checks.append(("time ≤ 1.5× WebP", ratio <= 1.5, f"{ratio:.2f}×"))
        for name, ok, detail in checks:
            verdict = "PASS" if ok else "FAIL"
            lines.append(
                f"  {verdict}  {row.job:<12} Q{row.quality:<3} {row.fmt:<4} {name:<18} {detail}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", help="comma list of clip names (prefixes), default all")
    parser.add_argument("--qualities", default="75", help="comma list of template Quality values")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma list of formats")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per format")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--no-install", action="store_true", help="do not fetch vtest.avi")
    args = parser.parse_args(argv)
    wanted = [j.strip() for j in (args.jobs or "").split(",") if j.strip()]
    qualities = [int(q) for q in args.qualities.split(",")]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    jobs, skipped = discover_jobs(allow_install=not args.no_install)
    jobs = [j for j in jobs if not wanted or any(j.name.startswith(w) for w in wanted)]
    if not jobs:
        print("no clips: " + "; ".join(skipped), file=sys.stderr)
        return 1
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="anigraph-formats-") as tmp:
        for job in jobs:
            probe(job)
            rows += bench_job(job, formats, qualities, args.runs, Path(tmp))
    print(
        f"anigraph formats at the same Quality: {FPS:g} fps, width {jobs[0].width}, median of "
        f"{args.runs} interleaved runs (fresh process each); SSIM over ≤{SSIM_FRAMES} frames"
    )
    for job in jobs:
        print(
            f"  {job.name}: {job.path.name} {job.start:g}–{job.end:g} s -> {job.width}x{job.height}"
        )
    for note in skipped:
        print(f"  skipped {note}")
    print()
    print(text_table(rows))
    if args.markdown:
        print()
        print(markdown_table(rows))
    print("\nTargets (issue 13):")
    print("\n".join(targets(rows)) or "  none measured")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
