"""The wire protocol on a real server: every signing mode through the official SDK, and every
error shape pinned (HTTP 200, Content-Type exactly application/json, Response.Error, RequestId)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from service_harness import SIGN_MODES, Server, Vod, error_code, tc3_post


@pytest.mark.parametrize(("sign_method", "req_method"), SIGN_MODES)
def test_every_signing_mode(server: Server, sign_method: str, req_method: str) -> None:
    vod = Vod(server, server.default_key(), sign_method, req_method)
    found = vod("DescribeAnimatedGraphicsTemplates", {"Definitions": [20000, 20001]})
    assert found["TotalCount"] == 2
    # Nested, typed parameters survive flattening in GET and v1 modes.
    made = vod("CreateAnimatedGraphicsTemplate", {"Fps": 12, "Quality": 66.5, "Width": 200})
    (row,) = vod("DescribeAnimatedGraphicsTemplates", {"Definitions": [made["Definition"]]})[
        "AnimatedGraphicsTemplateSet"
    ]
    assert (row["Fps"], row["Quality"], row["Width"]) == (12, 66.5, 200)
    vod("DeleteAnimatedGraphicsTemplate", {"Definition": made["Definition"]})


def shape(response: httpx.Response) -> dict[str, Any]:
    """Assert the envelope every answer has, and return Response.Error."""
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()["Response"]
    uuid.UUID(body["RequestId"])
    assert set(body) == {"Error", "RequestId"}
    assert set(body["Error"]) == {"Code", "Message"} and body["Error"]["Message"]
    return dict(body["Error"])


def test_error_shapes(server: Server) -> None:
    key = server.default_key()
    good = json.dumps({"Type": "Preset"}).encode()
    cases: list[tuple[httpx.Response, str]] = [
        (
            httpx.post(f"{server.url}/", content=good, headers={"X-TC-Action": "X"}),
            "AuthFailure.SignatureFailure",
        ),
        (httpx.get(f"{server.url}/"), "AuthFailure.SignatureFailure"),
        (
            httpx.post(f"{server.url}/", content=good, headers={"Authorization": "Basic abc"}),
            "AuthFailure.InvalidAuthorization",
        ),
        (
            tc3_post(server, key, "DescribeAnimatedGraphicsTemplates", b"{not json"),
            "InvalidParameter",
        ),
        (tc3_post(server, key, "DescribeAnimatedGraphicsTemplates", b"[1,2]"), "InvalidParameter"),
        (tc3_post(server, key, "NoSuchThing", good), "InvalidAction"),
        (
            tc3_post(server, key, "DescribeAnimatedGraphicsTemplates", good, version="2017-01-01"),
            "NoSuchVersion",
        ),
        (
            tc3_post(
                server,
                key,
                "DescribeAnimatedGraphicsTemplates",
                good,
                timestamp=int(time.time()) - 3600,
            ),
            "AuthFailure.SignatureExpire",
        ),
        (
            tc3_post(
                server, {**key, "SecretKey": "wrong"}, "DescribeAnimatedGraphicsTemplates", good
            ),
            "AuthFailure.SignatureFailure",
        ),
        (
            tc3_post(
                server, {**key, "SecretId": "AKIDnobody"}, "DescribeAnimatedGraphicsTemplates", good
            ),
            "AuthFailure.SecretIdNotFound",
        ),
        (
            tc3_post(server, key, "DescribeAnimatedGraphicsTemplates", b'{"Bogus": 1}'),
            "UnknownParameter",
        ),
        (
            tc3_post(server, key, "DescribeAnimatedGraphicsTemplates", b'{"Limit": "x"}'),
            "InvalidParameterValue.Limit",
        ),
        (tc3_post(server, key, "DeleteAnimatedGraphicsTemplate", b"{}"), "MissingParameter"),
        (
            tc3_post(server, key, "DescribeAnimatedGraphicsTemplates", b'{"SubAppId": 42}'),
            "UnauthorizedOperation",
        ),
        (
            httpx.post(
                f"{server.url}/",
                content=b"x" * (1024 * 1024 + 1),
                headers={"Content-Type": "application/json"},
            ),
            "RequestSizeLimitExceeded",
        ),
    ]
    for response, code in cases:
        assert shape(response)["Code"] == code, response.text


def test_success_shape(server: Server) -> None:
    response = tc3_post(server, server.default_key(), "DescribeAnimatedGraphicsTemplates", b"{}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()["Response"]
    uuid.UUID(body["RequestId"])
    assert "Error" not in body and body["TotalCount"] >= 2


def test_revoked_key_is_refused(server: Server) -> None:
    from service_harness import anigraph

    key = server.create_key(1_500_000_001)
    vod = Vod(server, key)
    assert vod("DescribeAnimatedGraphicsTemplates")["TotalCount"] >= 2
    anigraph("keys", "revoke", "--data-dir", server.data_dir, key["SecretId"])
    assert (
        error_code(lambda: vod("DescribeAnimatedGraphicsTemplates"))
        == "AuthFailure.SecretIdNotFound"
    )


def test_health_and_metrics(server: Server, vod: Vod) -> None:
    vod("DescribeAnimatedGraphicsTemplates")
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    metrics = httpx.get(f"{server.url}/metrics").text
    assert (
        'anigraph_api_requests_total{action="DescribeAnimatedGraphicsTemplates",code=""}' in metrics
    )
    assert 'anigraph_queue_depth{status="WAITING"}' in metrics


@pytest.mark.parametrize(("sign_method", "req_method"), SIGN_MODES)
def test_every_action_in_every_signing_mode(
    server: Server, short_clip: Any, sign_method: str, req_method: str
) -> None:
    from service_harness import wait_for_task

    vod = Vod(server, server.default_key(), sign_method, req_method)
    file_id = server.import_media(short_clip)
    definition = vod("CreateAnimatedGraphicsTemplate", {"Fps": 5, "Width": 160, "Format": "webp"})[
        "Definition"
    ]
    vod("ModifyAnimatedGraphicsTemplate", {"Definition": definition, "Quality": 60.5})
    task_id = vod(
        "ProcessMedia",
        {
            "FileId": file_id,
            "TasksPriority": -3,
            "SessionContext": "a b&c=d",
            "MediaProcessTask": {
                "AnimatedGraphicTaskSet": [
                    {"Definition": definition, "StartTimeOffset": 0.25, "EndTimeOffset": 1.25}
                ]
            },
        },
    )["TaskId"]
    detail = wait_for_task(vod, task_id)
    procedure = detail["ProcedureTask"]
    assert (procedure["TasksPriority"], procedure["SessionContext"]) == (-3, "a b&c=d")
    (result,) = procedure["MediaProcessResultSet"]
    assert result["AnimatedGraphicTask"]["Input"]["StartTimeOffset"] == 0.25
    assert result["AnimatedGraphicTask"]["Output"]["Width"] == 160
    listed = vod(
        "DescribeTasks",
        {"FileId": file_id, "Status": "FINISH", "Sort": {"Field": "FinishTime", "Order": "Desc"}},
    )
    assert [t["TaskId"] for t in listed["TaskSet"]] == [task_id]
    assert (
        error_code(lambda: vod("ManageTask", {"TaskId": task_id, "OperationType": "Abort"}))
        == "FailedOperation"
    )
    info = vod("DescribeMediaInfos", {"FileIds": [file_id], "Filters": ["animatedGraphicsInfo"]})[
        "MediaInfoSet"
    ][0]
    assert info["BasicInfo"] is None and info["MetaData"] is None
    assert len(info["AnimatedGraphicsInfo"]["AnimatedGraphicsSet"]) == 1
    vod("DeleteMedia", {"FileId": file_id, "DeleteParts": [{"Type": "OriginalFiles"}]})
    kept = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0]
    assert kept["BasicInfo"]["MediaUrl"] == ""
    assert len(kept["AnimatedGraphicsInfo"]["AnimatedGraphicsSet"]) == 1
    vod("DeleteMedia", {"FileId": file_id})
    vod("DeleteAnimatedGraphicsTemplate", {"Definition": definition})
