"""Restarts: kill -9 mid-task finishes every task exactly once; SIGTERM drains; an aborted
WAITING task never runs. Each test runs its own server."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from service_harness import Server, Vod, error_code, free_port, wait_for_task

from media_factory import make_clip


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("long") / "long.mp4", seconds=12.0, fps=25, width=480, height=270
    )


def submit(vod: Vod, file_id: str, definition: int, count: int) -> list[str]:
    return [
        vod(
            "ProcessMedia",
            {
                "FileId": file_id,
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": definition}]},
            },
        )["TaskId"]
        for _ in range(count)
    ]


def wait_status(vod: Vod, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vod("DescribeTasks", {"Status": status})["TaskSet"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no task reached {status}")


def test_kill_9_then_restart_finishes_every_task_exactly_once(
    tmp_path: Path, long_clip: Path
) -> None:
    server = Server(tmp_path / "data", free_port(), ["--lease-seconds", "2", "--workers", "2"])
    server.start()
    vod = Vod(server, server.default_key())
    file_id = server.import_media(long_clip)
    template = vod("CreateAnimatedGraphicsTemplate", {"Fps": 25, "Width": 480})["Definition"]
    task_ids = submit(vod, file_id, template, 4)
    wait_status(vod, "PROCESSING")
    server.kill()
    server.start()
    for task_id in task_ids:
        detail = wait_for_task(vod, task_id, timeout=180)
        (result,) = detail["ProcedureTask"]["MediaProcessResultSet"]
        assert result["AnimatedGraphicTask"]["Status"] == "SUCCESS", result
    outputs = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0][
        "AnimatedGraphicsInfo"
    ]["AnimatedGraphicsSet"]
    assert len(outputs) == len(task_ids)  # one output per task: nothing done twice
    for item in outputs:
        assert httpx.get(item["Url"]).status_code == 200
    server.stop()


def test_sigterm_drains_running_tasks(tmp_path: Path, long_clip: Path) -> None:
    server = Server(tmp_path / "data", free_port(), ["--workers", "1"])
    server.start()
    vod = Vod(server, server.default_key())
    file_id = server.import_media(long_clip)
    template = vod("CreateAnimatedGraphicsTemplate", {"Fps": 20, "Width": 480})["Definition"]
    (task_id,) = submit(vod, file_id, template, 1)
    wait_status(vod, "PROCESSING")
    assert server.stop(signal.SIGTERM, timeout=120) == 0
    server.start()
    detail = vod("DescribeTaskDetail", {"TaskId": task_id})
    assert detail["Status"] == "FINISH"
    assert (
        detail["ProcedureTask"]["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Status"]
        == "SUCCESS"
    )
    server.stop()


def test_aborted_waiting_task_never_runs(tmp_path: Path, long_clip: Path) -> None:
    server = Server(tmp_path / "data", free_port(), ["--workers", "0"])
    server.start()
    vod = Vod(server, server.default_key())
    file_id = server.import_media(long_clip)
    aborted, kept = submit(vod, file_id, 20000, 2)
    assert vod("DescribeTaskDetail", {"TaskId": aborted})["Status"] == "WAITING"
    vod("ManageTask", {"TaskId": aborted, "OperationType": "Abort"})
    assert vod("DescribeTaskDetail", {"TaskId": aborted})["Status"] == "ABORTED"
    assert (
        error_code(lambda: vod("ManageTask", {"TaskId": aborted, "OperationType": "Abort"}))
        == "FailedOperation"
    )
    assert (
        error_code(lambda: vod("ManageTask", {"TaskId": aborted, "OperationType": "Pause"}))
        == "InvalidParameterValue.InvalidOperationType"
    )
    server.stop()
    server.extra = ["--workers", "2"]
    server.start()
    wait_for_task(vod, kept)
    detail = vod("DescribeTaskDetail", {"TaskId": aborted})
    assert detail["Status"] == "ABORTED" and detail["BeginProcessTime"] == "0001-01-01T00:00:00Z"
    (result,) = detail["ProcedureTask"]["MediaProcessResultSet"]
    assert result["AnimatedGraphicTask"]["Output"] is None
    outputs = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0][
        "AnimatedGraphicsInfo"
    ]["AnimatedGraphicsSet"]
    assert len(outputs) == 1
    server.stop()
