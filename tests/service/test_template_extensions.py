"""Template extension fields through the official SDK's ``call_json`` (docs/api.md).

A client that uses no extension must see Tencent's wire shape exactly; one that does gets the
five fields back, and its task Output carries the measured ones.
"""

from __future__ import annotations

import secrets
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from service_harness import Server, Vod, error_code

from jobs_fixtures import OUTPUT_KEYS

TENCENT_TEMPLATE_KEYS = {
    "Definition",
    "Type",
    "Name",
    "Comment",
    "Width",
    "Height",
    "ResolutionAdaptive",
    "Format",
    "Fps",
    "Quality",
    "CreateTime",
    "UpdateTime",
}
EXTENSION_KEYS = {"MaxSize", "QualityTarget", "SegmentMode", "Duration", "LoopMode"}
MAX_OUTPUT_BYTES = 256 * 1024 * 1024  # the max_output_bytes setting's default


@pytest.fixture(scope="module")
def sub_app() -> int:
    return 1_800_000_000 + secrets.randbelow(10**8)


@pytest.fixture(scope="module")
def fresh(server: Server, sub_app: int) -> Vod:
    """One sub-application for the module (a key costs a CLI run); it makes 8 templates."""
    return Vod(server, server.create_key(sub_app))


def describe_one(vod: Vod, definition: int) -> dict[str, Any]:
    (row,) = vod.call_json("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})[
        "AnimatedGraphicsTemplateSet"
    ]
    return dict(row)


def test_extension_template_round_trip(fresh: Vod) -> None:
    extensions = {
        "MaxSize": 500_000,
        "QualityTarget": 0.9,
        "SegmentMode": "Highlight",
        "Duration": 2.5,
        "LoopMode": "Crossfade",
        "Format": "mp4",
    }
    definition = fresh.call_json("CreateAnimatedGraphicsTemplate", {"Fps": 8, **extensions})[
        "Definition"
    ]
    row = describe_one(fresh, definition)
    assert set(row) == TENCENT_TEMPLATE_KEYS | EXTENSION_KEYS
    assert {name: row[name] for name in extensions} == extensions
    assert type(row["MaxSize"]) is int and type(row["Duration"]) is float


def test_plain_templates_and_presets_have_tencents_keys_only(server: Server) -> None:
    fresh = Vod(server, server.create_key(1_800_000_000 + secrets.randbelow(10**8)))
    plain = fresh.call_json("CreateAnimatedGraphicsTemplate", {"Fps": 5})["Definition"]
    # Sending the defaults is using no extension either.
    defaults = fresh.call_json(
        "CreateAnimatedGraphicsTemplate",
        {"Fps": 5, "MaxSize": 0, "QualityTarget": 0, "SegmentMode": "Fixed", "LoopMode": "None"},
    )["Definition"]
    listing = fresh.call_json("DescribeAnimatedGraphicsTemplates", {"Limit": 100})
    rows = listing["AnimatedGraphicsTemplateSet"]
    assert [row["Definition"] for row in rows] == [20000, 20001, plain, defaults]
    for row in rows:
        assert set(row) == TENCENT_TEMPLATE_KEYS, row
    # Through the SDK's own models too: nothing it does not know, so no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        modelled = fresh("DescribeAnimatedGraphicsTemplates", {"Limit": 100})
    assert modelled["TotalCount"] == 4


@pytest.mark.parametrize("fmt", ["avif", "mp4"])
def test_new_formats_may_keep_the_source_size(fresh: Vod, fmt: str) -> None:
    definition = fresh.call_json(
        "CreateAnimatedGraphicsTemplate", {"Fps": 5, "Format": fmt, "Width": 0, "Height": 0}
    )["Definition"]
    row = describe_one(fresh, definition)
    assert (row["Format"], row["Width"], row["Height"]) == (fmt, 0, 0)
    assert set(row) == TENCENT_TEMPLATE_KEYS | EXTENSION_KEYS  # a new format is an extension


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"MaxSize": 10239}, "InvalidParameterValue.MaxSize"),
        ({"MaxSize": MAX_OUTPUT_BYTES + 1}, "InvalidParameterValue.MaxSize"),
        ({"MaxSize": -1}, "InvalidParameterValue.MaxSize"),
        ({"MaxSize": "100000"}, "InvalidParameterValue.MaxSize"),
        ({"MaxSize": 100000.0}, "InvalidParameterValue.MaxSize"),
        ({"MaxSize": True}, "InvalidParameterValue.MaxSize"),
        ({"QualityTarget": 0.79}, "InvalidParameterValue.QualityTarget"),
        ({"QualityTarget": 0.995}, "InvalidParameterValue.QualityTarget"),
        ({"QualityTarget": -0.9}, "InvalidParameterValue.QualityTarget"),
        ({"QualityTarget": "0.9"}, "InvalidParameterValue.QualityTarget"),
        ({"SegmentMode": "Best"}, "InvalidParameterValue.SegmentMode"),
        ({"SegmentMode": "highlight"}, "InvalidParameterValue.SegmentMode"),
        ({"SegmentMode": 1}, "InvalidParameterValue.SegmentMode"),
        ({"Duration": 0.4}, "InvalidParameterValue.Duration"),
        ({"Duration": 30.5}, "InvalidParameterValue.Duration"),
        ({"Duration": "3"}, "InvalidParameterValue.Duration"),
        ({"LoopMode": "Pingpong"}, "InvalidParameterValue.LoopMode"),
        ({"LoopMode": ["Seamless"]}, "InvalidParameterValue.LoopMode"),
        ({"Format": "apng"}, "InvalidParameterValue.Format"),
        # Tencent's webp rules stay webp's: the new formats do not relax them.
        ({"Format": "webp"}, "InvalidParameterValue.FormatWebpLackWidthAndHeight"),
    ],
)
def test_create_validation(fresh: Vod, params: dict[str, Any], code: str) -> None:
    assert (
        error_code(lambda: fresh.call_json("CreateAnimatedGraphicsTemplate", {"Fps": 5, **params}))
        == code
    )


def test_edge_values_are_accepted(fresh: Vod) -> None:
    for params in (
        {"MaxSize": 10240, "QualityTarget": 0.8, "Duration": 0.5},
        {"MaxSize": MAX_OUTPUT_BYTES, "QualityTarget": 0.99, "Duration": 30},
    ):
        definition = fresh.call_json("CreateAnimatedGraphicsTemplate", {"Fps": 5, **params})[
            "Definition"
        ]
        row = describe_one(fresh, definition)
        assert {name: row[name] for name in params} == params


def test_modify_changes_only_the_fields_sent(fresh: Vod) -> None:
    definition = fresh.call_json(
        "CreateAnimatedGraphicsTemplate", {"Fps": 5, "MaxSize": 200_000, "LoopMode": "Seamless"}
    )["Definition"]
    before = describe_one(fresh, definition)
    fresh.call_json("ModifyAnimatedGraphicsTemplate", {"Definition": definition, "Duration": 4})
    after = describe_one(fresh, definition)
    assert after["Duration"] == 4.0
    unchanged = set(before) - {"Duration", "UpdateTime"}
    assert {name: after[name] for name in unchanged} == {name: before[name] for name in unchanged}
    for params, code in (
        ({"QualityTarget": 0.5}, "InvalidParameterValue.QualityTarget"),
        ({"LoopMode": "Loop"}, "InvalidParameterValue.LoopMode"),
        ({"MaxSize": 1}, "InvalidParameterValue.MaxSize"),
        ({"Duration": True}, "InvalidParameterValue.Duration"),
    ):
        assert (
            error_code(
                lambda p=params: fresh.call_json(
                    "ModifyAnimatedGraphicsTemplate", {"Definition": definition, **p}
                )
            )
            == code
        )
    assert describe_one(fresh, definition) == after  # refused changes change nothing
    # Back to every default: the template is Tencent-plain again.
    fresh.call_json(
        "ModifyAnimatedGraphicsTemplate",
        {"Definition": definition, "MaxSize": 0, "LoopMode": "None", "Duration": 3},
    )
    assert set(describe_one(fresh, definition)) == TENCENT_TEMPLATE_KEYS


def test_processing_with_an_extension_template_extends_output_only_there(
    server: Server, fresh: Vod, sub_app: int, short_clip: Path
) -> None:
    file_id = server.import_media(short_clip, sub_app)
    extended = fresh.call_json(
        "CreateAnimatedGraphicsTemplate",
        {"Fps": 5, "Width": 160, "MaxSize": 2_000_000, "LoopMode": "Boomerang"},
    )["Definition"]
    plain = fresh.call_json("CreateAnimatedGraphicsTemplate", {"Fps": 5, "Width": 160})[
        "Definition"
    ]
    task_id = fresh.call_json(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": extended, "StartTimeOffset": 0, "EndTimeOffset": 1},
                    {"Definition": plain, "StartTimeOffset": 0, "EndTimeOffset": 1},
                ]
            },
        },
    )["TaskId"]
    deadline = time.monotonic() + 60
    while (detail := fresh.call_json("DescribeTaskDetail", {"TaskId": task_id}))[
        "Status"
    ] != "FINISH":  # call_json: the SDK's models would warn about the extension fields
        assert time.monotonic() < deadline, detail
        time.sleep(0.2)
    ext_result, plain_result = (
        r["AnimatedGraphicTask"] for r in detail["ProcedureTask"]["MediaProcessResultSet"]
    )
    assert ext_result["Status"] == "SUCCESS" and plain_result["Status"] == "SUCCESS"
    ext_output, plain_output = ext_result["Output"], plain_result["Output"]
    assert set(plain_output) == OUTPUT_KEYS
    assert set(ext_output) >= OUTPUT_KEYS | {"FrameCount", "Fps", "Adjustments"}
    assert set(ext_output) - OUTPUT_KEYS <= {
        "FrameCount",
        "Fps",
        "Adjustments",
        "Ssim",
        "LoopSeam",
    }
    assert ext_output["FrameCount"] > 0 and ext_output["Size"] <= 2_000_000
    # The media item's list carries the same shapes.
    (info,) = fresh.call_json("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"]
    shapes = {
        item["Definition"]: set(item)
        for item in info["AnimatedGraphicsInfo"]["AnimatedGraphicsSet"]
    }
    assert shapes == {extended: set(ext_output), plain: OUTPUT_KEYS}


def test_extension_fields_in_flattened_form(server: Server, fresh: Vod, sub_app: int) -> None:
    """GET (and legacy-signed) requests carry every value as text: converted, then checked."""
    flat = Vod(server, server.create_key(sub_app), req_method="GET")
    definition = flat.call_json(
        "CreateAnimatedGraphicsTemplate",
        {"Fps": 5, "MaxSize": 40960, "QualityTarget": 0.85, "LoopMode": "Seamless"},
    )["Definition"]
    row = describe_one(fresh, definition)
    assert (row["MaxSize"], row["QualityTarget"], row["LoopMode"]) == (40960, 0.85, "Seamless")
    assert (
        error_code(
            lambda: flat.call_json("CreateAnimatedGraphicsTemplate", {"Fps": 5, "MaxSize": 1.5})
        )
        == "InvalidParameterValue.MaxSize"
    )
