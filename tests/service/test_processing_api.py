"""ProcessMedia, task query and media through the official SDK against a real server."""

from __future__ import annotations

import hashlib
import secrets
import threading
from pathlib import Path

import httpx
import pytest
from service_harness import Server, Vod, error_code, wait_for_task

from media_factory import decode_animation, make_clip


def test_process_media_end_to_end(server: Server, vod: Vod, file_id: str) -> None:
    webp = vod("CreateAnimatedGraphicsTemplate", {"Fps": 10, "Width": 160, "Format": "webp"})
    task_id = vod(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": 20000, "StartTimeOffset": 0.5, "EndTimeOffset": 1.5},
                    {"Definition": webp["Definition"], "StartTimeOffset": -1.0},
                ]
            },
            "SessionContext": "ctx-échoed",
        },
    )["TaskId"]
    assert task_id.startswith("1500000001-procedurev2-") and len(task_id.split("-")[-1]) == 32
    detail = wait_for_task(vod, task_id)
    assert detail["TaskType"] == "Procedure" and detail["Status"] == "FINISH"
    assert detail["CreateTime"] and detail["BeginProcessTime"] and detail["FinishTime"]
    procedure = detail["ProcedureTask"]
    assert procedure["Status"] == "FINISH" and procedure["FileId"] == file_id
    assert procedure["SessionContext"] == "ctx-échoed"
    assert procedure["MetaData"]["Width"] == 320 and procedure["MetaData"]["Duration"] > 1.9
    gif, webp_result = (r["AnimatedGraphicTask"] for r in procedure["MediaProcessResultSet"])
    for result in (gif, webp_result):
        assert (result["Status"], result["ErrCodeExt"], result["ErrCode"]) == ("SUCCESS", "", 0)
        assert result["Progress"] == 100
    assert gif["Input"] == {"Definition": 20000, "StartTimeOffset": 0.5, "EndTimeOffset": 1.5}
    out = gif["Output"]
    assert (out["Container"], out["Width"], out["Height"]) == ("gif", 320, 180)
    assert (out["StartTimeOffset"], out["EndTimeOffset"]) == (0.5, 1.5)
    assert webp_result["Output"]["Width"] == 160 and webp_result["Output"]["Container"] == "webp"
    assert webp_result["Output"]["StartTimeOffset"] == pytest.approx(1.0, abs=0.05)
    for item, content_type in ((out, "image/gif"), (webp_result["Output"], "image/webp")):
        response = httpx.get(item["Url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert len(response.content) == item["Size"]
        assert hashlib.md5(response.content).hexdigest() == item["Md5"]
        assert item["Bitrate"] > 0
    frames = decode_animation_bytes(httpx.get(out["Url"]).content, server.data_dir.parent)
    assert len(frames.frames) == 2  # 1 s at the preset's 2 fps
    info = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0]
    urls = {item["Url"] for item in info["AnimatedGraphicsInfo"]["AnimatedGraphicsSet"]}
    assert {out["Url"], webp_result["Output"]["Url"]} <= urls


def decode_animation_bytes(data: bytes, folder: Path):  # type: ignore[no-untyped-def]
    path = folder / f"{secrets.token_hex(4)}.gif"
    path.write_bytes(data)
    return decode_animation(path)


def test_bad_subtasks_fail_alone(vod: Vod, file_id: str) -> None:
    task_id = vod(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": 987654},
                    {"Definition": 20000, "StartTimeOffset": 1.5, "EndTimeOffset": 1.0},
                    {"Definition": 20000, "EndTimeOffset": 1.0},
                ]
            },
        },
    )["TaskId"]
    results = [
        r["AnimatedGraphicTask"]
        for r in wait_for_task(vod, task_id)["ProcedureTask"]["MediaProcessResultSet"]
    ]
    assert [(r["Status"], r["ErrCodeExt"], r["ErrCode"]) for r in results] == [
        ("FAIL", "InvalidInput.DefinitionNotExist", 40000),
        ("FAIL", "InvalidInput.InvalidTimeOffset", 40000),
        ("SUCCESS", "", 0),
    ]
    assert results[0]["Output"] is None and results[0]["Message"]


def test_broken_media_fails_with_source_error(server: Server, vod: Vod, tmp_path: Path) -> None:
    # A clip that imports (probes) fine but whose stored copy is then damaged.
    clip = make_clip(tmp_path / "damaged.mp4", seconds=1.0, fps=10, width=160, height=96)
    file_id = server.import_media(clip)
    info = vod("DescribeMediaInfos", {"FileIds": [file_id], "Filters": ["basicInfo"]})
    storage_path = info["MediaInfoSet"][0]["BasicInfo"]["StoragePath"]
    stored = server.data_dir / "files" / storage_path.lstrip("/")
    stored.write_bytes(b"\0" * 100)
    task_id = vod(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
        },
    )["TaskId"]
    (result,) = wait_for_task(vod, task_id)["ProcedureTask"]["MediaProcessResultSet"]
    assert result["AnimatedGraphicTask"]["ErrCodeExt"] == "SourceFileError.ContentMalformed"
    assert result["AnimatedGraphicTask"]["ErrCode"] == 60000


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]}},
            "InvalidParameterValue.FileId",
        ),
        (
            {
                "FileId": "123",
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
            },
            "InvalidParameterValue.FileId",
        ),
        ({"FileId": "{file_id}"}, "InvalidParameterValue"),
        (
            {"FileId": "{file_id}", "MediaProcessTask": {"AnimatedGraphicTaskSet": []}},
            "InvalidParameterValue",
        ),
        (
            {"FileId": "{file_id}", "MediaProcessTask": {"AnimatedGraphicTaskSet": [{}]}},
            "MissingParameter",
        ),
        (
            {"FileId": "{file_id}", "MediaProcessTask": {"TranscodeTaskSet": [{"Definition": 10}]}},
            "InvalidParameter",
        ),
        (
            {
                "FileId": "{file_id}",
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
                "TasksPriority": 11,
            },
            "InvalidParameterValue",
        ),
        (
            {
                "FileId": "{file_id}",
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
                "SessionId": "s" * 51,
            },
            "InvalidParameterValue.SessionIdTooLong",
        ),
        (
            {
                "FileId": "{file_id}",
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
                "SessionContext": "c" * 1001,
            },
            "InvalidParameterValue.SessionContextTooLong",
        ),
        (
            {
                "FileId": "{file_id}",
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
                "TasksNotifyMode": "Sometimes",
            },
            "InvalidParameterValue",
        ),
    ],
)
def test_process_media_request_errors(vod: Vod, file_id: str, params: dict, code: str) -> None:  # type: ignore[type-arg]
    if params.get("FileId") == "{file_id}":
        params = {**params, "FileId": file_id}
    assert error_code(lambda: vod("ProcessMedia", params)) == code


def test_session_id_dedupe_under_concurrency(vod: Vod, file_id: str) -> None:
    session_id = f"dedupe-{secrets.token_hex(6)}"
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit() -> None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )

        try:
            task = vod(
                "ProcessMedia",
                {
                    "FileId": file_id,
                    "SessionId": session_id,
                    "MediaProcessTask": {
                        "AnimatedGraphicTaskSet": [{"Definition": 20000, "EndTimeOffset": 0.5}]
                    },
                },
            )["TaskId"]
            outcome = f"task:{task}"
        except TencentCloudSDKException as exc:
            outcome = str(exc.code)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tasks = [o for o in outcomes if o.startswith("task:")]
    assert len(tasks) == 1, outcomes
    assert sorted(set(outcomes) - set(tasks)) == ["InvalidParameterValue.SessionId"]
    found = vod("DescribeTasks", {"FileId": file_id, "Limit": 100})["TaskSet"]
    assert sum(1 for t in found if t["SessionId"] == session_id) == 1


def test_describe_tasks_filters_and_scroll(vod: Vod, server: Server, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "list.mp4", seconds=1.0, fps=10, width=160, height=96)
    file_id = server.import_media(clip)
    ids = [
        vod(
            "ProcessMedia",
            {
                "FileId": file_id,
                "SessionContext": f"n{i}",
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
            },
        )["TaskId"]
        for i in range(5)
    ]
    for task_id in ids:
        wait_for_task(vod, task_id)
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = vod(
            "DescribeTasks",
            {
                "FileId": file_id,
                "Limit": 2,
                "ScrollToken": token,
                "Sort": {"Field": "CreateTime", "Order": "Asc"},
            },
        )
        assert len(page["TaskSet"]) <= 2
        seen += [t["TaskId"] for t in page["TaskSet"]]
        token = page["ScrollToken"]
        if not token:
            break
    assert seen == ids
    finished = vod("DescribeTasks", {"FileId": file_id, "Status": "FINISH", "Limit": 100})[
        "TaskSet"
    ]
    assert {t["TaskId"] for t in finished} == set(ids)
    assert all(t["TaskType"] == "Procedure" and t["FinishTime"] for t in finished)
    assert vod("DescribeTasks", {"FileId": file_id, "Status": "WAITING"})["TaskSet"] == []
    newest_first = vod("DescribeTasks", {"FileId": file_id, "Limit": 5})["TaskSet"]
    assert [t["TaskId"] for t in newest_first] == ids[::-1]
    future = vod(
        "DescribeTasks", {"FileId": file_id, "CreateTime": {"After": "2999-01-01T00:00:00Z"}}
    )
    assert future["TaskSet"] == [] and future["ScrollToken"] == ""
    assert (
        error_code(lambda: vod("DescribeTasks", {"Status": "DONE"}))
        == "InvalidParameterValue.Status"
    )
    assert (
        error_code(lambda: vod("DescribeTasks", {"ScrollToken": "garbage!"}))
        == "InvalidParameterValue"
    )


def test_sub_apps_are_isolated(server: Server, vod: Vod, file_id: str) -> None:
    other = Vod(server, server.create_key(1_800_000_000 + secrets.randbelow(10**8)))
    task_id = vod(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
        },
    )["TaskId"]
    assert (
        error_code(lambda: other("DescribeTaskDetail", {"TaskId": task_id})) == "ResourceNotFound"
    )
    assert (
        error_code(lambda: other("ManageTask", {"TaskId": task_id, "OperationType": "Abort"}))
        == "ResourceNotFound"
    )
    assert all(t["TaskId"] != task_id for t in other("DescribeTasks", {"Limit": 100})["TaskSet"])
    hidden = other("DescribeMediaInfos", {"FileIds": [file_id]})
    assert (hidden["MediaInfoSet"], hidden["NotExistFileIdSet"]) == ([], [file_id])
    assert (
        error_code(
            lambda: other(
                "ProcessMedia",
                {
                    "FileId": file_id,
                    "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
                },
            )
        )
        == "InvalidParameterValue.FileId"
    )
    assert error_code(lambda: other("DeleteMedia", {"FileId": file_id})) == "ResourceNotFound"
    wait_for_task(vod, task_id)


def test_media_infos_and_delete(server: Server, vod: Vod, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "del.mp4", seconds=1.0, fps=10, width=160, height=96, audio=True)
    file_id = server.import_media(clip)
    info = vod(
        "DescribeMediaInfos", {"FileIds": [file_id, "404"], "Filters": ["basicInfo", "metaData"]}
    )
    assert info["NotExistFileIdSet"] == ["404"]
    (media,) = info["MediaInfoSet"]
    assert media["AnimatedGraphicsInfo"] is None
    assert media["BasicInfo"]["Name"] == "del" and media["BasicInfo"]["Type"] == "mp4"
    assert media["BasicInfo"]["Category"] == "Video"
    assert media["MetaData"]["AudioStreamSet"][0]["Codec"] == "aac"
    assert httpx.get(media["BasicInfo"]["MediaUrl"]).content == clip.read_bytes()
    task_id = vod(
        "ProcessMedia",
        {
            "FileId": file_id,
            "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
        },
    )["TaskId"]
    output_url = wait_for_task(vod, task_id)["ProcedureTask"]["MediaProcessResultSet"][0][
        "AnimatedGraphicTask"
    ]["Output"]["Url"]
    assert httpx.get(output_url).status_code == 200
    vod("DeleteMedia", {"FileId": file_id})
    assert httpx.get(output_url).status_code == 404
    assert httpx.get(media["BasicInfo"]["MediaUrl"]).status_code == 404
    assert vod("DescribeMediaInfos", {"FileIds": [file_id]})["NotExistFileIdSet"] == [file_id]
    for bad, code in (
        ({"FileIds": []}, "InvalidParameterValue.FileIdsEmpty"),
        ({"FileIds": [str(i) for i in range(21)]}, "InvalidParameterValue.FileIdsOverLimit"),
        ({"FileIds": ["1"], "Filters": ["nope"]}, "InvalidParameterValue"),
    ):
        assert error_code(lambda bad=bad: vod("DescribeMediaInfos", bad)) == code


def test_search_media(server: Server, tmp_path: Path) -> None:
    sub_app = 1_900_000_000 + secrets.randbelow(10**8)
    vod = Vod(server, server.create_key(sub_app))
    ids = {}
    for name in ("alpha one", "alpha two", "beta_%"):
        clip = make_clip(tmp_path / f"{name}.mp4", seconds=0.5, fps=10, width=64, height=48)
        ids[name] = server.import_media(clip, sub_app_id=sub_app)
    everything = vod("SearchMedia", {"Limit": 100})
    assert everything["TotalCount"] == 3
    assert [m["BasicInfo"]["Name"] for m in everything["MediaInfoSet"]] == [
        "beta_%",
        "alpha two",
        "alpha one",
    ]
    assert vod("SearchMedia", {"Names": ["ALPHA"]})["TotalCount"] == 2
    assert vod("SearchMedia", {"Names": ["_%"]})["TotalCount"] == 1  # wildcards are literal
    prefixed = vod("SearchMedia", {"NamePrefixes": ["alpha t"]})["MediaInfoSet"]
    assert [m["FileId"] for m in prefixed] == [ids["alpha two"]]
    page = vod(
        "SearchMedia", {"Offset": 1, "Limit": 1, "Sort": {"Field": "CreateTime", "Order": "Asc"}}
    )
    assert page["TotalCount"] == 3 and page["MediaInfoSet"][0]["FileId"] == ids["alpha two"]
    only = vod("SearchMedia", {"FileIds": [ids["beta_%"]], "Filters": ["metaData"]})
    assert only["MediaInfoSet"][0]["BasicInfo"] is None
    assert only["MediaInfoSet"][0]["MetaData"]["Width"] == 64
    assert vod("SearchMedia", {"Categories": ["Audio"]})["TotalCount"] == 0
    future = vod("SearchMedia", {"CreateTime": {"After": "2999-01-01T00:00:00Z"}})
    assert future["TotalCount"] == 0
    assert (
        error_code(lambda: vod("SearchMedia", {"Offset": 4999, "Limit": 2}))
        == "InvalidParameterValue.Offset"
    )
    # Another sub-application's media is never found.
    other = Vod(server, server.default_key())
    assert other("SearchMedia", {"FileIds": [ids["alpha one"]]})["TotalCount"] == 0
