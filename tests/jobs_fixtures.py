"""Helpers for the worker-layer tests: a real database, store and clock, rows, and child jobs.

The job functions at the bottom run inside the media child process (``anigraph.media.child``);
they are module-level so the child can unpickle them by reference.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from anigraph.context import Context, utc_now
from anigraph.db.database import Database
from anigraph.db.models import Media, MediaOutput, SubApp, Task, Template
from anigraph.domain.wire import new_file_id, new_task_id
from anigraph.media.types import AnimateParams, Limits, MetaData, ProgressCallback, Result
from anigraph.settings import Settings
from anigraph.storage.local import LocalStore

SUB_APP = 1500000001
OTHER_SUB_APP = 1500000002
OUTPUT_KEYS = frozenset(
    {
        "Url",
        "Definition",
        "Container",
        "Height",
        "Width",
        "Bitrate",
        "Size",
        "Md5",
        "StartTimeOffset",
        "EndTimeOffset",
    }
)
"""Tencent's MediaAnimatedGraphicsItem: an Output's members when no extension is used."""
T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)


class Clock:
    """A settable UTC clock for lease arithmetic without waiting."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


def make_ctx(
    tmp_path: Path, clock: Callable[[], datetime] | None = None, **settings: Any
) -> Context:
    """A context on a fresh SQLite file and LocalStore in ``tmp_path``, with two sub-apps."""
    data = tmp_path / "data"
    config = replace(
        Settings(data_dir=data, public_url="http://files.test"),
        **{"lease_seconds": 30.0, "retry_backoff_seconds": 10.0, **settings},
    )
    db = Database(f"sqlite:///{tmp_path / 'anigraph.db'}")
    db.create_schema()
    ctx = Context(config, db, LocalStore(data / "files"), clock or utc_now)
    with db.session() as session:
        for sub_app in (SUB_APP, OTHER_SUB_APP):
            session.add(SubApp(id=sub_app, name="", created_at=T0))
    return ctx


def add_media(ctx: Context, source: Path, sub_app_id: int = SUB_APP) -> str:
    key = ctx.store.new_key(sub_app_id, "media", source.suffix.lower())
    stored = ctx.store.put_file(key, source, "video/mp4")
    file_id = new_file_id()
    with ctx.db.session() as session:
        session.add(
            Media(
                file_id=file_id,
                sub_app_id=sub_app_id,
                name=source.stem,
                store_key=key,
                size=stored.size,
                meta_data=None,
                created_at=T0,
                updated_at=T0,
            )
        )
    return file_id


def presigned_context(tmp_path: Path, s3_server: Any, s3_prefix: str, monkeypatch: Any) -> Context:
    """A context over S3 (moto, ``storage_fixtures``) with ``files_url = presigned``: the store
    as an operator's ``--store`` builds it, so the client and its signing are production's."""
    from anigraph.storage.factory import parse_store_url

    for name, value in s3_server.credentials.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    store_url = (
        f"s3://{s3_server.bucket}/{s3_prefix}"
        f"?endpoint_url={s3_server.endpoint_url}&region={s3_server.region}"
    )
    base = make_ctx(tmp_path)
    settings = replace(base.settings, files_url="presigned", presign_seconds=600, store=store_url)
    return Context(settings, base.db, parse_store_url(store_url), base.clock)


def add_template(ctx: Context, sub_app_id: int = SUB_APP, **fields: Any) -> int:
    values: dict[str, Any] = {
        "format": "gif",
        "width": 0,
        "height": 0,
        "resolution_adaptive": "open",
        "fps": 5,
        "quality": 75.0,
        **fields,
    }
    with ctx.db.session() as session:
        row = Template(sub_app_id=sub_app_id, created_at=T0, updated_at=T0, **values)
        session.add(row)
        session.flush()
        return row.definition


def entry(definition: int, start: float = 0.0, end: float = 0.0) -> dict[str, Any]:
    """One subtask as the ProcessMedia service writes it."""
    return {
        "Type": "AnimatedGraphics",
        "AnimatedGraphicTask": {
            "Status": "PROCESSING",
            "ErrCodeExt": "",
            "ErrCode": 0,
            "Message": "",
            "Input": {"Definition": definition, "StartTimeOffset": start, "EndTimeOffset": end},
            "Output": None,
            "Progress": 0,
            "BeginProcessTime": "",
            "FinishTime": "",
        },
        "_attempts": 0,
    }


def add_task(
    ctx: Context,
    file_id: str = "",
    subtasks: list[dict[str, Any]] | None = None,
    *,
    priority: int = 0,
    created_at: datetime = T0,
    not_before: datetime | None = None,
    sub_app_id: int = SUB_APP,
) -> str:
    task_id = new_task_id(sub_app_id)
    with ctx.db.session() as session:
        session.add(
            Task(
                task_id=task_id,
                sub_app_id=sub_app_id,
                status="WAITING",
                file_id=file_id,
                priority=priority,
                subtasks=subtasks if subtasks is not None else [entry(20000)],
                created_at=created_at,
                not_before=not_before,
            )
        )
    return task_id


def load_task(ctx: Context, task_id: str) -> Task:
    with ctx.db.session() as session:
        task = session.get(Task, task_id)
        assert task is not None
        return task


def sub(ctx: Context, task_id: str, index: int = 0) -> dict[str, Any]:
    """The ``AnimatedGraphicTask`` of subtask ``index`` as stored."""
    result: dict[str, Any] = load_task(ctx, task_id).subtasks[index]["AnimatedGraphicTask"]
    return result


def outputs(ctx: Context, task_id: str) -> list[MediaOutput]:
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(MediaOutput)
                .where(MediaOutput.task_id == task_id)
                .order_by(MediaOutput.subtask)
            )
        )


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds (tests only: production code never polls like this)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.05)


# -- jobs run in the media child -------------------------------------------------------------

SLOW_SECONDS = 1.5


def crash_exit(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """Dies like a native crash that skips Python's cleanup."""
    os._exit(3)


def crash_sigkill(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """Dies like the OOM killer's victim."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def crash_exception(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """A bug in the job: an exception that is not a TaskError."""
    raise RuntimeError("boom")


def hang(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """Stuck and deaf to the deadline, like a decoder looping inside C code."""
    Path(output).with_name(f".{Path(output).name}.stuck.part").write_bytes(b"partial")
    progress(0.5)
    time.sleep(3600)
    raise AssertionError("unreachable")


def slow_animate(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """The real engine, after a pause long enough for a test to act while the job runs."""
    from anigraph.media.animate import animate

    progress(0.1)
    time.sleep(SLOW_SECONDS)
    return animate(source, output, params, limits, deadline, progress)


def report_pid(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """Succeeds with the child's pid as ``Size``, so a test can tell which process ran it."""
    Path(output).write_bytes(b"GIF89a")
    return Result(output, "gif", 1, 1, os.getpid(), 0, "", 0.0, 0.0, 1, 0.1)


def refuse_with_pid(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """A clean refusal (like bad input) that names the child's pid."""
    from anigraph.domain.errors import ErrCodeExt, TaskError

    raise TaskError(ErrCodeExt.CONTENT_MALFORMED, f"pid {os.getpid()}")


def lower_retire_cap(
    source: str,
    output: str,
    params: AnimateParams,
    limits: Limits,
    deadline: float,
    progress: ProgressCallback,
) -> Result:
    """Like ``report_pid``, in a child that then finds itself over the memory cap."""
    from anigraph.media import child

    child.RETIRE_RSS_BYTES = 1  # type: ignore[misc]
    return report_pid(source, output, params, limits, deadline, progress)


def hang_probe(source: str, limits: Limits, progress: ProgressCallback) -> MetaData:
    """A demuxer stuck in a loop on a hostile file."""
    time.sleep(3600)
    raise AssertionError("unreachable")


def crash_probe(source: str, limits: Limits, progress: ProgressCallback) -> MetaData:
    """A demuxer that crashes the process."""
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("unreachable")
