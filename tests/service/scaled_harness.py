"""anigraph scaled out on loopback: PostgreSQL, S3 (moto's server), Redis, an API-only
``anigraph serve --workers 0`` and worker processes (``anigraph worker``, ``anigraph
celery-worker``), each process in a data folder of its own as if it ran on its own machine.

Every process gets the settings the way an operator would set them, from the environment
(``ANIGRAPH_DB``/``STORE``/``QUEUE``/``PUBLIC_URL``, and the S3 credentials boto3 reads). Each
worker runs in a session of its own, so :meth:`WorkerProcess.crash` can SIGKILL it together with
its media children, the way a machine dies.

The test process reads the truth where it lives: the task, output and outbox rows in
PostgreSQL and the objects in the bucket (:class:`Cluster` inspection methods).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from service_harness import PROXY_VARIABLES, Server, Vod, free_port, wait_for_task

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from anigraph.db.models import MediaOutput, Task
    from anigraph.db.models_events import OutboxEvent
    from storage_fixtures import S3Server

WORKER: Final = "worker"
CELERY_WORKER: Final = "celery-worker"
LEASE_SECONDS: Final = 2.0
READY_MARKERS: Final = {WORKER: "anigraph worker running", CELERY_WORKER: " ready."}
"""What each kind of worker logs once it takes work (the Celery line is Celery's own)."""
FINISHED_LINE: Final = re.compile(r"\btask (\S+) finished$")
"""The line both kinds log when a run ends with the task FINISH."""

CELERY_QUEUE: Final = "anigraph"
"""The Redis list the Celery transport publishes wake-ups to (``task_default_queue``)."""

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something truthy, and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def scoped_env(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block only (subprocesses started inside inherit
    them; nothing leaks into other tests of the session)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class ScaledServer(Server):
    """The harness ``Server`` whose process and CLI calls (``media import``, ``keys create``)
    get the scaled-out settings from the environment."""

    env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 30) -> None:
        with scoped_env(self.env):
            super().start(timeout)

    def import_media(self, path: Path, sub_app_id: int | None = None) -> str:
        args = ["media", "import", str(path), "--data-dir", str(self.data_dir), "--json"]
        if sub_app_id is not None:
            args += ["--sub-app-id", str(sub_app_id)]
        return str(json.loads(self.cli(*args))["FileId"])

    def create_key(self, sub_app_id: int) -> dict[str, Any]:
        args = ["keys", "create", "--data-dir", str(self.data_dir), "--json"]
        return dict(json.loads(self.cli(*args, "--sub-app-id", str(sub_app_id))))

    def cli(self, *args: str) -> str:
        """``anigraph ARGS`` with this cluster's settings; its stdout (fails on an error).

        The environment is passed, not set: imports run in a thread beside other work.
        """
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        done = subprocess.run(
            [sys.executable, "-m", "anigraph", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, **self.env},
        )
        assert done.returncode == 0, f"anigraph {args} failed: {done.stderr[-3000:]}"
        return done.stdout


@dataclass
class WorkerProcess:
    """``anigraph worker`` or ``anigraph celery-worker`` with one slot, in its own session."""

    kind: str
    data_dir: Path
    env: dict[str, str]
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        env.update(self.env)
        args = [sys.executable, "-m", "anigraph", self.kind, "--data-dir", str(self.data_dir)]
        args += ["--workers", "1", *self.extra]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def finished(self) -> list[str]:
        """Ids of the tasks this worker ran to FINISH, from its JSON log lines."""
        found: list[str] = []
        for line in self.log().splitlines():
            try:
                message = str(json.loads(line).get("message", ""))
            except ValueError:
                continue  # Celery's banner and other plain lines
            match = FINISHED_LINE.search(message)
            if match is not None:
                found.append(match.group(1))
        return found

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.alive, f"{self.kind} exited: {self.log()[-3000:]}"
            return READY_MARKERS[self.kind] in self.log()

        wait_until(ready, f"{self.kind} {self.data_dir.name} to be ready", timeout)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def owns(self, pid: int) -> bool:
        """Whether process ``pid`` belongs to this worker (its session: main, pool children)."""
        try:
            return os.getsid(pid) == self.pid
        except ProcessLookupError:
            return False

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Every process of this worker frozen (SIGSTOP) for the block: it claims nothing,
        consumes no message and heartbeats no lease until it is let go (SIGCONT)."""
        os.killpg(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGCONT)

    def crash(self) -> None:
        """SIGKILL every process of this worker at once, like a machine losing power."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (drain: running tasks finish), then whatever is left of the session dies."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            if self.process.poll() is None:
                self.process.wait(10)
        return code


def store_url(s3: S3Server, prefix: str) -> str:
    return f"s3://{s3.bucket}?endpoint_url={s3.endpoint_url}&region={s3.region}&prefix={prefix}"


class Cluster:
    """One scaled-out deployment: an API-only server and worker processes on shared backends."""

    def __init__(
        self,
        root: Path,
        *,
        db_url: str,
        s3: S3Server,
        queue_url: str,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.db_url = db_url
        self.s3 = s3
        self.queue_url = queue_url
        self.prefix = f"c{secrets.token_hex(6)}"
        port = free_port()
        self.env = {
            "ANIGRAPH_DB": db_url,
            "ANIGRAPH_STORE": store_url(s3, self.prefix),
            "ANIGRAPH_QUEUE": queue_url,
            "ANIGRAPH_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "ANIGRAPH_LEASE_SECONDS": str(lease_seconds),
            # A transient failure (the database restarting) is retried soon, not in 5 s.
            "ANIGRAPH_RETRY_BACKOFF_SECONDS": "0.5",
            **s3.credentials,
            "AWS_DEFAULT_REGION": s3.region,
        }
        self.api = ScaledServer(root / "api", port, ["--workers", "0"], env=self.env)
        self.workers: list[WorkerProcess] = []
        self.file_id = ""
        self._engine: Engine | None = None
        self._vod: Vod | None = None

    # -- processes -------------------------------------------------------------------------------

    def add_worker(self, kind: str, *extra: str) -> WorkerProcess:
        """Start one more worker process (not waiting for it: see ``WorkerProcess.wait_ready``)."""
        name = f"{kind}-{len(self.workers) + 1}"
        worker = WorkerProcess(kind, self.root / name, self.env, list(extra))
        worker.start()
        self.workers.append(worker)
        return worker

    def start(self, kinds: Sequence[str] = (), media: Path | None = None) -> list[WorkerProcess]:
        """The API and ``kinds`` workers, started together (their first starts share the schema
        migration under its lock), each ready to take work; ``media``, if given, is imported
        meanwhile (its FileId in ``file_id``)."""
        started = [self.add_worker(kind) for kind in kinds]
        self.api.start(timeout=60)
        with ThreadPoolExecutor(1) as background:
            imported = background.submit(self.api.import_media, media) if media else None
            for worker in started:
                worker.wait_ready()
            # PULL events for the default sub-application: the tests count them.
            self.vod("ModifyEventConfig", {"Mode": "PULL"})
            if imported is not None:
                self.file_id = imported.result()
        return started

    def close(self) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.crash()
        if self.api.process is not None:
            self.api.stop(timeout=30)
        if self._engine is not None:
            self._engine.dispose()

    @property
    def vod(self) -> Vod:
        if self._vod is None:
            self._vod = Vod(self.api, self.api.default_key())
        return self._vod

    def owner_of(self, task_id: str) -> WorkerProcess | None:
        """The worker process holding the task's lease right now, if any."""
        task = self.task(task_id)
        if task.lease_owner is None:
            return None
        pid = int(task.lease_owner.split(":")[-3])  # host:pid:slot:random
        return next((worker for worker in self.workers if worker.owns(pid)), None)

    # -- the Redis queue -----------------------------------------------------------------------

    def queued_messages(self) -> int:
        """Wake-up messages waiting in the Celery queue (published, not yet taken by a worker)."""
        import redis

        with redis.Redis.from_url(self.queue_url) as client:
            return int(client.llen(CELERY_QUEUE))

    def drop_messages(self) -> None:
        """Lose every message of this cluster's Redis database: queued, and taken but unacked."""
        import redis

        with redis.Redis.from_url(self.queue_url) as client:
            client.flushdb()

    # -- inspection: the rows and objects are the truth ------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            # No pool: the chaos tests restart the server, a fresh connection per look is simplest.
            self._engine = create_engine(self.db_url, poolclass=NullPool)
        return self._engine

    def task(self, task_id: str) -> Task:
        from sqlalchemy.orm import Session

        from anigraph.db.models import Task

        with Session(self.engine) as session:
            task = session.get(Task, task_id)
            assert task is not None, f"no task {task_id}"
            return task

    def outputs(self) -> list[MediaOutput]:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from anigraph.db.models import MediaOutput

        with Session(self.engine) as session:
            return list(session.scalars(select(MediaOutput)))

    def outbox(self, event_type: str) -> list[OutboxEvent]:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from anigraph.db.models_events import OutboxEvent

        with Session(self.engine) as session:
            stmt = select(OutboxEvent).where(OutboxEvent.event_type == event_type)
            return list(session.scalars(stmt))

    def objects(self, kind: str) -> set[str]:
        """Store keys (``<sub app>/<kind>/<day>/<name>``) of the objects of ``kind`` in S3."""
        client = self.s3.client()
        keys: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.s3.bucket, Prefix=f"{self.prefix}/"
        ):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) + 1 :]
                if key.split("/")[1] == kind:
                    keys.add(key)
        return keys


# -- the SDK side ---------------------------------------------------------------------------------


def animate(vod: Vod, file_id: str, *items: dict[str, Any], **extra: Any) -> str:
    """ProcessMedia with these AnimatedGraphicTaskSet items; the TaskId."""
    request = {"FileId": file_id, "MediaProcessTask": {"AnimatedGraphicTaskSet": list(items)}}
    return str(vod("ProcessMedia", {**request, **extra})["TaskId"])


def pull_all_events(vod: Vod, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every event waiting in the caller's PULL queue, each confirmed once pulled."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while vod("DescribeEventsState")["CountOfEventsToPull"]:
        assert time.monotonic() < deadline, "events kept coming"
        batch = vod("PullEvents").get("EventSet") or []
        if batch:
            vod("ConfirmEvents", {"EventHandles": [event["EventHandle"] for event in batch]})
        events += batch
    return events


def finish_events(events: Sequence[dict[str, Any]]) -> Counter[str]:
    """How many ProcedureStateChanged FINISH events each task got."""
    return Counter(
        event["ProcedureStateChangeEvent"]["TaskId"]
        for event in events
        if event["EventType"] == "ProcedureStateChanged"
        and event["ProcedureStateChangeEvent"]["Status"] == "FINISH"
    )


def wait_all(vod: Vod, task_ids: Sequence[str], timeout: float = 90.0) -> dict[str, dict[str, Any]]:
    """DescribeTaskDetail of every task once each is FINISH (or ABORTED)."""
    deadline = time.monotonic() + timeout
    return {
        task_id: wait_for_task(vod, task_id, max(1.0, deadline - time.monotonic()))
        for task_id in task_ids
    }


def check_done_exactly_once(
    cluster: Cluster, task_ids: Sequence[str], *, timeout: float = 90.0
) -> dict[str, dict[str, Any]]:
    """Every task FINISH with every subtask SUCCESS; one MediaOutput per subtask, each backed by
    exactly one S3 object and no output object besides; one FINISH event per task, both as the
    PULL consumer sees it and in the outbox. Returns the task details."""
    vod = cluster.vod
    details = wait_all(vod, task_ids, timeout)
    expected: set[tuple[str, int]] = set()
    for task_id, detail in details.items():
        assert detail["Status"] == "FINISH", detail
        results = detail["ProcedureTask"]["MediaProcessResultSet"]
        for index, result in enumerate(results):
            graphic = result["AnimatedGraphicTask"]
            assert graphic["Status"] == "SUCCESS", (task_id, index, graphic)
            expected.add((task_id, index))
    outputs = [row for row in cluster.outputs() if row.task_id in task_ids]
    made = Counter((row.task_id, row.subtask) for row in outputs)
    assert set(made) == expected and max(made.values()) == 1, made
    # Output objects of every task of this cluster (not only these): none may be orphaned.
    recorded = {row.store_key for row in cluster.outputs()}
    stored = cluster.objects("output")
    assert stored == recorded, f"orphans {stored - recorded}, missing {recorded - stored}"
    counted = finish_events(pull_all_events(vod))
    assert {task_id: counted[task_id] for task_id in task_ids} == dict.fromkeys(task_ids, 1), (
        counted
    )
    outbox = Counter(
        event.content["ProcedureStateChangeEvent"]["TaskId"]
        for event in cluster.outbox("ProcedureStateChanged")
    )
    assert {task_id: outbox[task_id] for task_id in task_ids} == dict.fromkeys(task_ids, 1)
    return details
