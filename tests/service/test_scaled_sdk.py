"""The official SDK against anigraph scaled out: ``serve --workers 0`` on PostgreSQL, S3 (moto's
server) and a Redis queue, with an ``anigraph worker`` and an ``anigraph celery-worker`` in
processes of their own, each in its own data folder (see ``scaled_harness``).

Service tests written for the embedded server run here again unchanged (they are imported
below, so pytest collects them in this module, where ``server``, ``vod`` and ``file_id`` are the
scaled cluster's): what the SDK sees must not depend on the backends. The tests written here
check what only the scaled setup has: output and source objects in the bucket, uploads staged
and moved in S3, and events written by one process and pulled through another.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from scaled_harness import (
    CELERY_WORKER,
    WORKER,
    Cluster,
    animate,
    check_done_exactly_once,
    pull_all_events,
    wait_all,
)
from service_harness import Server, Vod
from test_events_api import (
    test_pull_long_poll_returns_when_the_task_finishes as test_pull_long_poll_returns_when_the_task_finishes,  # noqa: E501
)
from test_procedures_api import flow, flow_name
from test_procedures_api import test_flow_runs_end_to_end as test_flow_runs_end_to_end
from test_processing_api import (
    test_describe_tasks_filters_and_scroll as test_describe_tasks_filters_and_scroll,
)
from test_processing_api import test_media_infos_and_delete as test_media_infos_and_delete
from test_processing_api import test_process_media_end_to_end as test_process_media_end_to_end
from test_processing_api import (
    test_session_id_dedupe_under_concurrency as test_session_id_dedupe_under_concurrency,
)
from test_templates_api import fresh as fresh
from test_templates_api import (
    test_create_describe_modify_delete as test_create_describe_modify_delete,
)
from test_uploads_api import put
from test_uploads_api import (
    test_commit_with_procedure_starts_a_task as test_commit_with_procedure_starts_a_task,
)

if TYPE_CHECKING:
    from pg_fixtures import PostgresServer
    from redis_fixtures import RedisServer
    from storage_fixtures import S3Server

pytest_plugins = ["pg_fixtures", "storage_fixtures", "redis_fixtures"]

REDIS_DB = 1
"""This module's logical Redis database: its Celery queue is its own."""


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    s3_server: S3Server,
    redis_server: RedisServer,
    short_clip: Path,
) -> Iterator[Cluster]:
    from pg_fixtures import fresh_database

    with fresh_database(postgres_server) as db_url:
        running = Cluster(
            tmp_path_factory.mktemp("scaled"),
            db_url=db_url,
            s3=s3_server,
            queue_url=redis_server.database_url(REDIS_DB),
        )
        try:
            running.start([WORKER, CELERY_WORKER], media=short_clip)
            yield running
        finally:
            running.close()


@pytest.fixture(scope="module")
def server(cluster: Cluster) -> Server:
    return cluster.api


@pytest.fixture(scope="module")
def vod(cluster: Cluster) -> Vod:
    return cluster.vod


@pytest.fixture(scope="module")
def file_id(cluster: Cluster) -> str:
    return cluster.file_id


def store_key(url: str) -> str:
    """The store key an output or media URL (``…/files/<key>``) names."""
    return url.split("/files/", 1)[1]


def test_imported_media_lives_in_the_bucket(
    cluster: Cluster, file_id: str, short_clip: Path
) -> None:
    info = cluster.vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0]
    key = store_key(info["BasicInfo"]["MediaUrl"])
    assert key in cluster.objects("media")
    # Not a local file of the API's data folder: the workers, elsewhere, read it from S3.
    assert not (cluster.api.data_dir / "files" / key).exists()
    served = httpx.get(info["BasicInfo"]["MediaUrl"])
    assert served.status_code == 200 and served.content == short_clip.read_bytes()


def test_every_way_of_starting_a_task_runs_once(
    cluster: Cluster, file_id: str, short_clip: Path
) -> None:
    """ProcessMedia, ProcessMediaByProcedure and an upload with a Procedure, all at once: every
    task FINISH, one output object per subtask, one FINISH event each through PullEvents."""
    vod = cluster.vod
    webp = vod("CreateAnimatedGraphicsTemplate", {"Fps": 10, "Width": 160, "Format": "webp"})
    name = flow_name()
    vod(
        "CreateProcedureTemplate",
        {
            "Name": name,
            "MediaProcessTask": flow(
                {"Definition": 20000, "StartTimeOffset": 0.0, "EndTimeOffset": 1.0},
                {"Definition": webp["Definition"], "StartTimeOffset": 0.5},
            ),
        },
    )
    processed = [
        animate(vod, file_id, {"Definition": webp["Definition"], "EndTimeOffset": 1.0})
        for _ in range(3)
    ]
    by_flow = vod("ProcessMediaByProcedure", {"ProcedureName": name, "FileId": file_id})["TaskId"]
    applied = vod("ApplyUpload", {"MediaType": "mp4", "Procedure": name})
    put(cluster.api, applied, short_clip)
    uploaded = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})["FileId"]
    (upload_task,) = vod("DescribeTasks", {"FileId": uploaded})["TaskSet"]
    task_ids = [*processed, by_flow, upload_task["TaskId"]]

    details = check_done_exactly_once(cluster, task_ids)

    # The committed upload was moved out of staging into a media object.
    assert cluster.objects("upload") == set()
    media = vod("DescribeMediaInfos", {"FileIds": [uploaded]})["MediaInfoSet"][0]
    assert store_key(media["BasicInfo"]["MediaUrl"]) in cluster.objects("media")
    assert media["MetaData"]["Width"] == 320
    for task_id in task_ids:
        for result in details[task_id]["ProcedureTask"]["MediaProcessResultSet"]:
            output = result["AnimatedGraphicTask"]["Output"]
            body = httpx.get(output["Url"]).content
            assert hashlib.md5(body).hexdigest() == output["Md5"] and len(body) == output["Size"]
            magic = b"GIF89a" if output["Container"] == "gif" else b"RIFF"
            assert body.startswith(magic), output
    listed = vod("DescribeTasks", {"FileId": file_id, "Status": "FINISH", "Limit": 100})["TaskSet"]
    assert {*processed, by_flow} <= {task["TaskId"] for task in listed}


def test_delete_media_removes_its_objects(cluster: Cluster, tmp_path: Path) -> None:
    from media_factory import make_clip

    vod = cluster.vod
    vod("ModifyEventConfig", {"Mode": "PULL", "DeleteMediaCompleteEventSwitch": "ON"})
    clip = make_clip(tmp_path / "gone.mp4", seconds=1.0, fps=10, width=160, height=96)
    file_id = cluster.api.import_media(clip)
    task_id = animate(vod, file_id, {"Definition": 20000}, {"Definition": 20001})
    details = check_done_exactly_once(cluster, [task_id])
    outputs = [
        result["AnimatedGraphicTask"]["Output"]
        for result in details[task_id]["ProcedureTask"]["MediaProcessResultSet"]
    ]
    output_keys = {store_key(output["Url"]) for output in outputs}
    source = vod("DescribeMediaInfos", {"FileIds": [file_id]})["MediaInfoSet"][0]
    source_key = store_key(source["BasicInfo"]["MediaUrl"])
    assert output_keys <= cluster.objects("output") and source_key in cluster.objects("media")

    vod("DeleteMedia", {"FileId": file_id})

    assert not output_keys & cluster.objects("output")
    assert source_key not in cluster.objects("media")
    assert all(httpx.get(output["Url"]).status_code == 404 for output in outputs)
    assert {row.store_key for row in cluster.outputs()} == cluster.objects("output")
    deleted = [e for e in pull_all_events(vod) if e["EventType"] == "FileDeleted"]
    assert [e["FileDeleteEvent"]["FileIdSet"] for e in deleted] == [[file_id]]


def test_each_task_runs_in_exactly_one_worker_process(cluster: Cluster, file_id: str) -> None:
    """The API (``--workers 0``) runs nothing; each task is run to FINISH by one worker."""
    vod = cluster.vod
    task_ids = [
        animate(vod, file_id, {"Definition": 20000, "EndTimeOffset": 0.5}) for _ in range(4)
    ]
    wait_all(vod, task_ids)
    runs = Counter(task for worker in cluster.workers for task in worker.finished())
    assert {task_id: runs[task_id] for task_id in task_ids} == dict.fromkeys(task_ids, 1)
    assert all(cluster.task(task_id).attempt == 1 for task_id in task_ids)


def test_a_wake_up_message_alone_runs_a_task(cluster: Cluster, file_id: str) -> None:
    """With the claim-loop worker frozen, the Celery worker runs a task because of the message
    the API published; with the Celery worker frozen, the claim loop runs one with no message."""
    vod = cluster.vod
    claim_loop, celery = cluster.workers
    assert (claim_loop.kind, celery.kind) == (WORKER, CELERY_WORKER)
    with claim_loop.paused():
        by_message = animate(vod, file_id, {"Definition": 20000, "EndTimeOffset": 0.5})
        wait_all(vod, [by_message], timeout=30)
    with celery.paused():
        by_claim = animate(vod, file_id, {"Definition": 20000, "EndTimeOffset": 0.5})
        wait_all(vod, [by_claim], timeout=30)
    assert celery.finished().count(by_message) == 1 and by_message not in claim_loop.finished()
    assert claim_loop.finished().count(by_claim) == 1 and by_claim not in celery.finished()
    # Either kind of worker writes the task's FINISH event with the state change.
    check_done_exactly_once(cluster, [by_message, by_claim])


def test_no_process_logged_an_error(cluster: Cluster) -> None:
    """Last on purpose: nothing above made a worker or the API fail a request or a run."""
    logs = {worker.log_path.name: worker.log() for worker in cluster.workers}
    assert cluster.api.log_path is not None
    logs["api"] = cluster.api.log_path.read_text(errors="replace")
    for name, text in logs.items():
        errors = [line for line in text.splitlines() if '"level": "error"' in line]
        assert not errors, f"{name}: {errors[:3]}"
