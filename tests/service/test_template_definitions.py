"""Definitions are never reused; reruns keep every output; unset times as Tencent sends them."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_harness import Server, Vod, error_code, free_port, wait_for_task

ZERO_TIME = "0001-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def sub_app() -> int:
    return 1_900_000_000 + secrets.randbelow(10**8)


@pytest.fixture(scope="module")
def vod(server: Server, sub_app: int) -> Vod:
    return Vod(server, server.create_key(sub_app))


def test_a_deleted_definition_is_never_given_again(vod: Vod) -> None:
    first = vod("CreateAnimatedGraphicsTemplate", {"Fps": 5})["Definition"]
    second = vod("CreateAnimatedGraphicsTemplate", {"Fps": 6})["Definition"]
    vod("DeleteAnimatedGraphicsTemplate", {"Definition": second})
    vod("DeleteAnimatedGraphicsTemplate", {"Definition": first})
    third = vod("CreateAnimatedGraphicsTemplate", {"Fps": 7})["Definition"]
    assert third > second > first
    # The deleted ones stay gone: nothing answers to them.
    for gone in (first, second):
        assert (
            error_code(lambda d=gone: vod("DeleteAnimatedGraphicsTemplate", {"Definition": d}))
            == "ResourceNotFound.TemplateNotExist"
        )


def animate(vod: Vod, file_id: str, definition: int) -> str:
    task_id: str = vod(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [{"Definition": definition, "EndTimeOffset": 1.0}]
            },
        },
    )["TaskId"]
    return task_id


def output_of(detail: dict[str, Any]) -> dict[str, Any]:
    (result,) = detail["ProcedureTask"]["MediaProcessResultSet"]
    output: dict[str, Any] = result["AnimatedGraphicTask"]["Output"]
    return output


def test_a_second_run_of_a_definition_adds_an_output(
    server: Server, vod: Vod, sub_app: int, short_clip: Path
) -> None:
    file_id = server.import_media(short_clip, sub_app)
    definition = vod("CreateAnimatedGraphicsTemplate", {"Fps": 5, "Width": 160})["Definition"]
    first = output_of(wait_for_task(vod, animate(vod, file_id, definition)))
    second = output_of(wait_for_task(vod, animate(vod, file_id, definition)))
    (info,) = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"]
    listed = info["AnimatedGraphicsInfo"]["AnimatedGraphicsSet"]
    # One entry per run, oldest first, each at a URL of its own: the first task's Output still
    # shows the image it made (Tencent would overwrite v.f<Definition>.gif in place).
    assert [(item["Definition"], item["Url"]) for item in listed] == [
        (definition, first["Url"]),
        (definition, second["Url"]),
    ]
    assert first["Url"] != second["Url"]
    for item in listed:
        served = httpx.get(item["Url"], timeout=30)
        assert served.status_code == 200 and len(served.content) == item["Size"]


def test_unset_times_are_tencents_zero_time(tmp_path: Path, short_clip: Path) -> None:
    """With no worker the task stays WAITING: begin and finish times are not reached yet."""
    idle = Server(tmp_path / "data", free_port(), ["--workers", "0"])
    idle.start()
    try:
        vod = Vod(idle, idle.default_key())
        file_id = idle.import_media(short_clip)
        task_id = animate(vod, file_id, 20000)
        detail = vod("DescribeTaskDetail", {"TaskId": task_id})  # through the SDK's models
        assert detail["Status"] == "WAITING"
        assert detail["CreateTime"].endswith("Z") and detail["CreateTime"] != ZERO_TIME
        assert (detail["BeginProcessTime"], detail["FinishTime"]) == (ZERO_TIME, ZERO_TIME)
        (result,) = detail["ProcedureTask"]["MediaProcessResultSet"]
        subtask = result["AnimatedGraphicTask"]
        assert (subtask["BeginProcessTime"], subtask["FinishTime"]) == (ZERO_TIME, ZERO_TIME)
        (listed,) = vod("DescribeTasks", {"FileId": file_id})["TaskSet"]
        assert (listed["BeginProcessTime"], listed["FinishTime"]) == (ZERO_TIME, ZERO_TIME)
    finally:
        idle.stop()
