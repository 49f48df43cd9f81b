"""``anigraph probe`` and ``anigraph convert``: the engine on local files, no server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from anigraph.cli.shared import fail as _fail
from anigraph.domain.errors import TaskError
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.media.types import AnimateParams, Limits, OutputFormat, Result

# Tencent's preset templates (spec section 4): source size, 2 fps.
PRESETS: dict[int, AnimateParams] = {
    20000: AnimateParams(format=OutputFormat.GIF, fps=2),
    20001: AnimateParams(format=OutputFormat.WEBP, fps=2),
}
FORMAT_NAMES = [fmt.value for fmt in OutputFormat]


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
def probe(source: Path) -> None:
    """Print the file's MetaData (Tencent field names) as JSON."""
    # The engine (PyAV, NumPy) is imported when a command needs it: `--help` stays quick.
    from anigraph.media.probe import probe as probe_media

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
    raise click.BadParameter("cannot tell the format from the name; use --format")


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
    as_json: bool,
) -> None:
    """Convert a segment of SOURCE into an animated GIF, WebP or AVIF, or an MP4, at OUTPUT."""
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
    )
    try:
        result = _run(source, output, params, show_bar=sys.stderr.isatty() and not as_json)
    except TaskError as exc:
        _fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(
            f"{result.path}: {result.Width}x{result.Height} {result.Container}, "
            f"{result.FrameCount} frames, {result.Duration:.2f}s, {result.Size} bytes"
        )


def register(app: click.Group) -> None:
    """Add ``probe`` and ``convert`` to ``app``."""
    app.add_command(probe)
    app.add_command(convert)
