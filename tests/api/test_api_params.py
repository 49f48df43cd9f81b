"""Flattened parameters (spec 1.5) and schema coercion."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from anigraph.api.errors import ApiError, Code
from anigraph.api.params import (
    FLOAT,
    INT64,
    MAX_DEPTH,
    MAX_INDEX,
    STRING,
    UINT64,
    Array,
    Field,
    Object,
    parse,
    unflatten,
)


def pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def unflatten_error(query: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        unflatten(pairs(query))
    return info.value


# ---------------------------------------------------------------------------------------------
# unflatten


def test_unflatten_flat_and_nested() -> None:
    query = (
        "FileId=f1&MediaProcessTask.AnimatedGraphicTaskSet.0.Definition=20000"
        "&MediaProcessTask.AnimatedGraphicTaskSet.0.StartTimeOffset=1.5"
        "&MediaProcessTask.AnimatedGraphicTaskSet.1.Definition=20001"
        "&Definitions.0=1&Definitions.1=2&Empty="
    )
    assert unflatten(pairs(query)) == {
        "FileId": "f1",
        "MediaProcessTask": {
            "AnimatedGraphicTaskSet": [
                {"Definition": "20000", "StartTimeOffset": "1.5"},
                {"Definition": "20001"},
            ]
        },
        "Definitions": ["1", "2"],
        "Empty": "",
    }


def test_unflatten_orders_arrays_by_index_and_keeps_member_order() -> None:
    result = unflatten([("B", "1"), ("A.2", "c"), ("A.0", "a"), ("A.1", "b"), ("C", "3")])
    assert result == {"B": "1", "A": ["a", "b", "c"], "C": "3"}
    assert list(result) == ["B", "A", "C"]


def test_unflatten_arrays_of_arrays_and_empty_input() -> None:
    assert unflatten([("M.0.0", "a"), ("M.0.1", "b"), ("M.1.0", "c")]) == {"M": [["a", "b"], ["c"]]}
    assert unflatten([]) == {}


def test_unflatten_accepts_the_largest_index() -> None:
    items = [(f"A.{i}", str(i)) for i in range(MAX_INDEX + 1)]
    assert unflatten(items)["A"][MAX_INDEX] == str(MAX_INDEX)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("A.1=x", "no element 0"),
        ("A.0=x&A.2=y", "no element 1"),
        ("A.0.B.1=x", "no element 0"),
        ("A=1&A.B=2", "both as a value and as a container"),
        ("A.B=2&A=1", "both as a value and as a container"),
        ("A.0=1&A.0.B=2", "both as a value and as a container"),
        ("A.0=1&A.B=2", "both as an array and as an object"),
        ("A.B=1&A.0=2", "both as an array and as an object"),
        ("A=1&A=2", "more than once"),
        ("A.0=1&A.0=1", "more than once"),
        (f"A.{MAX_INDEX + 1}=x", f"above {MAX_INDEX}"),
        ("A.99999999999999999999999=x", f"above {MAX_INDEX}"),
        ("A.01=x", "leading zeros"),
        ("A..B=x", "empty segment"),
        (".A=x", "empty segment"),
        ("A.=x", "empty segment"),
        ("=x", "empty segment"),
        ("0=x", "may not start with an array index"),
        (".".join(["A"] * (MAX_DEPTH + 1)) + "=x", "deeper than"),
    ],
)
def test_unflatten_rejects(query: str, fragment: str) -> None:
    error = unflatten_error(query)
    assert error.code == Code.INVALID_PARAMETER
    assert fragment in error.message


def test_unflatten_treats_non_ascii_digits_as_names() -> None:
    assert unflatten([("A.²", "x")]) == {"A": {"²": "x"}}


# ---------------------------------------------------------------------------------------------
# schema


TASK = Object(
    {
        "Definition": Field(UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_DEFINITION),
        "StartTimeOffset": Field(
            FLOAT, default=0.0, code=Code.INVALID_PARAMETER_VALUE_START_TIME_OFFSET
        ),
    }
)
SCHEMA = Object(
    {
        "Fps": Field(
            UINT64, required=True, code=Code.INVALID_PARAMETER_VALUE_FPS, minimum=1, maximum=30
        ),
        "Quality": Field(FLOAT, default=75.0, code=Code.INVALID_PARAMETER_VALUE_QUALITY),
        "Priority": Field(INT64, default=0, minimum=-10, maximum=10),
        "Format": Field(
            STRING,
            default="gif",
            choices=frozenset({"gif", "webp"}),
            code=Code.INVALID_PARAMETER_VALUE_FORMAT,
        ),
        "Name": Field(STRING, max_length=4, code=Code.INVALID_PARAMETER_VALUE_NAME),
        "Definitions": Field(
            Array(UINT64), max_items=3, code=Code.INVALID_PARAMETER_VALUE_DEFINITIONS
        ),
        "Task": Field(Object({"Set": Field(Array(TASK))})),
        "Tags": Field(Array(STRING), default=[]),
    }
)


def parse_error(params: dict[str, Any], *, flattened: bool = False) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse(SCHEMA, params, flattened=flattened)
    return info.value


def test_parse_flattened_coerces_strings() -> None:
    params = unflatten(
        pairs(
            "Fps=10&Quality=75.0&Priority=-5&Format=webp&Name=ab&Definitions.0=1"
            "&Definitions.1=18446744073709551615&Task.Set.0.Definition=20000"
            "&Task.Set.0.StartTimeOffset=-1.5e1&Task.Set.1.Definition=7&SubAppId=1500000001"
        )
    )
    result = parse(SCHEMA, params, flattened=True)
    assert result == {
        "Fps": 10,
        "Quality": 75.0,
        "Priority": -5,
        "Format": "webp",
        "Name": "ab",
        "Definitions": [1, 2**64 - 1],
        "Task": {
            "Set": [
                {"Definition": 20000, "StartTimeOffset": -15.0},
                {"Definition": 7, "StartTimeOffset": 0.0},
            ]
        },
        "Tags": [],
        "SubAppId": 1500000001,
    }
    assert type(result["Fps"]) is int and type(result["Quality"]) is float


def test_parse_json_and_defaults() -> None:
    result = parse(SCHEMA, {"Fps": 10, "Quality": 80})
    assert result == {"Fps": 10, "Quality": 80.0, "Priority": 0, "Format": "gif", "Tags": []}
    assert type(result["Quality"]) is float
    # Defaults are copies: mutating one result does not leak into the next.
    result["Tags"].append("x")
    assert parse(SCHEMA, {"Fps": 1})["Tags"] == []


def test_parse_null_means_absent() -> None:
    assert parse(SCHEMA, {"Fps": 3, "Name": None, "Format": None})["Format"] == "gif"
    error = parse_error({"Fps": None})
    assert error.code == Code.MISSING_PARAMETER and "`Fps`" in error.message


def test_parse_ignore_unknown_members() -> None:
    lenient = Object({"A": Field(STRING)}, ignore_unknown=True)
    assert parse(lenient, {"A": "x", "B": "y"}) == {"A": "x"}


def test_parse_schema_may_declare_sub_app_id() -> None:
    schema = Object({"SubAppId": Field(UINT64, required=True)})
    assert parse(schema, {"SubAppId": 5}) == {"SubAppId": 5}
    with pytest.raises(ApiError) as info:
        parse(schema, {})
    assert info.value.code == Code.MISSING_PARAMETER


@pytest.mark.parametrize(
    ("params", "code", "fragment"),
    [
        ({}, Code.MISSING_PARAMETER, "`Fps`"),
        ({"Fps": 1, "Fsp": 2}, Code.UNKNOWN_PARAMETER, "`Fsp`"),
        (
            {"Fps": 1, "Task": {"Set": [{"Definition": 1, "X": 1}]}},
            Code.UNKNOWN_PARAMETER,
            "`Task.Set.0.X`",
        ),
        (
            {"Fps": 1, "Task": {"Set": [{"Definition": 1}, {}]}},
            Code.MISSING_PARAMETER,
            "`Task.Set.1.Definition`",
        ),
        ({"Fps": "10"}, Code.INVALID_PARAMETER_VALUE_FPS, "an unsigned integer"),
        ({"Fps": True}, Code.INVALID_PARAMETER_VALUE_FPS, "a boolean"),
        ({"Fps": 10.0}, Code.INVALID_PARAMETER_VALUE_FPS, "10.0"),
        ({"Fps": -1}, Code.INVALID_PARAMETER_VALUE_FPS, "an unsigned integer"),
        ({"Fps": 2**64}, Code.INVALID_PARAMETER_VALUE_FPS, "an unsigned integer"),
        ({"Fps": 0}, Code.INVALID_PARAMETER_VALUE_FPS, "at least 1"),
        ({"Fps": 31}, Code.INVALID_PARAMETER_VALUE_FPS, "at most 30"),
        ({"Fps": [1]}, Code.INVALID_PARAMETER_VALUE_FPS, "an array"),
        ({"Fps": 1, "Quality": "75"}, Code.INVALID_PARAMETER_VALUE_QUALITY, "a finite number"),
        ({"Fps": 1, "Quality": False}, Code.INVALID_PARAMETER_VALUE_QUALITY, "a boolean"),
        ({"Fps": 1, "Quality": 10**400}, Code.INVALID_PARAMETER_VALUE_QUALITY, "a finite number"),
        ({"Fps": 1, "Priority": 2**63}, Code.INVALID_PARAMETER_VALUE, "an integer"),
        ({"Fps": 1, "Priority": -11}, Code.INVALID_PARAMETER_VALUE, "at least -10"),
        ({"Fps": 1, "Format": "png"}, Code.INVALID_PARAMETER_VALUE_FORMAT, "one of: gif, webp"),
        ({"Fps": 1, "Format": 1}, Code.INVALID_PARAMETER_VALUE_FORMAT, "a string"),
        ({"Fps": 1, "Name": "abcde"}, Code.INVALID_PARAMETER_VALUE_NAME, "at most 4 characters"),
        ({"Fps": 1, "Definitions": 1}, Code.INVALID_PARAMETER_VALUE_DEFINITIONS, "an array"),
        (
            {"Fps": 1, "Definitions": [1, 2, 3, 4]},
            Code.INVALID_PARAMETER_VALUE_DEFINITIONS,
            "at most 3 items",
        ),
        (
            {"Fps": 1, "Definitions": [1, "2"]},
            Code.INVALID_PARAMETER_VALUE_DEFINITIONS,
            "`Definitions.1`",
        ),
        ({"Fps": 1, "Definitions": [None]}, Code.INVALID_PARAMETER_VALUE_DEFINITIONS, "null"),
        ({"Fps": 1, "Task": "x"}, Code.INVALID_PARAMETER_VALUE, "an object"),
        (
            {"Fps": 1, "Task": {"Set": [{"Definition": 1.5}]}},
            Code.INVALID_PARAMETER_VALUE_DEFINITION,
            "`Task.Set.0.Definition`",
        ),
        (
            {"Fps": 1, "Task": {"Set": [{"Definition": 1, "StartTimeOffset": "1"}]}},
            Code.INVALID_PARAMETER_VALUE_START_TIME_OFFSET,
            "a finite number",
        ),
    ],
)
def test_parse_json_errors(params: dict[str, Any], code: str, fragment: str) -> None:
    error = parse_error(params)
    assert error.code == code
    assert fragment in error.message


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("Fps=abc", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=10.0", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=+10", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps= 10", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=1_0", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=-1", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=True", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=١٠", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=18446744073709551616", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=" + "1" * 5000, Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps.0=1", Code.INVALID_PARAMETER_VALUE_FPS),
        ("Fps=1&Quality=nan", Code.INVALID_PARAMETER_VALUE_QUALITY),
        ("Fps=1&Quality=inf", Code.INVALID_PARAMETER_VALUE_QUALITY),
        ("Fps=1&Quality=1e999", Code.INVALID_PARAMETER_VALUE_QUALITY),
        ("Fps=1&Quality=1_0", Code.INVALID_PARAMETER_VALUE_QUALITY),
        ("Fps=1&Quality=0x10", Code.INVALID_PARAMETER_VALUE_QUALITY),
        ("Fps=1&Priority=9223372036854775808", Code.INVALID_PARAMETER_VALUE),
        ("Fps=1&Definitions=1", Code.INVALID_PARAMETER_VALUE_DEFINITIONS),
        ("Fps=1&Task=x", Code.INVALID_PARAMETER_VALUE),
        ("Fps=1&Name.A=x", Code.INVALID_PARAMETER_VALUE_NAME),
        ("Fps=1&SubAppId=x", Code.INVALID_PARAMETER_VALUE_SUB_APP_ID),
        ("Fps=1&Other=x", Code.UNKNOWN_PARAMETER),
    ],
)
def test_parse_flattened_errors(query: str, code: str) -> None:
    assert parse_error(unflatten(pairs(query)), flattened=True).code == code


@pytest.mark.parametrize(
    ("text", "value"),
    [("75", 75.0), ("75.0", 75.0), ("-1.5", -1.5), (".5", 0.5), ("5.", 5.0), ("1e-07", 1e-07)],
)
def test_parse_flattened_floats(text: str, value: float) -> None:
    assert parse(SCHEMA, {"Fps": "1", "Quality": text}, flattened=True)["Quality"] == value


def test_parse_int64_bounds() -> None:
    schema = Object({"N": Field(INT64)})
    assert parse(schema, {"N": str(-(2**63))}, flattened=True) == {"N": -(2**63)}
    assert parse(schema, {"N": 2**63 - 1}) == {"N": 2**63 - 1}


def test_long_echoed_values_are_cut() -> None:
    error = parse_error({"Fps": 1, "X" * 10000: 1})
    assert error.code == Code.UNKNOWN_PARAMETER
    assert len(error.message) < 200
