"""A source too slow to download is the source's fault (reliability checklist U9).

A PullUpload or a ProcessMedia Url whose source drips (passes the whole fetch's wall-time cap,
``fetch_timeout_seconds``) or stalls (sends nothing for ``fetch_stall_seconds``) fails once
with ``SourceFileError.DownloadNotAccessible`` and a message that says why: no retry that
holds a worker for ``max_attempts`` times the cap, and no final message saying "will retry".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anigraph.context import Context
from anigraph.domain.errors import ErrCodeExt
from anigraph.jobs import leases
from anigraph.jobs.pool import new_owner
from anigraph.jobs.runner import Outcome, run_claimed, staging_dir
from anigraph.metrics import Metrics
from anigraph.services.processing import TaskRequest, create_task
from anigraph.services.pull import PullRequest, create_pull_task
from jobs_fixtures import SUB_APP, load_task, make_ctx
from net_fixtures import Handler, Site, drip, running


def stall(handler: Handler) -> None:
    """Headers and a few bytes, then silence."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b"\0" * 100)
    handler.wfile.flush()
    time.sleep(20)


SLOW = {
    # One byte every 0.2 s: never silent for long, so only the wall-time cap stops it.
    "drip": (drip, {"fetch_timeout_seconds": 1.5}),
    "stall": (stall, {"fetch_timeout_seconds": 30.0, "fetch_stall_seconds": 0.5}),
}


@pytest.fixture
def site() -> Iterator[Site]:
    with running(Site("127.0.0.2")) as started:
        yield started


def slow_ctx(tmp_path: Path, site: Site, kind: str) -> tuple[Context, str]:
    route, settings = SLOW[kind]
    site.routes["/slow.mp4"] = route
    ctx = make_ctx(
        tmp_path,
        allow_private_networks="127.0.0.2/32",
        max_attempts=3,
        retry_backoff_seconds=0.1,
        **settings,
    )
    return ctx, site.url("/slow.mp4")


def run_once(ctx: Context) -> tuple[str, Outcome, float]:
    owner = new_owner(0)
    task_id = leases.claim_next(ctx, owner, Metrics())
    assert task_id is not None
    began = time.monotonic()
    outcome = run_claimed(ctx, task_id, owner, Metrics())
    return task_id, outcome, time.monotonic() - began


def assert_clear_final_failure(ctx: Context, task_id: str, message: str) -> None:
    task = load_task(ctx, task_id)
    assert task.status == "FINISH"
    assert task.attempt == 1  # no second attempt: nothing to retry
    assert "will retry" not in message
    assert "slow" in message
    assert list(staging_dir(ctx).iterdir()) == []


@pytest.mark.parametrize("kind", sorted(SLOW))
def test_a_slow_pull_fails_once_as_the_source_fault(tmp_path: Path, site: Site, kind: str) -> None:
    ctx, url = slow_ctx(tmp_path, site, kind)
    create_pull_task(ctx, SUB_APP, PullRequest(media_url=url))
    task_id, outcome, seconds = run_once(ctx)
    assert outcome is Outcome.FINISHED
    assert seconds < 10
    result: dict[str, Any] = (load_task(ctx, task_id).payload or {})["Result"]
    assert result["ErrCode"] == ErrCodeExt.DOWNLOAD_NOT_ACCESSIBLE.legacy_code
    assert result["Message"].startswith(f"{ErrCodeExt.DOWNLOAD_NOT_ACCESSIBLE.value}: ")
    assert_clear_final_failure(ctx, task_id, result["Message"])


@pytest.mark.parametrize("kind", sorted(SLOW))
def test_a_slow_process_media_url_fails_its_subtasks_once(
    tmp_path: Path, site: Site, kind: str
) -> None:
    ctx, url = slow_ctx(tmp_path, site, kind)
    items = [{"Definition": 20000}, {"Definition": 20001}]
    create_task(ctx, SUB_APP, TaskRequest(file_id="", items=items, url=url))
    task_id, outcome, seconds = run_once(ctx)
    assert outcome is Outcome.FINISHED
    assert seconds < 10
    for entry in load_task(ctx, task_id).subtasks:
        result = entry["AnimatedGraphicTask"]
        assert result["Status"] == "FAIL"
        assert result["ErrCodeExt"] == ErrCodeExt.DOWNLOAD_NOT_ACCESSIBLE.value
        assert_clear_final_failure(ctx, task_id, result["Message"])


def test_an_unreachable_source_still_retries_and_its_final_message_says_it_gave_up(
    tmp_path: Path,
) -> None:
    """A refused connection may pass (the server restarts): retried, and the last attempt's
    message says how many were made, not that another will come."""
    ctx = make_ctx(
        tmp_path, allow_private_networks="127.0.0.2/32", max_attempts=2, retry_backoff_seconds=0.0
    )
    with running(Site("127.0.0.2")) as gone:
        url = gone.url("/clip.mp4")
    task_id = create_pull_task(ctx, SUB_APP, PullRequest(media_url=url))
    outcomes = [run_once(ctx)[1] for _ in range(2)]
    assert outcomes == [Outcome.RETRY, Outcome.FINISHED]
    task = load_task(ctx, task_id)
    message = (task.payload or {})["Result"]["Message"]
    assert message.startswith(f"{ErrCodeExt.INTERNAL_ERROR.value}: ")
    assert "will retry" not in message
    assert "gave up after 2 attempts" in message
