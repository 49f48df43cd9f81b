"""`anigraph serve --workers 0` (API only) with separate `anigraph worker` processes on the same
data: work is found by claiming rows; a worker killed with -9 mid-task costs one lease, and a
second worker finishes every task exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_harness import PROXY_VARIABLES, Server, Vod, free_port, wait_for_task

from media_factory import make_clip


def start_worker(data_dir: Path, log: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anigraph",
            "worker",
            "--data-dir",
            str(data_dir),
            "--workers",
            "1",
            "--lease-seconds",
            "2",
        ],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("wclip") / "w.mp4", seconds=10.0, fps=25, width=480, height=270
    )


def test_api_only_server_and_worker_processes(tmp_path: Path, clip: Path) -> None:
    server = Server(tmp_path / "data", free_port(), ["--workers", "0", "--lease-seconds", "2"])
    server.start()
    vod = Vod(server, server.default_key())
    file_id = server.import_media(clip)
    template = vod("CreateAnimatedGraphicsTemplate", {"Fps": 25, "Width": 480})["Definition"]
    task_ids = [
        vod(
            "ProcessMedia",
            {
                "FileId": file_id,
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": template}]},
            },
        )["TaskId"]
        for _ in range(3)
    ]
    time.sleep(1.5)
    # API only: nothing runs until a worker exists.
    assert all(vod("DescribeTaskDetail", {"TaskId": t})["Status"] == "WAITING" for t in task_ids)

    first = start_worker(server.data_dir, tmp_path / "worker1.log")
    deadline = time.monotonic() + 60
    while not vod("DescribeTasks", {"Status": "PROCESSING"})["TaskSet"]:
        assert time.monotonic() < deadline, "no task started"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(30)

    second = start_worker(server.data_dir, tmp_path / "worker2.log")
    try:
        for task_id in task_ids:
            (result,) = wait_for_task(vod, task_id, timeout=180)["ProcedureTask"][
                "MediaProcessResultSet"
            ]
            assert result["AnimatedGraphicTask"]["Status"] == "SUCCESS"
        outputs = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0][
            "AnimatedGraphicsInfo"
        ]["AnimatedGraphicsSet"]
        assert len(outputs) == len(task_ids)
        second.send_signal(signal.SIGTERM)
        assert second.wait(120) == 0
    finally:
        if second.poll() is None:
            second.kill()
        server.stop()
