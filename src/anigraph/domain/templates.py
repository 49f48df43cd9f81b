"""Animated-graphics templates: the presets and the rules for custom ones (spec 2.1, 4, 7.5)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from anigraph.domain.geometry import ResolutionAdaptive

PRESET_GIF: Final = 20000
PRESET_WEBP: Final = 20001
MAX_CUSTOM_TEMPLATES: Final = 16
FIRST_CUSTOM_DEFINITION: Final = 100_001  # well above the presets, never colliding with them
NAME_MAX: Final = 64
COMMENT_MAX: Final = 256
FPS_RANGE: Final = (1, 30)
QUALITY_RANGE: Final = (1.0, 100.0)
CREATE_SIDE_RANGE: Final = (128, 4096)
MODIFY_SIDE_RANGE: Final = (32, 4096)  # the spec's Modify allows 32, Create 128
FORMATS: Final = ("gif", "webp")
# Extensions beyond Tencent's template (docs/api.md); each default is Tencent's behaviour.
EXTENSION_FORMATS: Final = ("avif", "mp4")
SEGMENT_MODES: Final = ("Fixed", "Highlight")
LOOP_MODES: Final = ("None", "Seamless", "Crossfade", "Boomerang")
QUALITY_TARGET_RANGE: Final = (0.80, 0.99)  # or 0 = off
DURATION_RANGE: Final = (0.5, 30.0)
DEFAULT_DURATION: Final = 3.0
MIN_MAX_SIZE: Final = 10 * 1024  # a budget below any useful animated image is a mistake
PRESET_TIME: Final = datetime(2018, 7, 17, tzinfo=UTC)


class TemplateRuleError(ValueError):
    """A template value breaks a rule; ``field`` names the Tencent error suffix (e.g. ``Fps``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TemplateSpec:
    definition: int
    type: str  # "Preset" or "Custom"
    name: str
    comment: str
    format: str
    width: int
    height: int
    resolution_adaptive: ResolutionAdaptive
    fps: int
    quality: float
    create_time: datetime
    update_time: datetime
    max_size: int = 0
    quality_target: float = 0.0
    segment_mode: str = "Fixed"
    duration: float = DEFAULT_DURATION
    loop_mode: str = "None"

    def uses_extension(self) -> bool:
        """True when any extension field or format differs from Tencent's behaviour.

        Duration counts too, although only Highlight reads it: a value the client set must come
        back from DescribeAnimatedGraphicsTemplates.
        """
        return (
            self.duration != DEFAULT_DURATION
            or self.max_size > 0
            or self.quality_target > 0
            or self.segment_mode != "Fixed"
            or self.loop_mode != "None"
            or self.format in EXTENSION_FORMATS
        )


PRESETS: Final[dict[int, TemplateSpec]] = {
    definition: TemplateSpec(
        definition=definition,
        type="Preset",
        name=name,
        comment="",
        format=fmt,
        width=0,
        height=0,
        resolution_adaptive=ResolutionAdaptive.OPEN,
        fps=2,
        quality=75.0,
        create_time=PRESET_TIME,
        update_time=PRESET_TIME,
    )
    for definition, fmt, name in (
        (PRESET_GIF, "gif", "Preset GIF"),
        (PRESET_WEBP, "webp", "Preset WebP"),
    )
}


def check_template(spec: TemplateSpec, *, modifying: bool, max_output_bytes: int) -> None:
    """Raise :class:`TemplateRuleError` for the first broken rule, in the docs' order.

    Tencent's rules stay exactly as they are for gif and webp; the extension formats (avif, mp4)
    may keep the source size (Width = Height = 0) like gif. ``max_output_bytes`` is the
    service's largest output, the top of MaxSize's range.
    """
    if spec.format not in FORMATS + EXTENSION_FORMATS:
        raise TemplateRuleError("Format", "Format must be gif, webp, avif or mp4.")
    low, high = MODIFY_SIDE_RANGE if modifying else CREATE_SIDE_RANGE
    for side, value in (("Width", spec.width), ("Height", spec.height)):
        if value != 0 and not low <= value <= high:
            raise TemplateRuleError("Resolution", f"{side} must be 0 or in [{low}, {high}].")
    if spec.format == "webp" and spec.width == 0 and spec.height == 0:
        raise TemplateRuleError(
            "FormatWebpWidthAndHeightBothZero", "For webp, Width and Height cannot both be 0."
        )
    if not FPS_RANGE[0] <= spec.fps <= FPS_RANGE[1]:
        raise TemplateRuleError("Fps", f"Fps must be in [{FPS_RANGE[0]}, {FPS_RANGE[1]}].")
    if not QUALITY_RANGE[0] <= spec.quality <= QUALITY_RANGE[1]:
        raise TemplateRuleError("Quality", "Quality must be in [1, 100].")
    if len(spec.name) > NAME_MAX:
        raise TemplateRuleError("Name", f"Name must be at most {NAME_MAX} characters.")
    if len(spec.comment) > COMMENT_MAX:
        raise TemplateRuleError("Comment", f"Comment must be at most {COMMENT_MAX} characters.")
    check_extensions(spec, max_output_bytes)


def check_extensions(spec: TemplateSpec, max_output_bytes: int) -> None:
    """The extension fields' rules (docs/api.md, "Template extension fields")."""
    if spec.max_size != 0 and not MIN_MAX_SIZE <= spec.max_size <= max_output_bytes:
        raise TemplateRuleError(
            "MaxSize", f"MaxSize must be 0 or in [{MIN_MAX_SIZE}, {max_output_bytes}] bytes."
        )
    low, high = QUALITY_TARGET_RANGE
    if spec.quality_target != 0 and not low <= spec.quality_target <= high:
        raise TemplateRuleError("QualityTarget", f"QualityTarget must be 0 or in [{low}, {high}].")
    if spec.segment_mode not in SEGMENT_MODES:
        raise TemplateRuleError(
            "SegmentMode", f"SegmentMode must be one of {', '.join(SEGMENT_MODES)}."
        )
    if not DURATION_RANGE[0] <= spec.duration <= DURATION_RANGE[1]:
        raise TemplateRuleError(
            "Duration",
            f"Duration must be in [{DURATION_RANGE[0]:g}, {DURATION_RANGE[1]:g}] seconds.",
        )
    if spec.loop_mode not in LOOP_MODES:
        raise TemplateRuleError("LoopMode", f"LoopMode must be one of {', '.join(LOOP_MODES)}.")


def modified(spec: TemplateSpec, changes: dict[str, object], now: datetime) -> TemplateSpec:
    """``spec`` with the given fields replaced (only the fields sent change)."""
    return replace(spec, **changes, update_time=now)  # type: ignore[arg-type]
