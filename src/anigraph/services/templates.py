"""Animated-graphics templates per sub-application: presets from code, custom ones in the DB."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anigraph.context import Context
from anigraph.db.models import Template, TemplateCounter
from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.domain.templates import (
    DEFAULT_DURATION,
    FIRST_CUSTOM_DEFINITION,
    MAX_CUSTOM_TEMPLATES,
    PRESETS,
    TemplateSpec,
    check_template,
    modified,
)


class TemplateNotFound(LookupError):
    pass


class PresetReadOnly(PermissionError):
    pass


class TooManyTemplates(RuntimeError):
    pass


def _spec(row: Template) -> TemplateSpec:
    return TemplateSpec(
        definition=row.definition,
        type="Custom",
        name=row.name,
        comment=row.comment,
        format=row.format,
        width=row.width,
        height=row.height,
        resolution_adaptive=ResolutionAdaptive(row.resolution_adaptive),
        fps=row.fps,
        quality=row.quality,
        create_time=row.created_at,
        update_time=row.updated_at,
        max_size=row.max_size,
        quality_target=row.quality_target,
        segment_mode=row.segment_mode,
        duration=row.duration,
        loop_mode=row.loop_mode,
    )


def find(session: Session, sub_app_id: int, definition: int) -> TemplateSpec | None:
    """A preset, or a custom template of this sub-application only."""
    if definition in PRESETS:
        return PRESETS[definition]
    row = session.get(Template, definition)
    if row is None or row.sub_app_id != sub_app_id:
        return None
    return _spec(row)


def create(ctx: Context, sub_app_id: int, values: dict[str, Any]) -> int:
    now = ctx.now()
    spec = TemplateSpec(
        definition=0,
        type="Custom",
        name=values.get("Name", ""),
        comment=values.get("Comment", ""),
        format=values.get("Format", "gif"),
        width=values.get("Width", 0),
        height=values.get("Height", 0),
        resolution_adaptive=ResolutionAdaptive(values.get("ResolutionAdaptive", "open")),
        fps=values["Fps"],
        quality=float(values.get("Quality", 75.0)),
        create_time=now,
        update_time=now,
        max_size=values.get("MaxSize", 0),
        quality_target=float(values.get("QualityTarget", 0.0)),
        segment_mode=values.get("SegmentMode", "Fixed"),
        duration=float(values.get("Duration", DEFAULT_DURATION)),
        loop_mode=values.get("LoopMode", "None"),
    )
    check_template(spec, modifying=False, max_output_bytes=ctx.settings.max_output_bytes)
    with ctx.db.session() as session:
        # Serialise all creations (a transaction-scoped advisory lock on PostgreSQL; SQLite's
        # write lock already does): two requests cannot both pass the 16-template check, and
        # Definitions, shared by all sub-apps, are taken one after the other. Locking only the
        # sub-app let creations of other sub-apps race for max + 1: under a dozen at once one
        # could lose ALLOCATION_ATTEMPTS times in a row and fail.
        if not ctx.db.is_sqlite:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATION_LOCK})
        count = session.scalar(
            select(func.count()).select_from(Template).where(Template.sub_app_id == sub_app_id)
        )
        if (count or 0) >= MAX_CUSTOM_TEMPLATES:
            raise TooManyTemplates(MAX_CUSTOM_TEMPLATES)
        # A row written by something else than this path (a copy being moved in) could still
        # hold the next number by the time we insert: retried with the one after.
        for _ in range(ALLOCATION_ATTEMPTS):
            definition = _next_definition(session)
            try:
                with session.begin_nested():
                    session.add(_new_row(spec, sub_app_id, definition, now))
                return definition
            except IntegrityError:
                continue
        raise RuntimeError("could not allocate a template Definition")


def _next_definition(session: Session) -> int:
    """One above every Definition given out so far, deleted ones included (never reused).

    The caller holds the creation lock. The counter row is made at the first creation (a
    database from before it starts above its highest template).
    """
    counter = session.get(TemplateCounter, 1)
    highest = session.scalar(select(func.max(Template.definition))) or 0
    given = counter.last_definition if counter is not None else 0
    definition = max(given, highest, FIRST_CUSTOM_DEFINITION - 1) + 1
    if counter is None:
        session.add(TemplateCounter(id=1, last_definition=definition))
    else:
        counter.last_definition = definition
    session.flush()
    return definition


ALLOCATION_ATTEMPTS = 5
CREATION_LOCK = 0x616E6774  # "angt": PostgreSQL advisory lock key of template creation


def _new_row(spec: TemplateSpec, sub_app_id: int, definition: int, now: datetime) -> Template:
    return Template(
        definition=definition,
        sub_app_id=sub_app_id,
        name=spec.name,
        comment=spec.comment,
        format=spec.format,
        width=spec.width,
        height=spec.height,
        resolution_adaptive=spec.resolution_adaptive.value,
        fps=spec.fps,
        quality=spec.quality,
        created_at=now,
        updated_at=now,
        max_size=spec.max_size,
        quality_target=spec.quality_target,
        segment_mode=spec.segment_mode,
        duration=spec.duration,
        loop_mode=spec.loop_mode,
    )


_FIELDS = {
    "Name": "name",
    "Comment": "comment",
    "Format": "format",
    "Width": "width",
    "Height": "height",
    "ResolutionAdaptive": "resolution_adaptive",
    "Fps": "fps",
    "Quality": "quality",
    "MaxSize": "max_size",
    "QualityTarget": "quality_target",
    "SegmentMode": "segment_mode",
    "Duration": "duration",
    "LoopMode": "loop_mode",
}
_FLOATS = ("quality", "quality_target", "duration")


def modify(ctx: Context, sub_app_id: int, definition: int, values: dict[str, Any]) -> None:
    if definition in PRESETS:
        raise PresetReadOnly(definition)
    with ctx.db.session() as session:
        row = session.get(Template, definition)
        if row is None or row.sub_app_id != sub_app_id:
            raise TemplateNotFound(definition)
        changes: dict[str, object] = {
            attr: values[name] for name, attr in _FIELDS.items() if name in values
        }
        if "resolution_adaptive" in changes:
            changes["resolution_adaptive"] = ResolutionAdaptive(str(changes["resolution_adaptive"]))
        for attr in _FLOATS:
            if attr in changes:
                changes[attr] = float(changes[attr])  # type: ignore[arg-type]
        spec = modified(_spec(row), changes, ctx.now())
        check_template(spec, modifying=True, max_output_bytes=ctx.settings.max_output_bytes)
        for attr, value in asdict(spec).items():
            if attr in _FIELDS.values():
                setattr(row, attr, value.value if attr == "resolution_adaptive" else value)
        row.updated_at = spec.update_time


def delete(ctx: Context, sub_app_id: int, definition: int) -> None:
    if definition in PRESETS:
        raise PresetReadOnly(definition)
    with ctx.db.session() as session:
        row = session.get(Template, definition)
        if row is None or row.sub_app_id != sub_app_id:
            raise TemplateNotFound(definition)
        session.delete(row)


def describe(
    ctx: Context,
    sub_app_id: int,
    definitions: list[int] | None,
    kind: str | None,
    offset: int,
    limit: int,
) -> tuple[int, list[TemplateSpec]]:
    """(TotalCount, one page): presets first, then custom templates by Definition."""
    found: list[TemplateSpec] = []
    if kind in (None, "Preset"):
        found.extend(
            spec for d, spec in sorted(PRESETS.items()) if not definitions or d in definitions
        )
    if kind in (None, "Custom"):
        with ctx.db.session() as session:
            query = select(Template).where(Template.sub_app_id == sub_app_id)
            if definitions:
                query = query.where(Template.definition.in_(definitions))
            found.extend(_spec(row) for row in session.scalars(query.order_by(Template.definition)))
    return len(found), found[offset : offset + limit]
