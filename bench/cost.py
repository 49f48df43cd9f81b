"""Benchmark: the cost of a segment against its offset and its length (not a test).

Synthesizes a 60 s 640x360 H.264 clip with a 2 s GOP, then runs ``animate`` in a fresh process
per case and prints wall time, source frames decoded and peak RSS. Usage:
``python bench/cost.py [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_engine_cost import _write_long_clip

CASES = [
    ("gif", 0, 3),
    ("gif", 50, 53),
    ("gif", 0, 5),
    ("gif", 0, 60),
    ("webp", 0, 3),
    ("webp", 50, 53),
    ("webp", 0, 5),
    ("webp", 0, 60),
]

_ONE_RUN = """
import json, resource, sys, time
from anigraph.media.animate import animate
from anigraph.media.types import AnimateParams, OutputFormat
src, out, fmt, start, end = sys.argv[1:6]
began = time.perf_counter()
r = animate(src, out, AnimateParams(format=OutputFormat(fmt), width=480, fps=10,
            start=float(start), end=float(end)))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": time.perf_counter() - began, "decoded": r.decoded_frames,
                  "bytes": r.Size, "rss_mb": peak}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "long60.mp4"
        _write_long_clip(clip, seconds=60)
        head = ("format", "segment", "wall s", "decoded", "bytes k", "peak MB")
        print(f"{head[0]:6} " + " ".join(f"{h:>8}" for h in head[1:]))
        for fmt, start, end in CASES:
            results = []
            for _ in range(args.runs):
                done = subprocess.run(
                    [sys.executable, "-c", _ONE_RUN, str(clip), f"{tmp}/out.{fmt}", fmt,
                     str(start), str(end)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                results.append(json.loads(done.stdout))
            wall = statistics.median(r["wall"] for r in results)
            rss = statistics.median(r["rss_mb"] for r in results)
            last = results[-1]
            print(
                f"{fmt:6} {f'{start}-{end}s':>8} {wall:8.2f} {last['decoded']:8d} "
                f"{last['bytes'] / 1000:8.0f} {rss:8.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
