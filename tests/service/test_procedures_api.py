"""Task-flow templates and ProcessMediaByProcedure through the official SDK (spec 2.2, 2.3).

Every test that counts or lists flows uses a sub-application of its own (``fresh``) so that the
shared server's other tests cannot change what it sees.
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_harness import SIGN_MODES, Server, Vod, error_code, wait_for_task

GIF_ITEM = {"Definition": 20000, "StartTimeOffset": 0.0, "EndTimeOffset": 1.0}
UNUSED_SETS = (
    "TranscodeTaskSet",
    "SnapshotByTimeOffsetTaskSet",
    "SampleSnapshotTaskSet",
    "ImageSpriteTaskSet",
    "CoverBySnapshotTaskSet",
    "AdaptiveDynamicStreamingTaskSet",
)


def new_sub_app_id() -> int:
    return 1_900_000_000 + secrets.randbelow(10**8)


def flow_name() -> str:
    return f"flow-{secrets.token_hex(4)}"


@pytest.fixture
def fresh(server: Server) -> Vod:
    """A key of a sub-application of its own, so flow counts start from zero."""
    return Vod(server, server.create_key(new_sub_app_id()))


def flow(*items: dict[str, Any]) -> dict[str, Any]:
    return {"AnimatedGraphicTaskSet": list(items or [GIF_ITEM])}


def describe_one(vod: Vod, name: str) -> dict[str, Any]:
    found = vod("DescribeProcedureTemplates", {"Names": [name]})
    assert found["TotalCount"] == 1, found
    (template,) = found["ProcedureTemplateSet"]
    return template


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------
# Create / Describe / Reset / Delete


def test_create_describe_reset_delete(fresh: Vod) -> None:
    name = "预览-flow"  # Chinese is allowed in names
    fresh(
        "CreateProcedureTemplate",
        {
            "Name": name,
            "Comment": "two animations",
            "MediaProcessTask": flow(
                {"Definition": 20000, "StartTimeOffset": 0.5, "EndTimeOffset": 1.5},
                {"Definition": 20001},
            ),
        },
    )
    template = describe_one(fresh, name)
    assert (template["Name"], template["Type"], template["Comment"]) == (
        name,
        "Custom",
        "two animations",
    )
    task = template["MediaProcessTask"]
    assert task["AnimatedGraphicTaskSet"] == [
        {"Definition": 20000, "StartTimeOffset": 0.5, "EndTimeOffset": 1.5},
        {"Definition": 20001, "StartTimeOffset": 0.0, "EndTimeOffset": 0.0},
    ]
    assert all(task[name_] == [] for name_ in UNUSED_SETS), task
    for member in (
        "AiContentReviewTask",
        "AiAnalysisTask",
        "AiRecognitionTask",
        "MiniProgramPublishTask",
        "ReviewAudioVideoTask",
    ):
        assert template[member] is None, member
    assert template["AiRecognitionTaskSet"] == []
    assert template["ImportMediaKnowledgeTaskSet"] == []
    created = parse_time(template["CreateTime"])
    assert parse_time(template["UpdateTime"]) == created
    assert abs((datetime.now(created.tzinfo) - created).total_seconds()) < 120

    fresh(
        "ResetProcedureTemplate",
        {"Name": name, "Comment": "one", "MediaProcessTask": flow({"Definition": 20001})},
    )
    after = describe_one(fresh, name)
    assert after["Comment"] == "one"
    assert after["MediaProcessTask"]["AnimatedGraphicTaskSet"] == [
        {"Definition": 20001, "StartTimeOffset": 0.0, "EndTimeOffset": 0.0}
    ]
    assert after["CreateTime"] == template["CreateTime"]
    assert parse_time(after["UpdateTime"]) >= created

    # Reset is a full replacement: a Comment left out is cleared.
    fresh("ResetProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
    assert describe_one(fresh, name)["Comment"] == ""

    fresh("DeleteProcedureTemplate", {"Name": name})
    gone = fresh("DescribeProcedureTemplates", {"Names": [name]})
    assert (gone["TotalCount"], gone["ProcedureTemplateSet"]) == (0, [])
    assert (
        error_code(lambda: fresh("DeleteProcedureTemplate", {"Name": name}))
        == "InvalidParameter.ProcedureNameNotExist"
    )
    assert (
        error_code(
            lambda: fresh("ResetProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
        )
        == "InvalidParameter.ProcedureNameNotExist"
    )
    # The name is free again once deleted.
    fresh("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
    assert describe_one(fresh, name)["Comment"] == ""


def test_describe_wire_shape(server: Server) -> None:
    """The raw JSON, not the SDK's view of it: exact members, JSON types, nulls and ``[]``."""
    import json

    from service_harness import tc3_post

    key = server.create_key(new_sub_app_id())
    name = flow_name()
    Vod(server, key)("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
    response = tc3_post(server, key, "DescribeProcedureTemplates", b"{}")
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.content)["Response"]
    assert set(body) == {"TotalCount", "ProcedureTemplateSet", "RequestId"}
    (template,) = body["ProcedureTemplateSet"]
    assert set(template) == {
        "Name",
        "Type",
        "Comment",
        "MediaProcessTask",
        "AiContentReviewTask",
        "AiAnalysisTask",
        "AiRecognitionTaskSet",
        "AiRecognitionTask",
        "MiniProgramPublishTask",
        "ReviewAudioVideoTask",
        "ImportMediaKnowledgeTaskSet",
        "CreateTime",
        "UpdateTime",
    }
    assert template["MediaProcessTask"] == {
        **{set_name: [] for set_name in UNUSED_SETS},
        "AnimatedGraphicTaskSet": [GIF_ITEM],
    }
    item = template["MediaProcessTask"]["AnimatedGraphicTaskSet"][0]
    assert isinstance(item["Definition"], int) and isinstance(item["StartTimeOffset"], float)
    started = tc3_post(
        server,
        key,
        "ProcessMediaByProcedure",
        json.dumps({"ProcedureName": name, "FileId": "404"}).encode(),
    )
    error = json.loads(started.content)["Response"]
    assert error["Error"]["Code"] == "InvalidParameterValue.FileId" and error["RequestId"]


def test_create_answers_request_id_only(fresh: Vod) -> None:
    created = fresh("CreateProcedureTemplate", {"Name": flow_name(), "MediaProcessTask": flow()})
    assert set(created) == {"RequestId"} and created["RequestId"]


def test_existing_name_is_refused(fresh: Vod) -> None:
    name = flow_name()
    fresh("CreateProcedureTemplate", {"Name": name, "Comment": "first", "MediaProcessTask": flow()})
    assert (
        error_code(
            lambda: fresh("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
        )
        == "InvalidParameter.ExistedProcedureName"
    )
    assert describe_one(fresh, name)["Comment"] == "first"


def test_empty_other_tasks_are_accepted(fresh: Vod) -> None:
    name = flow_name()
    fresh(
        "CreateProcedureTemplate",
        {
            "Name": name,
            "MediaProcessTask": {**flow(), "TranscodeTaskSet": [], "ImageSpriteTaskSet": []},
            "AiContentReviewTask": {},
            "AiAnalysisTask": {},
            "AiRecognitionTask": {},
            "AiRecognitionTaskSet": [],
            "ReviewAudioVideoTask": {},
            "ImportMediaKnowledgeTaskSet": [],
        },
    )
    template = describe_one(fresh, name)
    assert template["AiAnalysisTask"] is None and template["ReviewAudioVideoTask"] is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"MediaProcessTask": flow()}, "MissingParameter"),
        ({"Name": "", "MediaProcessTask": flow()}, "InvalidParameter"),
        ({"Name": "n" * 21, "MediaProcessTask": flow()}, "InvalidParameter"),
        ({"Name": "流" * 21, "MediaProcessTask": flow()}, "InvalidParameter"),
        ({"Name": "{name}", "Comment": "c" * 257, "MediaProcessTask": flow()}, "InvalidParameter"),
        ({"Name": "{name}"}, "InvalidParameterValue"),
        ({"Name": "{name}", "MediaProcessTask": {}}, "InvalidParameterValue"),
        (
            {"Name": "{name}", "MediaProcessTask": {"AnimatedGraphicTaskSet": []}},
            "InvalidParameterValue",
        ),
        (
            {"Name": "{name}", "MediaProcessTask": {"AnimatedGraphicTaskSet": [{}]}},
            "MissingParameter",
        ),
        (
            {
                "Name": "{name}",
                "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": -1}]},
            },
            "InvalidParameterValue.Definition",
        ),
        (
            {
                "Name": "{name}",
                "MediaProcessTask": {
                    **flow(),
                    "TranscodeTaskSet": [{"Definition": 100010}],
                },
            },
            "InvalidParameter",
        ),
        (
            {"Name": "{name}", "MediaProcessTask": flow(), "AiAnalysisTask": {"Definition": 10}},
            "InvalidParameter",
        ),
        (
            {
                "Name": "{name}",
                "MediaProcessTask": flow(),
                "AiContentReviewTask": {"Definition": 10},
            },
            "InvalidParameter",
        ),
        (
            {
                "Name": "{name}",
                "MediaProcessTask": flow(),
                "AiRecognitionTaskSet": [{"Definition": 10}],
            },
            "InvalidParameter",
        ),
        (
            {
                "Name": "{name}",
                "MediaProcessTask": flow(),
                "ReviewAudioVideoTask": {"Definition": 10},
            },
            "InvalidParameter",
        ),
    ],
)
def test_create_validation(fresh: Vod, params: dict[str, Any], code: str) -> None:
    if params.get("Name") == "{name}":
        params = {**params, "Name": flow_name()}
    assert error_code(lambda: fresh("CreateProcedureTemplate", params)) == code
    assert fresh("DescribeProcedureTemplates", {})["TotalCount"] == 0


def test_twenty_character_names_are_allowed(fresh: Vod) -> None:
    for name in ("n" * 20, "流" * 20):
        fresh("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
        assert describe_one(fresh, name)["Name"] == name


def test_reset_validation(fresh: Vod) -> None:
    name = flow_name()
    fresh("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
    for bad, code in (
        ({"MediaProcessTask": flow()}, "MissingParameter"),
        ({"Name": name}, "InvalidParameterValue"),
        (
            {"Name": name, "MediaProcessTask": flow(), "AiAnalysisTask": {"Definition": 1}},
            "InvalidParameter",
        ),
        (
            {"Name": name, "MediaProcessTask": {"SampleSnapshotTaskSet": [{"Definition": 1}]}},
            "InvalidParameter",
        ),
    ):
        assert error_code(lambda bad=bad: fresh("ResetProcedureTemplate", bad)) == code
    # A refused reset leaves the flow as it was.
    assert describe_one(fresh, name)["MediaProcessTask"]["AnimatedGraphicTaskSet"] == [GIF_ITEM]
    assert error_code(lambda: fresh("DeleteProcedureTemplate", {})) == "MissingParameter"


def test_at_most_50_flows_per_sub_app(server: Server, fresh: Vod) -> None:
    names = [f"f{i:02d}" for i in range(50)]
    for name in names:
        fresh("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
    assert (
        error_code(
            lambda: fresh("CreateProcedureTemplate", {"Name": "f50", "MediaProcessTask": flow()})
        )
        == "LimitExceeded"
    )
    # An existing name is reported as such even when the sub-app is full.
    assert (
        error_code(
            lambda: fresh("CreateProcedureTemplate", {"Name": "f00", "MediaProcessTask": flow()})
        )
        == "InvalidParameter.ExistedProcedureName"
    )
    assert fresh("DescribeProcedureTemplates", {"Limit": 100})["TotalCount"] == 50
    # The limit is per sub-application, and deleting one makes room again.
    other = Vod(server, server.create_key(new_sub_app_id()))
    other("CreateProcedureTemplate", {"Name": "f50", "MediaProcessTask": flow()})
    fresh("DeleteProcedureTemplate", {"Name": "f07"})
    fresh("CreateProcedureTemplate", {"Name": "f50", "MediaProcessTask": flow()})
    assert fresh("DescribeProcedureTemplates", {"Limit": 1})["TotalCount"] == 50


def test_describe_paging_filters_and_sort(fresh: Vod) -> None:
    names = [f"page-{i:02d}" for i in range(12)]
    for name in names:
        fresh("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})

    first = fresh("DescribeProcedureTemplates", {})
    assert first["TotalCount"] == 12
    assert [t["Name"] for t in first["ProcedureTemplateSet"]] == names[:10]  # default Limit 10
    rest = fresh("DescribeProcedureTemplates", {"Offset": 10})
    assert (rest["TotalCount"], [t["Name"] for t in rest["ProcedureTemplateSet"]]) == (
        12,
        names[10:],
    )
    middle = fresh("DescribeProcedureTemplates", {"Offset": 3, "Limit": 4})
    assert [t["Name"] for t in middle["ProcedureTemplateSet"]] == names[3:7]
    beyond = fresh("DescribeProcedureTemplates", {"Offset": 50})
    assert (beyond["TotalCount"], beyond["ProcedureTemplateSet"]) == (12, [])
    everything = fresh("DescribeProcedureTemplates", {"Limit": 100})
    assert [t["Name"] for t in everything["ProcedureTemplateSet"]] == names

    newest = fresh(
        "DescribeProcedureTemplates",
        {"Limit": 3, "SortBy": [{"Field": "CreateTime", "Order": "Desc"}]},
    )
    assert [t["Name"] for t in newest["ProcedureTemplateSet"]] == names[::-1][:3]
    # Tencent's own example spells the field create_time, in lower case.
    same = fresh(
        "DescribeProcedureTemplates",
        {"Limit": 3, "SortBy": [{"Field": "create_time", "Order": "desc"}]},
    )
    assert same["ProcedureTemplateSet"] == newest["ProcedureTemplateSet"]
    oldest = fresh("DescribeProcedureTemplates", {"Limit": 2, "SortBy": [{"Field": "CreateTime"}]})
    assert [t["Name"] for t in oldest["ProcedureTemplateSet"]] == names[:2]

    picked = fresh("DescribeProcedureTemplates", {"Names": [names[5], names[1], "no-such-flow"]})
    assert picked["TotalCount"] == 2
    assert [t["Name"] for t in picked["ProcedureTemplateSet"]] == [names[1], names[5]]
    assert fresh("DescribeProcedureTemplates", {"Type": "Custom"})["TotalCount"] == 12
    presets = fresh("DescribeProcedureTemplates", {"Type": "Preset"})
    assert (presets["TotalCount"], presets["ProcedureTemplateSet"]) == (0, [])

    for bad, code in (
        ({"Limit": 101}, "InvalidParameterValue.Limit"),
        ({"Limit": 0}, "InvalidParameterValue.Limit"),
        ({"Offset": -1}, "InvalidParameterValue.Offset"),
        ({"Type": "Other"}, "InvalidParameterValue.Type"),
        ({"Names": [f"n{i}" for i in range(101)]}, "InvalidParameterValue.Names"),
        ({"SortBy": [{"Field": "Name", "Order": "Asc"}]}, "InvalidParameterValue.Sort"),
        ({"SortBy": [{"Field": "CreateTime", "Order": "Up"}]}, "InvalidParameterValue.Sort"),
    ):
        assert error_code(lambda bad=bad: fresh("DescribeProcedureTemplates", bad)) == code


@pytest.mark.parametrize(("sign_method", "req_method"), SIGN_MODES[1:4])
def test_flattened_requests(server: Server, sign_method: str, req_method: str) -> None:
    """GET and legacy-signed requests carry the nested task set in flattened form (spec 1.5)."""
    key = server.create_key(new_sub_app_id())
    vod = Vod(server, key, sign_method, req_method)
    name = flow_name()
    items = [
        {"Definition": 20000, "StartTimeOffset": 1.5, "EndTimeOffset": -0.25},
        {"Definition": 20001, "StartTimeOffset": 0.0, "EndTimeOffset": 2.0},
    ]
    vod(
        "CreateProcedureTemplate",
        {"Name": name, "Comment": "flat", "MediaProcessTask": {"AnimatedGraphicTaskSet": items}},
    )
    template = describe_one(vod, name)
    assert template["MediaProcessTask"]["AnimatedGraphicTaskSet"] == items
    assert template["Comment"] == "flat"


# ---------------------------------------------------------------------------------------------
# Sub-application isolation


def test_flows_are_private_to_their_sub_app(server: Server, fresh: Vod, file_id: str) -> None:
    other_id = new_sub_app_id()
    other = Vod(server, server.create_key(other_id))
    name = flow_name()
    fresh("CreateProcedureTemplate", {"Name": name, "Comment": "mine", "MediaProcessTask": flow()})

    assert other("DescribeProcedureTemplates", {})["TotalCount"] == 0
    assert other("DescribeProcedureTemplates", {"Names": [name]})["TotalCount"] == 0
    assert (
        error_code(
            lambda: other("ResetProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
        )
        == "InvalidParameter.ProcedureNameNotExist"
    )
    assert (
        error_code(lambda: other("DeleteProcedureTemplate", {"Name": name}))
        == "InvalidParameter.ProcedureNameNotExist"
    )
    # The same name is free in another sub-application, and the two flows stay apart.
    other(
        "CreateProcedureTemplate", {"Name": name, "Comment": "theirs", "MediaProcessTask": flow()}
    )
    assert describe_one(other, name)["Comment"] == "theirs"
    assert describe_one(fresh, name)["Comment"] == "mine"
    other("DeleteProcedureTemplate", {"Name": name})
    assert describe_one(fresh, name)["Comment"] == "mine"

    # A flow of one sub-app cannot be run by another; media of one cannot be used by another.
    assert (
        error_code(
            lambda: other("ProcessMediaByProcedure", {"ProcedureName": name, "FileId": file_id})
        )
        == "InvalidParameterValue.ProcedureName"
    )
    other("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
    assert (
        error_code(
            lambda: other("ProcessMediaByProcedure", {"ProcedureName": name, "FileId": file_id})
        )
        == "InvalidParameterValue.FileId"
    )
    # A key cannot name another sub-application's SubAppId to reach its flows.
    assert (
        error_code(lambda: fresh("DescribeProcedureTemplates", {"SubAppId": other_id}))
        == "UnauthorizedOperation"
    )


# ---------------------------------------------------------------------------------------------
# ProcessMediaByProcedure


def test_flow_runs_end_to_end(vod: Vod, file_id: str) -> None:
    webp = vod("CreateAnimatedGraphicsTemplate", {"Fps": 8, "Width": 160, "Format": "webp"})
    name = flow_name()
    items = [
        {"Definition": 20000, "StartTimeOffset": 0.5, "EndTimeOffset": 1.5},
        {"Definition": webp["Definition"], "StartTimeOffset": 0.0, "EndTimeOffset": 1.0},
        {"Definition": 20001, "StartTimeOffset": -1.0, "EndTimeOffset": 0.0},
    ]
    vod("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow(*items)})
    started = vod(
        "ProcessMediaByProcedure",
        {
            "ProcedureName": name,
            "FileId": file_id,
            "TasksPriority": 3,
            "TasksNotifyMode": "None",
            "SessionContext": "ctx-流程",
            "SessionId": f"e2e-{secrets.token_hex(6)}",
            "ExtInfo": "ignored",
        },
    )
    task_id = started["TaskId"]
    assert task_id.startswith("1500000001-procedurev2-")
    assert started["ReviewAudioVideoTaskId"] == ""
    assert started["ImportMediaKnowledgeTaskIdSet"] == []

    # Changing the flow after the start does not change the task already started.
    vod("ResetProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})

    detail = wait_for_task(vod, task_id)
    assert (detail["TaskType"], detail["Status"]) == ("Procedure", "FINISH")
    procedure = detail["ProcedureTask"]
    assert (procedure["Status"], procedure["FileId"]) == ("FINISH", file_id)
    assert procedure["SessionContext"] == "ctx-流程"
    assert procedure["TasksPriority"] == 3 and procedure["TasksNotifyMode"] == "None"
    results = procedure["MediaProcessResultSet"]
    assert [r["Type"] for r in results] == ["AnimatedGraphics"] * 3
    containers = []
    for result, item in zip(results, items, strict=True):
        graphic = result["AnimatedGraphicTask"]
        assert (graphic["Status"], graphic["ErrCodeExt"], graphic["ErrCode"]) == (
            "SUCCESS",
            "",
            0,
        ), graphic
        assert graphic["Input"] == item
        output = graphic["Output"]
        assert output["Definition"] == item["Definition"]
        response = httpx.get(output["Url"])
        assert response.status_code == 200 and len(response.content) == output["Size"]
        containers.append(output["Container"])
    assert containers == ["gif", "webp", "webp"]
    assert results[1]["AnimatedGraphicTask"]["Output"]["Width"] == 160
    listed = vod("DescribeTasks", {"FileId": file_id, "Limit": 100})["TaskSet"]
    assert any(t["TaskId"] == task_id and t["SessionContext"] == "ctx-流程" for t in listed)


def test_unknown_definition_fails_its_subtask_only(vod: Vod, file_id: str) -> None:
    name = flow_name()
    vod(
        "CreateProcedureTemplate",
        {"Name": name, "MediaProcessTask": flow({"Definition": 987654}, GIF_ITEM)},
    )
    task_id = vod("ProcessMediaByProcedure", {"ProcedureName": name, "FileId": file_id})["TaskId"]
    results = [
        r["AnimatedGraphicTask"]
        for r in wait_for_task(vod, task_id)["ProcedureTask"]["MediaProcessResultSet"]
    ]
    assert [(r["Status"], r["ErrCodeExt"]) for r in results] == [
        ("FAIL", "InvalidInput.DefinitionNotExist"),
        ("SUCCESS", ""),
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"FileId": "{file_id}"}, "MissingParameter"),
        (
            {"ProcedureName": "no-such-flow", "FileId": "{file_id}"},
            "InvalidParameterValue.ProcedureName",
        ),
        ({"ProcedureName": "", "FileId": "{file_id}"}, "InvalidParameterValue.ProcedureName"),
        ({"ProcedureName": "{name}"}, "InvalidParameterValue.FileId"),
        ({"ProcedureName": "{name}", "FileId": "404"}, "InvalidParameterValue.FileId"),
        (
            {"ProcedureName": "{name}", "MediaStoragePath": "/a/b.mp4"},
            "InvalidParameterValue.MediaStoragePath",
        ),
        (
            {"ProcedureName": "{name}", "FileId": "{file_id}", "TasksPriority": 11},
            "InvalidParameterValue",
        ),
        (
            {"ProcedureName": "{name}", "FileId": "{file_id}", "TasksPriority": -11},
            "InvalidParameterValue",
        ),
        (
            {"ProcedureName": "{name}", "FileId": "{file_id}", "TasksNotifyMode": "Sometimes"},
            "InvalidParameterValue",
        ),
        (
            {"ProcedureName": "{name}", "FileId": "{file_id}", "SessionContext": "c" * 1001},
            "InvalidParameterValue.SessionContextTooLong",
        ),
        (
            {"ProcedureName": "{name}", "FileId": "{file_id}", "SessionId": "s" * 51},
            "InvalidParameterValue.SessionIdTooLong",
        ),
    ],
)
def test_process_media_by_procedure_errors(
    vod: Vod, file_id: str, params: dict[str, Any], code: str
) -> None:
    name = flow_name()
    vod("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
    filled = {
        key: {"{file_id}": file_id, "{name}": name}.get(value, value)
        if isinstance(value, str)
        else value
        for key, value in params.items()
    }
    assert error_code(lambda: vod("ProcessMediaByProcedure", filled)) == code
    vod("DeleteProcedureTemplate", {"Name": name})


def test_session_id_dedupe_under_concurrency(vod: Vod, file_id: str) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )

    name = flow_name()
    vod(
        "CreateProcedureTemplate",
        {"Name": name, "MediaProcessTask": flow({"Definition": 20000, "EndTimeOffset": 0.5})},
    )
    session_id = f"flow-dedupe-{secrets.token_hex(6)}"
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        try:
            task = vod(
                "ProcessMediaByProcedure",
                {"ProcedureName": name, "FileId": file_id, "SessionId": session_id},
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
    assert len(outcomes) == 8
    found = vod("DescribeTasks", {"FileId": file_id, "Limit": 100})["TaskSet"]
    assert sum(1 for t in found if t["SessionId"] == session_id) == 1
    # A repeat after the burst is still refused; an empty SessionId never deduplicates.
    assert (
        error_code(
            lambda: vod(
                "ProcessMediaByProcedure",
                {"ProcedureName": name, "FileId": file_id, "SessionId": session_id},
            )
        )
        == "InvalidParameterValue.SessionId"
    )
    plain = [
        vod("ProcessMediaByProcedure", {"ProcedureName": name, "FileId": file_id, "SessionId": ""})[
            "TaskId"
        ]
        for _ in range(2)
    ]
    assert len(set(plain)) == 2
    for task_id in [tasks[0].removeprefix("task:"), *plain]:
        assert wait_for_task(vod, task_id)["Status"] == "FINISH"


def test_dedupe_is_per_sub_app(server: Server, vod: Vod, file_id: str, short_clip: Path) -> None:
    """One SessionId in two sub-applications starts two tasks: dedupe never crosses tenants."""
    other_id = new_sub_app_id()
    other = Vod(server, server.create_key(other_id))
    session_id = f"tenant-{secrets.token_hex(6)}"
    runs = []
    for client, media in ((vod, file_id), (other, server.import_media(short_clip, other_id))):
        name = flow_name()
        client("CreateProcedureTemplate", {"Name": name, "MediaProcessTask": flow()})
        params = {"ProcedureName": name, "FileId": media, "SessionId": session_id}
        runs.append((client, client("ProcessMediaByProcedure", params)["TaskId"]))
    for client, task_id in runs:
        assert wait_for_task(client, task_id)["Status"] == "FINISH"


# ---------------------------------------------------------------------------------------------
# start_procedure, as the upload paths call it: in-process, in the caller's transaction


def test_start_procedure_in_the_callers_transaction(tmp_path: Path, short_clip: Path) -> None:
    from sqlalchemy import func, select

    from anigraph.db.models import Dedupe, Task
    from anigraph.services import procedures, processing
    from jobs_fixtures import OTHER_SUB_APP, SUB_APP, Clock, add_media, make_ctx

    clock = Clock()
    ctx = make_ctx(tmp_path, clock)
    file_id = add_media(ctx, short_clip)
    items = [{"Definition": 20000, "EndTimeOffset": 1}, {"Definition": 20001}]
    procedures.create(ctx, SUB_APP, "on-upload", "", items)

    with ctx.db.session() as session:
        task_id = procedures.start_procedure(
            session,
            ctx,
            SUB_APP,
            "on-upload",
            file_id,
            priority=-2,
            notify_mode="Change",
            session_context="ctx",
            session_id="s1",
        )
        # Visible inside the caller's transaction before it commits.
        assert session.get(Task, task_id) is not None
    with ctx.db.session() as session:
        task = session.get(Task, task_id)
        assert task is not None
        assert (task.status, task.file_id, task.priority, task.notify_mode) == (
            "WAITING",
            file_id,
            -2,
            "Change",
        )
        assert [s["AnimatedGraphicTask"]["Input"] for s in task.subtasks] == [
            {"Definition": 20000, "StartTimeOffset": 0.0, "EndTimeOffset": 1.0},
            {"Definition": 20001, "StartTimeOffset": 0.0, "EndTimeOffset": 0.0},
        ]

    # A caller whose own work fails after starting the flow leaves neither task nor SessionId.
    class UploadFailed(RuntimeError):
        pass

    def count(model: type[Any]) -> int:
        with ctx.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    tasks_before, claims_before = count(Task), count(Dedupe)
    with pytest.raises(UploadFailed), ctx.db.session() as session:
        procedures.start_procedure(session, ctx, SUB_APP, "on-upload", file_id, session_id="s2")
        raise UploadFailed
    assert (count(Task), count(Dedupe)) == (tasks_before, claims_before)

    with ctx.db.session() as session:
        with pytest.raises(procedures.ProcedureNotFound):
            procedures.start_procedure(session, ctx, SUB_APP, "missing", file_id)
        with pytest.raises(procedures.ProcedureNotFound):  # flows are per sub-app
            procedures.start_procedure(session, ctx, OTHER_SUB_APP, "on-upload", file_id)
        with pytest.raises(processing.FileNotFound):
            procedures.start_procedure(session, ctx, SUB_APP, "on-upload", "404")

    # SessionId dedupe: 7 days for ProcessMediaByProcedure (spec 7.6), then free again.
    clock.advance(7 * 86400 - 1)
    with pytest.raises(processing.DuplicateSession), ctx.db.session() as session:
        procedures.start_procedure(session, ctx, SUB_APP, "on-upload", file_id, session_id="s1")
    clock.advance(2)
    with ctx.db.session() as session:
        again = procedures.start_procedure(
            session, ctx, SUB_APP, "on-upload", file_id, session_id="s1"
        )
    assert again != task_id


def test_flows_created_at_one_instant_keep_their_order(tmp_path: Path) -> None:
    """A frozen clock gives equal CreateTimes; the listing still follows creation order."""
    from anigraph.services import procedures
    from jobs_fixtures import SUB_APP, Clock, make_ctx

    ctx = make_ctx(tmp_path, Clock())
    names = ["c", "a", "b", "d"]
    for name in names:
        procedures.create(ctx, SUB_APP, name, "", [{"Definition": 20000}])
    total, page = procedures.describe(ctx, SUB_APP, None, None, 0, 10)
    assert (total, [spec.name for spec in page]) == (4, names)
    _, page = procedures.describe(ctx, SUB_APP, None, "Custom", 1, 2, newest_first=True)
    assert [spec.name for spec in page] == ["b", "a"]
    with pytest.raises(procedures.ProcedureExists):
        procedures.create(ctx, SUB_APP, "a", "", [{"Definition": 20000}])
