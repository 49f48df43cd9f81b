"""What one subtask runs on: the template's parameters, the source file, the engine's caps."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anigraph.context import Context
from anigraph.db.models import Media, Template
from anigraph.domain.errors import ErrCodeExt, TaskError
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.domain.templates import PRESETS
from anigraph.jobs.staging import staging_dir
from anigraph.media.types import AnimateParams, Limits, LoopMode, OutputFormat, SegmentMode


def engine_limits(ctx: Context) -> Limits:
    """The engine's caps from the settings; threads shared out between the worker slots."""
    settings = ctx.settings
    return Limits(
        max_source_pixels=settings.max_source_pixels,
        max_frames=settings.max_frames,
        max_segment_seconds=settings.max_segment_seconds,
        max_output_bytes=settings.max_output_bytes,
        threads=max(1, (os.cpu_count() or 1) // max(1, settings.worker_slots)),
    )


@dataclass(frozen=True)
class Source:
    """The source media as a local file."""

    path: Path
    temporary: bool  # downloaded from a remote store into staging: delete after use


def params_of(
    ctx: Context, sub_app_id: int, task_input: dict[str, Any]
) -> tuple[int, AnimateParams]:
    """The template (a preset, or a custom one of this sub-application) and the offsets."""
    raw: Any = task_input.get("Definition")
    try:
        definition = int(raw)
    except (TypeError, ValueError):
        raise TaskError(
            ErrCodeExt.DEFINITION_NOT_EXIST, f"template {raw!r} does not exist"
        ) from None
    try:
        start = float(task_input.get("StartTimeOffset") or 0.0)
        end = float(task_input.get("EndTimeOffset") or 0.0)
    except (TypeError, ValueError):
        raise TaskError(
            ErrCodeExt.INVALID_TIME_OFFSET, "StartTimeOffset/EndTimeOffset must be numbers"
        ) from None
    preset = PRESETS.get(definition)
    if preset is not None:
        return definition, AnimateParams(
            format=OutputFormat(preset.format),
            width=preset.width,
            height=preset.height,
            resolution_adaptive=preset.resolution_adaptive,
            fps=preset.fps,
            quality=preset.quality,
            start=start,
            end=end,
        )
    with ctx.db.session() as session:
        row = session.get(Template, definition)
        if row is None or row.sub_app_id != sub_app_id:
            raise TaskError(
                ErrCodeExt.DEFINITION_NOT_EXIST,
                f"animated-graphics template {definition} does not exist",
            )
        try:
            return definition, AnimateParams(
                format=OutputFormat(row.format),
                width=row.width,
                height=row.height,
                resolution_adaptive=ResolutionAdaptive(row.resolution_adaptive),
                fps=row.fps,
                quality=row.quality,
                start=start,
                end=end,
                max_size=row.max_size,
                quality_target=row.quality_target,
                segment_mode=SegmentMode(row.segment_mode),
                duration=row.duration,
                loop_mode=LoopMode(row.loop_mode),
            )
        except ValueError:  # a row the template rules would never have let in
            raise TaskError(
                ErrCodeExt.CONFIGURATION_UNSUPPORTED,
                f"animated-graphics template {definition} is broken",
            ) from None


def source_of(ctx: Context, file_id: str) -> Source:
    """A local file of the source media; a remote store's object is downloaded to staging."""
    missing = TaskError(ErrCodeExt.CONTENT_MALFORMED, "the source media no longer exists")
    with ctx.db.session() as session:
        media = session.get(Media, file_id)
        key = media.store_key if media is not None else None
    if not key:
        raise missing
    store = ctx.store
    path = store.local_path(key)
    if path is not None:
        if not path.is_file():
            raise missing
        return Source(path, temporary=False)
    if store.stat(key) is None:
        raise missing
    target = staging_dir(ctx) / f"{uuid.uuid4().hex}.source"
    try:
        with target.open("wb") as handle:
            for chunk in store.open(key):
                handle.write(chunk)
    except FileNotFoundError:
        target.unlink(missing_ok=True)
        raise missing from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Source(target, temporary=True)
