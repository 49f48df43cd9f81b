"""Template rules, extension fields included (domain.templates; docs/api.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from anigraph.domain.geometry import ResolutionAdaptive
from anigraph.domain.templates import TemplateRuleError, TemplateSpec, check_template

MOMENT = datetime(2026, 12, 3, tzinfo=UTC)
PLAIN = TemplateSpec(
    definition=100_001,
    type="Custom",
    name="",
    comment="",
    format="gif",
    width=0,
    height=0,
    resolution_adaptive=ResolutionAdaptive.OPEN,
    fps=10,
    quality=75.0,
    create_time=MOMENT,
    update_time=MOMENT,
)


def rule_broken(spec: TemplateSpec, max_output_bytes: int = 1_000_000) -> str | None:
    try:
        check_template(spec, modifying=False, max_output_bytes=max_output_bytes)
    except TemplateRuleError as error:
        return error.field
    return None


def test_defaults_are_tencents_template() -> None:
    assert rule_broken(PLAIN) is None and not PLAIN.uses_extension()
    assert rule_broken(replace(PLAIN, format="webp")) == "FormatWebpWidthAndHeightBothZero"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_size": 10_239}, "MaxSize"),
        ({"max_size": 1_000_001}, "MaxSize"),  # above the service's max_output_bytes
        ({"quality_target": 0.5}, "QualityTarget"),
        ({"quality_target": 1.0}, "QualityTarget"),
        ({"segment_mode": "Random"}, "SegmentMode"),
        ({"duration": 0.0}, "Duration"),
        ({"duration": 31.0}, "Duration"),
        ({"loop_mode": "Reverse"}, "LoopMode"),
        ({"format": "png"}, "Format"),
        ({"max_size": 10_240, "quality_target": 0.8, "duration": 0.5}, None),
        ({"max_size": 1_000_000, "quality_target": 0.99, "duration": 30.0}, None),
        ({"format": "mp4"}, None),  # the new formats may keep the source size
        ({"format": "avif"}, None),
    ],
)
def test_extension_rules(changes: dict[str, object], field: str | None) -> None:
    assert rule_broken(replace(PLAIN, **changes)) == field  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"max_size": 20_000},
        {"quality_target": 0.9},
        {"segment_mode": "Highlight"},
        {"duration": 5.0},
        {"loop_mode": "Seamless"},
        {"format": "avif"},
        {"format": "mp4"},
    ],
)
def test_any_extension_counts(changes: dict[str, object]) -> None:
    assert replace(PLAIN, **changes).uses_extension()  # type: ignore[arg-type]
