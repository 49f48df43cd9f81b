"""Output links (``Url``, ``FileUrl``, ``MediaUrl``) in each ``files_url`` mode, built when read.

Tasks run for real (engine in the media child, SQLite, a LocalStore or S3 on moto); what is
checked is what the service functions behind DescribeTaskDetail, DescribeMediaInfos and
PullEvents answer, and what a PUSH callback carries. A "restart" is a second ``Context`` with
other settings over the same database and store, which is all a restarted process shares.
"""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from anigraph.context import Context
from anigraph.jobs import leases, procedure_events
from anigraph.jobs.pool import new_owner
from anigraph.jobs.runner import Outcome, run_claimed
from anigraph.metrics import Metrics
from anigraph.notify import config
from anigraph.notify import pull as event_pull
from anigraph.notify.dispatch import EventDispatcher, RetrySchedule
from anigraph.services import media, tasks
from anigraph.services.pull import PullRequest, create_pull_task
from anigraph.settings import Settings, load
from anigraph.storage.local import LocalStore
from jobs_fixtures import (
    SUB_APP,
    add_media,
    add_task,
    entry,
    make_ctx,
    outputs,
    presigned_context,
    sub,
)
from media_factory import make_clip

if TYPE_CHECKING:
    from storage_fixtures import S3Server

pytest_plugins = ["storage_fixtures"]

OLD_BASE = "http://old.example"
NEW_BASE = "http://new.example"
CDN = "https://cdn.example.com/anigraph"


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("urls") / "small.mp4", seconds=1.0, fps=10, width=96, height=64
    )


@pytest.fixture
def hooks() -> Iterator[None]:
    yield
    procedure_events.uninstall_hooks()


def public_resolver(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]  # callback URL checks without DNS


def run_one(ctx: Context, task_id: str) -> None:
    owner = new_owner(0)
    assert leases.claim_next(ctx, owner) == task_id
    assert run_claimed(ctx, task_id, owner, Metrics()) is Outcome.FINISHED


def process(ctx: Context, clip: Path) -> tuple[str, str, str]:
    """Run one Procedure task with one GIF output; (FileId, TaskId, the output's key)."""
    file_id = add_media(ctx, clip)
    # Created now, not at the fixtures' fixed T0: task queries see only the last three days.
    task_id = add_task(ctx, file_id, [entry(20000, 0.0, 0.5)], created_at=ctx.now())
    run_one(ctx, task_id)
    (row,) = outputs(ctx, task_id)
    return file_id, task_id, row.store_key


def media_key(ctx: Context, file_id: str) -> str:
    with ctx.db.session() as session:
        row = media.get(session, SUB_APP, file_id)
        assert row is not None and row.store_key
        return row.store_key


def hidden_members(value: Any, path: str = "") -> list[str]:
    """Every member whose name starts with ``_``, anywhere: none may reach the wire."""
    found: list[str] = []
    if isinstance(value, dict):
        for name, item in value.items():
            if name.startswith("_"):
                found.append(f"{path}.{name}")
            found += hidden_members(item, f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += hidden_members(item, f"{path}[{index}]")
    return found


def restarted(ctx: Context, **settings: Any) -> Context:
    return Context(replace(ctx.settings, **settings), ctx.db, ctx.store, ctx.clock)


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "cdn.example.com/x",
        "ftp://cdn.example.com/x",
        "javascript:alert(1)",
        "https://",
        "https://cdn.example.com/x?sig=1",
        "https://cdn.example.com/x#top",
        "Presigned",
    ],
)
def test_bad_files_url_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="files_url"):
        load({"files_url": value})


@pytest.mark.parametrize("seconds", [0, -5, 604801])
def test_presign_seconds_out_of_s3_range_is_refused(seconds: int) -> None:
    with pytest.raises(ValueError, match="presign_seconds"):
        load({"presign_seconds": seconds, "files_url": "presigned", "store": "s3://b"})


def test_good_link_settings_load_from_flags_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load({"files_url": CDN + "/"}).files_url == CDN + "/"
    monkeypatch.setenv("ANIGRAPH_FILES_URL", "presigned")
    monkeypatch.setenv("ANIGRAPH_STORE", "s3://bucket?region=us-east-1")
    monkeypatch.setenv("ANIGRAPH_PRESIGN_SECONDS", "604800")
    settings = load()
    assert (settings.files_url, settings.presign_seconds) == ("presigned", 604800)
    assert Settings().files_url == "" and Settings().presign_seconds == 86400


def test_presigned_with_a_local_store_fails_at_start_in_one_line(tmp_path: Path) -> None:
    command = ["serve", "--files-url", "presigned", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(
        [sys.executable, "-m", "anigraph", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "files_url 'presigned' needs an S3 store" in done.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was created


def test_a_context_refuses_presigned_over_a_store_that_cannot_sign(tmp_path: Path) -> None:
    # Settings alone cannot see the store an embedding program passes in.
    ctx = make_ctx(tmp_path)
    settings = replace(ctx.settings, files_url="presigned", store="s3://bucket")
    with pytest.raises(ValueError, match="no presigned URLs"):
        Context(settings, ctx.db, LocalStore(tmp_path / "other"))


# -- through the service and a CDN --------------------------------------------------------------


def test_default_links_go_through_the_service(tmp_path: Path, small_clip: Path) -> None:
    ctx = make_ctx(tmp_path)  # public_url http://files.test
    file_id, task_id, key = process(ctx, small_clip)
    detail = tasks.detail(ctx, SUB_APP, task_id)
    procedure = detail["ProcedureTask"]
    output = procedure["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Output"]
    assert output["Url"] == f"http://files.test/files/{key}"
    assert procedure["FileUrl"] == f"http://files.test/files/{media_key(ctx, file_id)}"
    assert hidden_members(detail) == []


def test_cdn_base_makes_base_slash_key(tmp_path: Path, small_clip: Path) -> None:
    ctx = make_ctx(tmp_path, files_url=CDN + "/")  # a trailing slash does not double
    file_id, task_id, key = process(ctx, small_clip)
    output = sub(ctx, task_id)["Output"]
    detail = tasks.detail(ctx, SUB_APP, task_id)["ProcedureTask"]
    assert detail["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Output"]["Url"] == (
        f"{CDN}/{key}"
    )
    assert output["Url"] == f"{CDN}/{key}"  # also what the row keeps for old readers
    ((info,), _) = media.describe(ctx, SUB_APP, [file_id], None)
    assert info["BasicInfo"]["MediaUrl"] == f"{CDN}/{media_key(ctx, file_id)}"
    assert info["AnimatedGraphicsInfo"]["AnimatedGraphicsSet"][0]["Url"] == f"{CDN}/{key}"
    assert hidden_members(info) == []


@pytest.mark.parametrize(
    ("changes", "prefix"),
    [
        pytest.param({"public_url": NEW_BASE}, f"{NEW_BASE}/files/", id="public_url"),
        pytest.param({"files_url": CDN}, f"{CDN}/", id="files_url"),
    ],
)
def test_links_of_old_tasks_and_events_follow_the_settings_after_a_restart(
    tmp_path: Path, small_clip: Path, hooks: None, changes: dict[str, str], prefix: str
) -> None:
    before = make_ctx(tmp_path, public_url=OLD_BASE)
    procedure_events.install_hooks(before)
    config.modify(before, SUB_APP, config.Changes(mode="PULL"), resolve=public_resolver)
    file_id, task_id, key = process(before, small_clip)
    source_key = media_key(before, file_id)
    assert sub(before, task_id)["Output"]["Url"].startswith(OLD_BASE)

    after = restarted(before, **changes)
    procedure = tasks.detail(after, SUB_APP, task_id)["ProcedureTask"]
    assert procedure["FileUrl"] == prefix + source_key
    result = procedure["MediaProcessResultSet"][0]["AnimatedGraphicTask"]
    assert result["Output"]["Url"] == prefix + key
    ((info,), _) = media.describe(after, SUB_APP, [file_id], None)
    assert info["BasicInfo"]["MediaUrl"] == prefix + source_key
    # The event was written before the restart and is pulled after it.
    (event,) = event_pull.take(after, SUB_APP)
    state = event["ProcedureStateChangeEvent"]
    assert state["FileUrl"] == prefix + source_key
    assert state["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Output"]["Url"] == (
        prefix + key
    )
    assert hidden_members(event) == []


def test_push_callbacks_carry_links_as_of_sending(
    tmp_path: Path, small_clip: Path, hooks: None
) -> None:
    before = make_ctx(tmp_path, public_url=OLD_BASE)
    procedure_events.install_hooks(before)
    config.modify(
        before,
        SUB_APP,
        config.Changes(notification_url="http://callback.test/hook"),
        resolve=public_resolver,
    )
    _, _, key = process(before, small_clip)
    sent: list[bytes] = []

    def sender(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        sent.append(body)
        return 200, b""

    after = restarted(before, public_url=NEW_BASE)
    schedule = RetrySchedule(first_delay=5, max_delay=40, give_up_after=100)
    assert EventDispatcher(after, schedule=schedule, sender=sender).run_once() == 1
    (body,) = sent
    assert f'"Url":"{NEW_BASE}/files/{key}"'.encode() in body
    assert OLD_BASE.encode() not in body and b"_UrlKeys" not in body


class _OneFile(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args: object) -> None:
        pass


def test_pull_upload_result_and_event_follow_the_settings(tmp_path: Path, small_clip: Path) -> None:
    handler = type("Clip", (_OneFile,), {"payload": small_clip.read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = make_ctx(tmp_path, public_url=OLD_BASE, allow_private_networks="127.0.0.1/32")
        config.modify(
            before,
            SUB_APP,
            config.Changes(mode="PULL", upload_switch="ON"),
            resolve=public_resolver,
        )
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        task_id = create_pull_task(before, SUB_APP, PullRequest(media_url=url))
        run_one(before, task_id)
    finally:
        server.shutdown()
        server.server_close()
    after = restarted(before, files_url=CDN)
    pulled = tasks.detail(after, SUB_APP, task_id)["PullUploadTask"]
    key = media_key(after, pulled["FileId"])
    assert pulled["FileUrl"] == f"{CDN}/{key}"
    assert pulled["MediaBasicInfo"]["MediaUrl"] == f"{CDN}/{key}"
    (event,) = event_pull.take(after, SUB_APP)
    assert event["PullCompleteEvent"]["FileUrl"] == f"{CDN}/{key}"
    assert event["PullCompleteEvent"]["MediaBasicInfo"]["MediaUrl"] == f"{CDN}/{key}"
    assert hidden_members(pulled) == [] and hidden_members(event) == []


# -- presigned S3 URLs --------------------------------------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_presigned_links_download_the_output_and_are_signed_anew_on_each_read(
    tmp_path: Path,
    small_clip: Path,
    s3_server: S3Server,
    s3_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = presigned_context(tmp_path, s3_server, s3_prefix, monkeypatch)

    file_id, task_id, key = process(ctx, small_clip)
    output = sub(ctx, task_id)["Output"]

    def link() -> str:
        detail = tasks.detail(ctx, SUB_APP, task_id)["ProcedureTask"]
        url: str = detail["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Output"]["Url"]
        return url

    first = link()
    parts = urlsplit(first)
    assert f"{parts.scheme}://{parts.netloc}" == s3_server.endpoint_url
    assert parts.path == f"/{s3_server.bucket}/{s3_prefix}/{key}"
    query = _query(first)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "600"
    assert query["X-Amz-Credential"].startswith("testing/")
    body = httpx.get(first).content
    assert hashlib.md5(body).hexdigest() == output["Md5"] and len(body) == output["Size"]
    assert body[:6] == b"GIF89a"

    # A day later (by the signer's clock) the stored string would be stale; the read is not.
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: later)
    second = link()
    assert _query(second)["X-Amz-Date"] == later.strftime("%Y%m%dT%H%M%SZ")
    assert _query(first)["X-Amz-Date"] != _query(second)["X-Amz-Date"]
    assert httpx.get(second).content == body
    assert _query(sub(ctx, task_id)["Output"]["Url"])["X-Amz-Date"] != _query(second)["X-Amz-Date"]

    ((info,), _) = media.describe(ctx, SUB_APP, [file_id], None)
    source = httpx.get(info["BasicInfo"]["MediaUrl"])
    assert source.content == small_clip.read_bytes()
