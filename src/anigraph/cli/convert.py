"""``anigraph probe`` and ``anigraph convert``: the engine on local files, no server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from anigraph.cli.shared import fail as _fail
from anigraph.domain.errors import TaskError
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.domain.templates import DEFAULT_DURATION, DURATION_RANGE
from anigraph.media.fit_rules import QUALITY_TARGET_MAX, QUALITY_TARGET_MIN
from anigraph.media.types import (
    AnimateParams,
    Limits,
    LoopMode,
    OutputFormat,
    Result,
    SegmentMode,
)

# Tencent's preset templates (spec section 4): source size, 2 fps.
PRESETS: dict[int, AnimateParams] = {
    20000: AnimateParams(format=OutputFormat.GIF, fps=2),
    20001: AnimateParams(format=OutputFormat.WEBP, fps=2),
}
FORMAT_NAMES = [fmt.value for fmt in OutputFormat]
SEGMENT_NAMES = [mode.value.lower() for mode in SegmentMode]
LOOP_NAMES = [mode.value.lower() for mode in LoopMode]


def _check_source(source: Path) -> None:
    """Name the path when the input is not there: the engine's message cannot (in the service
    the path is an internal one)."""
    if not source.exists():
        _fail(f"SourceFileError: source file does not exist: {source}")
    if source.is_dir():
        _fail(f"SourceFileError: source is a directory, not a file: {source}")


def _check_output(output: Path) -> None:
    """Refuse an output that cannot be written before any work is done."""
    if output.is_dir():
        raise click.UsageError(
            f"output {output} is a directory; name a file in it, e.g. {output / 'clip.gif'}"
        )
    folder = output.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise click.UsageError(f"output folder {folder} {what}; create it first")


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
def probe(source: Path) -> None:
    """Print the file's MetaData (Tencent field names) as JSON."""
    # The engine (PyAV, NumPy) is imported when a command needs it: `--help` stays quick.
    from anigraph.media.probe import probe as probe_media

    _check_source(source)

    try:
        meta = probe_media(source)
    except TaskError as exc:
        _fail(str(exc))
        return
    click.echo(json.dumps(meta.to_dict(), indent=2))


def _format_for(output: Path, given: str | None, preset: AnimateParams | None) -> OutputFormat:
    if given is not None:
        return OutputFormat(given)
    suffix = output.suffix.lower().lstrip(".")
    if suffix in FORMAT_NAMES:
        return OutputFormat(suffix)
    if preset is not None:
        return preset.format
    raise click.UsageError(
        f"cannot tell the format from the name {output.name!r}: name the output "
        f"{' or '.join('.' + c for c in FORMAT_NAMES)}, or give --format {'|'.join(FORMAT_NAMES)}"
    )


_BYTE_UNITS = {"": 1, "k": 1000, "K": 1000, "M": 1000**2, "Ki": 1024, "Mi": 1024**2}


class ByteSize(click.ParamType[int, "str | int"]):
    """Bytes, with an optional unit: k = 1000, M = 1000000, Ki = 1024, Mi = 1048576."""

    name = "bytes"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        number = text.rstrip("kKMi")
        unit = text[len(number) :]
        try:
            amount = float(number)
        except ValueError:
            amount = -1.0
        if unit not in _BYTE_UNITS or not 0 <= amount < 1e15:  # also refuses nan and inf
            self.fail(f"{text!r} is not a size in bytes such as 500000, 500k or 2M", param, ctx)
        return round(amount * _BYTE_UNITS[unit])


def _quality_target(ctx: click.Context, param: click.Parameter, value: float | None) -> float:
    if value is None or value == 0:
        return 0.0
    if not QUALITY_TARGET_MIN <= value <= QUALITY_TARGET_MAX:
        raise click.BadParameter(
            f"{value:g} is not 0 or in [{QUALITY_TARGET_MIN}, {QUALITY_TARGET_MAX}]"
        )
    return value


def _closing_line(result: Result, measured: bool) -> str:
    line = (
        f"{result.path}: {result.Width}x{result.Height} {result.Container}, "
        f"{result.FrameCount} frames, {result.Duration:.2f}s, {result.Size} bytes"
    )
    if measured:
        line += f", window {result.StartTimeOffset:.2f}-{result.EndTimeOffset:.2f}s"
        if result.LoopSeam is not None:
            line += f", loop seam {result.LoopSeam:.3f}"
        if result.Ssim is not None:
            line += f", SSIM {result.Ssim:.4f}"
        gave_up = ", ".join(result.Adjustments) if result.Adjustments else "nothing"
        line += f"; gave up: {gave_up}"
    return line


def _run(source: Path, output: Path, params: AnimateParams, show_bar: bool) -> Result:
    from anigraph.media.animate import animate

    if not show_bar:
        return animate(source, output, params, Limits())
    # Imported on demand: rich costs start-up time that scripted runs need not pay.
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(output.name, total=1.0)
        return animate(
            source, output, params, Limits(), progress=lambda f: bar.update(task, completed=f)
        )


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_NAMES),
    help="Default: from OUT's extension. avif and mp4 are anigraph's extensions.",
)
@click.option("--width", type=click.IntRange(0, 4096), help="Max width (long edge); 0 = source.")
@click.option("--height", type=click.IntRange(0, 4096), help="Max height (short edge); 0 = source.")
@click.option(
    "--resolution-adaptive",
    type=click.Choice(["open", "close"]),
    help="open: Width is the long edge (default); close: Width is the width.",
)
@click.option("--fps", type=click.IntRange(1, 50), help="1-50 (templates allow 1-30).")
@click.option("--quality", type=click.FloatRange(1, 100), help="1-100, default 75.")
@click.option("--start", type=float, default=0.0, help="Seconds; negative counts from the end.")
@click.option("--end", type=float, default=0.0, help="Seconds; 0 = the end; negative from the end.")
@click.option("--definition", type=int, help="Start from preset 20000 (gif) or 20001 (webp).")
@click.option(
    "--max-size",
    type=ByteSize(),
    default=0,
    help="Byte budget the output never exceeds (fps, size, colours or quality are given up): "
    "500000, 500k (= 500000), 2M (= 2000000), 256Ki (= 262144); 0 = none.",
)
@click.option(
    "--quality-target",
    type=float,
    callback=_quality_target,
    help="SSIM to reach with the smallest file, 0.80-0.99 (fps and size stay).",
)
@click.option(
    "--segment",
    type=click.Choice(SEGMENT_NAMES),
    default="fixed",
    help="highlight: the best --duration window inside --start..--end (default fixed).",
)
@click.option(
    "--duration",
    type=click.FloatRange(*DURATION_RANGE),
    default=DEFAULT_DURATION,
    help=f"Length of the highlight window, {DURATION_RANGE[0]:g}-{DURATION_RANGE[1]:g} s, "
    f"default {DEFAULT_DURATION:g}.",
)
@click.option(
    "--loop",
    type=click.Choice(LOOP_NAMES),
    default="none",
    help="How the end leads into the start (default none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the output item as JSON.")
def convert(
    source: Path,
    output: Path,
    fmt: str | None,
    width: int | None,
    height: int | None,
    resolution_adaptive: str | None,
    fps: int | None,
    quality: float | None,
    start: float,
    end: float,
    definition: int | None,
    max_size: int,
    quality_target: float,
    segment: str,
    duration: float,
    loop: str,
    as_json: bool,
) -> None:
    """Convert a segment of SOURCE into an animated GIF, WebP or AVIF, or an MP4, at OUTPUT.

    OUTPUT's folder must exist; an existing OUTPUT file is replaced (the image is written to a
    temporary name beside it and renamed at the end, so a failure leaves the old file as it
    was).
    """
    _check_source(source)
    _check_output(output)
    preset = None
    if definition is not None:
        if definition not in PRESETS:
            _fail(f"InvalidInput.DefinitionNotExist: no preset {definition} (20000 or 20001)")
        preset = PRESETS[definition]
    base = preset or AnimateParams()
    params = AnimateParams(
        format=_format_for(output, fmt, preset),
        width=base.width if width is None else width,
        height=base.height if height is None else height,
        resolution_adaptive=ResolutionAdaptive(resolution_adaptive or base.resolution_adaptive),
        fps=base.fps if fps is None else fps,
        quality=base.quality if quality is None else quality,
        start=start,
        end=end,
        max_size=max_size,
        quality_target=quality_target,
        segment_mode=SegmentMode[segment.upper()],
        duration=duration,
        loop_mode=LoopMode[loop.upper()],
    )
    try:
        result = _run(source, output, params, show_bar=sys.stderr.isatty() and not as_json)
    except TaskError as exc:
        _fail(str(exc))
        return
    measured = params.uses_extension()
    if as_json:
        item = {**result.to_dict(), **(result.extension_fields() if measured else {})}
        click.echo(json.dumps(item, indent=2, ensure_ascii=False))
    else:
        click.echo(_closing_line(result, measured))


def register(app: click.Group) -> None:
    """Add ``probe`` and ``convert`` to ``app``."""
    app.add_command(probe)
    app.add_command(convert)
