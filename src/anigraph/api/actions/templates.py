"""Create / Modify / Delete / DescribeAnimatedGraphicsTemplates (spec 2.1)."""

from __future__ import annotations

from typing import Any

from anigraph.api.errors import ApiError, Code, template_not_exist, too_much_template
from anigraph.api.params import FLOAT, STRING, UINT64, Array, Field, Object
from anigraph.api.registry import Caller, action
from anigraph.context import Context
from anigraph.domain.templates import (
    COMMENT_MAX,
    DURATION_RANGE,
    EXTENSION_FORMATS,
    FORMATS,
    LOOP_MODES,
    NAME_MAX,
    SEGMENT_MODES,
    TemplateRuleError,
    TemplateSpec,
)
from anigraph.domain.wire import iso
from anigraph.services import templates

_ADAPTIVE = frozenset({"open", "close"})
_FORMAT = frozenset(FORMATS + EXTENSION_FORMATS)

_COMMON: dict[str, Field] = {
    "Name": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_NAME, max_length=NAME_MAX),
    "Comment": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_COMMENT, max_length=COMMENT_MAX),
    "Width": Field(UINT64, code=Code.INVALID_PARAMETER_VALUE_RESOLUTION, maximum=4096),
    "Height": Field(UINT64, code=Code.INVALID_PARAMETER_VALUE_RESOLUTION, maximum=4096),
    "ResolutionAdaptive": Field(
        STRING, code=Code.INVALID_PARAMETER_VALUE_RESOLUTION_ADAPTIVE, choices=_ADAPTIVE
    ),
    "Format": Field(STRING, code=Code.INVALID_PARAMETER_VALUE_FORMAT, choices=_FORMAT),
    "Quality": Field(FLOAT, code=Code.INVALID_PARAMETER_VALUE_QUALITY, minimum=1, maximum=100),
    # Extensions: the JSON type and the fixed ranges here, "0 or [a, b]" in check_template.
    "MaxSize": Field(UINT64, code=Code.INVALID_PARAMETER_VALUE_MAX_SIZE),
    "QualityTarget": Field(FLOAT, code=Code.INVALID_PARAMETER_VALUE_QUALITY_TARGET),
    "SegmentMode": Field(
        STRING, code=Code.INVALID_PARAMETER_VALUE_SEGMENT_MODE, choices=frozenset(SEGMENT_MODES)
    ),
    "Duration": Field(
        FLOAT,
        code=Code.INVALID_PARAMETER_VALUE_DURATION,
        minimum=DURATION_RANGE[0],
        maximum=DURATION_RANGE[1],
    ),
    "LoopMode": Field(
        STRING, code=Code.INVALID_PARAMETER_VALUE_LOOP_MODE, choices=frozenset(LOOP_MODES)
    ),
}


def _rule_error(error: TemplateRuleError) -> ApiError:
    return ApiError(f"InvalidParameterValue.{error.field}", error.message)


def wire(spec: TemplateSpec) -> dict[str, Any]:
    """AnimatedGraphicsTemplate (spec 3.2): every field present.

    The five extension fields follow only for a template that uses an extension, so a client
    that uses none sees Tencent's shape exactly (SDKs warn on unknown fields).
    """
    plain = {
        "Definition": spec.definition,
        "Type": spec.type,
        "Name": spec.name,
        "Comment": spec.comment,
        "Width": spec.width,
        "Height": spec.height,
        "ResolutionAdaptive": spec.resolution_adaptive.value,
        "Format": spec.format,
        "Fps": spec.fps,
        "Quality": spec.quality,
        "CreateTime": iso(spec.create_time),
        "UpdateTime": iso(spec.update_time),
    }
    if not spec.uses_extension():
        return plain
    return {
        **plain,
        "MaxSize": spec.max_size,
        "QualityTarget": spec.quality_target,
        "SegmentMode": spec.segment_mode,
        "Duration": spec.duration,
        "LoopMode": spec.loop_mode,
    }


CREATE = Object(
    {
        **_COMMON,
        "Fps": Field(
            UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_FPS, minimum=1, maximum=30
        ),
    }
)


@action("CreateAnimatedGraphicsTemplate", CREATE)
def create(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Format") == "webp" and "Width" not in params and "Height" not in params:
        raise ApiError(
            Code.INVALID_PARAMETER_VALUE_FORMAT_WEBP_LACK_WIDTH_AND_HEIGHT,
            "For webp, Width and Height cannot both be missing.",
        )
    try:
        definition = templates.create(ctx, caller.sub_app_id, params)
    except TemplateRuleError as error:
        raise _rule_error(error) from None
    except templates.TooManyTemplates as error:
        raise too_much_template(error.args[0]) from None
    return {"Definition": definition}


MODIFY = Object(
    {
        **_COMMON,
        "Definition": Field(UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_DEFINITION),
        "Fps": Field(UINT64, code=Code.INVALID_PARAMETER_VALUE_FPS, minimum=1, maximum=30),
    }
)


@action("ModifyAnimatedGraphicsTemplate", MODIFY)
def modify(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    definition = params.pop("Definition")
    params.pop("SubAppId", None)
    try:
        templates.modify(ctx, caller.sub_app_id, definition, params)
    except templates.PresetReadOnly:
        raise ApiError(
            Code.INVALID_PARAMETER_VALUE_MODIFY_DEFAULT_TEMPLATE,
            f"The preset template {definition} cannot be modified.",
        ) from None
    except templates.TemplateNotFound:
        raise template_not_exist(definition) from None
    except TemplateRuleError as error:
        raise _rule_error(error) from None
    return {}


DELETE = Object(
    {"Definition": Field(UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_DEFINITION)}
)


@action("DeleteAnimatedGraphicsTemplate", DELETE)
def delete(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    definition = params["Definition"]
    try:
        templates.delete(ctx, caller.sub_app_id, definition)
    except templates.PresetReadOnly:
        raise ApiError(
            Code.INVALID_PARAMETER_VALUE_DELETE_DEFAULT_TEMPLATE,
            f"The preset template {definition} cannot be deleted.",
        ) from None
    except templates.TemplateNotFound:
        raise template_not_exist(definition) from None
    return {}


DESCRIBE = Object(
    {
        "Definitions": Field(
            Array(UINT64), code=Code.INVALID_PARAMETER_VALUE_DEFINITIONS, max_items=100
        ),
        "Offset": Field(UINT64, default=0, code=Code.INVALID_PARAMETER_VALUE_OFFSET),
        "Limit": Field(
            UINT64, default=10, code=Code.INVALID_PARAMETER_VALUE_LIMIT, minimum=1, maximum=100
        ),
        "Type": Field(
            STRING, code=Code.INVALID_PARAMETER_VALUE_TYPE, choices=frozenset({"Preset", "Custom"})
        ),
    }
)


@action("DescribeAnimatedGraphicsTemplates", DESCRIBE)
def describe(ctx: Context, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    total, page = templates.describe(
        ctx,
        caller.sub_app_id,
        params.get("Definitions"),
        params.get("Type"),
        params["Offset"],
        params["Limit"],
    )
    return {"TotalCount": total, "AnimatedGraphicsTemplateSet": [wire(spec) for spec in page]}
