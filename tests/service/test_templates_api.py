"""Animated-graphics templates through the official SDK against a real server (spec 2.1, 4)."""

from __future__ import annotations

from typing import Any

import pytest
from service_harness import Server, Vod, error_code


@pytest.fixture
def fresh(server: Server) -> Vod:
    """A key of a sub-application of its own, so template counts start from zero."""
    import secrets

    return Vod(server, server.create_key(1_600_000_000 + secrets.randbelow(10**8)))


def test_presets_are_listed(fresh: Vod) -> None:
    found = fresh("DescribeAnimatedGraphicsTemplates", {"Type": "Preset"})
    assert found["TotalCount"] == 2
    gif, webp = found["AnimatedGraphicsTemplateSet"]
    assert (gif["Definition"], gif["Format"], gif["Fps"], gif["Type"]) == (
        20000,
        "gif",
        2,
        "Preset",
    )
    assert (webp["Definition"], webp["Format"]) == (20001, "webp")
    assert (gif["Width"], gif["Height"], gif["ResolutionAdaptive"]) == (0, 0, "open")
    assert set(gif) >= {"Name", "Comment", "Quality", "CreateTime", "UpdateTime"}


def test_create_describe_modify_delete(fresh: Vod) -> None:
    created = fresh(
        "CreateAnimatedGraphicsTemplate",
        {
            "Fps": 10,
            "Width": 480,
            "Format": "webp",
            "Quality": 80,
            "Name": "preview",
            "Comment": "c",
        },
    )
    definition = created["Definition"]
    assert definition > 20001
    (row,) = fresh("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})[
        "AnimatedGraphicsTemplateSet"
    ]
    assert row == {
        **row,
        "Definition": definition,
        "Type": "Custom",
        "Name": "preview",
        "Comment": "c",
        "Width": 480,
        "Height": 0,
        "ResolutionAdaptive": "open",
        "Format": "webp",
        "Fps": 10,
        "Quality": 80.0,
    }
    fresh("ModifyAnimatedGraphicsTemplate", {"Definition": definition, "Fps": 15, "Height": 64})
    (after,) = fresh("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})[
        "AnimatedGraphicsTemplateSet"
    ]
    # Only the fields sent change; Modify allows sides from 32.
    assert (after["Fps"], after["Height"], after["Width"], after["Name"]) == (
        15,
        64,
        480,
        "preview",
    )
    fresh("DeleteAnimatedGraphicsTemplate", {"Definition": definition})
    assert (
        fresh("DescribeAnimatedGraphicsTemplates", {"Definitions": [definition]})["TotalCount"] == 0
    )
    assert (
        error_code(lambda: fresh("DeleteAnimatedGraphicsTemplate", {"Definition": definition}))
        == "ResourceNotFound.TemplateNotExist"
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingParameter"),
        ({"Fps": 0}, "InvalidParameterValue.Fps"),
        ({"Fps": 31}, "InvalidParameterValue.Fps"),
        ({"Fps": 10, "Quality": 0}, "InvalidParameterValue.Quality"),
        ({"Fps": 10, "Quality": 100.5}, "InvalidParameterValue.Quality"),
        ({"Fps": 10, "Width": 127}, "InvalidParameterValue.Resolution"),
        ({"Fps": 10, "Height": 4097}, "InvalidParameterValue.Resolution"),
        ({"Fps": 10, "Format": "png"}, "InvalidParameterValue.Format"),
        ({"Fps": 10, "ResolutionAdaptive": "maybe"}, "InvalidParameterValue.ResolutionAdaptive"),
        ({"Fps": 10, "Format": "webp"}, "InvalidParameterValue.FormatWebpLackWidthAndHeight"),
        (
            {"Fps": 10, "Format": "webp", "Width": 0, "Height": 0},
            "InvalidParameterValue.FormatWebpWidthAndHeightBothZero",
        ),
        ({"Fps": 10, "Name": "n" * 65}, "InvalidParameterValue.Name"),
        ({"Fps": 10, "Comment": "c" * 257}, "InvalidParameterValue.Comment"),
        ({"Fps": "ten"}, "InvalidParameterValue.Fps"),
    ],
)
def test_create_validation(fresh: Vod, params: dict[str, Any], code: str) -> None:
    assert error_code(lambda: fresh("CreateAnimatedGraphicsTemplate", params)) == code


def test_modify_validation_and_presets(fresh: Vod) -> None:
    definition = fresh("CreateAnimatedGraphicsTemplate", {"Fps": 5})["Definition"]
    assert (
        error_code(
            lambda: fresh("ModifyAnimatedGraphicsTemplate", {"Definition": definition, "Width": 31})
        )
        == "InvalidParameterValue.Resolution"
    )
    assert (
        error_code(
            lambda: fresh(
                "ModifyAnimatedGraphicsTemplate", {"Definition": definition, "Format": "webp"}
            )
        )
        == "InvalidParameterValue.FormatWebpWidthAndHeightBothZero"
    )
    assert (
        error_code(lambda: fresh("ModifyAnimatedGraphicsTemplate", {"Definition": 20000, "Fps": 5}))
        == "InvalidParameterValue.ModifyDefaultTemplate"
    )
    assert (
        error_code(lambda: fresh("DeleteAnimatedGraphicsTemplate", {"Definition": 20001}))
        == "InvalidParameterValue.DeleteDefaultTemplate"
    )
    assert (
        error_code(
            lambda: fresh("ModifyAnimatedGraphicsTemplate", {"Definition": 999999, "Fps": 5})
        )
        == "ResourceNotFound.TemplateNotExist"
    )


def test_at_most_16_custom_templates(fresh: Vod) -> None:
    for _ in range(16):
        fresh("CreateAnimatedGraphicsTemplate", {"Fps": 5})
    assert (
        error_code(lambda: fresh("CreateAnimatedGraphicsTemplate", {"Fps": 5}))
        == "LimitExceeded.TooMuchTemplate"
    )
    listing = fresh("DescribeAnimatedGraphicsTemplates", {"Type": "Custom", "Limit": 100})
    assert listing["TotalCount"] == 16


def test_paging_and_filters(fresh: Vod) -> None:
    made = [fresh("CreateAnimatedGraphicsTemplate", {"Fps": 5 + i})["Definition"] for i in range(3)]
    everything = fresh("DescribeAnimatedGraphicsTemplates", {"Limit": 100})
    assert everything["TotalCount"] == 5
    assert [t["Definition"] for t in everything["AnimatedGraphicsTemplateSet"]] == [
        20000,
        20001,
        *made,
    ]
    page = fresh("DescribeAnimatedGraphicsTemplates", {"Offset": 1, "Limit": 2})
    assert page["TotalCount"] == 5
    assert [t["Definition"] for t in page["AnimatedGraphicsTemplateSet"]] == [20001, made[0]]
    some = fresh("DescribeAnimatedGraphicsTemplates", {"Definitions": [made[1], 20000]})
    assert sorted(t["Definition"] for t in some["AnimatedGraphicsTemplateSet"]) == [20000, made[1]]
    for bad, code in (
        ({"Limit": 101}, "InvalidParameterValue.Limit"),
        ({"Limit": 0}, "InvalidParameterValue.Limit"),
        ({"Type": "Other"}, "InvalidParameterValue.Type"),
        ({"Definitions": list(range(101))}, "InvalidParameterValue.Definitions"),
    ):
        assert error_code(lambda bad=bad: fresh("DescribeAnimatedGraphicsTemplates", bad)) == code


def test_templates_are_private_to_their_sub_app(server: Server, fresh: Vod) -> None:
    import secrets

    other = Vod(server, server.create_key(1_700_000_000 + secrets.randbelow(10**8)))
    mine = fresh("CreateAnimatedGraphicsTemplate", {"Fps": 5})["Definition"]
    assert other("DescribeAnimatedGraphicsTemplates", {"Definitions": [mine]})["TotalCount"] == 0
    for action, params in (
        ("ModifyAnimatedGraphicsTemplate", {"Definition": mine, "Fps": 6}),
        ("DeleteAnimatedGraphicsTemplate", {"Definition": mine}),
    ):
        assert (
            error_code(lambda a=action, p=params: other(a, p))
            == "ResourceNotFound.TemplateNotExist"
        )
    assert fresh("DescribeAnimatedGraphicsTemplates", {"Definitions": [mine]})["TotalCount"] == 1
